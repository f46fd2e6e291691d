/* The tcmalloc walker for gperftools 2.10 (see tcmalloc_heap.h).
 *
 * Why the page map: tcmalloc's page heap lists only its free spans; the spans it hands out (to
 * the central caches for small objects, or whole as a large block) are in no list it keeps
 * globally, but its page map (PageHeap::pagemap_, a TCMalloc_PageMap2<35>, page_map.h: a root
 * of 2^17 leaf pointers inside the page heap, in the library's .bss, each leaf 2^18 Span
 * pointers, one per 8 KiB page) registers the first and last page of every span and every page of a small-object
 * span. So reading the map gives every span. Entries for other pages are never cleared: after
 * spans merge, an inner page may still point at a Span since deleted or reused, so a span is
 * taken only at the entry of its own first page, and then its last page's entry must point at
 * it too.
 *
 * Without symbols (Debian's libraries export few of the ones needed) the map's root is found by
 * its shape: a word of the library's data that points at a leaf (metadata: anonymous memory
 * outside the data) one of whose first entries names a Span starting at a page with that
 * entry's index; the Span's start then says which root word that is, so where the root starts,
 * and every non-zero word of that root must point at metadata too. The size classes
 * (SizeMap::class_to_size_) are found as the array of 32-bit sizes 0, 8, 16, ... up to 256 KiB
 * followed by the count SizeMap keeps of them; the central caches (Static::central_cache_) as
 * the array whose entry k says size class k and whose empty-span ring starts linked to itself;
 * the thread caches' list as the word that points at a ThreadCache owned by one of the
 * snapshot's threads (its tid_ is a pthread_t, the thread's fs base) and first in the list. The
 * page map, size classes and central caches are checked against their symbols where a build
 * keeps them (a static one); ThreadCache::thread_heaps_, which the libraries export, is taken
 * from its symbol when there is one and checked to have that shape, and only searched for
 * without. The offsets below are 2.10's (tests/e2e/test_tcmalloc_heap.py checks them against
 * its headers when given its sources).
 *
 * Blocks: a small-object span of class c holds (pages * 8 KiB) / size(c) objects, and its
 * `objects` list the ones returned to it; its refcount counts the others, which must agree. The
 * objects waiting in a central cache's transfer slots (batches of one size, kept for speed) and
 * in a thread's free lists are counted handed out by their span, so they are found live first
 * and then marked free where they wait. A span on the page heap's normal free lists is free
 * memory kept for reuse (still mapped: "page_heap", PLACE_RETAINED); one on its returned lists
 * was given back to the system (madvise) and holds no memory, so it is not listed, as jemalloc's
 * retained extents are not. tcmalloc's metadata (spans, leaves, thread caches) comes from its
 * own metadata allocator, not from spans, so it holds no blocks. */
#include "tcmalloc_heap.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/allocators/module_data.h"
#include "analyze/allocators/page_map.h"
#include "analyze/allocators/walk_report.h"
#include "common/array_grow.h"

#define LEAF_PIECE 512		/* entries of a candidate leaf read at a time */
#define LEAF_ENTRIES_TRIED 64	/* distinct entries of a candidate leaf tried as a span's first */
#define THREAD_CACHES_MAX 100000 /* more ThreadCaches than this in the list: it loops */
#define TRANSFER_OBJECTS_MAX 65536 /* objects of one transfer slot past which its list loops */

/* gperftools 2.10 on x86-64 (common.h, pagemap.h, span.h, static_vars.h, central_freelist.h,
 * thread_cache.h), Debian's build: kPageShift 13, kAddressBits 48, kClassSizesMax 128. */
enum {
	TC_PAGE_SHIFT = 13,
	MAP_LEAF_BITS = 18, /* PageMap2<35>: LEAF_BITS = (35 + 1) / 2 */
	MAP_ROOT_BITS = 17,
	CLASSES_MAX = 128,
	MAX_SMALL_SIZE = 256 * 1024, /* kMaxSize: the largest size class */
	/* struct Span */
	SPAN_START = 0,
	SPAN_LENGTH = 8,
	SPAN_OBJECTS = 32,
	SPAN_BITS = 40, /* refcount : 16, sizeclass : 8, location : 2, sample : 1 */
	SPAN_SIZE = 48,
	/* class CentralFreeList (CentralFreeListPadded: a multiple of 64 bytes) */
	CENTRAL_SIZE_CLASS = 8,
	CENTRAL_EMPTY = 16, /* Span empty_: a dummy head of a ring */
	CENTRAL_SLOTS = 128, /* TCEntry tc_slots_[64]: head, tail */
	CENTRAL_SLOT_COUNT = 64,
	CENTRAL_USED_SLOTS = 1152,
	CENTRAL_STRIDE = 1216,
	/* class ThreadCache */
	CACHE_LIST_SIZE = 32, /* FreeList: list_, length_, lowater_, max_length_, overages, size_ */
	CACHE_LIST_LENGTH = 8,
	CACHE_TID = 4128,
	CACHE_NEXT = 4144,
	CACHE_PREV = 4152,
	CACHE_SIZE = 4160,
};

