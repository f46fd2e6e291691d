/* The allocation list shared by all heap walkers (see heap.h). */
#include "heap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/array_grow.h"
#include "common/big_array.h"
#include "formats/snapshot.h"

static void free_spans(struct heap *heap)
{
	for (size_t i = 0; i < heap->span_count; i++)
		free(heap->spans[i].first);
	free(heap->spans);
	heap->spans = NULL;
	heap->span_count = 0;
}

void heap_free(struct heap *heap)
{
	free_spans(heap);
	big_array_free(heap->allocations, heap->capacity, sizeof *heap->allocations);
	free(heap->arenas);
	memset(heap, 0, sizeof *heap);
}

int heap_add(struct heap *heap, const struct allocation *allocation)
{
	if (heap->count == heap->capacity || heap->allocations == NULL) {
		void *grown = big_array_grow(heap->allocations, &heap->capacity,
					     sizeof *heap->allocations, heap->count + 1);
		if (grown == NULL)
			return -1;
		heap->allocations = grown;
	}
	heap->allocations[heap->count++] = *allocation;
	big_array_filling(heap->allocations, heap->capacity, sizeof *heap->allocations, heap->count);
	return 0;
}

int heap_add_arena(struct heap *heap, const struct heap_arena *arena)
{
	if (heap->arena_count >= HEAP_ARENAS_MAX)
		return -1;
	void *grown = realloc(heap->arenas, (heap->arena_count + 1) * sizeof *heap->arenas);
	if (grown == NULL)
		return -1;
	heap->arenas = grown;
	heap->arenas[heap->arena_count] = *arena;
	/* (an arena belongs to the allocator being walked) */
	heap->arenas[heap->arena_count++].allocator =
		(uint8_t)(heap->allocator_count ? heap->allocator_count - 1 : 0);
	return 0;
}

static int compare_allocations(const void *left, const void *right)
{
	const struct allocation *a = left, *b = right;
	return a->address < b->address ? -1 : a->address > b->address;
}

/* Merges the sorted runs [0, split) and [split, n) of `all` in place, copying the shorter aside:
 * merged from the front when it is the first (what is written never passes what is still to be
 * read of the second), from the back when it is the second. -1 when out of memory. */
static int merge_two_runs(struct allocation *all, size_t split, size_t n)
{
	bool first_shorter = split <= n - split;
	size_t count = first_shorter ? split : n - split;
	struct allocation *aside = malloc(count * sizeof *aside);
	if (aside == NULL)
		return -1;
	if (first_shorter) {
		memcpy(aside, all, count * sizeof *aside);
		size_t a = 0, b = split, at = 0;
		while (a < count && b < n)
			all[at++] = all[b].address < aside[a].address ? all[b++] : aside[a++];
		memcpy(all + at, aside + a, (count - a) * sizeof *aside);
	} else {
		memcpy(aside, all + split, count * sizeof *aside);
		size_t a = split, b = count, at = n;
		while (a > 0 && b > 0)
			all[--at] = aside[b - 1].address < all[a - 1].address ? all[--a] : aside[--b];
		memcpy(all + (at - b), aside, b * sizeof *aside);
	}
	free(aside);
	return 0;
}

/* Walkers produce sorted runs (one per heap, pool or arena they walk): a bottom-up merge of the
 * runs sorts the whole in O(n log runs), where a general sort would not use the order there is. */
