/* The mimalloc walker (2.0, as Debian packages it, and 2.1, as CPython 3.13 bundles it: see
 * mimalloc_heap_walk_cpython): every segment mimalloc holds (32 MiB aligned blocks of address space,
 * each starting with its mi_segment_t header), found by shape in the process's anonymous
 * mappings, and in each segment its pages (runs of 64 KiB slices) and in each page its blocks:
 * live ones, and free ones by the list they wait in (the page's `free` and `local_free` lists,
 * its `xthread_free` list of blocks other threads freed, and the owning heap's
 * `thread_delayed_free` list). Debian's libmimalloc.so.2 (2.0.9, a release build: no encoded free
 * lists, no padding) is stripped, so a segment is recognised by its header's shape and its
 * cookie (its address xor the main heap's cookie, the same for every segment), and the main
 * heap is recognised in the library's data by that cookie. Secure builds (encoded free lists)
 * and debug builds (encoded lists, padding that says each block's size asked) are walked too,
 * told apart by the shape of their page descriptors and heaps. What does not fit is a warning with
 * its address, and no segment at all is an error. */
#ifndef HEAPSNAP_MIMALLOC_HEAP_H
#define HEAPSNAP_MIMALLOC_HEAP_H

#include <stdbool.h>

#include "analyze/allocators/allocator.h"
#include "analyze/heap.h"
#include "common/error.h"
#include "common/warnings.h"

/* mimalloc_allocator's walk (allocator.h): fills `heap` from the mimalloc in `input->module`.
 * Fails when no segment can be found (there is then no heap to show) or when out of memory.
 * Its places are "in_use", "large" (live), "page_free", "local_free", "thread_free" (the
 * xthread_free and thread_delayed_free lists), "free_span" (PLACE_TOP: committed slices no page
 * uses, in a thread's segment) and "retained" (free in abandoned and cached segments). */
int mimalloc_heap_walk(const struct allocator_input *input, struct heap *heap,
		       struct warnings *warnings, struct hs_error *err);

/* A mimalloc that a runtime embeds and layers on the process's malloc, the way pymalloc is (CPython
 * 3.13's, runtimes/cpython/cpython_mimalloc.c): its allocator record, its name in messages, and
 * what a walk that finds none of its segments says after "NAME (in PATH): ". */
struct mimalloc_embedded {
	const struct allocator *allocator;
	const char *what;
	const char *not_found;
};

/* Walks an embedded mimalloc on top of the malloc already walked into `heap`: `input->module`
 * is the module that embeds it. Its segments are found as above (its blocks start where 2.1 puts
 * them), the layouts checked against the module's DWARF where it has it. Returns 0 when walked;
 * when no segment is found, 1 if `probe` (nothing is added) and otherwise -1 with
 * embedded->not_found said. */
int mimalloc_heap_walk_embedded(const struct allocator_input *input,
				const struct mimalloc_embedded *embedded, bool probe,
				struct heap *heap, struct warnings *warnings, struct hs_error *err);

/* mimalloc's words for its places ("page_free", "thread_free"), for the allocators that walk it
 * (allocator.h). */
extern const char *const mimalloc_place_names[PLACE_COUNT];

#endif
