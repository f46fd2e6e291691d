/* The jemalloc 5.3 walker (see jemalloc_heap.h).
 *
 * Why the extent map: jemalloc's arenas do not list every extent they hand out (an automatic
 * arena keeps neither its full slabs nor its large extents in a list), but the global extent map
 * `arena_emap_global` registers every page of every slab and the first and last page of every
 * other extent (large, dirty, muzzy, retained), each pointing at its edata_t. So reading the map
 * gives them all, whatever the arena. It is a two-level radix tree (page_map.h, the shape of
 * tcmalloc's page map too) whose root level (2^18 words) sits inside the map in the library's
 * .bss; each non-null word points at a leaf of 2^18 words, and leaf word j of root word i
 * describes the page ((i << 18 | j) << 12).
 *
 * Without symbols the root is found by its shape: a word of the library's writable data that
 * points at a leaf whose first element names an edata_t whose extent holds the page that
 * element stands for; the element's index and that page then say which root word this is, so
 * where the root starts. Every element of every leaf is then checked the same way (its edata's
 * state, and where jemalloc keeps them current its size class and slab flag, must be the ones the
 * element repeats, and its extent must hold the element's page), slab bitmaps against their free
 * counts, large extents against their size class, a thread's tcache by its two back pointers,
 * and each cached region against the slab or extent it is in; what fails is a warning with its
 * address, counted as damage.
 *
 * Explicit tcaches (mallctl "tcache.create") live in allocations of their own, listed only in
 * jemalloc's array `tcaches`, base-allocated and pointed at from its data: found there by shape
 * (every element empty, flushed, a free slot's link or a tcache whose structures point at each
 * other) and walked as a thread's are. The arenas' rings of tcaches (compiled in with
 * statistics), followed from the threads' tcaches, show explicit tcaches too: those the array
 * does not hold (all, when it is not found) are walked all the same, and said in a warning.
 *
 * With MALLOC_CONF=hpa:true the HPA hands out extents from hugepage-sized pageslabs (hpa.c); the
 * map registers each extent's first and last page (and a slab's every page) as it does the PAC's,
 * and never the pageslabs themselves. An extent the HPA takes back waits in its small extent
 * cache still active, its map elements as its last use left them: it is free ("dirty"), told
 * apart by the invalid size class pa_dalloc gives it and checked against its pageslab.
 *
 * Retained extents (address space jemalloc purged and keeps for reuse) hold no memory and are
 * not listed; jemalloc's own metadata (its base allocations: arenas, extent descriptors, the
 * map's leaves) is not listed either, but the mappings that hold it are bookkeeping. */
#include "jemalloc_heap.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/allocators/jemalloc_layout.h"
#include "analyze/allocators/module_data.h"
#include "analyze/allocators/page_map.h"
#include "analyze/allocators/walk_report.h"
#include "common/array_grow.h"

#define ROOT_CANDIDATES (1u << 20) /* words of the module's data tried as pointers to a leaf */
#define LEAF_PIECE 512	      /* elements of a candidate leaf read at a time */
#define TLS_WINDOW (64u << 10) /* how far below a thread's fs base its static TLS is searched */
#define ARENAS_MAX 4096	      /* MALLOCX_ARENA_LIMIT */
#define METADATA_REGIONS 48   /* mappings of jemalloc's metadata told apart (of heap.bookkeeping) */

enum extent_state { STATE_ACTIVE, STATE_DIRTY, STATE_MUZZY, STATE_RETAINED };

struct extent {
	uint64_t edata, base, size, address, bits;
	uint64_t ps; /* the HPA's pageslab (hpdata_t) the extent is in, or 0 */
};

struct walker {
	struct address_space *space;
	struct heap *heap;
	struct warnings *warnings;
	struct jemalloc_layout layout;
	struct page_map map;		/* the extent map (page_map.h) */
	struct extent *extents;	/* registered at their first page, sorted by base */
	size_t extent_count, extent_capacity;
	int arena_of[ARENAS_MAX];	/* heap arena index per jemalloc arena, -1 for none */
	struct walk_report report; /* damage and blocks (walk_report.h) */
	/* the mappings that hold jemalloc's metadata (extent descriptors, the map's leaves,
	   arenas), which point at extents but are not references to the program's objects */
	const struct snapshot_region *metadata[METADATA_REGIONS];
	size_t metadata_count;
	bool metadata_overflow;
	/* the explicit tcaches found on the arenas' rings of tcaches */
	uint64_t *explicit_tcaches;
	size_t explicit_count, explicit_capacity;
};

static uint64_t field(uint64_t bits, unsigned shift, unsigned width)
{
	return (bits >> shift) & ((1ull << width) - 1);
}

static unsigned state_of(const struct walker *walker, uint64_t bits)
{
	return (unsigned)field(bits, walker->layout.state_shift, walker->layout.state_width);
}

static unsigned szind_of(const struct walker *walker, uint64_t bits)
{
	return (unsigned)field(bits, walker->layout.szind_shift, walker->layout.szind_width);
}

static bool slab_of(const struct walker *walker, uint64_t bits)
{
	return field(bits, walker->layout.slab_shift, 1) != 0;
}

/* Whether an active extent is one the HPA holds for reuse rather than one in use. With
 * MALLOC_CONF=hpa:true, pa_dalloc marks an extent it frees with the invalid class SC_NSIZES and
 * hands it to the HPA, whose small extent cache (sec.c) keeps it as it is: still active, still
 * registered at its first and last pages, its edata still flagged slab if it was one. An extent
 * the HPA makes ahead for the cache (a batch fill) is active with that class too. An extent in
 * use always has its class (pa_alloc sets it), and the PAC's free extents are dirty, muzzy or
 * retained, never active. */
static bool cached_by_hpa(const struct walker *walker, const struct extent *extent)
{
	return state_of(walker, extent->bits) == STATE_ACTIVE &&
	       field(extent->bits, walker->layout.pai_shift, 1) != 0 &&
	       szind_of(walker, extent->bits) == walker->layout.nsizes;
}

/* ---- the version -------------------------------------------------------------------------- */