enum span_location { SPAN_IN_USE, SPAN_NORMAL_FREE, SPAN_RETURNED };

struct span {
	uint64_t address; /* of the Span */
	uint64_t start, length; /* in pages */
	uint64_t objects;
	unsigned refcount, size_class, location;
};

struct walker {
	struct address_space *space;
	struct heap *heap;
	struct warnings *warnings;
	uint64_t data_start, data_end; /* the library's data and .bss */
	uint32_t sizes[CLASSES_MAX];   /* class_to_size_ */
	unsigned class_count;	       /* num_size_classes */
	uint64_t sizes_address;	       /* of class_to_size_ */
	struct page_map map;	       /* the page map (page_map.h) */
	struct span *spans;
	size_t span_count, span_capacity;
	struct address_cursor pages; /* a window over the spans, read in address order */
	int arena;
	struct walk_report report;       /* damage and blocks (walk_report.h) */
	uint64_t returned_bytes;  /* in spans given back to the system */
};

/* A corrupt or unexpected structure (walk_report.h). */
#define damage(walker, ...) walk_damage(&(walker)->report, __VA_ARGS__)

static uint64_t read_word(struct walker *walker, uint64_t address, bool *ok)
{
	uint64_t word = 0;
	if (!address_space_read_u64(walker->space, address, &word))
		*ok = false;
	return word;
}

/* ---- the version -------------------------------------------------------------------------- */

/* TC_VERSION_STRING ("gperftools 2.10") is in the module's read-only data: found in its file. */
static void read_version(struct module_symbols *module, char *version, size_t size)
{
	static const char prefix[] = "gperftools ";
	version[0] = 0;
	size_t count;
	char *bytes = module_file_bytes(module, &count);
	size_t length = sizeof prefix - 1;
	for (size_t at = 0; at + length + 2 < count && !version[0]; at++) {
		if (memcmp(bytes + at, prefix, length) != 0 || (at > 0 && bytes[at - 1] != 0))
			continue;
		size_t end = at + length;
		while (end < count && end - at < length + 16 && strchr("0123456789.", bytes[end]) &&
		       bytes[end])
			end++;
		if (end < count && bytes[end] == 0 && end > at + length && bytes[at + length] != '.')
			snprintf(version, size, "%.*s", (int)(end - at - length), bytes + at + length);
	}
	free(bytes);
}

/* ---- the size classes --------------------------------------------------------------------- */

/* Whether `words` (32-bit, read at `address`) start SizeMap's class_to_size_: 0, 8, 16, then
 * growing multiples of 8 up to kMaxSize, zeros after, and the class count SizeMap keeps after
 * class_to_pages_ saying how many. */
static bool is_size_map(struct walker *walker, uint64_t address, const uint32_t *words)
{
	if (words[0] != 0 || words[1] != 8 || words[2] != 16)
		return false;
	unsigned count = 1;
	while (count < CLASSES_MAX && words[count] > words[count - 1] && words[count] % 8 == 0 &&
	       words[count] <= MAX_SMALL_SIZE)
		count++;
	if (words[count - 1] != MAX_SMALL_SIZE)
		return false;
	for (unsigned i = count; i < CLASSES_MAX; i++)
		if (words[i] != 0)
			return false;
	uint64_t pages = (address + CLASSES_MAX * 4 + 7) & ~7ull; /* size_t class_to_pages_[128] */
	bool ok = true;
	uint64_t class_count = read_word(walker, pages + CLASSES_MAX * 8, &ok);
	if (!ok || class_count != count)
		return false;
	walker->class_count = count;
	walker->sizes_address = address;
	memcpy(walker->sizes, words, sizeof walker->sizes);
	return true;
}

static bool find_size_classes(struct walker *walker)
{
	uint32_t words[CLASSES_MAX];
	for (uint64_t at = walker->data_start; at + sizeof words <= walker->data_end; at += 4) {
		uint32_t first[3];
		if (address_space_read(walker->space, at, first, sizeof first, NULL) != 0 ||
		    first[0] != 0 || first[1] != 8 || first[2] != 16)
			continue;
		if (address_space_read(walker->space, at, words, sizeof words, NULL) == 0 &&
		    is_size_map(walker, at, words))
			return true;
	}
	return false;
}

/* ---- the page map ------------------------------------------------------------------------- */

