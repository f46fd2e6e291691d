/* Retaining path shapes (see paths.h). Shapes are built once for all nodes in breadth-first
 * order: a node's shape is its parent's shape plus one step, interned in a table keyed by (prefix
 * shape, step), so the cost is linear in the graph even for lists millions long. */
#include "paths.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/site_breakdown.h"
#include "common/fnv.h"
#include "common/hash_map.h"
#include "common/string_table.h"

#define NO_SHAPE UINT32_MAX

struct shape_entry {
	uint32_t prefix;  /* NO_SHAPE for a root */
	uint32_t step;	  /* index into the step strings */
	uint8_t repeated; /* the step repeats along a chain */
};

static inline struct shape_entry shape_entry_key(const struct shape_entry *entry)
{
	return *entry;
}

static inline uint64_t shape_hash(struct shape_entry key)
{
	return (((uint64_t)key.prefix * 0x9E3779B97F4A7C15ull) ^
		((uint64_t)key.step << 1 | key.repeated) * 0xC2B2AE3D27D4EB4Full) >> 7;
}

static inline bool shape_eq(struct shape_entry a, struct shape_entry b)
{
	return a.prefix == b.prefix && a.step == b.step && a.repeated == b.repeated;
}

/* the shapes, numbered in the order made, by (prefix, step, repeated) */
DEFINE_HASH_TABLE(shape_table, struct shape_entry, struct shape_entry, shape_entry_key, shape_hash,
		  shape_eq)

struct shape_tally;
static void tallies_free(struct shape_tally *tallies, size_t count);

struct path_index {
	const struct graph *graph;
	const struct heap *heap;
	const struct type_names *types;
	const uint8_t *same_type_dominated; /* NULL: none marked */
	bool show_values; /* paths show the values read from memory (dict keys) */
	const uint32_t *site_of; /* per allocation, its site (number + 1); NULL: not given */
	struct string_table steps;
	struct shape_table shapes;
	uint32_t *node_shape; /* per graph node: the shape of the path that reaches it */
	struct {
		uint64_t key;
		uint32_t step;
		bool valid;
	} step_cache[1024];
	struct path_prepared {
		struct shape_tally *tallies;
		size_t count;
	} prepared; /* groups counted ahead (paths_prepare) */
};

uint64_t hash_bytes(const char *text, uint64_t seed)
{
	return fnv1a_text(1469598103934665603ull ^ seed, text);
}

void path_mask_values(const char *text, char *out, size_t size)
{
	size_t used = 0;
	if (size == 0)
		return;
	while (*text && used + 1 < size) {
		const char *end = NULL;
		if (text[0] == '[' && text[1] == '\'') {
			end = strstr(text + 2, "']");
			end = end ? end + 2 : NULL;
		} else if (text[0] == '[') {
			const char *at = text + 1 + (text[1] == '-');
			const char *digits = at;
			while (*at >= '0' && *at <= '9')
				at++;
			end = at > digits && *at == ']' ? at + 1 : NULL;
		}
		if (end) {
			for (const char *mask = "[*]"; *mask && used + 1 < size; mask++)
				out[used++] = *mask;
			text = end;
		} else {
			out[used++] = *text++;
		}
	}
	out[used] = '\0';
}

void path_signature_text(const char *text, char *out, size_t size)
{
	char masked[512];
	path_mask_values(text, masked, sizeof masked);
	/* a thread's id differs from run to run: "thread 4242 frame serve()" signs as "thread" */
	size_t used = 0;
	for (const char *at = masked; *at && used + 1 < size;) {
		out[used++] = *at;
		if (strncmp(at, "thread ", 7) == 0 && at[7] >= '0' && at[7] <= '9') {
			for (const char *word = "hread"; *word && used + 1 < size; word++)
				out[used++] = *word;
			at += 7;
			while (*at >= '0' && *at <= '9')
				at++;
			continue;
		}
		at++;
	}
	out[used] = '\0';
}

void path_shape_sign(struct path_shape *shape)
{
	uint64_t hash = 0;
	char masked[128];
	for (size_t e = 0; e < shape->element_count; e++) {
		path_signature_text(shape->elements[e], masked, sizeof masked);
		hash = hash_bytes(masked, hash);
	}
	snprintf(shape->signature, sizeof shape->signature, "%08x", (unsigned)(hash ^ hash >> 32));
}