static void sort_allocations(struct heap *heap)
{
	size_t n = heap->count, runs = 1;
	for (size_t i = 1; i < n; i++)
		runs += heap->allocations[i].address < heap->allocations[i - 1].address;
	if (n < 2 || runs == 1)
		return;
	if (runs == 2) {
		/* the usual case (glibc's chunks, then pymalloc's blocks): merged in place, with a
		   copy of the shorter run only */
		size_t split = 1;
		while (heap->allocations[split].address >= heap->allocations[split - 1].address)
			split++;
		if (merge_two_runs(heap->allocations, split, n) == 0)
			return;
	}
	size_t *bounds = malloc((runs + 1) * sizeof *bounds);
	struct allocation *other = malloc(n * sizeof *other);
	if (bounds == NULL || other == NULL) {
		free(bounds);
		free(other);
		qsort(heap->allocations, n, sizeof *heap->allocations, compare_allocations);
		return;
	}
	size_t count = 0;
	bounds[count++] = 0;
	for (size_t i = 1; i < n; i++)
		if (heap->allocations[i].address < heap->allocations[i - 1].address)
			bounds[count++] = i;
	bounds[count] = n;
	struct allocation *from = heap->allocations, *to = other;
	while (count > 1) {
		size_t merged = 0;
		for (size_t r = 0; r < count; r += 2) {
			size_t a = bounds[r], a_end = bounds[r + 1];
			size_t b = a_end, b_end = r + 2 <= count ? bounds[r + 2] : a_end;
			size_t at = a;
			while (a < a_end && b < b_end)
				to[at++] = from[b].address < from[a].address ? from[b++] : from[a++];
			memcpy(to + at, from + a, (a_end - a) * sizeof *to);
			at += a_end - a;
			memcpy(to + at, from + b, (b_end - b) * sizeof *to);
			bounds[merged++] = bounds[r];
		}
		bounds[merged] = n;
		count = merged;
		struct allocation *swap = from;
		from = to;
		to = swap;
	}
	if (from != heap->allocations)
		memcpy(heap->allocations, from, n * sizeof *from);
	free(other);
	free(bounds);
}

#define GRANULE_SHIFT 8	     /* 256 bytes: a few small allocations each */
#define GRANULE_SHIFT_MAX 30 /* in a span of few, huge allocations */
#define SPAN_GAP (64u << 10) /* allocations closer than this share a span */

static uint64_t allocation_end(const struct allocation *allocation)
{
	return allocation->address + (allocation->size ? allocation->size : 1);
}

/* Builds the spans and their per-granule first allocation. On failure, heap_find falls back to
 * a plain binary search. */
static void build_spans(struct heap *heap)
{
	free_spans(heap);
	size_t capacity = 0;
	for (size_t i = 0; i < heap->count;) {
		size_t last = i;
		uint64_t end = allocation_end(&heap->allocations[i]);
		while (last + 1 < heap->count && heap->allocations[last + 1].address < end + SPAN_GAP) {
			last++;
			if (allocation_end(&heap->allocations[last]) > end)
				end = allocation_end(&heap->allocations[last]);
		}
		void *grown = array_grow(heap->spans, &capacity, heap->span_count,
					 sizeof *heap->spans, 16);
		if (grown == NULL) {
			free_spans(heap);
			return;
		}
		heap->spans = grown;
		/* granules of 256 bytes, larger where they would far outnumber the allocations
		   (a span of a few huge mmapped chunks) */
		uint32_t shift = GRANULE_SHIFT;
		uint64_t bytes = end - (heap->allocations[i].address >> shift << shift);
		while (shift < GRANULE_SHIFT_MAX && (bytes >> shift) > 4 * (last + 1 - i) + 1024)
			shift++;
		struct heap_span *span = &heap->spans[heap->span_count];
		span->shift = shift;
		span->start = heap->allocations[i].address >> shift << shift;
		span->end = ((end - 1) >> shift << shift) + (1ull << shift);
		size_t granules = (size_t)((span->end - span->start) >> shift);
		span->first = malloc((granules + 1) * sizeof *span->first);
		if (span->first == NULL) {
			free_spans(heap);
			return;
		}
		heap->span_count++;
		size_t at = i;
		for (size_t granule = 0; granule < granules; granule++) {
			uint64_t granule_start = span->start + ((uint64_t)granule << shift);
			while (at <= last && allocation_end(&heap->allocations[at]) <= granule_start)
				at++;
			span->first[granule] = (uint32_t)at;
		}
		span->first[granules] = (uint32_t)(last + 1);
		i = last + 1;
	}
}

void heap_finish(struct heap *heap)
{
	sort_allocations(heap);
	build_spans(heap);
	heap_count_totals(heap);
}

