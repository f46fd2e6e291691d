/* The jemalloc 5.3 walker: every extent jemalloc holds, found through its global extent map (the
 * radix tree `arena_emap_global` that maps each page it manages to the page's extent descriptor),
 * and in it every block: small regions of slabs, live or free by the slab's bitmap; large extents;
 * dirty and muzzy extents waiting for reuse; and, from each thread's tcache (found in the thread's
 * TLS), the regions a thread keeps cached, which the slabs count as allocated. Debian's library is
 * stripped, so the map is found by its shape in the library's data and each structure is checked
 * against the layouts of jemalloc_layout.h as it is read; what does not fit is a warning with its
 * address, and no map at all is an error. */
#ifndef HEAPSNAP_JEMALLOC_HEAP_H
#define HEAPSNAP_JEMALLOC_HEAP_H

#include <stdbool.h>

#include "analyze/address_space.h"
#include "analyze/heap.h"
#include "analyze/symbols.h"
#include "common/error.h"
#include "common/warnings.h"

/* Fills `heap` from the jemalloc in `module` (the library, or the executable that links it in).
 * `no_debuginfo` leaves out the check of the shape-found map against the module's symbols, when
 * it has any. Fails when no extent map can be found (there is then no heap to show) or when out
 * of memory; what cannot be walked is said in warnings. */
int jemalloc_heap_walk(struct address_space *space, struct symbols *symbols,
		       struct module_symbols *module, bool no_debuginfo, struct heap *heap,
		       struct warnings *warnings, struct hs_error *err);

/* jemalloc's words for the places of its blocks ("in_use", "large", "tcache", "slab_free",
 * "dirty", "metadata"). */
const char *jemalloc_place_name(enum allocation_place place);

#endif