static uint32_t intern_step(struct path_index *index, const char *text)
{
	uint32_t step = string_table_intern(&index->steps, text);
	return step == UINT32_MAX ? NO_SHAPE : step;
}

static uint32_t intern_shape(struct path_index *index, uint32_t prefix, uint32_t step,
			     uint8_t repeated)
{
	if (step == NO_SHAPE)
		return NO_SHAPE;
	struct shape_entry key = {prefix, step, repeated};
	bool added;
	struct shape_entry *entry = shape_table_insert(&index->shapes, key, &added);
	if (entry == NULL)
		return NO_SHAPE;
	if (added)
		*entry = key;
	return (uint32_t)(entry - index->shapes.entries);
}

/* The name of a node's type for paths: its type, or "size N". */
static void node_type(const struct heap *heap, const struct type_names *types, uint32_t node,
		      char *out, size_t size)
{
	size_t allocation = node;
	const char *type = types_name(types, allocation);
	if (type)
		snprintf(out, size, "%s", type);
	else
		snprintf(out, size, "size %llu",
			 (unsigned long long)heap->allocations[allocation].size);
}

bool path_member_at(const struct heap *heap, const struct type_names *types, uint32_t node,
		    uint32_t offset, char *base, size_t base_size, char *member, size_t member_size)
{
	char type[112];
	node_type(heap, types, node, type, sizeof type);
	size_t length = strlen(type);
	bool array = length > 2 && strcmp(type + length - 2, "[]") == 0;
	snprintf(base, base_size, "%.*s", (int)(array ? length - 2 : length), type);
	const struct dwarf_struct *layout = types_layout(types, base);
	if (layout == NULL || layout->size == 0)
		return false;
	uint64_t within = array ? offset % layout->size : offset;
	for (size_t m = 0; m < layout->member_count; m++) {
		const struct dwarf_member *field = &layout->members[m];
		if (within >= field->offset && within < field->offset + (field->size ? field->size : 8)) {
			snprintf(member, member_size, "%s.%s", array ? "[*]" : "", field->name);
			return true;
		}
	}
	snprintf(member, member_size, "%s", array ? "[*]" : "");
	return true;
}

/* The step through heap node `node` along the edge at byte `offset` in it: its type and, where
 * the type's layout is known, the member the pointer sits in. */
static void step_text(const struct heap *heap, const struct type_names *types, uint32_t node,
		      uint32_t offset, char *out, size_t size)
{
	char base[112], member[128];
	if (path_member_at(heap, types, node, offset, base, sizeof base, member, sizeof member))
		snprintf(out, size, "%s%s", base, member);
	else
		node_type(heap, types, node, out, size);
}

void path_step_text(const struct graph *graph, const struct heap *heap,
		    const struct type_names *types, uint32_t node, uint32_t offset, char *out,
		    size_t size)
{
	if (offset & GRAPH_LABEL) {
		char type[112];
		node_type(heap, types, node, type, sizeof type);
		snprintf(out, size, "%s%s", type, graph->labels.strings[offset & GRAPH_LABEL_INDEX]);
	} else {
		step_text(heap, types, node, offset, out, size);
	}
}

/* The step through a node, cached for nodes whose type has no layout (the step is then just the
 * type, whatever the offset): most nodes of a large heap, and formatting each would dominate. */
static uint32_t cached_step(struct path_index *index, uint32_t node, uint32_t offset, char *text,
			    size_t size)
{
	size_t allocation = node;
	const char *type = types_name(index->types, allocation);
	if (!(offset & GRAPH_LABEL) && type && strncmp(type, "struct ", 7) == 0) {
		step_text(index->heap, index->types, node, offset, text, size);
		return intern_step(index, text);
	}
	/* by type (or size) and, for a runtime's label ("list[*]", "Connection._conn"), the label */
	uint64_t key = type ? (uint64_t)(uintptr_t)type : index->heap->allocations[allocation].size;
	if (offset & GRAPH_LABEL)
		key = (key * 0xC2B2AE3D27D4EB4Full) ^ ((uint64_t)(offset & ~GRAPH_VIEW) << 32) ^ 1;
	size_t slot = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 54);
	if (index->step_cache[slot].valid && index->step_cache[slot].key == key)
		return index->step_cache[slot].step;
	path_step_text(index->graph, index->heap, index->types, node, offset, text, size);
	uint32_t step = intern_step(index, text);
	index->step_cache[slot].key = key;
	index->step_cache[slot].step = step;
	index->step_cache[slot].valid = step != NO_SHAPE;
	return step;
}