/* jemalloc's version string ("5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c") is in the
 * module's read-only data: found in its file as digits and dots, "-N-g" and 40 hex digits. */
static void read_version(struct module_symbols *module, char *version, size_t size)
{
	version[0] = 0;
	size_t count;
	char *bytes = module_file_bytes(module, &count);
	for (size_t at = 0; at + 42 < count && !version[0]; at++) {
		if (bytes[at] != '-' || bytes[at + 1] != 'g')
			continue;
		size_t hex = 0;
		while (hex < 40 && strchr("0123456789abcdef", bytes[at + 2 + hex]) && bytes[at + 2 + hex])
			hex++;
		if (hex != 40 || bytes[at + 42] != 0)
			continue;
		size_t start = at;
		while (start > 0 && at - start < 32 && strchr("0123456789.-", bytes[start - 1]) &&
		       bytes[start - 1])
			start--;
		size_t end = start;
		while (end < at && bytes[end] != '-')
			end++;
		if (end > start && bytes[start] >= '0' && bytes[start] <= '9' && end - start < size)
			snprintf(version, size, "%.*s", (int)(end - start), bytes + start);
	}
	free(bytes);
}

/* ---- the extent map ------------------------------------------------------------------------- */

struct element {
	uint64_t edata;
	unsigned szind, state;
	bool slab;
};

/* rtree.h's compact leaf element: szind above bit 48, the edata_t's address (sign-extended,
 * 128-byte aligned), the state in bits 2-4, is_head in bit 1, slab in bit 0. */
static struct element decode(const struct walker *walker, uint64_t bits)
{
	unsigned high = 64 - walker->layout.lg_vaddr;
	struct element element = {
		.edata = (uint64_t)((int64_t)(bits << high) >> high) &
			 ~(walker->layout.edata_alignment - 1),
		.szind = (unsigned)(bits >> walker->layout.lg_vaddr),
		.state = (unsigned)((bits >> 2) & 7),
		.slab = (bits & 1) != 0,
	};
	return element;
}

/* Reads the edata_t an element names; false when it cannot be read or is not in the state the
 * element says. */
static bool read_edata(struct walker *walker, const struct element *element, struct extent *extent)
{
	const struct jemalloc_layout *layout = &walker->layout;
	uint64_t words[4]; /* e_bits, e_addr, e_size_esn, e_ps */
	if (element->edata == 0 ||
	    address_space_read(walker->space, element->edata, words, sizeof words, NULL) != 0)
		return false;
	extent->edata = element->edata;
	extent->bits = words[layout->edata_bits / 8];
	extent->address = words[layout->edata_addr / 8];
	extent->size = words[layout->edata_size_esn / 8] & ~((1ull << layout->lg_page) - 1);
	extent->base = extent->address & ~((1ull << layout->lg_page) - 1);
	extent->ps = words[layout->edata_ps / 8];
	return state_of(walker, extent->bits) == element->state && extent->size != 0 &&
	       extent->base + extent->size > extent->base;
}

/* Whether an element repeats its extent's size class and slab flag where jemalloc keeps them
 * there: at the first page of an active extent and at every page of an active slab. (An
 * extent that leaves use keeps its old ones in the map, only its state is updated, and the last
 * page of a large extent keeps the invalid class it was registered with: emap.c's emap_remap,
 * which writes nothing for the invalid class.) An extent the HPA holds for reuse is active but
 * left use all the same: only its first and last pages are registered (pa_dalloc deregistered
 * a slab's inner pages), and they keep whatever class and slab flag its last use left there. */
static bool element_agrees(const struct walker *walker, const struct element *element,
			   const struct extent *extent, uint64_t page)
{
	if (element->state != STATE_ACTIVE)
		return true;
	if (cached_by_hpa(walker, extent))
		return page == extent->base ||
		       page == extent->base + extent->size - (1ull << walker->layout.lg_page);
	if (page != extent->base && !element->slab)
		return true;
	return szind_of(walker, extent->bits) == element->szind &&
	       slab_of(walker, extent->bits) == element->slab;
}

/* The page a leaf element stands for. */
static uint64_t element_page(const struct walker *walker, uint64_t root_index, uint64_t index)
{
	const struct jemalloc_layout *layout = &walker->layout;
	return ((root_index << layout->rtree_leaf_bits) | index) << layout->lg_page;
}

/* What a candidate leaf is tested with, in the search for the extent map's root. */
struct root_search {
	struct walker *walker;
	uint64_t *leaf_words; /* room for one leaf */
};

/* Whether `leaf` looks like a leaf of the map: its first non-zero element names an edata_t
 * that fits it. Then *root_index is the root word that must point at it (page_map_is_leaf). */
static bool is_leaf(void *context, uint64_t leaf, uint64_t *root_index)
{
	struct root_search *search = context;
	struct walker *walker = search->walker;
	uint64_t *leaf_words = search->leaf_words;
	const struct jemalloc_layout *layout = &walker->layout;
	size_t count = (size_t)1 << layout->rtree_leaf_bits;
	if (leaf == 0 || (leaf & 63))
		return false;
	for (size_t j = 0; j < count; j++) {
		/* read a page at a time: most candidates are no leaf, and say so in their
		   first non-zero word */
		if (j % LEAF_PIECE == 0 &&
		    address_space_read(walker->space, leaf + j * 8, leaf_words + j, LEAF_PIECE * 8,
				       NULL) != 0)
			return false;
		if (leaf_words[j] == 0)
			continue;
		struct element element = decode(walker, leaf_words[j]);
		if (element.edata == 0)
			continue; /* deregistered: no edata, the element keeps only an invalid szind */
		struct extent extent;
		if (element.state > STATE_RETAINED || !read_edata(walker, &element, &extent))
			return false;
		/* the page this element stands for is in the extent: its key bits below the
		   leaf's are j, those above are the root index */
		unsigned low = layout->lg_page + layout->rtree_leaf_bits;
		for (uint64_t high = extent.base >> low; high <= (extent.base + extent.size - 1) >> low;
		     high++) {
			uint64_t page = element_page(walker, high, j);
			if (page >= extent.base && page < extent.base + extent.size) {
				if (!element_agrees(walker, &element, &extent, page))
					return false;
				*root_index = high;
				return high < (1ull << layout->rtree_root_bits);
			}
		}
		return false;
	}
	return false;
}