static bool read_span(struct walker *walker, uint64_t address, struct span *span)
{
	uint64_t words[SPAN_SIZE / 8];
	if (address == 0 || (address & 7) ||
	    address_space_read(walker->space, address, words, sizeof words, NULL) != 0)
		return false;
	uint32_t bits = (uint32_t)words[SPAN_BITS / 8];
	*span = (struct span){
		.address = address,
		.start = words[SPAN_START / 8],
		.length = words[SPAN_LENGTH / 8],
		.objects = words[SPAN_OBJECTS / 8],
		.refcount = bits & 0xffff,
		.size_class = (bits >> 16) & 0xff,
		.location = (bits >> 24) & 3,
	};
	return span->length != 0 && span->start + span->length > span->start &&
	       span->start + span->length <= 1ull << (48 - TC_PAGE_SHIFT);
}

/* Whether `leaf` looks like a leaf of the page map: among its first non-zero entries, one names
 * a Span that starts at the page that entry stands for (entries of other pages may be stale, but
 * a span's first page always points at it), and every entry read names a readable Span. Then
 * *root_index is the root word that points at it (page_map_is_leaf). */
static bool is_leaf(void *context, uint64_t leaf, uint64_t *root_index)
{
	struct walker *walker = context;
	uint64_t piece[LEAF_PIECE];
	size_t count = (size_t)1 << MAP_LEAF_BITS, distinct = 0;
	uint64_t previous = 0, mask = (1ull << MAP_LEAF_BITS) - 1;
	for (size_t j = 0; j < count && distinct < LEAF_ENTRIES_TRIED; j++) {
		if (j % LEAF_PIECE == 0 && address_space_read(walker->space, leaf + j * 8, piece,
							      LEAF_PIECE * 8, NULL) != 0)
			return false;
		uint64_t entry = piece[j % LEAF_PIECE];
		if (entry == 0 || entry == previous)
			continue;
		previous = entry;
		distinct++;
		struct span span;
		if (!read_span(walker, entry, &span))
			return false;
		if (span.start == 0 || (span.start & mask) != j || span.location > SPAN_RETURNED ||
		    span.size_class >= walker->class_count)
			continue;
		*root_index = span.start >> MAP_LEAF_BITS;
		return *root_index < (1ull << MAP_ROOT_BITS);
	}
	return false;
}

/* Finds the page map's root in the module's data (see the top of the file); false when none
 * is there. */
static bool find_root(struct walker *walker)
{
	return page_map_find_root(&walker->map, walker->data_start, walker->data_end, is_leaf,
				  walker);
}

static int add_span(struct walker *walker, const struct span *span, struct hs_error *err)
{
	struct span *grown = array_grow(walker->spans, &walker->span_capacity, walker->span_count,
					sizeof *grown, 1024);
	if (grown == NULL)
		return hs_error_nomem(err, "walking tcmalloc's spans");
	walker->spans = grown;
	walker->spans[walker->span_count++] = *span;
	return 0;
}

/* Every span of one leaf, taken at the entry of its first page (page_map_visit_leaf). */
static int walk_leaf(void *context, uint64_t root_index, uint64_t leaf, const uint64_t *entries,
		     struct hs_error *err)
{
	(void)leaf;
	struct walker *walker = context;
	size_t count = (size_t)1 << MAP_LEAF_BITS;
	uint64_t previous = 0;
	for (size_t j = 0; j < count; j++) {
		uint64_t entry = entries[j];
		if (entry == 0 || entry == previous)
			continue; /* (the next pages of a small-object span) */
		previous = entry;
		uint64_t page = root_index << MAP_LEAF_BITS | j;
		struct span span;
		if (!read_span(walker, entry, &span) || span.start != page)
			continue; /* a stale entry, or one of another page of its span */
		uint64_t last_page = span.start + span.length - 1;
		if (span.location > SPAN_RETURNED || span.size_class >= walker->class_count ||
		    page_map_entry(&walker->map, last_page) != entry) {
			damage(walker, entry,
			       "the span at 0x%llx (descriptor 0x%llx, %llu pages, size class %u, "
			       "location %u) is not registered in the page map as tcmalloc leaves a "
			       "span: it is not walked",
			       (unsigned long long)(span.start << TC_PAGE_SHIFT),
			       (unsigned long long)entry, (unsigned long long)span.length,
			       span.size_class, span.location);
			continue;
		}
		if (add_span(walker, &span, err) != 0)
			return -1;
	}
	return 0;
}

static int walk_map(struct walker *walker, struct hs_error *err)
{
	return page_map_walk(&walker->map, &walker->report, walk_leaf, walker, err);
}

