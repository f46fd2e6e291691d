/* Walking pymalloc's pools (see pymalloc_heap.h). Layouts of struct pool_header and struct
 * arena_object are the same in 3.8 to 3.13. */
#include "pymalloc_heap.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/dwarf_types.h"
#include "common/bytes.h"

#define ARENA_OBJECT_SIZE 48
#define MAX_ARENAS (1u << 20)

struct pool_header {
	uint32_t count;	    /* blocks in use (ref.count) */
	uint64_t freeblock; /* the first free block, chained through their first words */
	uint32_t arena_index, size_index, next_offset, max_next_offset;
};

struct pool_walker {
	struct address_space *space;
	const struct cpython_layout *layout;
	struct heap *heap;   /* blocks are added after what glibc's walker found */
	size_t malloc_count; /* the allocations glibc's walker found: sorted, indexed */
	uint16_t arena; /* index into heap->arenas */
	uint8_t *pool;	/* the pool's bytes */
	uint8_t *is_free;
	uint64_t pools, arenas;
};

/* Reads the pool at `address` and, when its header is consistent, adds its blocks. Returns 1 when
 * it was a pool in use, 0 when not, -1 when out of memory. `arena_index` is the table's index of
 * the arena, or -1 when unknown. */
static int walk_pool(struct pool_walker *walker, uint64_t address, long arena_index)
{
	const struct cpython_layout *layout = walker->layout;
	uint8_t *pool = walker->pool;
	if (address_space_read(walker->space, address, pool, layout->pool_size, NULL) != 0)
		return 0;
	struct pool_header header = {
		.count = u32_at(pool, 0),
		.freeblock = u64_at(pool, 8),
		.arena_index = u32_at(pool, 32),
		.size_index = u32_at(pool, 36),
		.next_offset = u32_at(pool, 40),
		.max_next_offset = u32_at(pool, 44),
	};
	uint32_t classes = 512 / layout->alignment;
	if (header.count == 0 || header.size_index >= classes)
		return 0;
	uint32_t size = (header.size_index + 1) * layout->alignment;
	uint32_t overhead = layout->pool_overhead;
	if (header.max_next_offset != layout->pool_size - size || header.next_offset < overhead ||
	    header.next_offset > header.max_next_offset + size ||
	    (header.next_offset - overhead) % size != 0 ||
	    (arena_index >= 0 && header.arena_index != (uint32_t)arena_index) ||
	    header.arena_index >= MAX_ARENAS)
		return 0;
	uint32_t carved = (header.next_offset - overhead) / size;
	memset(walker->is_free, 0, carved);
	uint32_t free_count = 0;
	for (uint64_t block = header.freeblock; block != 0;) {
		if (block < address + overhead || block >= address + header.next_offset ||
		    (block - address - overhead) % size != 0)
			return 0;
		uint32_t index = (uint32_t)((block - address - overhead) / size);
		if (walker->is_free[index])
			return 0; /* a loop */
		walker->is_free[index] = 1;
		free_count++;
		block = u64_at(pool, (size_t)(block - address));
	}
	if (free_count > carved || carved - free_count != header.count)
		return 0;
	for (uint32_t index = 0; index < carved; index++) {
		uint32_t offset = overhead + index * size;
		struct allocation allocation = {
			.address = address + offset,
			.size = size,
			.state = walker->is_free[index] ? ALLOCATION_FREE : ALLOCATION_LIVE,
			.place = walker->is_free[index] ? PLACE_POOL_FREE : PLACE_POOL,
			.arena = walker->arena,
			.first_word = u64_at(pool, offset),
		};
		if (heap_add(walker->heap, &allocation) != 0)
			return -1;
	}
	walker->pools++;
	return 1;
}

/* Walks the pools of one arena: from its first pool-aligned address up to `carved_end`. */
static int walk_arena(struct pool_walker *walker, uint64_t address, uint64_t carved_end,
		      long arena_index)
{
	uint64_t pool_size = walker->layout->pool_size;
	uint64_t first = (address + pool_size - 1) / pool_size * pool_size;
	if (carved_end > address + walker->layout->arena_size)
		carved_end = address + walker->layout->arena_size;
	for (uint64_t pool = first; pool + pool_size <= carved_end; pool += pool_size)
		if (walk_pool(walker, pool, arena_index) < 0)
			return -1;
	walker->arenas++;
	return 0;
}