struct range {
	uint64_t start, end;
};

/* The module's writable data and its .bss, merged into one range (allocator.h). */
static bool module_data(struct address_space *space, struct symbols *symbols,
			struct module_symbols *module, struct range *range)
{
	return module_data_range(space, symbols, module, &range->start, &range->end);
}

/* Whether `word` may point at metadata jemalloc allocated for itself (base_alloc): cache-line
 * aligned, in an anonymous writable mapping. */
static bool points_into_metadata(struct walker *walker, uint64_t word)
{
	if (word == 0 || (word & 63))
		return false;
	const struct snapshot_region *region =
		snapshot_find_region(address_space_snapshot(walker->space), word);
	return region != NULL && (region->flags & PF_W) && region->path == NULL;
}

/* Finds the root level of the extent map in the module's data (see the top of the file). */
static void find_root(struct walker *walker, const struct range *data, uint64_t *leaf_words)
{
	struct root_search search = {.walker = walker, .leaf_words = leaf_words};
	page_map_find_root(&walker->map, data->start, data->end, is_leaf, &search);
}

static int add_extent(struct walker *walker, const struct extent *extent, struct hs_error *err)
{
	struct extent *grown = array_grow(walker->extents, &walker->extent_capacity,
					  walker->extent_count, sizeof *walker->extents, 1024);
	if (grown == NULL)
		return hs_error_nomem(err, "walking jemalloc's extents");
	walker->extents = grown;
	walker->extents[walker->extent_count++] = *extent;
	return 0;
}

/* Remembers the mapping that holds jemalloc metadata at `address`. */
static void note_metadata(struct walker *walker, uint64_t address)
{
	const struct snapshot_region *region =
		snapshot_find_region(address_space_snapshot(walker->space), address);
	if (region == NULL)
		return;
	for (size_t i = 0; i < walker->metadata_count; i++)
		if (walker->metadata[i] == region)
			return;
	if (walker->metadata_count == METADATA_REGIONS)
		walker->metadata_overflow = true;
	else
		walker->metadata[walker->metadata_count++] = region;
}

/* Every element of one leaf: each extent is taken at its first page; every element is checked
 * against the edata_t it names (page_map_visit_leaf). The leaf itself is metadata. */
static int walk_leaf(void *context, uint64_t root_index, uint64_t leaf,
		     const uint64_t *leaf_words, struct hs_error *err)
{
	struct walker *walker = context;
	note_metadata(walker, leaf);
	size_t count = (size_t)1 << walker->layout.rtree_leaf_bits;
	struct extent last = {0};
	bool last_ok = false;
	for (size_t j = 0; j < count; j++) {
		if (leaf_words[j] == 0)
			continue;
		struct element element = decode(walker, leaf_words[j]);
		if (element.edata == 0)
			continue;
		uint64_t page = element_page(walker, root_index, j);
		if (element.state > STATE_RETAINED) {
			walk_damage(
			    &walker->report, page,
			    "the extent map's element for page 0x%llx says its extent is being "
			    "split or merged (state %u): the process stopped in the middle of it",
			    (unsigned long long)page, element.state);
			continue;
		}
		if (element.edata != last.edata || !last_ok) {
			last_ok = read_edata(walker, &element, &last);
			last.edata = element.edata;
		}
		if (!last_ok || page < last.base || page >= last.base + last.size ||
		    !element_agrees(walker, &element, &last, page)) {
			walk_damage(
			    &walker->report, leaf + j * 8,
			    "the extent map's element at 0x%llx (page 0x%llx) names an extent "
			    "descriptor at 0x%llx that does not describe that page as it does",
			    (unsigned long long)(leaf + j * 8), (unsigned long long)page,
			    (unsigned long long)element.edata);
			continue;
		}
		if (page != last.base)
			continue;
		note_metadata(walker, last.edata);
		if (add_extent(walker, &last, err) != 0)
			return -1;
	}
	return 0;
}

static int walk_map(struct walker *walker, struct hs_error *err)
{
	int result = page_map_walk(&walker->map, &walker->report, walk_leaf, walker, err);
	page_map_free(&walker->map);
	return result;
}

static int by_base(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;
	return x->base < y->base ? -1 : x->base > y->base;
}

/* ---- blocks ------------------------------------------------------------------------------- */

static int arena_index(struct walker *walker, unsigned arena, struct hs_error *err)
{
	if (walker->arena_of[arena] >= 0)
		return walker->arena_of[arena];
	struct heap_arena entry = {0};
	snprintf(entry.kind, sizeof entry.kind, "arena %u", arena);
	if (heap_add_arena(walker->heap, &entry) != 0)
		return hs_error_nomem(err, "listing jemalloc's arenas");
	walker->arena_of[arena] = (int)walker->heap->arena_count - 1;
	return walker->arena_of[arena];
}

/* A slab's regions, live or free by its bitmap (a set bit is a free region), which must agree
 * with the free count its edata_t keeps. */