static int by_start(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* ---- blocks ------------------------------------------------------------------------------- */

static int add_block(struct walker *walker, uint64_t address, uint64_t size,
		     enum allocation_state state, enum allocation_place place, uint64_t first_word,
		     struct hs_error *err)
{
	return walk_add_block(&walker->report, address, size, state, place, walker->arena,
			      first_word, err);
}

/* A small-object span's objects: free when in its `objects` list, live otherwise; the count of
 * the others must be its refcount. */
static int walk_small_span(struct walker *walker, const struct span *span, uint8_t **bytes_buffer,
			   size_t *buffer_size, struct hs_error *err)
{
	uint64_t base = span->start << TC_PAGE_SHIFT, bytes = span->length << TC_PAGE_SHIFT;
	uint64_t size = walker->sizes[span->size_class];
	uint64_t count = bytes / size;
	uint8_t *is_free = calloc(count ? count : 1, 1);
	if (is_free == NULL)
		return hs_error_nomem(err, "walking tcmalloc's spans");
	/* the span's bytes for its objects' first words and the free list's links: through the
	   window (spans come in address order), else read apart */
	const struct snapshot_region *mapping =
		snapshot_find_region(address_space_snapshot(walker->space), base);
	const uint8_t *view =
		mapping ? address_cursor_view(&walker->pages, base, (size_t)bytes, mapping->end) : NULL;
	if (view == NULL) {
		if (*buffer_size < bytes) {
			uint8_t *grown = realloc(*bytes_buffer, (size_t)bytes);
			if (grown == NULL) {
				free(is_free);
				return hs_error_nomem(err, "walking tcmalloc's spans");
			}
			*bytes_buffer = grown;
			*buffer_size = (size_t)bytes;
		}
		if (address_space_read(walker->space, base, *bytes_buffer, (size_t)bytes, NULL) == 0)
			view = *bytes_buffer;
	}
	uint64_t free_count = 0;
	for (uint64_t object = span->objects; object != 0;) {
		uint64_t offset = object - base;
		if (object < base || offset >= count * size || offset % size || is_free[offset / size] ||
		    view == NULL) {
			damage(walker, span->address,
			       "the free list of the span at 0x%llx (descriptor 0x%llx, objects of %llu "
			       "bytes) holds 0x%llx, which is not one of its objects or comes twice: "
			       "the rest of the list is not walked",
			       (unsigned long long)base, (unsigned long long)span->address,
			       (unsigned long long)size, (unsigned long long)object);
			break;
		}
		is_free[offset / size] = 1;
		free_count++;
		memcpy(&object, view + offset, 8);
	}
	if (count - free_count != span->refcount)
		damage(walker, span->address,
		       "the span at 0x%llx (descriptor 0x%llx) counts %u objects handed out but %llu of "
		       "its %llu are not in its free list",
		       (unsigned long long)base, (unsigned long long)span->address, span->refcount,
		       (unsigned long long)(count - free_count), (unsigned long long)count);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t first_word = 0;
		if (view)
			memcpy(&first_word, view + i * size, 8);
		if (add_block(walker, base + i * size, size,
			      is_free[i] ? ALLOCATION_FREE : ALLOCATION_LIVE,
			      is_free[i] ? PLACE_FREE_LIST : PLACE_IN_USE, first_word, err) != 0) {
			free(is_free);
			return -1;
		}
	}
	free(is_free);
	return 0;
}

static int walk_spans(struct walker *walker, struct hs_error *err)
{
	qsort(walker->spans, walker->span_count, sizeof *walker->spans, by_start);
	uint8_t *buffer = NULL;
	size_t buffer_size = 0;
	uint64_t previous_end = 0;
	struct heap_arena *arena = &walker->heap->arenas[walker->arena];
	for (size_t i = 0; i < walker->span_count; i++) {
		const struct span *span = &walker->spans[i];
		uint64_t base = span->start << TC_PAGE_SHIFT, bytes = span->length << TC_PAGE_SHIFT;
		if (span->start < previous_end) {
			damage(walker, span->address,
			       "the span at 0x%llx (descriptor 0x%llx) overlaps the one before it: it is "
			       "not walked",
			       (unsigned long long)base, (unsigned long long)span->address);
			continue;
		}
		previous_end = span->start + span->length;
		if (span->location == SPAN_RETURNED) {
			walker->returned_bytes += bytes; /* given back: no memory, no blocks */
			continue;
		}
		arena->system_bytes += bytes;
		uint64_t first_word = 0;
		int failed;
		if (span->location == SPAN_NORMAL_FREE) {
			address_space_read_u64(walker->space, base, &first_word);
			failed = add_block(walker, base, bytes, ALLOCATION_FREE, PLACE_RETAINED,
					   first_word, err);
		} else if (span->size_class == 0) {
			/* a large block: what tc_malloc_size says of it is its span's pages */
			address_space_read_u64(walker->space, base, &first_word);
			failed = add_block(walker, base, bytes, ALLOCATION_LIVE, PLACE_LARGE,
					   first_word, err);
		} else {
			failed = walk_small_span(walker, span, &buffer, &buffer_size, err);
		}
		if (failed != 0) {
			free(buffer);
			return -1;
		}
	}
	free(buffer);
	return 0;
}

