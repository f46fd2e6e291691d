/* Memory the process wrote to that no walked heap explains: anonymous writable mappings (not a
 * thread's stack, not a module's .bss), less every block and bookkeeping range the walkers put in
 * the heap, counted in pages that hold something other than zeros. An allocator or runtime that
 * heapsnap does not know (PHP's Zend heap, LuaJIT's, a program's own mmap'd pools) keeps its
 * objects there; the analysis says how much, rather than let a report that cannot see them pass
 * for the whole. */
#ifndef HEAPSNAP_OUTSIDE_HEAPS_H
#define HEAPSNAP_OUTSIDE_HEAPS_H

#include <stdint.h>

#include "analyze/address_space.h"
#include "analyze/heap.h"

struct outside_heaps {
	uint64_t bytes;		  /* written, outside every heap */
	uint64_t heap_bytes;	  /* the blocks the walkers found, live and free */
	uint64_t largest_start;	  /* the mapping holding most of it */
	uint64_t largest_bytes;	  /* what of it is outside */
};

/* Measures it; reads only the pages no block covers. */
void outside_heaps_measure(struct address_space *space, const struct heap *heap,
			   struct outside_heaps *outside);

#endif