static int walk_slab(struct walker *walker, const struct extent *extent, int arena,
		     struct hs_error *err)
{
	const struct jemalloc_layout *layout = &walker->layout;
	unsigned szind = szind_of(walker, extent->bits);
	uint64_t region = jemalloc_size_class(szind);
	uint64_t slab_size = (uint64_t)jemalloc_slab_pages(layout, szind) << layout->lg_page;
	if (szind >= layout->nbins || extent->size != slab_size || extent->address != extent->base) {
		walk_damage(
		    &walker->report, extent->edata,
		    "the slab at 0x%llx (descriptor 0x%llx) has size class %u and %llu bytes, "
		    "which no slab of jemalloc 5.3 has: its regions are not listed",
		    (unsigned long long)extent->base, (unsigned long long)extent->edata, szind,
		    (unsigned long long)extent->size);
		return 0;
	}
	uint64_t bitmap[8];
	unsigned regions = (unsigned)(slab_size / region);
	if (layout->bitmap_groups > 8 || regions > layout->bitmap_groups * 64 ||
	    address_space_read(walker->space, extent->edata + layout->edata_slab_bitmap, bitmap,
			       layout->bitmap_groups * 8, NULL) != 0) {
		walk_damage(&walker->report, extent->edata,
		            "the bitmap of the slab at 0x%llx cannot be read",
		            (unsigned long long)extent->base);
		return 0;
	}
	unsigned free_count = 0;
	for (unsigned i = 0; i < regions; i++)
		free_count += (bitmap[i / 64] >> (i % 64)) & 1;
	unsigned nfree = (unsigned)field(extent->bits, layout->nfree_shift, layout->nfree_width);
	if (nfree != free_count)
		walk_damage(
		    &walker->report, extent->edata,
		    "the slab at 0x%llx (descriptor 0x%llx) counts %u free regions but its bitmap "
		    "shows %u: its regions are listed by the bitmap",
		    (unsigned long long)extent->base, (unsigned long long)extent->edata, nfree,
		    free_count);
	/* the regions' first words are left unread: a slab's metadata is apart from its memory,
	   which only what needs it reads (heap.h, first_words_unread) */
	walker->heap->first_words_unread = true;
	for (unsigned i = 0; i < regions; i++) {
		bool is_free = (bitmap[i / 64] >> (i % 64)) & 1;
		if (walk_add_block(&walker->report, extent->base + i * region, region,
		                   is_free ? ALLOCATION_FREE : ALLOCATION_LIVE,
		                   is_free ? PLACE_FREE_LIST : PLACE_IN_USE, arena, 0, err) != 0)
			return -1;
	}
	return 0;
}

/* Whether an extent the HPA holds for reuse is what the HPA made it: its address reset to its
 * first page (pa_dalloc) and all of it inside the pageslab its descriptor names (hpa.c hands out
 * pages of one hugepage-sized, hugepage-aligned pageslab at a time); damage otherwise. */
static bool in_pageslab(struct walker *walker, const struct extent *extent)
{
	const struct jemalloc_layout *layout = &walker->layout;
	uint64_t hugepage = 1ull << layout->lg_hugepage, pageslab = 0;
	if (extent->ps == 0 || extent->address != extent->base ||
	    !address_space_read_u64(walker->space, extent->ps + layout->hpdata_address, &pageslab))
		return false;
	return (pageslab & (hugepage - 1)) == 0 && extent->base >= pageslab &&
	       extent->size <= hugepage && extent->base - pageslab <= hugepage - extent->size;
}

static int walk_extents(struct walker *walker, struct hs_error *err)
{
	const struct jemalloc_layout *layout = &walker->layout;
	qsort(walker->extents, walker->extent_count, sizeof *walker->extents, by_base);
	/* the arenas in the order of their numbers */
	bool used[ARENAS_MAX] = {false};
	for (size_t i = 0; i < walker->extent_count; i++)
		if (state_of(walker, walker->extents[i].bits) != STATE_RETAINED)
			used[field(walker->extents[i].bits, layout->arena_shift,
				   layout->arena_width)] = true;
	for (unsigned arena = 0; arena < ARENAS_MAX; arena++)
		if (used[arena] && arena_index(walker, arena, err) < 0)
			return -1;
	uint64_t previous_end = 0;
	for (size_t i = 0; i < walker->extent_count; i++) {
		const struct extent *extent = &walker->extents[i];
		if (extent->base < previous_end) {
			walk_damage(
			    &walker->report, extent->edata,
			    "the extent at 0x%llx (descriptor 0x%llx) overlaps the one before it: it "
			    "is not walked",
			    (unsigned long long)extent->base, (unsigned long long)extent->edata);
			continue;
		}
		previous_end = extent->base + extent->size;
		unsigned arena_number = (unsigned)field(extent->bits, layout->arena_shift,
							layout->arena_width);
		unsigned state = state_of(walker, extent->bits);
		if (state == STATE_RETAINED)
			continue; /* purged address space kept for reuse: no memory, no blocks */
		bool cached = cached_by_hpa(walker, extent);
		if (cached && !in_pageslab(walker, extent)) {
			walk_damage(
			    &walker->report, extent->edata,
			    "the extent at 0x%llx (descriptor 0x%llx) looks held by the HPA for reuse "
			    "but is not inside the pageslab its descriptor names (0x%llx): it is not "
			    "listed",
			    (unsigned long long)extent->base, (unsigned long long)extent->edata,
			    (unsigned long long)extent->ps);
			continue;
		}
		int arena = arena_index(walker, arena_number, err);
		if (arena < 0)
			return -1;
		walker->heap->arenas[arena].system_bytes += extent->size;
		uint64_t first_word = 0;
		if (state == STATE_DIRTY || state == STATE_MUZZY || cached) {
			address_space_read_u64(walker->space, extent->base, &first_word);
			if (walk_add_block(&walker->report, extent->base, extent->size,
			                   ALLOCATION_FREE, PLACE_RETAINED, arena, first_word,
			                   err) != 0)
				return -1;
			continue;
		}
		if (slab_of(walker, extent->bits)) {
			if (walk_slab(walker, extent, arena, err) != 0)
				return -1;
			continue;
		}
		/* large: the block starts where e_addr says (with cache_oblivious, a random
		   cache line into the first page) and its usable size is its size class */
		unsigned szind = szind_of(walker, extent->bits);
		uint64_t usable = jemalloc_size_class(szind);
		if (szind >= layout->nsizes || usable == 0 ||
		    extent->address + usable > extent->base + extent->size) {
			walk_damage(
			    &walker->report, extent->edata,
			    "the large extent at 0x%llx (descriptor 0x%llx) has size class %u, which "
			    "does not fit its %llu bytes: it is not listed",
			    (unsigned long long)extent->base, (unsigned long long)extent->edata,
			    szind, (unsigned long long)extent->size);
			continue;
		}
		address_space_read_u64(walker->space, extent->address, &first_word);
		if (walk_add_block(&walker->report, extent->address, usable, ALLOCATION_LIVE,
		                   PLACE_LARGE, arena, first_word, err) != 0)
			return -1;
	}
	return 0;
}

