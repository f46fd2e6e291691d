/* Allocation sites (see sites.h). */
#include "sites.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/dwarf_types.h"
#include "common/array_grow.h"
#include "common/hash_index.h"

struct frame_name {
	uint64_t pc;
	char function[128], file[256], text[400];
	unsigned line;
};

struct site_cache {
	struct frame_name *frames; /* each pc described once */
	size_t frame_count, frame_capacity;
	struct site_description **sites; /* by site number, NULL until described; each its own
					    block: descriptions handed out stay put */
	struct site_module { /* the DWARF of each module a frame is in, opened once */
		struct module_symbols *module;
		struct dwarf_types *types; /* NULL: none */
	} modules[64];
	size_t module_count;
};

static uint64_t chain_hash(const struct site_chain *chain)
{
	return chain->pc[0] * 0x9E3779B97F4A7C15ull ^ chain->pc[1];
}

static uint64_t chain_number_hash(const void *context, uint32_t number)
{
	return chain_hash(&((const struct allocation_sites *)context)->chains[number]);
}

/* The number of a call stack among the distinct ones, interned through a hash index. */
static uint32_t intern_chain(struct allocation_sites *sites, struct hash_index *index,
			     const struct site_chain *chain)
{
	if (hash_index_reserve(index, sites->chain_count, 1024, chain_number_hash, sites) != 0)
		return UINT32_MAX;
	uint32_t *slot = hash_index_first(index, chain_hash(chain));
	for (; *slot; slot = hash_index_next(index, slot))
		if (memcmp(&sites->chains[*slot - 1], chain, sizeof *chain) == 0)
			return *slot - 1;
	struct site_chain *grown = array_grow(sites->chains, &sites->chain_capacity,
					      sites->chain_count, sizeof *sites->chains, 64);
	if (grown == NULL)
		return UINT32_MAX;
	sites->chains = grown;
	sites->chains[sites->chain_count] = *chain;
	*slot = (uint32_t)++sites->chain_count;
	return (uint32_t)(sites->chain_count - 1);
}

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
	sites->site = calloc(heap->count + 1, sizeof *sites->site);
	sites->cache = calloc(1, sizeof *sites->cache);
	struct hash_index index = {0};
	if (sites->site == NULL || sites->cache == NULL)
		goto out_of_memory;
	size_t count = note->size / sizeof(struct heapsnap_site_note);
	/* both sorted by address: one merge */
	size_t k = 0;
	for (size_t i = 0; i < count; i++) {
		struct heapsnap_site_note entry;
		memcpy(&entry, note->desc + i * sizeof entry, sizeof entry);
		while (k < heap->count && heap->allocations[k].address < entry.address)
			k++;
		if (k == heap->count || heap->allocations[k].address != entry.address ||
		    heap->allocations[k].state != ALLOCATION_LIVE)
			continue;
		struct site_chain chain;
		memcpy(chain.pc, entry.pc, sizeof chain.pc);
		uint32_t number = intern_chain(sites, &index, &chain);
		if (number == UINT32_MAX)
			goto out_of_memory;
		sites->site[k] = number + 1;
		sites->recorded++;
	}
	hash_index_free(&index);
	sites->cache->sites = calloc(sites->chain_count + 1, sizeof *sites->cache->sites);
	if (sites->cache->sites == NULL)
		goto out_of_memory;
	const struct snapshot_info *info = snapshot_info(snapshot);
	sites->sample_bytes = info->sites_sample_bytes;
	sites->recorder = strcmp(info->sites_source, "bpf") == 0 ? "eBPF, capture --sites" : "the hook";
	return 0;
out_of_memory:
	hash_index_free(&index);
	allocation_sites_free(sites);
	return hs_error_nomem(err, "reading allocation sites");
}

