/* C struct types from DWARF, propagated from typed global and static variables through pointer
 * members into the heap (see c_types.c). */
#ifndef HEAPSNAP_C_TYPES_H
#define HEAPSNAP_C_TYPES_H

#include <stdbool.h>
#include "analyze/address_space.h"
#include "analyze/heap.h"
#include "analyze/symbols.h"
#include "analyze/types.h"
#include "common/error.h"
#include "common/warnings.h"

/* The half of the typing that needs no heap: every module's variables with static storage, read
 * from its DWARF on a thread of its own while the heap is walked (the modules' debug files are
 * large: a fifth of a second for libc's). NULL when the thread cannot start (or out of memory):
 * c_types_propagate then reads them itself. */
struct c_types_reading;
struct c_types_reading *c_types_read_start(struct symbols *symbols);
/* Waits for the thread and says how long its reading took (the DWARF's share of the work). */
double c_types_read_seconds(struct c_types_reading *reading);
/* Waits for the thread and frees what it read (for an analysis that stops before typing). */
void c_types_read_free(struct c_types_reading *reading);

/* Types the heap from the variables: `reading` (from c_types_read_start on the same symbols, or
 * NULL) is used up and freed. */
int c_types_propagate(struct type_names *names, const struct heap *heap,
		      struct address_space *space, struct symbols *symbols,
		      struct c_types_reading *reading, bool quiet_conflicts,
		      struct warnings *warnings, struct hs_error *err);

#endif