/* ---- the caches --------------------------------------------------------------------------- */


/* Marks the object at `address`, which a cache of size class `size_class` holds, free in
 * `place`, and gives its first word (the link to the next object of the list, read with the
 * span); false when it is not a live object of that class. */
static bool mark_cached(struct walker *walker, uint64_t address, unsigned size_class,
			enum allocation_place place, uint64_t *first_word)
{
	struct allocation *allocation = walk_block_at(walker->heap, address);
	if (allocation == NULL || allocation->state != ALLOCATION_LIVE ||
	    allocation->place != PLACE_IN_USE || allocation->size != walker->sizes[size_class])
		return false;
	allocation->state = ALLOCATION_FREE;
	allocation->place = place;
	*first_word = allocation->first_word;
	return true;
}

/* Follows a cached list from `head`: `limit` objects, or, when `tail` is not 0, up to `tail`.
 * Returns the objects marked, and in *after the link that follows the last of them; a list that
 * holds something else than allocated objects of its class, or ends early, is damage. */
static uint64_t walk_cached_list(struct walker *walker, uint64_t head, uint64_t tail, uint64_t limit,
				 unsigned size_class, enum allocation_place place, const char *owner,
				 uint64_t owner_address, uint64_t *after)
{
	uint64_t marked = 0;
	*after = 0;
	for (uint64_t object = head; object != 0 && marked < limit;) {
		uint64_t next;
		if (!mark_cached(walker, object, size_class, place, &next)) {
			damage(walker, owner_address,
			       "%s (at 0x%llx, size class %u of %u bytes) holds 0x%llx, which is not an "
			       "allocated object of that size class: the rest of its list is not walked",
			       owner, (unsigned long long)owner_address, size_class,
			       walker->sizes[size_class], (unsigned long long)object);
			return marked;
		}
		marked++;
		*after = next;
		if (object == tail)
			return marked;
		object = next;
	}
	if (tail != 0 || marked < limit)
		damage(walker, owner_address,
		       "%s (at 0x%llx, size class %u): its list ends after %llu objects, before %s",
		       owner, (unsigned long long)owner_address, size_class,
		       (unsigned long long)marked, tail ? "its tail" : "its length says");
	return marked;
}

/* Whether the central caches start at `array`: entry k says size class k, and the first one's
 * empty-span ring is linked to itself. */
static bool is_central_cache(struct walker *walker, uint64_t array)
{
	bool ok = true;
	if (read_word(walker, array + CENTRAL_EMPTY + 16, &ok) != array + CENTRAL_EMPTY || !ok)
		return false;
	for (unsigned k = 0; k < walker->class_count; k++) {
		uint64_t entry = array + (uint64_t)k * CENTRAL_STRIDE;
		if (entry + CENTRAL_STRIDE > walker->data_end ||
		    read_word(walker, entry + CENTRAL_SIZE_CLASS, &ok) != k || !ok)
			return false;
	}
	return true;
}

/* The word of entry 0's empty_.next (offset 32), which points at its empty_ (offset 16). */
static bool is_central_cache_ring(void *context, uint64_t at, uint64_t word)
{
	struct walker *walker = context;
	return at >= walker->data_start + 32 && word == at - 16 && is_central_cache(walker, at - 32);
}

static uint64_t find_central_cache(struct walker *walker)
{
	uint64_t ring = module_data_find_word(walker->space, walker->data_start, walker->data_end,
					    is_central_cache_ring, walker);
	return ring ? ring - 32 : 0;
}

/* Each central cache's transfer slots: batches of objects on their way between thread caches
 * and spans, each a list from head to tail. */
static void walk_transfer_caches(struct walker *walker, uint64_t array)
{
	for (unsigned k = 1; k < walker->class_count; k++) {
		uint64_t entry = array + (uint64_t)k * CENTRAL_STRIDE;
		int32_t used = 0;
		if (address_space_read(walker->space, entry + CENTRAL_USED_SLOTS, &used, 4, NULL) != 0 ||
		    used < 0 || used > CENTRAL_SLOT_COUNT) {
			damage(walker, entry,
			       "the central cache of size class %u at 0x%llx says %d transfer slots "
			       "are used, of %d",
			       k, (unsigned long long)entry, used, CENTRAL_SLOT_COUNT);
			continue;
		}
		for (int32_t slot = 0; slot < used; slot++) {
			uint64_t at = entry + CENTRAL_SLOTS + (uint64_t)slot * 16;
			bool ok = true;
			uint64_t head = read_word(walker, at, &ok), tail = read_word(walker, at + 8, &ok);
			if (!ok)
				continue;
			char owner[64];
			snprintf(owner, sizeof owner, "transfer slot %d of size class %u", slot, k);
			uint64_t after;
			walk_cached_list(walker, head, tail, TRANSFER_OBJECTS_MAX, k, PLACE_FAST_LIST,
					 owner, at, &after);
		}
	}
}