/* ---- tcaches ------------------------------------------------------------------------------ */

/* One cache bin of the tcache `owner` names ("thread 1234's tcache", "explicit tcache 3"): the
 * `count` regions from stack_head up are free, though their slabs count them allocated. Each
 * must be a live block of the bin's size class. */
static void walk_cache_bin(struct walker *walker, const char *owner, unsigned bin,
			   uint64_t stack_head, unsigned count, uint64_t tcache_arena)
{
	uint64_t size = jemalloc_size_class(bin);
	for (unsigned k = 0; k < count; k++) {
		uint64_t pointer = 0;
		if (!address_space_read_u64(walker->space, stack_head + k * 8ull, &pointer)) {
			walk_damage(&walker->report, stack_head,
			            "%s's bin %u (stack at 0x%llx) cannot be read", owner, bin,
			            (unsigned long long)stack_head);
			return;
		}
		struct allocation *allocation = walk_block_at(walker->heap, pointer);
		if (allocation == NULL || allocation->state != ALLOCATION_LIVE ||
		    allocation->size != size) {
			walk_damage(
			    &walker->report, stack_head + k * 8ull,
			    "%s's bin %u (size %llu) holds 0x%llx, which is not an allocated block of "
			    "that size class",
			    owner, bin, (unsigned long long)size, (unsigned long long)pointer);
			continue;
		}
		allocation->state = ALLOCATION_FREE;
		allocation->place = PLACE_THREAD_CACHE;
		struct heap_arena *arena = &walker->heap->arenas[allocation->arena];
		if (arena->address == 0)
			arena->address = tcache_arena; /* the arena_t the tcache serves */
	}
}

/* The tcache at `tcache` (its tcache_slow already checked to point back at it), a thread's or an
 * explicit one: the same structures either way (tcache.c's tcache_init). */
static void walk_tcache(struct walker *walker, const char *owner, uint64_t tcache, uint64_t slow)
{
	const struct jemalloc_layout *layout = &walker->layout;
	uint64_t dyn_alloc = 0, arena = 0;
	address_space_read_u64(walker->space, slow + layout->slow_dyn_alloc, &dyn_alloc);
	address_space_read_u64(walker->space, slow + layout->slow_arena, &arena);
	if (arena)
		note_metadata(walker, arena);
	for (unsigned bin = 0; bin < layout->tcache_nbins_max; bin++) {
		uint64_t at = tcache + layout->tcache_bins + bin * layout->cache_bin_size;
		uint64_t stack_head = 0;
		uint16_t low_bits_empty = 0;
		if (!address_space_read_u64(walker->space, at + layout->cache_bin_stack_head,
					    &stack_head) ||
		    address_space_read(walker->space, at + layout->cache_bin_low_bits_empty,
				       &low_bits_empty, 2, NULL) != 0) {
			walk_damage(&walker->report, at, "%s's bin %u at 0x%llx cannot be read",
			            owner, bin, (unsigned long long)at);
			continue;
		}
		if (stack_head == 0)
			continue; /* never initialised: bins past the tcache's reach */
		uint16_t bytes = (uint16_t)(low_bits_empty - (uint16_t)stack_head);
		if (bytes % 8 || bytes / 8u > layout->ncached_max) {
			walk_damage(
			    &walker->report, at,
			    "%s's bin %u at 0x%llx has a stack (0x%llx, empty at low bits 0x%x) that "
			    "is not a whole number of slots",
			    owner, bin, (unsigned long long)at, (unsigned long long)stack_head,
			    low_bits_empty);
			continue;
		}
		walk_cache_bin(walker, owner, bin, stack_head, bytes / 8u, arena);
	}
	/* the memory the bins' stacks are in (and an explicit tcache itself): an allocation of
	   jemalloc's own */
	struct allocation *stacks = dyn_alloc ? walk_block_at(walker->heap, dyn_alloc) : NULL;
	if (stacks && stacks->state == ALLOCATION_LIVE)
		stacks->place = PLACE_METADATA;
}

/* Whether `tcache` is an explicit tcache (mallctl "tcache.create"): tcache_create_explicit puts
 * the bins' stacks, the tcache_t and its tcache_slow_t one after the other in one allocation of
 * its own, a live block of the heap that the slow's dyn_alloc points at; the tcache and its slow
 * point at each other, and the slow's bin descriptor at the tcache's bins
 * (tcache_arena_associate). */
static bool is_explicit_tcache(struct walker *walker, uint64_t tcache)
{
	const struct jemalloc_layout *layout = &walker->layout;
	uint64_t slow = 0, back = 0, bins = 0, dyn_alloc = 0;
	if (tcache == 0 || (tcache & 7) ||
	    !address_space_read_u64(walker->space, tcache + layout->tcache_slow, &slow) ||
	    slow != tcache + layout->tcache_size ||
	    !address_space_read_u64(walker->space, slow + layout->slow_tcache, &back) ||
	    back != tcache ||
	    !address_space_read_u64(walker->space, slow + layout->slow_descriptor_bins, &bins) ||
	    bins != tcache + layout->tcache_bins ||
	    !address_space_read_u64(walker->space, slow + layout->slow_dyn_alloc, &dyn_alloc) ||
	    dyn_alloc > tcache)
		return false;
	const struct allocation *block = walk_block_at(walker->heap, dyn_alloc);
	return block && block->state == ALLOCATION_LIVE &&
	       slow + layout->slow_size <= block->address + block->size;
}

/* Remembers an explicit tcache found on a ring, once; fails only when out of memory. */
static int add_explicit(struct walker *walker, uint64_t tcache, struct hs_error *err)
{
	for (size_t i = 0; i < walker->explicit_count; i++)
		if (walker->explicit_tcaches[i] == tcache)
			return 0;
	uint64_t *grown = array_grow(walker->explicit_tcaches, &walker->explicit_capacity,
				     walker->explicit_count, sizeof *walker->explicit_tcaches, 16);
	if (grown == NULL)
		return hs_error_nomem(err, "walking jemalloc's explicit tcaches");
	walker->explicit_tcaches = grown;
	walker->explicit_tcaches[walker->explicit_count++] = tcache;
	return 0;
}