/* The shape of the path to v, reached first from u (already shaped) by edge e. */
static uint32_t shape_through(struct path_index *index, uint32_t u, uint32_t v, uint64_t e)
{
	const struct graph *graph = index->graph;
	if (u == graph->super_root) {
		/* a root: its name starts the path */
		return intern_shape(index, NO_SHAPE,
				    intern_step(index, graph->roots[v - graph->heap_nodes].name), 0);
	}
	if (u >= graph->heap_nodes)
		return index->node_shape[u]; /* pointed at by a root: the root's shape */
	char text[160];
	uint32_t step = cached_step(index, u, graph->offsets[e], text, sizeof text);
	/* a link from an object to one of its own type (a list's next, a tree's child) is a
	 * chain: shown once, marked, however long it is */
	size_t from = u, to = v;
	const char *from_type = types_name(index->types, from);
	uint8_t chain = from_type == types_name(index->types, to) &&
			(from_type != NULL || index->heap->allocations[from].size ==
						  index->heap->allocations[to].size);
	const struct shape_entry *before = &index->shapes.entries[index->node_shape[u]];
	if (chain && before->step == step && before->repeated)
		return index->node_shape[u];
	return intern_shape(index, index->node_shape[u], step, chain);
}

struct path_index *path_index_build(const struct graph *graph, const struct heap *heap,
				    const struct type_names *types,
				    const uint8_t *same_type_dominated, bool show_values,
				    struct hs_error *err)
{
	uint32_t *queue = NULL;
	struct path_index *index = calloc(1, sizeof *index);
	if (index == NULL || (index->node_shape = malloc(graph->node_count * sizeof(uint32_t))) == NULL ||
	    (queue = malloc(graph->node_count * sizeof *queue)) == NULL)
		goto out_of_memory;
	index->graph = graph;
	index->heap = heap;
	index->types = types;
	index->same_type_dominated = same_type_dominated;
	index->show_values = show_values;
	for (size_t v = 0; v < graph->node_count; v++)
		index->node_shape[v] = NO_SHAPE;
	/* breadth-first from the super-root: each node's shape is made when it is first reached,
	   from the shape of the node it is reached from (the first edge to it, in the nearest) */
	size_t head = 0, tail = 0;
	queue[tail++] = graph->super_root;
	index->node_shape[graph->super_root] = NO_SHAPE - 1; /* reached, no shape */
	while (head < tail) {
		uint32_t u = queue[head++];
		for (uint64_t e = graph->starts[u]; e < graph->starts[u + 1]; e++) {
			uint32_t v = graph->targets[e];
			if (index->node_shape[v] != NO_SHAPE)
				continue;
			uint32_t shape = shape_through(index, u, v, e);
			if (shape == NO_SHAPE)
				goto out_of_memory;
			index->node_shape[v] = shape;
			queue[tail++] = v;
		}
	}
	index->node_shape[graph->super_root] = NO_SHAPE;
	free(queue);
	return index;
out_of_memory:
	free(queue);
	path_index_free(index);
	hs_error_nomem(err, "finding retaining paths");
	return NULL;
}

void path_index_free(struct path_index *index)
{
	if (index == NULL)
		return;
	string_table_free(&index->steps);
	shape_table_free(&index->shapes);
	free(index->node_shape);
	tallies_free(index->prepared.tallies, index->prepared.count);
	free(index);
}

void path_index_set_sites(struct path_index *index, const uint32_t *site_of)
{
	index->site_of = site_of;
}

static int compare_shapes(const void *left, const void *right)
{
	const struct path_shape *a = left, *b = right;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return a->retained > b->retained ? -1 : a->retained < b->retained;
}

