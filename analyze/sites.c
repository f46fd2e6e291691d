/* Allocation sites (see sites.h). */
#include "sites.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/dwarf_types.h"
#include "formats/snapshot_notes.h"

struct site_name {
	uint64_t pc;
	struct site_description description;
};

struct site_cache {
	struct site_name **names; /* each its own block: descriptions handed out stay put */
	size_t name_count, name_capacity;
	struct site_module { /* the DWARF of each module a site is in, opened once */
		struct module_symbols *module;
		struct dwarf_types *types; /* NULL: none */
	} modules[64];
	size_t module_count;
};

int allocation_sites_load(struct allocation_sites *sites, struct snapshot *snapshot,
			  const struct heap *heap, struct hs_error *err)
{
	memset(sites, 0, sizeof *sites);
	const struct snapshot_note *note =
		snapshot_find_note(snapshot, HEAPSNAP_NOTE_OWNER, HEAPSNAP_NOTE_SITES);
	if (note == NULL)
		return 0;
	if (note->size % sizeof(struct heapsnap_site_note) != 0)
		return hs_error_set(err, "%s: the allocation-site note is %zu bytes, not a whole "
					 "number of entries",
				    snapshot_path(snapshot), note->size);
	sites->pc = calloc(heap->count + 1, sizeof *sites->pc);
	sites->cache = calloc(1, sizeof *sites->cache);
	if (sites->pc == NULL || sites->cache == NULL)
		return hs_error_set(err, "out of memory reading allocation sites");
	size_t count = note->size / sizeof(struct heapsnap_site_note);
	/* both sorted by address: one merge */
	size_t k = 0;
	for (size_t i = 0; i < count; i++) {
		struct heapsnap_site_note site;
		memcpy(&site, note->desc + i * sizeof site, sizeof site);
		while (k < heap->count && heap->allocations[k].address < site.address)
			k++;
		if (k < heap->count && heap->allocations[k].address == site.address &&
		    heap->allocations[k].state == ALLOCATION_LIVE) {
			sites->pc[k] = site.pc;
			sites->recorded++;
		}
	}
	return 0;
}

void allocation_sites_free(struct allocation_sites *sites)
{
	if (sites->cache) {
		for (size_t i = 0; i < sites->cache->module_count; i++)
			dwarf_types_close(sites->cache->modules[i].types);
		for (size_t i = 0; i < sites->cache->name_count; i++)
			free(sites->cache->names[i]);
		free(sites->cache->names);
		free(sites->cache);
	}
	free(sites->pc);
	memset(sites, 0, sizeof *sites);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

static struct dwarf_types *module_types(struct site_cache *sites, struct module_symbols *module)
{
	for (size_t i = 0; i < sites->module_count; i++)
		if (sites->modules[i].module == module)
			return sites->modules[i].types;
	const char *debug_file = module_symbols_debug_file(module);
	struct hs_error ignored;
	struct dwarf_types *types = debug_file ? dwarf_types_open(debug_file, &ignored) : NULL;
	if (sites->module_count < sizeof sites->modules / sizeof sites->modules[0])
		sites->modules[sites->module_count++] = (struct site_module){module, types};
	else if (types) {
		dwarf_types_close(types); /* (too many modules to keep open: no lines for this one) */
		types = NULL;
	}
	return types;
}

const struct site_description *allocation_sites_describe(const struct allocation_sites *all,
							 struct symbols *symbols, uint64_t pc)
{
	struct site_cache *sites = all->cache;
	if (sites == NULL)
		return NULL;
	for (size_t i = 0; i < sites->name_count; i++)
		if (sites->names[i]->pc == pc)
			return &sites->names[i]->description;
	if (sites->name_count == sites->name_capacity) {
		size_t capacity = sites->name_capacity ? sites->name_capacity * 2 : 64;
		struct site_name **grown = realloc(sites->names, capacity * sizeof *grown);
		if (grown == NULL)
			return NULL;
		sites->names = grown;
		sites->name_capacity = capacity;
	}
	struct site_name *entry = calloc(1, sizeof *entry);
	if (entry == NULL)
		return NULL;
	sites->names[sites->name_count++] = entry;
	entry->pc = pc;
	struct site_description *out = &entry->description;
	/* the call instruction ends at the return address: look up the byte before it */
	uint64_t call = pc - 1;
	const char *module_path = NULL, *name = NULL;
	uint64_t offset = 0;
	if (symbols_lookup_address(symbols, call, &module_path, &name, &offset))
		snprintf(out->function, sizeof out->function, "%s", name);
	else
		snprintf(out->function, sizeof out->function, "0x%llx", (unsigned long long)pc);
	struct module_symbols *module = symbols_module_of(symbols, call);
	struct dwarf_types *types = module ? module_types(sites, module) : NULL;
	if (types)
		dwarf_types_line(types, call - module_symbols_bias(module), out->file, sizeof out->file,
				 &out->line);
	if (out->line)
		snprintf(out->text, sizeof out->text, "%s (%s:%u)", out->function,
			 base_name(out->file), out->line);
	else if (module_path)
		snprintf(out->text, sizeof out->text, "%s (%s)", out->function, base_name(module_path));
	else
		snprintf(out->text, sizeof out->text, "%s", out->function);
	return out;
}

int site_groups_add(struct site_groups *groups, uint64_t pc, uint64_t bytes, bool part)
{
	/* few distinct sites: the last one matched is the likeliest */
	for (size_t i = groups->count; i-- > 0;)
		if (groups->groups[i].pc == pc) {
			groups->groups[i].count += !part;
			groups->groups[i].bytes += bytes;
			return 0;
		}
	if (groups->count == groups->capacity) {
		size_t capacity = groups->capacity ? groups->capacity * 2 : 64;
		struct site_group *grown = realloc(groups->groups, capacity * sizeof *grown);
		if (grown == NULL)
			return -1;
		groups->groups = grown;
		groups->capacity = capacity;
	}
	groups->groups[groups->count++] = (struct site_group){pc, !part, bytes, NULL};
	return 0;
}

static int by_bytes(const void *left, const void *right)
{
	const struct site_group *a = left, *b = right;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return (a->pc > b->pc) - (a->pc < b->pc);
}

void site_groups_finish(struct site_groups *groups, const struct allocation_sites *sites,
			struct symbols *symbols)
{
	if (groups->count)
		qsort(groups->groups, groups->count, sizeof *groups->groups, by_bytes);
	for (size_t i = 0; i < groups->count; i++)
		groups->groups[i].description = allocation_sites_describe(sites, symbols,
									  groups->groups[i].pc);
}

void site_groups_free(struct site_groups *groups)
{
	free(groups->groups);
	memset(groups, 0, sizeof *groups);
}