/* The offset of a member in a struct, from DWARF; whether it is a pointer. */
static bool member_offset(struct dwarf_types *types, const char *struct_name, const char *name,
			  uint64_t *offset, bool *pointer)
{
	static _Thread_local struct dwarf_struct layout; /* large: not on the stack */
	const struct dwarf_member *member;
	if (!dwarf_types_struct(types, struct_name, &layout) ||
	    (member = dwarf_struct_member(&layout, name)) == NULL)
		return false;
	*offset = member->offset;
	if (pointer)
		*pointer = strchr(member->type, '*') != NULL;
	return true;
}

/* The address of pymalloc's arena table and its length, from debug information: the statics
 * `arenas` and `maxarenas` up to 3.11; from 3.12 the main interpreter's obmalloc state
 * (embedded in the interpreter in 3.12, a pointer to it in 3.13). */
static bool arena_table(struct address_space *space, struct symbols *symbols,
			const struct cpython_info *python, uint64_t *table, uint32_t *count)
{
	struct module_symbols *module = cpython_module(symbols, python);
	if (module == NULL)
		return false;
	uint64_t arenas_at, count_at;
	if (python->minor <= 11) {
		if (!module_symbols_lookup(module, "arenas", &arenas_at, NULL) ||
		    !module_symbols_lookup(module, "maxarenas", &count_at, NULL))
			return false;
		return address_space_read_u64(space, arenas_at, table) &&
		       address_space_read(space, count_at, count, sizeof *count, NULL) == 0;
	}
	struct hs_error ignored;
	struct dwarf_types *types = module_symbols_open_types(module, &ignored);
	if (types == NULL)
		return false;
	uint64_t interpreters, main_offset, obmalloc, mgmt, arenas, max;
	bool obmalloc_pointer = false, ok = false;
	if (!member_offset(types, "pyruntimestate", "interpreters", &interpreters, NULL) ||
	    !member_offset(types, "pyinterpreters", "main", &main_offset, NULL) ||
	    !member_offset(types, "_is", "obmalloc", &obmalloc, &obmalloc_pointer) ||
	    !member_offset(types, "_obmalloc_state", "mgmt", &mgmt, NULL) ||
	    !member_offset(types, "_obmalloc_mgmt", "arenas", &arenas, NULL) ||
	    !member_offset(types, "_obmalloc_mgmt", "maxarenas", &max, NULL))
		goto done;
	uint64_t interpreter, state;
	if (!address_space_read_u64(space, python->runtime + interpreters + main_offset,
				    &interpreter) ||
	    interpreter == 0)
		goto done;
	state = interpreter + obmalloc;
	if (obmalloc_pointer && !address_space_read_u64(space, state, &state))
		goto done;
	ok = address_space_read_u64(space, state + mgmt + arenas, table) &&
	     address_space_read(space, state + mgmt + max, count, sizeof *count, NULL) == 0;
done:
	dwarf_types_close(types);
	return ok;
}

/* The malloc chunk holding addr: a search among the allocations glibc's walker found (sorted and
 * indexed), not the blocks added since. */
static const struct allocation *malloc_chunk_at(const struct pool_walker *walker, uint64_t addr)
{
	struct heap view = *walker->heap;
	view.count = walker->malloc_count;
	return heap_find(&view, addr);
}

/* Without the table: every pool-aligned address of the anonymous writable mappings that no
 * malloc chunk covers. */