/* The explicit tcaches on the ring of tcaches that `slow` (a thread's tcache_slow) is on: with
 * statistics compiled in, tcache_arena_associate links every tcache of an arena, a thread's or
 * an explicit one, into the ring arena->tcache_ql (the slows' `link`, a circular list). Each
 * found is remembered (walker->explicit_tcaches): a check on the array of explicit tcaches, and the
 * way to them when that array is not found. The ring is only followed while it holds together
 * (each element's prev pointing back); a build without statistics leaves it zero. */
static int ring_explicit_tcaches(struct walker *walker, uint64_t slow, struct hs_error *err)
{
	const struct jemalloc_layout *layout = &walker->layout;
	uint64_t previous = slow, at = 0;
	address_space_read_u64(walker->space, slow + layout->slow_link_next, &at);
	/* no arena has more tcaches than threads plus explicit ones; the bound only stops a
	   ring that does not close */
	for (unsigned steps = 0; at != 0 && at != slow && steps < 2 * layout->explicit_tcaches;
	     steps++) {
		uint64_t back = 0, tcache = 0, next = 0;
		if (!address_space_read_u64(walker->space, at + layout->slow_link_prev, &back) ||
		    back != previous ||
		    !address_space_read_u64(walker->space, at + layout->slow_tcache, &tcache) ||
		    !address_space_read_u64(walker->space, at + layout->slow_link_next, &next))
			return 0;
		if (at == tcache + layout->tcache_size && is_explicit_tcache(walker, tcache) &&
		    add_explicit(walker, tcache, err) != 0)
			return -1;
		previous = at;
		at = next;
	}
	return 0;
}

/* Each thread's tcache, found in the static TLS just below its fs base (jemalloc's tsd is an
 * initial-exec TLS variable): a word pointing at a tcache_slow_t, in the same TLS, whose tcache
 * pointer points back at that word and whose bin descriptor points at the bins right after it. */
static int walk_tcaches(struct walker *walker, struct hs_error *err)
{
	const struct jemalloc_layout *layout = &walker->layout;
	struct snapshot *snapshot = address_space_snapshot(walker->space);
	size_t thread_count, tcaches = 0;
	const struct snapshot_thread *threads = snapshot_threads(snapshot, &thread_count);
	uint8_t *window = malloc(TLS_WINDOW);
	if (window == NULL)
		return hs_error_nomem(err, "looking for jemalloc's thread caches");
	for (size_t t = 0; t < thread_count; t++) {
		uint64_t fs = threads[t].registers.fs_base;
		const struct snapshot_region *region = snapshot_find_region(snapshot, fs - 1);
		if (fs == 0 || region == NULL)
			continue;
		uint64_t from = fs - region->start > TLS_WINDOW ? fs - TLS_WINDOW : region->start;
		if (address_space_read(walker->space, from, window, fs - from, NULL) != 0)
			continue;
		bool found = false;
		for (uint64_t at = from; at + 8 <= fs && !found; at += 8) {
			uint64_t slow, back = 0, bins = 0;
			memcpy(&slow, window + (at - from), 8);
			if (slow < from || slow >= fs || fs - slow < layout->slow_tcache + 8 || (slow & 7))
				continue;
			memcpy(&back, window + (slow + layout->slow_tcache - from), 8);
			memcpy(&bins, window + (slow + layout->slow_descriptor_bins - from), 8);
			if (back != at - layout->tcache_slow || bins != back + layout->tcache_bins)
				continue;
			char owner[48];
			snprintf(owner, sizeof owner, "thread %d's tcache", threads[t].tid);
			walk_tcache(walker, owner, back, slow);
			if (ring_explicit_tcaches(walker, slow, err) != 0) {
				free(window);
				return -1;
			}
			found = true;
			tcaches++;
		}
	}
	free(window);
	/* every thread that has allocated has one, unless tcaches are turned off: without any,
	   the regions they cache would pass for live */
	if (tcaches == 0 && walker->extent_count > 0)
		warnings_add(walker->warnings,
			     "jemalloc: no thread's tcache was found in its TLS (turned off, or not "
			     "recognised): regions cached in tcaches, if any, are counted as live");
	return 0;
}

/* The search for jemalloc's array of explicit tcaches among the words of its data. */
struct tcaches_search {
	struct walker *walker;
	uint64_t *elements; /* room for the array */
	uint64_t array;	    /* the lowest array found, or 0 */
	size_t tried;	    /* words tried as pointers to it */
};

/* Whether the array at `array` (its elements read into `elements`) is jemalloc's `tcaches`: each
 * element is 0, TCACHES_ELM_NEED_REINIT (flushed), a pointer to another element (a free slot
 * linked into tcaches_avail) or an explicit tcache, and at least one is a tcache (an array
 * holding none has no region to tell, whether it is the one or not). */
static bool is_tcaches_array(struct walker *walker, uint64_t array, const uint64_t *elements)
{
	const struct jemalloc_layout *layout = &walker->layout;
	uint64_t end = array + layout->explicit_tcaches * 8ull;
	bool any = false;
	for (unsigned i = 0; i < layout->explicit_tcaches; i++) {
		uint64_t word = elements[i];
		if (word == 0 || word == layout->tcaches_need_reinit ||
		    (word >= array && word < end && (word - array) % 8 == 0))
			continue;
		if (!is_explicit_tcache(walker, word))
			return false;
		any = true;
	}
	return any;
}

/* Whether the word at `at` points at jemalloc's array of explicit tcaches (`tcaches`, which
 * base_alloc placed cache-line aligned in jemalloc's anonymous metadata); the lowest such array
 * is kept, since tcaches_avail may point into it at a free slot and pass for another. Never
 * true: every word is tried. */
