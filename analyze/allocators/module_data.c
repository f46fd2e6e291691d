/* Where a stripped allocator keeps its globals: its module's writable data and .bss, a word of
 * a given shape there, and the bytes of its file (see module_data.h). */
#include "module_data.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool module_data_range(struct address_space *space, struct symbols *symbols,
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

char *module_file_bytes(struct module_symbols *module, size_t *count)
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

uint64_t module_data_find_word(struct address_space *space, uint64_t start, uint64_t end,
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