/* The id of the snapshot's thread whose pthread_t (its fs base) is `pthread`, or 0. */
static int thread_of(struct walker *walker, uint64_t pthread)
{
	size_t count;
	const struct snapshot_thread *threads =
		snapshot_threads(address_space_snapshot(walker->space), &count);
	for (size_t t = 0; t < count && pthread; t++)
		if (threads[t].registers.fs_base == pthread)
			return threads[t].tid;
	return 0;
}

/* Whether `cache` is a ThreadCache owned by one of the snapshot's threads (its tid_ is the
 * thread's pthread_t). */
static bool owned_by_a_thread(struct walker *walker, uint64_t cache)
{
	bool ok = true;
	uint64_t pthread = read_word(walker, cache + CACHE_TID, &ok);
	return ok && thread_of(walker, pthread) != 0;
}

/* Whether the word at `at` is ThreadCache::thread_heaps_ by its shape: it points at a
 * ThreadCache (metadata: 8-byte aligned; its class asks 64, which tcmalloc's metadata allocator
 * does not promise) first in its list (prev_ null) and owned by a thread. */
static bool is_thread_heaps(void *context, uint64_t at, uint64_t cache)
{
	struct walker *walker = context;
	(void)at;
	if (cache == 0 || (cache & 7))
		return false;
	const struct snapshot_region *region =
		snapshot_find_region(address_space_snapshot(walker->space), cache);
	if (region == NULL || !(region->flags & PF_W) || region->path != NULL)
		return false;
	bool ok = true;
	return read_word(walker, cache + CACHE_PREV, &ok) == 0 && ok &&
	       owned_by_a_thread(walker, cache);
}

/* ThreadCache::thread_heaps_ found by its shape: its address, or 0. */
static uint64_t find_thread_heaps(struct walker *walker)
{
	return module_data_find_word(walker->space, walker->data_start, walker->data_end,
				   is_thread_heaps, walker);
}

/* Every thread's cache, from the list's head: each free list's objects are free. */
static void walk_thread_caches(struct walker *walker, uint64_t head, size_t *caches)
{
	uint64_t previous = 0;
	*caches = 0;
	for (uint64_t cache = head; cache != 0; (*caches)++) {
		uint8_t bytes[CACHE_SIZE];
		if (*caches == THREAD_CACHES_MAX ||
		    address_space_read(walker->space, cache, bytes, sizeof bytes, NULL) != 0) {
			damage(walker, cache,
			       "the thread cache at 0x%llx cannot be read or the list loops: the "
			       "caches after it are not walked",
			       (unsigned long long)cache);
			return;
		}
		uint64_t prev, next, tid;
		memcpy(&prev, bytes + CACHE_PREV, 8);
		memcpy(&next, bytes + CACHE_NEXT, 8);
		memcpy(&tid, bytes + CACHE_TID, 8);
		if (prev != previous) {
			damage(walker, cache,
			       "the thread cache at 0x%llx does not point back at the one before it "
			       "(0x%llx but 0x%llx): the caches from it are not walked",
			       (unsigned long long)cache, (unsigned long long)previous,
			       (unsigned long long)prev);
			return;
		}
		char owner[96];
		int thread = thread_of(walker, tid);
		if (thread)
			snprintf(owner, sizeof owner, "the thread cache of thread %d", thread);
		else
			snprintf(owner, sizeof owner, "the thread cache of pthread 0x%llx (no thread of "
				 "the snapshot)", (unsigned long long)tid);
		for (unsigned k = 1; k < walker->class_count; k++) {
			uint64_t list;
			uint32_t length;
			memcpy(&list, bytes + k * CACHE_LIST_SIZE, 8);
			memcpy(&length, bytes + k * CACHE_LIST_SIZE + CACHE_LIST_LENGTH, 4);
			uint64_t after;
			uint64_t marked = walk_cached_list(walker, list, 0, length, k,
							   PLACE_THREAD_CACHE, owner, cache, &after);
			if (marked == length && after != 0) /* (it ends where its length says) */
				damage(walker, cache + k * CACHE_LIST_SIZE,
				       "%s (at 0x%llx): the free list of size class %u goes on past its "
				       "length %u",
				       owner, (unsigned long long)cache, k, length);
		}
		previous = cache;
		cache = next;
	}
}