/* Writes the elements of shape `id` into `out`, root first. */
static void render(const struct path_index *index, uint32_t id, struct path_shape *out)
{
	uint32_t chain[64];
	size_t depth = 0;
	for (uint32_t at = id; at != NO_SHAPE && depth < 64; at = index->shapes.entries[at].prefix)
		chain[depth++] = at;
	out->element_count = 0;
	/* keep the root and the steps nearest the object when the path is long */
	for (size_t k = depth; k-- > 0 && out->element_count + 1 < PATH_ELEMENTS_MAX;) {
		if (k + 1 != depth && k > PATH_ELEMENTS_MAX - 3) {
			if (out->element_count == 1)
				snprintf(out->elements[out->element_count++], 128, "...");
			continue;
		}
		const struct shape_entry *entry = &index->shapes.entries[chain[k]];
		char text[128];
		snprintf(text, sizeof text, "%s%s", index->steps.strings[entry->step],
			 entry->repeated ? " (repeated)" : "");
		/* a report is made to be shared: values from memory only when asked */
		if (index->show_values)
			memcpy(out->elements[out->element_count++], text, sizeof text);
		else
			path_mask_values(text, out->elements[out->element_count++], 128);
	}
}

/* "thread 4242 frame serve()" -> "thread * frame serve()": for a shape that stands for the
 * same path in several threads. */
static void mask_threads(char *text, size_t size)
{
	char out[128];
	size_t used = 0;
	for (const char *at = text; *at && used + 1 < sizeof out;) {
		if (strncmp(at, "thread ", 7) == 0 && at[7] >= '0' && at[7] <= '9') {
			used += (size_t)snprintf(out + used, sizeof out - used, "thread *");
			at += 7;
			while (*at >= '0' && *at <= '9')
				at++;
			continue;
		}
		out[used++] = *at++;
	}
	out[used < sizeof out ? used : sizeof out - 1] = '\0';
	snprintf(text, size, "%s", out);
}

/* What shapes are grouped by: their text, threads' ids dropped and (unless values are shown)
 * values masked, so one path taken in 200 threads, or through 200 dict keys, is one shape. */
static uint64_t shape_group_key(const struct path_index *index, uint32_t id)
{
	struct path_shape shape;
	render(index, id, &shape);
	uint64_t hash = 0;
	for (size_t e = 0; e < shape.element_count; e++) {
		mask_threads(shape.elements[e], sizeof shape.elements[e]);
		hash = hash_bytes(shape.elements[e], hash);
	}
	return hash;
}

bool path_of_allocation(const struct path_index *index, size_t allocation, struct path_shape *out)
{
	const struct graph *graph = index->graph;
	uint32_t node = graph_allocation_node(graph, allocation);
	memset(out, 0, sizeof *out);
	if (node == GRAPH_NONE || index->node_shape[node] == NO_SHAPE)
		return false;
	render(index, index->node_shape[node], out);
	node_type(index->heap, index->types, node, out->elements[out->element_count++],
		  sizeof out->elements[0]);
	out->count = 1;
	out->retained = graph->retained[node];
	path_shape_sign(out);
	return true;
}

uint32_t path_shape_number(const struct path_index *index, size_t allocation)
{
	uint32_t node = graph_allocation_node(index->graph, allocation);
	return node == GRAPH_NONE ? PATH_NO_SHAPE : index->node_shape[node];
}

void path_shape_render(const struct path_index *index, uint32_t shape, struct path_shape *out)
{
	memset(out, 0, sizeof *out);
	render(index, shape, out);
}

/* One type group's objects counted by shape, in a small table of the most common. */
enum { CANDIDATES = 64 };
struct shape_tally {
	const char *type; /* NULL: untyped, of `size` */
	uint64_t size;
	uint32_t want;	  /* the type as its id: 1 + its number, 0 for untyped */
	bool known;	  /* the type is one of this snapshot's */
	const uint8_t *only, *only_dominated;
	struct shape_count {
		uint32_t shape; /* the first shape of the group: its text is shown */
		uint64_t key;
		bool varied;	/* other shapes joined it (other threads) */
		uint64_t count, retained;
	} found[CANDIDATES];
	size_t found_count;
	struct site_breakdown sites; /* the objects' sites by candidate (when the index has sites) */
};

