/* Naming a block through the allocator that owns it, and what the walkers share: telling damage,
 * finding a block they added, finding where an allocator keeps its globals (see allocator.h). */
#include "allocator.h"

#include <elf.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct allocator *allocator_of(const struct heap *heap, const struct allocation *allocation)
{
	if (allocation->arena >= heap->arena_count)
		return NULL;
	uint8_t index = heap->arenas[allocation->arena].allocator;
	return index < heap->allocator_count ? heap->allocators[index].allocator : NULL;
}

const char *allocator_place_name(const struct heap *heap, const struct allocation *allocation)
{
	const struct allocator *allocator = allocator_of(heap, allocation);
	return allocator ? allocator->place_name(allocation->place) : "unknown";
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

bool allocator_module_data(struct address_space *space, struct symbols *symbols,
			   struct module_symbols *module, uint64_t *start, uint64_t *end)
{
	struct snapshot *snapshot = address_space_snapshot(space);
	const char *path = module_symbols_module(module)->path;
	uint64_t image_end = symbols_module_image_end(symbols, path);
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(snapshot, &count);
	*start = *end = 0;
	for (size_t i = 0; i < count; i++) {
		const struct snapshot_region *region = &regions[i];
		bool own = region->path && strcmp(region->path, path) == 0;
		bool bss = region->path == NULL && i > 0 && regions[i - 1].path &&
			   strcmp(regions[i - 1].path, path) == 0 && regions[i - 1].end == region->start;
		if (!(own || bss) || !(region->flags & PF_W))
			continue;
		uint64_t region_end = region->end;
		if (bss && image_end && image_end < region_end)
			region_end = image_end > region->start ? image_end : region->start;
		if (*end == 0 || region->start < *start)
			*start = region->start;
		if (region_end > *end)
			*end = region_end;
	}
	return *end > *start;
}

void allocator_damage(struct allocator_damage *damage, uint64_t address, const char *format, ...)
{
	heap_note_damage(damage->heap, address, 0);
	if (damage->heap->damage.spots > ALLOCATOR_DAMAGE_TOLD) {
		damage->untold++;
		return;
	}
	char message[320];
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(message, sizeof message, format, arguments);
	va_end(arguments);
	warnings_add(damage->warnings, "%s: %s", damage->allocator, message);
}

void allocator_damage_finish(struct allocator_damage *damage)
{
	if (damage->untold)
		warnings_add(damage->warnings, "%s: %llu more damaged structures like the ones above",
			     damage->allocator, (unsigned long long)damage->untold);
}

struct allocation *allocator_block_at(struct heap *heap, uint64_t address)
{
	size_t low = 0, high = heap->count;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		struct allocation *allocation = &heap->allocations[mid];
		if (allocation->address < address)
			low = mid + 1;
		else if (allocation->address > address)
			high = mid;
		else
			return allocation;
	}
	return NULL;
}

char *allocator_module_file(struct module_symbols *module, size_t *count)
{
	*count = 0;
	const char *path = module_symbols_file(module);
	FILE *file = path ? fopen(path, "rb") : NULL;
	if (file == NULL)
		return NULL;
	/* (an executable that links an allocator in may be big: only its start is read) */
	long file_size = fseek(file, 0, SEEK_END) == 0 ? ftell(file) : -1;
	size_t limit = file_size > 0 && file_size < (64l << 20) ? (size_t)file_size : 64u << 20;
	char *bytes = fseek(file, 0, SEEK_SET) == 0 ? malloc(limit) : NULL;
	*count = bytes ? fread(bytes, 1, limit, file) : 0;
	fclose(file);
	return bytes;
}

uint64_t allocator_find_word(struct address_space *space, uint64_t start, uint64_t end,
			     bool (*test)(void *context, uint64_t address, uint64_t word),
			     void *context)
{
	uint64_t page[512];
	for (uint64_t at = start; at < end; at += sizeof page) {
		size_t size = end - at < sizeof page ? (size_t)(end - at) : sizeof page;
		if (address_space_read(space, at, page, size, NULL) != 0)
			continue;
		for (size_t k = 0; k < size / 8; k++)
			if (test(context, at + k * 8, page[k]))
				return at + k * 8;
	}
	return 0;
}