static int scan_for_pools(struct pool_walker *walker, struct snapshot *snapshot)
{
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(snapshot, &count);
	uint64_t pool_size = walker->layout->pool_size;
	for (size_t i = 0; i < count; i++) {
		const struct snapshot_region *region = &regions[i];
		if (region->path != NULL || !(region->flags & PF_W) || region->data_size == 0)
			continue;
		uint64_t first = (region->start + pool_size - 1) / pool_size * pool_size;
		for (uint64_t pool = first; pool + pool_size <= region->end; pool += pool_size) {
			const struct allocation *chunk = malloc_chunk_at(walker, pool);
			if (chunk != NULL) {
				/* skip the whole chunk */
				uint64_t end = chunk->address + chunk->size;
				pool = (end + pool_size - 1) / pool_size * pool_size - pool_size;
				continue;
			}
			if (walk_pool(walker, pool, -1) < 0)
				return -1;
		}
	}
	return 0;
}

int pymalloc_heap_walk(struct address_space *space, struct symbols *symbols,
		       const struct cpython_info *python, const struct cpython_layout *layout,
		       bool no_debuginfo, struct heap *heap, struct warnings *warnings,
		       struct hs_error *err)
{
	struct heap_arena info = {0};
	snprintf(info.kind, sizeof info.kind, "pymalloc");
	if (heap->arena_count >= HEAP_ARENAS_MAX)
		return hs_error_set(err, "too many arenas in the heap");
	struct heap_allocator *self = heap_begin_allocator(heap, &pymalloc_allocator);
	if (self == NULL)
		return hs_error_set(err, "too many allocators in the heap");
	struct pool_walker walker = {.space = space, .layout = layout, .heap = heap,
				     .malloc_count = heap->count,
				     .arena = (uint16_t)heap->arena_count};
	walker.pool = malloc(layout->pool_size);
	walker.is_free = malloc(layout->pool_size / layout->alignment + 1);
	if (walker.pool == NULL || walker.is_free == NULL || heap_add_arena(heap, &info) != 0) {
		free(walker.pool);
		free(walker.is_free);
		return hs_error_nomem(err, "walking pymalloc's arenas");
	}
	uint64_t table = 0;
	uint32_t count = 0;
	int result = 0;
	if (!no_debuginfo && arena_table(space, symbols, python, &table, &count) && table != 0 &&
	    count <= MAX_ARENAS) {
		snprintf(self->method, sizeof self->method, "debug info");
		heap->arenas[walker.arena].address = table;
		uint8_t entry[ARENA_OBJECT_SIZE];
		for (uint32_t i = 0; i < count && result == 0; i++) {
			if (address_space_read(space, table + (uint64_t)i * ARENA_OBJECT_SIZE, entry,
					       sizeof entry, NULL) != 0) {
				warnings_add(warnings,
					     "pymalloc: arena table entry %u at 0x%llx is not in the "
					     "snapshot",
					     i, (unsigned long long)(table + (uint64_t)i * ARENA_OBJECT_SIZE));
				break;
			}
			uint64_t address = u64_at(entry, 0), pool_address = u64_at(entry, 8);
			if (address != 0)
				result = walk_arena(&walker, address, pool_address, (long)i);
		}
	} else {
		snprintf(self->method, sizeof self->method, "heuristics");
		result = scan_for_pools(&walker, address_space_snapshot(space));
	}
	free(walker.pool);
	free(walker.is_free);
	size_t found = heap->count - walker.malloc_count;
	if (result != 0)
		return hs_error_nomem(err, "walking pymalloc's arenas");
	heap->arenas[walker.arena].system_bytes =
		walker.arenas ? walker.arenas * layout->arena_size
			      : walker.pools * layout->pool_size;
	if (found > 0)
		heap_finish(heap);
	return 0;
}

static const char *const pymalloc_place_names[PLACE_COUNT] = {
	[PLACE_POOL] = "pool",
	[PLACE_POOL_FREE] = "pool_free",
};

const struct allocator pymalloc_allocator = {
	.name = "pymalloc",
	.version_name = "python", /* (its version is CPython's) */
	.step = "pymalloc heap",
	.metadata_type = NULL, /* (its pool headers are not blocks) */
	.place_names = pymalloc_place_names,
	.symbols = NULL, /* (layered on the process's malloc) */
	.walk = NULL, /* walked by analysis.c with the interpreter's layout */
};