static void tallies_free(struct shape_tally *tallies, size_t count)
{
	for (size_t i = 0; tallies && i < count; i++)
		site_breakdown_free(&tallies[i].sites);
	free(tallies);
}

static void tally_begin(const struct path_index *index, struct shape_tally *tally,
			const char *type, uint64_t size, const uint8_t *only,
			const uint8_t *only_dominated)
{
	const struct type_names *types = index->types;
	memset(tally, 0, sizeof *tally);
	tally->type = type;
	tally->size = size;
	tally->only = only;
	tally->only_dominated = only_dominated;
	tally->known = true;
	if (type) {
		uint32_t number = string_table_find(&types->names, type);
		tally->known = number != UINT32_MAX && types->of != NULL &&
			       types->names.strings[number] == type;
		tally->want = tally->known ? number + 1 : 0;
	}
}

/* The tallies by their key (a type's id, or an untyped group's size): each node of the heap is
 * looked up. */
struct tally_key {
	uint32_t id; /* 0: untyped, of `size`; else size is 0 */
	uint64_t size;
};

static inline uint64_t tally_key_hash(struct tally_key key)
{
	return ((uint64_t)key.id * 0x9e3779b97f4a7c15ull ^ key.size * 0xc2b2ae3d27d4eb4full) >> 32;
}

static inline bool tally_key_eq(struct tally_key a, struct tally_key b)
{
	return a.id == b.id && a.size == b.size;
}

DEFINE_HASH_MAP(tally_map, struct tally_key, uint32_t, tally_key_hash, tally_key_eq)

/* The tallies of known types by key, the first of any with the same key; false when out of
 * memory. */
static bool tally_map_fill(struct tally_map *map, const struct shape_tally *tallies, size_t count)
{
	for (size_t t = 0; t < count; t++) {
		if (!tallies[t].known)
			continue;
		struct tally_key key = {tallies[t].want, tallies[t].want ? 0 : tallies[t].size};
		bool added;
		struct tally_map_entry *entry = tally_map_insert(map, key, &added);
		if (entry == NULL)
			return false;
		if (added)
			entry->value = (uint32_t)t;
	}
	return true;
}

/* Counts the shapes of every tally's objects (all with the same `only`), in one pass over the
 * heap: a report asks for ten groups or more, and each pass reads every allocation. */
static int tally_shapes(const struct path_index *index, struct shape_tally *tallies, size_t count)
{
	const struct graph *graph = index->graph;
	const uint8_t *only = count ? tallies[0].only : NULL;
	const uint8_t *dominated = only ? tallies[0].only_dominated : index->same_type_dominated;
	/* each shape's key, computed on first use (a type's objects have few shapes) */
	uint64_t *keys = calloc(index->shapes.count + 1, sizeof *keys);
	if (keys == NULL)
		return -1;
	const uint32_t *of = index->types->of;
	struct tally_map map = {0};
	if (!tally_map_fill(&map, tallies, count)) {
		tally_map_free(&map);
		free(keys);
		return -1;
	}
	for (size_t v = 0; v < graph->heap_nodes; v++) {
		size_t allocation = v;
		uint32_t shape = index->node_shape[v];
		if (shape == NO_SHAPE)
			continue; /* free or unreached (tested first: the smallest array) */
		uint32_t id = of ? of[allocation] : 0;
		const struct tally_map_entry *entry = tally_map_search(
			&map, (struct tally_key){id, id ? 0 : index->heap->allocations[allocation].size});
		if (entry == NULL)
			continue;
		struct shape_tally *tally = &tallies[entry->value];
		if (index->types->owned && index->types->owned[allocation])
			continue; /* a part of an object: its owner is the object */
		if (only && !only[allocation])
			continue;
		if (keys[shape] == 0)
			keys[shape] = shape_group_key(index, shape) | 1; /* (0: not computed yet) */
		size_t k = 0;
		while (k < tally->found_count && tally->found[k].key != keys[shape])
			k++;
		if (k == tally->found_count) {
			if (tally->found_count == CANDIDATES)
				continue;
			tally->found[tally->found_count++] =
				(struct shape_count){shape, keys[shape], false, 0, 0};
		}
		struct shape_count *found = &tally->found[k];
		found->varied |= found->shape != shape;
		found->count++;
		if (dominated && !dominated[v])
			found->retained += graph->retained[v];
		if (index->site_of &&
		    site_breakdown_add(&tally->sites, k, index->site_of[allocation],
				       index->heap->allocations[allocation].size, false) != 0)
			goto out_of_memory;
	}
	tally_map_free(&map);
	free(keys);
	for (size_t t = 0; index->site_of && t < count; t++)
		if (site_breakdown_finish(&tallies[t].sites, NULL, NULL) != 0)
			return -1;
	return 0;
out_of_memory:
	tally_map_free(&map);
	free(keys);
	return -1;
}

