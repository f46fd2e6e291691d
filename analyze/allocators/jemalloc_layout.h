/* Where jemalloc 5.3 keeps what the walker reads, for x86-64 Linux builds (Debian's libjemalloc2:
 * 4 KiB pages, 48-bit addresses, 16-byte quantum, statistics and profiling compiled in): the
 * global extent map (a two-level radix tree, emap.h / rtree.h), the extent descriptor edata_t
 * (edata.h) and the HPA's pageslab it may be in (hpdata.h), a tcache and its tcache_slow
 * (tcache_structs.h, cache_bin.h), the array of explicit tcaches (tcache.c), and the size
 * classes (sc.c). The library ships stripped, so these are taken from the 5.3.0 sources and held
 * in this one table; the walker checks each structure's shape against them as it reads, so a
 * build that differs shows as warnings, never as a confident wrong heap. */
#ifndef HEAPSNAP_JEMALLOC_LAYOUT_H
#define HEAPSNAP_JEMALLOC_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

struct jemalloc_layout {
	unsigned lg_page;	   /* LG_PAGE */
	unsigned lg_vaddr;	   /* LG_VADDR: leaf elements keep szind above it */
	unsigned rtree_root_bits;  /* key bits of the root level (rtree_levels[0].bits) */
	unsigned rtree_leaf_bits;  /* key bits of the leaf level */
	uint64_t edata_alignment;  /* EDATA_ALIGNMENT: low bits of a leaf element's edata */
	/* edata_t */
	uint64_t edata_size, edata_bits, edata_addr, edata_size_esn, edata_ps, edata_slab_bitmap;
	unsigned bitmap_groups; /* 64-bit groups of a slab's bitmap (BITMAP_GROUPS_MAX) */
	/* e_bits fields: shift and width */
	unsigned arena_shift, arena_width, slab_shift, pai_shift, state_shift, state_width,
		szind_shift, szind_width, nfree_shift, nfree_width;
	/* hpdata_t: a pageslab of the HPA, one huge page of address space */
	unsigned lg_hugepage;
	uint64_t hpdata_address;
	/* size classes */
	unsigned nbins;	 /* SC_NBINS: classes served from slabs */
	unsigned nsizes; /* SC_NSIZES */
	/* tcache_t: tcache_slow pointer, then the cache_bin_t array */
	uint64_t tcache_slow, tcache_bins, cache_bin_size, cache_bin_stack_head,
		cache_bin_low_bits_empty, tcache_size;
	unsigned tcache_nbins_max; /* TCACHE_NBINS_MAX */
	/* tcache_slow_t */
	uint64_t slow_link_next, slow_link_prev, slow_descriptor_bins, slow_arena, slow_dyn_alloc,
		slow_tcache, slow_size;
	unsigned ncached_max; /* CACHE_BIN_NCACHED_MAX: no bin holds more */
	/* the explicit tcaches: `tcaches` points at this many tcaches_t (MALLOCX_TCACHE_MAX + 1),
	   each a tcache_t pointer, TCACHES_ELM_NEED_REINIT, or the next free element */
	unsigned explicit_tcaches;
	uint64_t tcaches_need_reinit;
};

/* The layout of jemalloc 5.3 on x86-64. */
void jemalloc_layout_5_3(struct jemalloc_layout *layout);
/* The size of class `index` (sz_index2size), 0 when index is not a class. */
uint64_t jemalloc_size_class(unsigned index);
/* Pages in a slab of small class `index` (bin_infos[index].slab_size / PAGE), 0 for a large
 * class. */
unsigned jemalloc_slab_pages(const struct jemalloc_layout *layout, unsigned index);

#endif