void heap_count_totals(struct heap *heap)
{
	for (size_t i = 0; i < heap->arena_count; i++) {
		struct heap_arena *arena = &heap->arenas[i];
		arena->live_count = arena->live_bytes = arena->free_count = arena->free_bytes = 0;
		arena->top_bytes = 0;
	}
	for (size_t i = 0; i < heap->count; i++) {
		const struct allocation *allocation = &heap->allocations[i];
		if (allocation->arena >= heap->arena_count)
			continue;
		struct heap_arena *arena = &heap->arenas[allocation->arena];
		if (allocation->state == ALLOCATION_LIVE) {
			arena->live_count++;
			arena->live_bytes += allocation->size;
		} else {
			arena->free_count++;
			arena->free_bytes += allocation->size;
			if (allocation->place == PLACE_TOP)
				arena->top_bytes += allocation->size;
		}
	}
}

const struct allocation *heap_find(const struct heap *heap, uint64_t addr)
{
	size_t low = 0, high = heap->count;
	if (heap->span_count > 0) {
		if (addr < heap->spans[0].start)
			return NULL;
		size_t first = 0, last = heap->span_count;
		while (first < last) {
			size_t mid = first + (last - first) / 2;
			if (heap->spans[mid].end <= addr)
				first = mid + 1;
			else
				last = mid;
		}
		if (first == heap->span_count || addr < heap->spans[first].start)
			return NULL;
		const struct heap_span *span = &heap->spans[first];
		size_t granule = (size_t)((addr - span->start) >> span->shift);
		low = span->first[granule];
		high = span->first[granule + 1] < heap->count ? span->first[granule + 1] + 1
							      : heap->count;
		/* the first allocation ending after the granule's start usually holds addr */
		if (low < high) {
			const struct allocation *allocation = &heap->allocations[low];
			if (addr >= allocation->address &&
			    addr < allocation->address + (allocation->size ? allocation->size : 1))
				return allocation;
		}
	}
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		const struct allocation *allocation = &heap->allocations[mid];
		if (addr < allocation->address)
			high = mid;
		else if (addr >= allocation->address + (allocation->size ? allocation->size : 1))
			low = mid + 1;
		else
			return allocation;
	}
	return NULL;
}

struct heap_allocator *heap_begin_allocator(struct heap *heap, const struct allocator *allocator)
{
	if (heap->allocator_count >= HEAP_ALLOCATORS_MAX)
		return NULL;
	struct heap_allocator *entry = &heap->allocators[heap->allocator_count++];
	memset(entry, 0, sizeof *entry);
	entry->allocator = allocator;
	return entry;
}

void heap_add_bookkeeping(struct heap *heap, uint64_t start, uint64_t end)
{
	if (heap->bookkeeping_count < sizeof heap->bookkeeping / sizeof heap->bookkeeping[0])
		heap->bookkeeping[heap->bookkeeping_count++] = (struct heap_range){start, end};
}

void heap_note_damage(struct heap *heap, uint64_t address, uint64_t bytes_skipped)
{
	if (heap->damage.spots++ == 0)
		heap->damage.first_address = address;
	heap->damage.bytes_not_walked += bytes_skipped;
}

int heap_is_bookkeeping(const struct heap *heap, uint64_t addr)
{
	for (size_t i = 0; i < heap->bookkeeping_count; i++)
		if (addr >= heap->bookkeeping[i].start && addr < heap->bookkeeping[i].end)
			return 1;
	return 0;
}

void heap_read_first_words(struct heap *heap, struct address_space *space)
{
	if (!heap->first_words_unread)
		return;
	struct address_cursor cursor;
	address_cursor_init(&cursor, space);
	const struct snapshot_region *region = NULL;
	for (size_t i = 0; i < heap->count; i++) {
		struct allocation *allocation = &heap->allocations[i];
		uint64_t address = allocation->address, word = 0;
		if (region == NULL || address < region->start || address >= region->end)
			region = snapshot_find_region(address_space_snapshot(space), address);
		/* the window is filled up to the end of the block's mapping: the blocks come in
		   address order */
		if (region != NULL && allocation->size >= 8 &&
		    address_cursor_read_u64(&cursor, address, region->end, &word))
			allocation->first_word = word;
	}
	address_cursor_free(&cursor);
	heap->first_words_unread = false;
}