static bool points_at_tcaches(void *context, uint64_t at, uint64_t word)
{
	(void)at;
	struct tcaches_search *search = context;
	struct walker *walker = search->walker;
	const struct jemalloc_layout *layout = &walker->layout;
	if (search->tried == ROOT_CANDIDATES || (search->array != 0 && word >= search->array) ||
	    !points_into_metadata(walker, word))
		return false;
	search->tried++;
	/* the first element alone rules out most words before the whole array is read */
	uint64_t first = 0;
	if (!address_space_read_u64(walker->space, word, &first) ||
	    !(first == 0 || first == layout->tcaches_need_reinit ||
	      (first >= word && first < word + layout->explicit_tcaches * 8ull) ||
	      is_explicit_tcache(walker, first)))
		return false;
	if (address_space_read(walker->space, word, search->elements,
			       layout->explicit_tcaches * 8ull, NULL) != 0 ||
	    !is_tcaches_array(walker, word, search->elements))
		return false;
	search->array = word;
	return false;
}

/* The explicit tcaches (mallctl "tcache.create", used with MALLOCX_TCACHE), walked as a thread's
 * are: jemalloc keeps them in the array `tcaches` (tcache.c), base-allocated on first use and
 * pointed at from its data, which is found by its shape there. Those the arenas' rings showed
 * (walk_tcaches) must be in it; without the array, they are all that can be walked. */
static int walk_explicit_tcaches(struct walker *walker, const struct range *data,
				 struct hs_error *err)
{
	const struct jemalloc_layout *layout = &walker->layout;
	struct tcaches_search search = {.walker = walker};
	search.elements = malloc(layout->explicit_tcaches * 8ull);
	if (search.elements == NULL)
		return hs_error_nomem(err, "looking for jemalloc's explicit tcaches");
	module_data_find_word(walker->space, data->start, data->end, points_at_tcaches, &search);
	/* (the search read other candidates after the array it kept) */
	uint64_t end = search.array + layout->explicit_tcaches * 8ull;
	if (search.array == 0 || address_space_read(walker->space, search.array, search.elements,
						    layout->explicit_tcaches * 8ull, NULL) != 0)
		search.array = 0;
	else
		note_metadata(walker, search.array);
	for (unsigned i = 0; search.array && i < layout->explicit_tcaches; i++) {
		uint64_t word = search.elements[i];
		if (word <= layout->tcaches_need_reinit || (word >= search.array && word < end))
			continue; /* no tcache in this slot */
		char owner[48];
		snprintf(owner, sizeof owner, "explicit tcache %u", i);
		walk_tcache(walker, owner, word, word + layout->tcache_size);
	}
	/* the explicit tcaches the rings showed and the array does not hold (all of them, when
	   no array was found) */
	size_t missing = 0;
	for (size_t i = 0; i < walker->explicit_count; i++) {
		uint64_t tcache = walker->explicit_tcaches[i];
		bool listed = false;
		for (unsigned k = 0; search.array && k < layout->explicit_tcaches && !listed; k++)
			listed = search.elements[k] == tcache;
		if (listed)
			continue;
		missing++;
		char owner[48];
		snprintf(owner, sizeof owner, "explicit tcache at 0x%llx", (unsigned long long)tcache);
		walk_tcache(walker, owner, tcache, tcache + layout->tcache_size);
	}
	free(search.elements);
	if (missing)
		warnings_add(walker->warnings,
			     "jemalloc: %zu explicit tcaches (tcache.create) were found on their arenas' "
			     "lists of tcaches but not in jemalloc's array of them, %s: they are walked, "
			     "but explicit tcaches of arenas no thread's tcache serves would be missed and "
			     "the regions they cache counted as live",
			     missing, search.array ? "which does not list them" : "which was not found");
	return 0;
}

/* Whether [start, end) overlaps an extent (sorted by base). */
static bool holds_extents(const struct walker *walker, uint64_t start, uint64_t end)
{
	size_t low = 0, high = walker->extent_count;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		const struct extent *extent = &walker->extents[mid];
		if (extent->base + extent->size <= start)
			low = mid + 1;
		else
			high = mid;
	}
	return low < walker->extent_count && walker->extents[low].base < end;
}

/* jemalloc's data and the mappings of its metadata are bookkeeping: they point at extents (an
 * edata_t's address is its slab's first region), which are not references to objects. A mapping
 * that also holds extents (the kernel merges neighbouring anonymous mappings) is not one: the
 * graph scans no mapping that holds blocks. */
static void note_bookkeeping(struct walker *walker, const struct range *data)
{
	heap_add_bookkeeping(walker->heap, data->start, data->end);
	size_t room = sizeof walker->heap->bookkeeping / sizeof walker->heap->bookkeeping[0];
	for (size_t i = 0; i < walker->metadata_count; i++) {
		const struct snapshot_region *region = walker->metadata[i];
		if (holds_extents(walker, region->start, region->end))
			continue;
		if (walker->heap->bookkeeping_count == room) {
			walker->metadata_overflow = true;
			break;
		}
		heap_add_bookkeeping(walker->heap, region->start, region->end);
	}
	if (walker->metadata_overflow)
		warnings_add(walker->warnings,
			     "jemalloc: its metadata is in more mappings than heapsnap tells apart (%zu): "
			     "the pointers of the others to the program's blocks may be taken for "
			     "references",
			     walker->metadata_count);
}

/* The arena_t of each arena: jemalloc's array `arenas` (MALLOCX_ARENA_LIMIT pointers) is in its
 * data, found where the arenas known from the threads' tcaches sit at their numbers in it; every
 * arena with extents must have a pointer there too. Without it the arenas keep no address. */
