/* The jemalloc 5.3 walker: every extent jemalloc holds, found through its global extent map (the
 * radix tree `arena_emap_global` that maps each page it manages to the page's extent descriptor),
 * and in it every block: small regions of slabs, live or free by the slab's bitmap; large extents;
 * dirty and muzzy extents waiting for reuse (and, with the HPA, the extents its small extent cache
 * keeps); and, from each thread's tcache (found in the thread's TLS) and each explicit tcache
 * (tcache.create, found through jemalloc's array of them), the regions a tcache keeps cached,
 * which the slabs count as allocated. Debian's library is
 * stripped, so the map is found by its shape in the library's data and each structure is checked
 * against the layouts of jemalloc_layout.h as it is read; what does not fit is a warning with its
 * address, and no map at all is an error. */
#ifndef HEAPSNAP_JEMALLOC_HEAP_H
#define HEAPSNAP_JEMALLOC_HEAP_H

#include <stdbool.h>

#include "analyze/address_space.h"
#include "analyze/allocators/allocator.h"
#include "analyze/heap.h"
#include "analyze/symbols.h"
#include "common/error.h"
#include "common/warnings.h"

/* jemalloc_allocator's walk (allocator.h): fills `heap` from the jemalloc in `input->module`
 * (the library, or the executable that links it in). `input->no_debuginfo` leaves out the check
 * of the shape-found map against the module's symbols, when it has any. Fails when no extent map
 * can be found (there is then no heap to show) or when out of memory; what cannot be walked is
 * said in warnings. Its places are "in_use", "large", "tcache", "slab_free", "dirty" and
 * "metadata". */
int jemalloc_heap_walk(const struct allocator_input *input, struct heap *heap,
		       struct warnings *warnings, struct hs_error *err);

#endif
