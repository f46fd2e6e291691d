/* The glibc malloc (ptmalloc) walker: every chunk of the main arena's heap, of every thread
 * arena's heaps and every mmapped chunk, classified as live, or free in a tcache, a fast bin, a
 * bin, or top. Arenas are found with libc's debug information (the main_arena and mp_ symbols,
 * layouts from DWARF) or without it (the arena ring read from a malloc_state found in libc's data,
 * heaps recognised by their heap_info), and both ways must agree. A corrupt heap gives warnings
 * with addresses; the walk resynchronises and goes on. */
#ifndef HEAPSNAP_GLIBC_HEAP_H
#define HEAPSNAP_GLIBC_HEAP_H

#include <stdbool.h>

#include "analyze/address_space.h"
#include "analyze/allocators/allocator.h"
#include "analyze/heap.h"
#include "analyze/symbols.h"
#include "common/error.h"
#include "common/warnings.h"

/* glibc_allocator's walk (allocator.h): `input->module` holds glibc's malloc, libc.so or the
 * executable that links glibc statically. Fails only when out of memory; what cannot be walked
 * is said in warnings. */
int glibc_heap_walk(const struct allocator_input *input, struct heap *heap,
		    struct warnings *warnings, struct hs_error *err);

/* glibc_allocator's in_use (allocator.h): its main arena holds memory, or there is another arena.
 * Walked after another malloc, the walk skips what that one holds. */
bool glibc_heap_in_use(const struct allocator_input *input);

#endif
