/* The tcmalloc walker, for gperftools 2.10 as Debian ships it (libtcmalloc_minimal.so.4 and
 * libtcmalloc.so.4, stripped, x86-64: 8 KiB pages, 48-bit addresses). Every span tcmalloc holds
 * is found through its page map (the radix tree in its page heap that maps each page to its
 * Span), and in it every block: the objects of a small-object span, live or free in the span's
 * free list; a large span's one block; free spans the page heap keeps for reuse. Objects waiting
 * in the central caches' transfer slots and in each thread's cache, which their spans count as
 * handed out, are then marked free where they wait. The library is stripped, so the page map,
 * the size classes, the central caches and the thread caches' list are found by their shape in
 * its data, checked against the symbols it exports where it has them; what does not fit is a
 * warning with its address, and no page map at all is an error. */
#ifndef HEAPSNAP_TCMALLOC_HEAP_H
#define HEAPSNAP_TCMALLOC_HEAP_H

#include "analyze/allocators/allocator.h"
#include "analyze/heap.h"
#include "common/error.h"
#include "common/warnings.h"

/* tcmalloc_allocator's walk (allocator.h): fills `heap` from the tcmalloc in `input->module`.
 * Fails when no page map or no size classes can be found (there is then no heap to show) or
 * when out of memory. Its places are "in_use", "large", "thread_cache", "transfer_cache",
 * "central_free" and "page_heap". */
int tcmalloc_heap_walk(const struct allocator_input *input, struct heap *heap,
		       struct warnings *warnings, struct hs_error *err);

#endif
