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

int c_types_propagate(struct type_names *names, const struct heap *heap,
		      struct address_space *space, struct symbols *symbols,
		      bool quiet_conflicts, struct warnings *warnings, struct hs_error *err);

#endif