/* ---- the walk ----------------------------------------------------------------------------- */

/* Where the module's symbols (when a build keeps them) put `name`; false without. */
static bool symbol(const struct allocator_input *input, const char *name, uint64_t *address,
		   uint64_t *size)
{
	return !input->no_debuginfo && module_symbols_lookup(input->module, name, address, size);
}

static void free_walker(struct walker *walker)
{
	page_map_free(&walker->map);
	free(walker->spans);
	address_cursor_free(&walker->pages);
}

/* How many of the structures found by their shape a build's symbols confirm, and contradict. */
struct symbol_checks {
	int checked, disagree;
};

/* The page heap (whose page map is inside it) and the size map against their symbols, which
 * static builds keep. */
static void check_page_map_and_sizes(struct walker *walker, const struct allocator_input *input,
				     struct symbol_checks *checks)
{
	uint64_t address, size;
	if (symbol(input, "_ZN8tcmalloc6Static9pageheap_E", &address, &size)) {
		bool inside = walker->map.root >= address &&
			      page_map_root_end(&walker->map) <= address + size;
		inside ? checks->checked++ : checks->disagree++;
		if (!inside)
			warnings_add(walker->warnings,
				     "tcmalloc: the page map found by its shape at 0x%llx is not in "
				     "Static::pageheap_ (0x%llx, %llu bytes)",
				     (unsigned long long)walker->map.root, (unsigned long long)address,
				     (unsigned long long)size);
	}
	if (symbol(input, "_ZN8tcmalloc6Static8sizemap_E", &address, &size)) {
		bool inside = walker->sizes_address >= address &&
			      walker->sizes_address + CLASSES_MAX * 4 <= address + size;
		inside ? checks->checked++ : checks->disagree++;
		if (!inside)
			warnings_add(walker->warnings,
				     "tcmalloc: the size classes found by their shape at 0x%llx are "
				     "not in Static::sizemap_ (0x%llx)",
				     (unsigned long long)walker->sizes_address, (unsigned long long)address);
	}
}

/* The central caches, found by their shape and checked against their symbol where a build has
 * it, and the objects waiting in their transfer slots; their address, or 0 when not found. */
static uint64_t walk_central_caches(struct walker *walker, const struct allocator_input *input,
				    struct symbol_checks *checks)
{
	uint64_t address, size;
	uint64_t central = find_central_cache(walker);
	if (central && symbol(input, "_ZN8tcmalloc6Static14central_cache_E", &address, &size)) {
		central == address ? checks->checked++ : checks->disagree++;
		if (central != address)
			warnings_add(walker->warnings,
				     "tcmalloc: the central caches found by their shape at 0x%llx are "
				     "not Static::central_cache_ (0x%llx)",
				     (unsigned long long)central, (unsigned long long)address);
	}
	if (central)
		walk_transfer_caches(walker, central);
	else
		warnings_add(walker->warnings,
			     "tcmalloc: its central caches were not found in its data: objects waiting "
			     "in their transfer slots, if any, are counted as live");
	return central;
}

/* The thread caches' list and the objects cached there. Where the library exports the list
 * (Debian's do), the word there must have the shape (scanning the data for it reads the memory
 * every pointer there points at, which costs more than the rest of the walk on a large heap). */
static void walk_all_thread_caches(struct walker *walker, const struct allocator_input *input,
				   struct symbol_checks *checks)
{
	uint64_t heads = 0, address, size;
	if (symbol(input, "_ZN8tcmalloc11ThreadCache13thread_heaps_E", &address, &size)) {
		bool ok = true;
		uint64_t head = read_word(walker, address, &ok);
		if (ok && (head == 0 || is_thread_heaps(walker, address, head))) {
			checks->checked++;
			heads = address;
		} else {
			checks->disagree++;
			heads = find_thread_heaps(walker);
			warnings_add(walker->warnings,
				     "tcmalloc: ThreadCache::thread_heaps_ (0x%llx) does not point at the "
				     "first thread cache of a thread; the list found by its shape (at "
				     "0x%llx) is walked",
				     (unsigned long long)address, (unsigned long long)heads);
		}
	} else {
		heads = find_thread_heaps(walker);
	}
	size_t caches = 0;
	if (heads) {
		bool ok = true;
		walk_thread_caches(walker, read_word(walker, heads, &ok), &caches);
	}
	if (caches == 0)
		warnings_add(walker->warnings,
			     "tcmalloc: no thread cache was found (none is in use, or its list was not "
			     "recognised): objects cached by threads, if any, are counted as live");
}

/* Finds what the walk starts from in the module's data: the size classes, then the page map
 * (whose leaves are told by their spans' size classes); fails when one is not there. */