static void find_arena_addresses(struct walker *walker, const struct range *data)
{
	struct heap *heap = walker->heap;
	unsigned known = ARENAS_MAX, known_count = 0;
	for (unsigned arena = 0; arena < ARENAS_MAX; arena++)
		if (walker->arena_of[arena] >= 0 && heap->arenas[walker->arena_of[arena]].address) {
			known_count++;
			if (known == ARENAS_MAX)
				known = arena;
		}
	if (known_count == 0)
		return;
	uint64_t want = heap->arenas[walker->arena_of[known]].address;
	for (uint64_t at = data->start; at + 8 <= data->end; at += 8) {
		uint64_t word;
		if (!address_space_read_u64(walker->space, at, &word) || word != want ||
		    at < data->start + known * 8ull)
			continue;
		uint64_t array = at - known * 8ull;
		if (array + ARENAS_MAX * 8ull > data->end)
			continue;
		bool fits = true;
		for (unsigned arena = 0; arena < ARENAS_MAX && fits; arena++) {
			if (walker->arena_of[arena] < 0)
				continue;
			uint64_t pointer = 0, address = heap->arenas[walker->arena_of[arena]].address;
			fits = address_space_read_u64(walker->space, array + arena * 8ull, &pointer) &&
			       pointer != 0 && (address == 0 || pointer == address);
		}
		if (!fits)
			continue;
		for (unsigned arena = 0; arena < ARENAS_MAX; arena++)
			if (walker->arena_of[arena] >= 0) {
				uint64_t pointer = 0;
				address_space_read_u64(walker->space, array + arena * 8ull, &pointer);
				heap->arenas[walker->arena_of[arena]].address = pointer;
				note_metadata(walker, pointer);
			}
		return;
	}
}

/* ---- the walk ----------------------------------------------------------------------------- */

int jemalloc_heap_walk(const struct allocator_input *input, struct heap *heap,
		       struct warnings *warnings, struct hs_error *err)
{
	struct address_space *space = input->space;
	struct symbols *symbols = input->symbols;
	struct module_symbols *module = input->module;
	struct heap_allocator *self = heap_begin_allocator(heap, &jemalloc_allocator);
	if (self == NULL)
		return hs_error_nomem(err, "walking jemalloc's heap");
	struct walker walker = {
	    .space = space,
	    .heap = heap,
	    .warnings = warnings,
	    .report = {.heap = heap, .warnings = warnings, .allocator = "jemalloc"}};
	jemalloc_layout_5_3(&walker.layout);
	walker.map = (struct page_map){
		.space = space,
		.root_bits = walker.layout.rtree_root_bits,
		.leaf_bits = walker.layout.rtree_leaf_bits,
		.leaf_alignment = 64,
		.kind = "extent map",
		.unwalked = "the extents of 1 GiB of addresses",
	};
	for (size_t i = 0; i < ARENAS_MAX; i++)
		walker.arena_of[i] = -1;
	const char *path = module_symbols_module(module)->path;
	snprintf(self->method, sizeof self->method, "heuristics");
	read_version(module, self->version, sizeof self->version);
	if (self->version[0] && strncmp(self->version, "5.3.", 4) != 0)
		warnings_add(warnings,
			     "jemalloc %s in %s: heapsnap knows the layouts of 5.3; the heap is read "
			     "with them and checked structure by structure",
			     self->version, path);
	struct range data;
	if (!module_data(space, symbols, module, &data))
		return hs_error_set(err,
				    "jemalloc (%s): its writable data is not in the snapshot, so its "
				    "extent map cannot be found and there is no heap to show",
				    path);
	uint64_t *leaf_words = malloc((size_t)8 << walker.layout.rtree_leaf_bits);
	if (leaf_words == NULL)
		return hs_error_nomem(err, "reading jemalloc's extent map");
	find_root(&walker, &data, leaf_words);
	free(leaf_words);
	leaf_words = NULL;
	if (walker.map.root == 0) {
		hs_error_set(err,
			     "jemalloc (%s): no extent map was found in its data (0x%llx-0x%llx): it is "
			     "not jemalloc 5.3 as heapsnap knows it, or it has not allocated yet; there "
			     "is no heap to show",
			     path, (unsigned long long)data.start, (unsigned long long)data.end);
		goto fail;
	}
	/* where symbols exist (a build with them), the map found by shape must lie in the
	   variable that holds it */
	uint64_t symbol, symbol_size;
	if (!input->no_debuginfo &&
	    (module_symbols_lookup(module, "je_arena_emap_global", &symbol, &symbol_size) ||
	     module_symbols_lookup(module, "arena_emap_global", &symbol, &symbol_size))) {
		uint64_t root_end = page_map_root_end(&walker.map);
		if (walker.map.root < symbol || root_end > symbol + symbol_size)
			warnings_add(warnings,
				     "jemalloc: the extent map found by its shape at 0x%llx is not in "
				     "arena_emap_global (0x%llx, %llu bytes)",
				     (unsigned long long)walker.map.root, (unsigned long long)symbol,
				     (unsigned long long)symbol_size);
		else
			snprintf(self->method, sizeof self->method, "heuristics, checked by symbols");
	}
	if (walk_map(&walker, err) != 0 || walk_extents(&walker, err) != 0)
		goto fail;
	if (walk_tcaches(&walker, err) != 0 || walk_explicit_tcaches(&walker, &data, err) != 0)
		goto fail;
	find_arena_addresses(&walker, &data);
	note_bookkeeping(&walker, &data);
	free(walker.extents);
	walker.extents = NULL;
	free(walker.explicit_tcaches);
	walker.explicit_tcaches = NULL;
	walk_report_finish(&walker.report);
	heap_finish(heap);
	return 0;
fail:
	free(leaf_words);
	free(walker.extents);
	free(walker.explicit_tcaches);
	return -1;
}

static const char *const jemalloc_place_names[PLACE_COUNT] = {
	[PLACE_IN_USE] = "in_use",
	[PLACE_LARGE] = "large",
	[PLACE_THREAD_CACHE] = "tcache",
	[PLACE_FREE_LIST] = "slab_free",
	[PLACE_RETAINED] = "dirty",
	[PLACE_METADATA] = "metadata",
};

/* (mallctl is jemalloc's alone; je_mallctl where it is built with the prefix je_ and still
   replaces malloc) */
static const char *const jemalloc_symbols[] = {"mallctl", "je_mallctl", NULL};

const struct allocator jemalloc_allocator = {
	.name = "jemalloc",
	.version_name = "jemalloc",
	.step = "jemalloc heap",
	.metadata_type = "jemalloc tcache bins",
	.place_names = jemalloc_place_names,
	.symbols = jemalloc_symbols,
	.walk = jemalloc_heap_walk,
};
