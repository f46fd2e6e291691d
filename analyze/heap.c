/* The allocation list shared by all heap walkers (see heap.h). */
#include "heap.h"

#include <stdlib.h>
#include <string.h>

void heap_free(struct heap *heap)
{
	free(heap->allocations);
	free(heap->arenas);
	memset(heap, 0, sizeof *heap);
}

int heap_add(struct heap *heap, const struct allocation *allocation)
{
	if (heap->count == heap->capacity) {
		size_t capacity = heap->capacity ? heap->capacity * 2 : 4096;
		void *grown = realloc(heap->allocations, capacity * sizeof *heap->allocations);
		if (grown == NULL)
			return -1;
		heap->allocations = grown;
		heap->capacity = capacity;
	}
	heap->allocations[heap->count++] = *allocation;
	return 0;
}

int heap_add_arena(struct heap *heap, const struct heap_arena *arena)
{
	void *grown = realloc(heap->arenas, (heap->arena_count + 1) * sizeof *heap->arenas);
	if (grown == NULL)
		return -1;
	heap->arenas = grown;
	heap->arenas[heap->arena_count++] = *arena;
	return 0;
}

static int compare_allocations(const void *left, const void *right)
{
	const struct allocation *a = left, *b = right;
	return a->address < b->address ? -1 : a->address > b->address;
}

void heap_finish(struct heap *heap)
{
	qsort(heap->allocations, heap->count, sizeof *heap->allocations, compare_allocations);
	for (size_t i = 0; i < heap->arena_count; i++) {
		struct heap_arena *arena = &heap->arenas[i];
		arena->live_count = arena->live_bytes = arena->free_count = arena->free_bytes = 0;
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
		}
	}
}

const struct allocation *heap_find(const struct heap *heap, uint64_t addr)
{
	size_t low = 0, high = heap->count;
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