static int find_structures(struct walker *walker, const struct allocator_input *input,
			   struct hs_error *err)
{
	const char *path = module_symbols_module(input->module)->path;
	if (!module_data_range(walker->space, input->symbols, input->module, &walker->data_start,
			       &walker->data_end))
		return hs_error_set(err,
				    "tcmalloc (%s): its writable data is not in the snapshot, so its "
				    "page map cannot be found and there is no heap to show",
				    path);
	const char *missing = !find_size_classes(walker) ? "size class table"
			      : !find_root(walker)	  ? "page map"
							  : NULL;
	if (missing)
		return hs_error_set(err,
				    "tcmalloc (%s): no %s was found in its data (0x%llx-0x%llx): it is "
				    "not gperftools 2.10 as heapsnap knows it, or it has not allocated "
				    "yet; there is no heap to show",
				    path, missing, (unsigned long long)walker->data_start,
				    (unsigned long long)walker->data_end);
	return 0;
}

int tcmalloc_heap_walk(const struct allocator_input *input, struct heap *heap,
		       struct warnings *warnings, struct hs_error *err)
{
	struct address_space *space = input->space;
	struct heap_allocator *self = heap_begin_allocator(heap, &tcmalloc_allocator);
	if (self == NULL)
		return hs_error_nomem(err, "walking tcmalloc's heap");
	struct walker walker = {.space = space,
				 .heap = heap,
				 .warnings = warnings,
				 .report = {.heap = heap, .warnings = warnings, .allocator = "tcmalloc"}};
	address_cursor_init(&walker.pages, space);
	walker.map = (struct page_map){
		.space = space,
		.root_bits = MAP_ROOT_BITS,
		.leaf_bits = MAP_LEAF_BITS,
		.leaf_alignment = 8,
		.leaves_outside_data = true,
		.kind = "page map",
		.unwalked = "the spans of 2 GiB of addresses",
	};
	snprintf(self->method, sizeof self->method, "heuristics");
	read_version(input->module, self->version, sizeof self->version);
	if (self->version[0] && strcmp(self->version, "2.10") != 0)
		warnings_add(warnings,
			     "tcmalloc (gperftools %s) in %s: heapsnap knows the layouts of 2.10; the "
			     "heap is read with them and checked structure by structure",
			     self->version, module_symbols_module(input->module)->path);
	if (find_structures(&walker, input, err) != 0)
		goto fail;
	struct heap_arena arena = {.address = walker.map.root};
	snprintf(arena.kind, sizeof arena.kind, "page heap");
	if (heap_add_arena(heap, &arena) != 0) {
		hs_error_nomem(err, "listing tcmalloc's page heap");
		goto fail;
	}
	walker.arena = (int)heap->arena_count - 1;
	if (walk_map(&walker, err) != 0 || walk_spans(&walker, err) != 0)
		goto fail;

	/* the structures found by shape against the symbols a build has: the page heap and the
	   size map in static builds, the thread caches' list in every Debian build (it is
	   exported) */
	struct symbol_checks checks = {0};
	check_page_map_and_sizes(&walker, input, &checks);
	uint64_t central = walk_central_caches(&walker, input, &checks);
	walk_all_thread_caches(&walker, input, &checks);
	if (checks.checked > 0 && checks.disagree == 0)
		snprintf(self->method, sizeof self->method, "heuristics, checked by symbols");

	/* the page map's root and the central caches point at leaves, spans and cached objects
	   (their unused transfer slots may still name objects since handed out): not references.
	   The rest of tcmalloc's data is not bookkeeping: it holds pointers to its own live
	   blocks (the MallocExtension instance), which are references. */
	heap_add_bookkeeping(heap, walker.map.root, page_map_root_end(&walker.map));
	if (central)
		heap_add_bookkeeping(heap, central,
				     central + (uint64_t)walker.class_count * CENTRAL_STRIDE);
	walk_report_finish(&walker.report);
	free_walker(&walker);
	heap_finish(heap);
	return 0;
fail:
	free_walker(&walker);
	return -1;
}

static const char *const tcmalloc_place_names[PLACE_COUNT] = {
	[PLACE_IN_USE] = "in_use",
	[PLACE_LARGE] = "large",
	[PLACE_THREAD_CACHE] = "thread_cache",
	[PLACE_FAST_LIST] = "transfer_cache",
	[PLACE_FREE_LIST] = "central_free",
	[PLACE_RETAINED] = "page_heap",
};

static const char *const tcmalloc_symbols[] = {"tc_malloc", NULL};

const struct allocator tcmalloc_allocator = {
	.name = "tcmalloc",
	.version_name = "gperftools",
	.step = "tcmalloc heap",
	.metadata_type = NULL,
	.place_names = tcmalloc_place_names,
	.symbols = tcmalloc_symbols,
	.walk = tcmalloc_heap_walk,
};
