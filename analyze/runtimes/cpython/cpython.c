/* CPython detection (see cpython.h). */
#include "cpython.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/dwarf_types.h"

/* Looks through the module's writable data for "3.N.M (" and takes N and M. */
static bool version_from_data(struct address_space *space, const char *module, int *minor,
			      int *micro)
{
	struct snapshot *snapshot = address_space_snapshot(space);
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(snapshot, &count);
	for (size_t i = 0; i < count; i++) {
		const struct snapshot_region *region = &regions[i];
		bool module_data = region->path && strcmp(region->path, module) == 0 &&
				   (region->flags & PF_W);
		bool module_bss = !region->path && i > 0 && regions[i - 1].path &&
				  strcmp(regions[i - 1].path, module) == 0 &&
				  regions[i - 1].end == region->start;
		if (!module_data && !module_bss)
			continue;
		size_t size = (size_t)(region->end - region->start);
		if (size > (64u << 20))
			continue;
		char *bytes = malloc(size + 1);
		if (bytes == NULL || address_space_read(space, region->start, bytes, size, NULL) != 0) {
			free(bytes);
			continue;
		}
		bytes[size] = '\0';
		for (char *at = memchr(bytes, '3', size); at && at + 8 < bytes + size;
		     at = memchr(at + 1, '3', size - (size_t)(at + 1 - bytes))) {
			int n, m, length = 0;
			if ((at == bytes || at[-1] == '\0') && at[1] == '.' &&
			    sscanf(at, "3.%d.%d (%n", &n, &m, &length) == 2 && length > 0) {
				*minor = n;
				*micro = m;
				free(bytes);
				return true;
			}
		}
		free(bytes);
	}
	return false;
}

/* The layout for the version found: DWARF over the built-in table where the module has it. */
static void choose_layout(struct module_symbols *module, struct address_space *space,
			  bool no_debuginfo, struct cpython_info *info)
{
	if (info->major != 3 || !cpython_layout_builtin(info->minor, &info->layout))
		return;
	info->has_layout = true;
	snprintf(info->layout_source, sizeof info->layout_source, "built-in");
	struct hs_error ignored;
	struct dwarf_types *types = no_debuginfo ? NULL : module_symbols_open_types(module, &ignored);
	if (types && cpython_layout_from_dwarf(types, &info->layout))
		snprintf(info->layout_source, sizeof info->layout_source, "debug info");
	dwarf_types_close(types);
	/* without DWARF, 3.13 still says where its threads and frames are */
	uint8_t offsets[512];
	if (info->minor >= 13 && strcmp(info->layout_source, "built-in") == 0 &&
	    address_space_read(space, info->runtime, offsets, sizeof offsets, NULL) == 0 &&
	    cpython_layout_from_debug_offsets(offsets, sizeof offsets,
					      (uint64_t)info->major << 24 |
						      (uint64_t)info->minor << 16,
					      &info->layout))
		snprintf(info->layout_source, sizeof info->layout_source, "_Py_DebugOffsets");
}

void cpython_detect(struct symbols *symbols, struct address_space *space, bool no_debuginfo,
		    struct cpython_info *info)
{
	memset(info, 0, sizeof *info);
	info->debuginfo_allowed = !no_debuginfo;
	for (size_t i = 0; i < symbols_module_count(symbols); i++) {
		struct module_symbols *module = symbols_module_at(symbols, i);
		uint64_t runtime;
		if (!module_symbols_lookup(module, "_PyRuntime", &runtime, NULL))
			continue;
		info->found = true;
		info->runtime = runtime;
		info->module_path = module_symbols_module(module)->path;
		info->major = 3;
		info->minor = -1;
		info->micro = -1;
		uint64_t version_address, hex;
		if (module_symbols_lookup(module, "Py_Version", &version_address, NULL) &&
		    address_space_read_u64(space, version_address, &hex)) {
			/* PY_VERSION_HEX: 0xMMmmuuRS */
			info->major = (int)(hex >> 24 & 0xff);
			info->minor = (int)(hex >> 16 & 0xff);
			info->micro = (int)(hex >> 8 & 0xff);
		} else {
			version_from_data(space, info->module_path, &info->minor, &info->micro);
		}
		if (info->minor < 0) {
			/* the file name still tells "python3.9" */
			const char *name = strstr(info->module_path, "python3.");
			info->minor = name ? atoi(name + 8) : 0;
		}
		if (info->micro >= 0)
			snprintf(info->version, sizeof info->version, "%d.%d.%d", info->major,
				 info->minor, info->micro);
		else
			snprintf(info->version, sizeof info->version, "%d.%d", info->major, info->minor);
		module_symbols_lookup(module, "PyType_Type", &info->type_type, NULL);
		choose_layout(module, space, no_debuginfo, info);
		return;
	}
}