void allocation_sites_free(struct allocation_sites *sites)
{
	struct site_cache *cache = sites->cache;
	if (cache) {
		for (size_t i = 0; i < cache->module_count; i++)
			dwarf_types_close(cache->modules[i].types);
		for (size_t i = 0; cache->sites && i < sites->chain_count; i++)
			free(cache->sites[i]);
		free(cache->sites);
		free(cache->frames);
		free(cache);
	}
	free(sites->site);
	free(sites->chains);
	memset(sites, 0, sizeof *sites);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

static struct dwarf_types *module_types(struct site_cache *cache, struct module_symbols *module)
{
	for (size_t i = 0; i < cache->module_count; i++)
		if (cache->modules[i].module == module)
			return cache->modules[i].types;
	struct hs_error ignored;
	struct dwarf_types *types = module_symbols_open_types(module, &ignored);
	if (cache->module_count < sizeof cache->modules / sizeof cache->modules[0]) {
		cache->modules[cache->module_count++] = (struct site_module){module, types};
	} else if (types) {
		dwarf_types_close(types); /* too many modules to keep open: no lines for this one */
		types = NULL;
	}
	return types;
}

/* One frame: its function, and the source line of the call it returns from. */
static const struct frame_name *describe_frame(struct site_cache *cache, struct symbols *symbols,
					       uint64_t pc)
{
	for (size_t i = 0; i < cache->frame_count; i++)
		if (cache->frames[i].pc == pc)
			return &cache->frames[i];
	struct frame_name *grown = array_grow(cache->frames, &cache->frame_capacity,
					      cache->frame_count, sizeof *cache->frames, 64);
	if (grown == NULL)
		return NULL;
	cache->frames = grown;
	struct frame_name *out = &cache->frames[cache->frame_count++];
	memset(out, 0, sizeof *out);
	out->pc = pc;
	/* the call instruction ends at the return address: look up the byte before it */
	uint64_t call = pc - 1;
	const char *module_path = NULL, *name = NULL;
	uint64_t offset = 0;
	if (symbols_lookup_address(symbols, call, &module_path, &name, &offset))
		snprintf(out->function, sizeof out->function, "%s", name);
	else
		snprintf(out->function, sizeof out->function, "0x%llx", (unsigned long long)pc);
	struct module_symbols *module = symbols_module_of(symbols, call);
	struct dwarf_types *types = module ? module_types(cache, module) : NULL;
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

const struct site_description *allocation_sites_describe(const struct allocation_sites *sites,
							 struct symbols *symbols, uint32_t site)
{
	struct site_cache *cache = sites->cache;
	if (cache == NULL || site == 0 || site > sites->chain_count)
		return NULL;
	if (cache->sites[site - 1])
		return cache->sites[site - 1];
	struct site_description *out = calloc(1, sizeof *out);
	if (out == NULL)
		return NULL;
	const struct site_chain *chain = &sites->chains[site - 1];
	size_t used = 0;
	for (size_t depth = 0; depth < HEAPSNAP_SITE_FRAMES && chain->pc[depth]; depth++) {
		/* (frame descriptions move as the cache grows: copied out at once) */
		const struct frame_name *frame = describe_frame(cache, symbols, chain->pc[depth]);
		if (frame == NULL)
			break;
		if (depth == 0) {
			snprintf(out->function, sizeof out->function, "%s", frame->function);
			snprintf(out->file, sizeof out->file, "%s", frame->file);
			out->line = frame->line;
			snprintf(out->text, sizeof out->text, "%s", frame->text);
		}
		snprintf(out->stack[depth], sizeof out->stack[depth], "%s", frame->text);
		used += (size_t)snprintf(out->chain + used, used < sizeof out->chain ? sizeof out->chain - used : 0,
					 "%s%s", depth ? " <- " : "", frame->text);
	}
	cache->sites[site - 1] = out;
	return out;
}

int site_groups_add(struct site_groups *groups, uint32_t site, uint64_t bytes, bool part)
{
	if (site >= groups->slot_capacity) { /* slot_of: group index + 1, by site number */
		size_t old_capacity = groups->slot_capacity;
		size_t *grown = array_grow(groups->slot_of, &groups->slot_capacity, site,
					   sizeof *grown, 64);
		if (grown == NULL)
			return -1;
		memset(grown + old_capacity, 0, (groups->slot_capacity - old_capacity) * sizeof *grown);
		groups->slot_of = grown;
	}
	if (groups->slot_of[site]) {
		struct site_group *group = &groups->groups[groups->slot_of[site] - 1];
		group->count += !part;
		group->bytes += bytes;
		return 0;
	}
	struct site_group *grown = array_grow(groups->groups, &groups->capacity, groups->count,
					      sizeof *groups->groups, 64);
	if (grown == NULL)
		return -1;
	groups->groups = grown;
	groups->groups[groups->count++] = (struct site_group){site, !part, bytes, NULL};
	groups->slot_of[site] = groups->count;
	return 0;
}

static int by_bytes(const void *left, const void *right)
{
	const struct site_group *a = left, *b = right;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return (a->site > b->site) - (a->site < b->site);
}

void site_groups_finish(struct site_groups *groups, const struct allocation_sites *sites,
			struct symbols *symbols)
{
	free(groups->slot_of); /* (sorting moves the groups) */
	groups->slot_of = NULL;
	groups->slot_capacity = 0;
	if (groups->count)
		qsort(groups->groups, groups->count, sizeof *groups->groups, by_bytes);
	for (size_t i = 0; i < groups->count; i++)
		groups->groups[i].description =
			allocation_sites_describe(sites, symbols, groups->groups[i].site);
}

void site_groups_free(struct site_groups *groups)
{
	free(groups->groups);
	free(groups->slot_of);
	memset(groups, 0, sizeof *groups);
}
