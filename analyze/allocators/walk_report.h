/* What the walkers of stripped allocators (jemalloc_heap.c, mimalloc_heap.c, tcmalloc_heap.c)
 * share when they add blocks and report damage: a structure that does not fit is counted in the
 * heap's damage and told as a warning prefixed with the allocator's name, the first
 * WALK_DAMAGE_SHOWN of them in full and the rest counted in one line at the end; a block is added
 * under the allocator's name in the out-of-memory error; and a block already added is found by
 * its address while the heap is still in address order (before heap_finish), to change its state
 * (a cached or delayed-free block that its slab or page counts as allocated). */
#ifndef HEAPSNAP_WALK_REPORT_H
#define HEAPSNAP_WALK_REPORT_H

#include <stdint.h>

#include "analyze/heap.h"
#include "common/error.h"
#include "common/warnings.h"

#define WALK_DAMAGE_SHOWN 20 /* damage warnings told in full before they are only counted */

struct walk_report {
	struct heap *heap;
	struct warnings *warnings;
	const char *allocator; /* "jemalloc": the prefix of its warnings and errors */
	uint64_t unshown; /* damage past WALK_DAMAGE_SHOWN */
};

/* Counts one corrupt structure at `address` and tells it (or only counts it, past the first few). */
void walk_damage(struct walk_report *report, uint64_t address, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* The line that counts the damage not told in full, if any. */
void walk_report_finish(struct walk_report *report);
/* Adds one block to the heap; fails only when out of memory. */
int walk_add_block(struct walk_report *report, uint64_t address, uint64_t size,
                   enum allocation_state state, enum allocation_place place, int arena,
                   uint64_t first_word, struct hs_error *err);
/* The block at exactly `address` among those added so far, which must be in address order; or
 * NULL. */
struct allocation *walk_block_at(struct heap *heap, uint64_t address);
/* The same among `count` allocations in address order from `allocations` (those one walk
 * added, when another walked before it). */
struct allocation *walk_block_among(struct allocation *allocations, size_t count,
				    uint64_t address);

#endif
