/* Naming a block through the allocator that owns it (see allocator.h). */
#include "allocator.h"

#include <stddef.h>

const struct allocator *allocator_of(const struct heap *heap, const struct allocation *allocation)
{
	if (allocation->arena >= heap->arena_count)
		return NULL;
	uint8_t index = heap->arenas[allocation->arena].allocator;
	return index < heap->allocator_count ? heap->allocators[index].allocator : NULL;
}

const struct allocator *allocator_of_arena(const struct heap *heap, const struct heap_arena *arena)
{
	return arena->allocator < heap->allocator_count ? heap->allocators[arena->allocator].allocator
							: NULL;
}

const char *allocator_place_name(const struct heap *heap, const struct allocation *allocation)
{
	const struct allocator *allocator = allocator_of(heap, allocation);
	const char *name = allocator && allocation->place < PLACE_COUNT
				   ? allocator->place_names[allocation->place]
				   : NULL;
	return name ? name : "unknown";
}

const struct heap_allocator *heap_allocator_find(const struct heap *heap,
						 const struct allocator *allocator)
{
	for (size_t i = 0; i < heap->allocator_count; i++)
		if (heap->allocators[i].allocator == allocator)
			return &heap->allocators[i];
	return NULL;
}

const struct heap_allocator *heap_malloc(const struct heap *heap)
{
	return heap->allocator_count ? &heap->allocators[0] : NULL;
}

size_t heap_mallocs(const struct heap *heap, const struct heap_allocator **mallocs, size_t max)
{
	size_t count = 0;
	for (size_t i = 0; i < heap->allocator_count; i++)
		if (heap->allocators[i].allocator->walk != NULL && count < max)
			mallocs[count++] = &heap->allocators[i];
	return count;
}