/* Candidate `k`'s sites into its shape. */
static void shape_sites(const struct shape_tally *tally, size_t k, struct path_shape *shape)
{
	struct group_sites sites = site_breakdown_of(&tally->sites, k);
	shape->has_sites = sites.counted;
	shape->site_count = sites.count;
	shape->without_site = sites.without_count;
	for (size_t i = 0; i < sites.count && i < PATH_SITES_MAX; i++)
		shape->sites[i] = (struct path_site){sites.top[i].site, sites.top[i].count};
}

/* The tally's shapes as paths, the most common first, at most `max`. */
static size_t tally_render(const struct path_index *index, const struct shape_tally *tally,
			   struct path_shape *shapes, size_t max)
{
	struct path_shape *all = calloc(tally->found_count + 1, sizeof *all);
	if (all == NULL)
		return 0;
	char final[112];
	if (tally->type)
		snprintf(final, sizeof final, "%s", tally->type);
	else
		snprintf(final, sizeof final, "size %llu", (unsigned long long)tally->size);
	for (size_t k = 0; k < tally->found_count; k++) {
		render(index, tally->found[k].shape, &all[k]);
		if (tally->found[k].varied)
			for (size_t e = 0; e < all[k].element_count; e++)
				mask_threads(all[k].elements[e], sizeof all[k].elements[e]);
		snprintf(all[k].elements[all[k].element_count++], 128, "%s", final);
		all[k].count = tally->found[k].count;
		all[k].retained = tally->found[k].retained;
		shape_sites(tally, k, &all[k]);
		path_shape_sign(&all[k]);
	}
	qsort(all, tally->found_count, sizeof *all, compare_shapes);
	size_t count = tally->found_count < max ? tally->found_count : max;
	memcpy(shapes, all, count * sizeof *shapes);
	free(all);
	return count;
}

int paths_prepare(struct path_index *index, const char *const *types, const uint64_t *sizes,
		  size_t count, const uint8_t *only, const uint8_t *only_dominated)
{
	struct shape_tally *tallies = calloc(count + 1, sizeof *tallies);
	if (tallies == NULL)
		return -1;
	for (size_t i = 0; i < count; i++)
		tally_begin(index, &tallies[i], types[i], sizes[i], only, only_dominated);
	if (tally_shapes(index, tallies, count) != 0) {
		tallies_free(tallies, count);
		return -1;
	}
	tallies_free(index->prepared.tallies, index->prepared.count);
	index->prepared.tallies = tallies;
	index->prepared.count = count;
	return 0;
}

size_t paths_of_type(const struct path_index *index, const char *type, uint64_t size,
		     const uint8_t *only, const uint8_t *only_dominated, struct path_shape *shapes,
		     size_t max)
{
	struct shape_tally tally;
	tally_begin(index, &tally, type, size, only, only ? only_dominated : NULL);
	if (!tally.known)
		return 0; /* not a type of this snapshot's */
	for (size_t i = 0; i < index->prepared.count; i++) {
		const struct shape_tally *prepared = &index->prepared.tallies[i];
		if (prepared->known && prepared->want == tally.want &&
		    (type != NULL || prepared->size == size) && prepared->only == only &&
		    (only == NULL || prepared->only_dominated == only_dominated))
			return tally_render(index, prepared, shapes, max);
	}
	size_t filled = tally_shapes(index, &tally, 1) == 0 ? tally_render(index, &tally, shapes, max)
							   : 0;
	site_breakdown_free(&tally.sites);
	return filled;
}
