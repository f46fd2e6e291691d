/* jemalloc 5.3's layouts and size classes (see jemalloc_layout.h). Each offset below is worked out
 * from the 5.3.0 headers named beside it; the walker checks them on every structure it reads. */
#include "jemalloc_layout.h"

#define SIZE_CLASSES 232 /* SC_NSIZES: 36 small classes, 196 large */

void jemalloc_layout_5_3(struct jemalloc_layout *layout)
{
	*layout = (struct jemalloc_layout){
		.lg_page = 12,
		.lg_vaddr = 48,
		/* rtree.h: 48 - 12 = 36 significant bits, two levels of 18 */
		.rtree_root_bits = 18,
		.rtree_leaf_bits = 18,
		.edata_alignment = 128,
		/* edata.h: e_bits, e_addr, e_size_esn, e_ps, e_sn, a 24-byte link union, then
		 * the slab data (bitmap of 512 bits) in a union; 128 bytes in all */
		.edata_size = 128,
		.edata_bits = 0,
		.edata_addr = 8,
		.edata_size_esn = 16,
		.edata_ps = 24,
		.edata_slab_bitmap = 64,
		.bitmap_groups = 8,
		/* edata.h's e_bits: arena_ind (MALLOCX_ARENA_BITS 12), slab, committed, pai,
		 * zeroed, guarded, state (3), szind (LG_CEIL(SC_NSIZES) 8), nfree (10), ... */
		.arena_shift = 0,
		.arena_width = 12,
		.slab_shift = 12,
		.pai_shift = 14, /* EXTENT_PAI_HPA (1): the HPA's, not the PAC's */
		.state_shift = 17,
		.state_width = 3,
		.szind_shift = 20,
		.szind_width = 8,
		.nfree_shift = 28,
		.nfree_width = 10,
		/* hpdata.h: h_address first; HUGEPAGE is 2 MiB on x86-64 */
		.lg_hugepage = 21,
		.hpdata_address = 0,
		/* sc.h with LG_QUANTUM 4, LG_PAGE 12, SC_LG_NGROUP 2 */
		.nbins = 36,
		.nsizes = SIZE_CLASSES,
		/* tcache_structs.h / cache_bin.h: a cache_bin_t is stack_head, tstats (one
		 * uint64_t), low_bits_low_water, low_bits_full, low_bits_empty: 24 bytes */
		.tcache_slow = 0,
		.tcache_bins = 8,
		.cache_bin_size = 24,
		.cache_bin_stack_head = 0,
		.cache_bin_low_bits_empty = 20,
		.tcache_size = 8 + 24 * (36 + 4 * (23 - 14) + 1),
		/* SC_NBINS + SC_NGROUP * (TCACHE_LG_MAXCLASS_LIMIT - SC_LG_LARGE_MINCLASS) + 1 */
		.tcache_nbins_max = 36 + 4 * (23 - 14) + 1,
		/* tcache_slow_t: link (16), cache_bin_array_descriptor (link 16, bins 8), arena,
		 * next_gc_bin (4), lg_fill_div, bin_refilled, bin_flush_delay_items (36 bytes
		 * each), dyn_alloc, tcache */
		.slow_link_next = 0,
		.slow_link_prev = 8,
		.slow_descriptor_bins = 32,
		.slow_arena = 40,
		.slow_dyn_alloc = 160,
		.slow_tcache = 168,
		.slow_size = 176,
		/* CACHE_BIN_NCACHED_MAX: low bits are 16 bits of 8-byte slots */
		.ncached_max = (1u << 16) / 8 - 1,
		/* jemalloc_internal_types.h: MALLOCX_TCACHE_MAX is (1 << 12) - 3; tcache_types.h */
		.explicit_tcaches = (1u << 12) - 3 + 1,
		.tcaches_need_reinit = 1,
	};
}

/* sc.c: after the tiny class 8 come 16, 32, 48, 64, then four classes per doubling,
 * 2^lg_base + k * 2^(lg_base - 2) for k = 1..4. */
uint64_t jemalloc_size_class(unsigned index)
{
	static const uint64_t first[] = {8, 16, 32, 48, 64};
	if (index >= SIZE_CLASSES)
		return 0;
	if (index < 5)
		return first[index];
	unsigned group = (index - 5) / 4, k = (index - 5) % 4 + 1;
	return (1ull << (6 + group)) + ((uint64_t)k << (4 + group));
}

/* sc.c's slab_size(): the fewest pages that hold a whole number of regions. */
unsigned jemalloc_slab_pages(const struct jemalloc_layout *layout, unsigned index)
{
	if (index >= layout->nbins)
		return 0;
	uint64_t page = 1ull << layout->lg_page, size = jemalloc_size_class(index);
	unsigned pages = 1;
	while ((pages * page) % size != 0)
		pages++;
	return pages;
}