bool cpython_method_cache(struct symbols *symbols, struct address_space *space,
			  const struct cpython_info *info, uint64_t *start, uint64_t *end)
{
	if (!info->found || !info->has_layout || info->layout.type_cache_size == 0)
		return false;
	if (info->layout.type_cache == 0) {
		/* up to 3.9, a static of typeobject.c */
		struct module_symbols *module = cpython_module(symbols, info);
		if (module == NULL || !module_symbols_lookup(module, "method_cache", start, NULL))
			return false;
		*end = *start + info->layout.type_cache_size;
		return true;
	}
	uint64_t interpreter;
	if (!address_space_read_u64(space, info->runtime + info->layout.runtime_main_interpreter,
				    &interpreter) ||
	    interpreter == 0)
		return false;
	*start = interpreter + info->layout.type_cache;
	*end = *start + info->layout.type_cache_size;
	return true;
}

struct module_symbols *cpython_module(struct symbols *symbols, const struct cpython_info *info)
{
	for (size_t i = 0; info->found && i < symbols_module_count(symbols); i++) {
		struct module_symbols *module = symbols_module_at(symbols, i);
		if (strcmp(module_symbols_module(module)->path, info->module_path) == 0)
			return module;
	}
	return NULL;
}

/* In struct _pymem_allocators (3.12, 3.13): `standard` is {raw, mem, obj} after an 8-byte mutex,
 * each a PyMemAllocatorEx of five pointers (ctx, malloc, calloc, realloc, free); `debug` follows
 * as three debug_alloc_api_t ({char api_id; PyMemAllocatorEx alloc;}, 48 bytes). */
#define ALLOCATORS_OBJ_MALLOC (8 + 2 * 40 + 8)
#define ALLOCATORS_DEBUG_OBJ_MALLOC (8 + 3 * 40 + 2 * 48 + 8 + 8)

enum cpython_object_allocator cpython_object_allocator(struct symbols *symbols,
						       struct address_space *space,
						       const struct cpython_info *info,
						       bool no_debuginfo)
{
	/* mimalloc came with 3.13; before, the objects are pymalloc's or (PYTHONMALLOC=malloc)
	   malloc's, and the pymalloc walk finds what there is of them */
	if (!info->found || !info->has_layout || info->minor < 13)
		return CPYTHON_ALLOCATOR_PYMALLOC;
	struct module_symbols *module = cpython_module(symbols, info);
	uint64_t mimalloc, pymalloc = 0, raw = 0, debug = 0, allocators, called;
	if (module == NULL || no_debuginfo || info->layout.runtime_allocators == 0 ||
	    !module_symbols_lookup(module, "_PyObject_MiMalloc", &mimalloc, NULL))
		return CPYTHON_ALLOCATOR_UNKNOWN;
	module_symbols_lookup(module, "_PyObject_Malloc", &pymalloc, NULL);
	module_symbols_lookup(module, "_PyMem_RawMalloc", &raw, NULL);
	module_symbols_lookup(module, "_PyMem_DebugMalloc", &debug, NULL);
	allocators = info->runtime + info->layout.runtime_allocators;
	if (!address_space_read_u64(space, allocators + ALLOCATORS_OBJ_MALLOC, &called))
		return CPYTHON_ALLOCATOR_UNKNOWN;
	/* the debug hooks wrap the allocator chosen, which they keep in `debug` */
	if (debug != 0 && called == debug &&
	    !address_space_read_u64(space, allocators + ALLOCATORS_DEBUG_OBJ_MALLOC, &called))
		return CPYTHON_ALLOCATOR_UNKNOWN;
	if (called == mimalloc)
		return CPYTHON_ALLOCATOR_MIMALLOC;
	if (pymalloc != 0 && called == pymalloc)
		return CPYTHON_ALLOCATOR_PYMALLOC;
	if (raw != 0 && called == raw)
		return CPYTHON_ALLOCATOR_MALLOC;
	return CPYTHON_ALLOCATOR_UNKNOWN;
}
