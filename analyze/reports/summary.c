/* Grouping a heap by type and by root (see summary.h). */
#include "summary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/graph/cycles.h"
#include "common/fnv.h"

void type_group_name(const struct type_group *group, char *out, size_t out_size)
{
	if (group->type)
		snprintf(out, out_size, "%s", group->type);
	else
		snprintf(out, out_size, "size %llu", (unsigned long long)group->size);
}

static int compare_bytes(const void *left, const void *right)
{
	const struct type_group *a = left, *b = right;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return a->count > b->count ? -1 : a->count < b->count;
}

static int compare_held(const void *left, const void *right)
{
	const struct root_group *a = left, *b = right;
	if (a->holds != b->holds)
		return a->holds > b->holds ? -1 : 1;
	if (a->retained != b->retained)
		return a->retained > b->retained ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* The roots in order of bytes held, the shared groups' members renumbered to match. */
static int sort_roots(struct heap_summary *summary)
{
	size_t count = summary->root_count;
	struct root_group *sorted = malloc((count + 1) * sizeof *sorted);
	uint32_t *order = malloc((count + 1) * sizeof *order), *place = malloc((count + 1) * sizeof *place);
	if (sorted == NULL || order == NULL || place == NULL) {
		free(sorted);
		free(order);
		free(place);
		return -1;
	}
	/* sort indices by the same rule, then move */
	memcpy(sorted, summary->roots, count * sizeof *sorted);
	for (size_t i = 0; i < count; i++)
		sorted[i].objects = i; /* carries the old index through the sort */
	if (count)
		qsort(sorted, count, sizeof *sorted, compare_held);
	for (size_t i = 0; i < count; i++) {
		order[i] = (uint32_t)sorted[i].objects;
		place[order[i]] = (uint32_t)i;
		sorted[i].objects = summary->roots[order[i]].objects;
	}
	memcpy(summary->roots, sorted, count * sizeof *sorted);
	for (size_t g = 0; g < summary->shared_count; g++) {
		struct root_holding_group *group = &summary->shared[g];
		for (uint32_t k = 0; k < group->member_count; k++)
			group->members[k] = place[group->members[k]];
		/* members in table order: the largest holder first */
		for (uint32_t a = 1; a < group->member_count; a++)
			for (uint32_t b = a; b > 0 && group->members[b - 1] > group->members[b]; b--) {
				uint32_t swap = group->members[b];
				group->members[b] = group->members[b - 1];
				group->members[b - 1] = swap;
			}
	}
	free(sorted);
	free(order);
	free(place);
	return 0;
}

struct type_group *type_grouper_find(struct type_grouper *grouper, const char *type, uint64_t size)
{
	struct type_key key = {type, type ? 0 : size};
	bool added;
	struct type_group *group = type_grouper_insert(grouper, key, &added);
	if (group && added)
		*group = (struct type_group){.type = key.type, .size = key.size};
	return group;
}

/* Roots of one name, by the name their group keeps: a group's name is cut to fit (and a longer
 * name then meets no group but its own, as it always has). */
static inline const char *root_group_key(const struct root_group *group)
{
	return group->name;
}
static inline uint64_t root_name_hash(const char *name)
{
	return type_key_hash((struct type_key){name, 0});
}
static inline bool root_name_eq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}
DEFINE_HASH_TABLE(root_groups, struct root_group, const char *, root_group_key, root_name_hash,
		  root_name_eq)

/* The group of a type, through a table by type id (most allocations are typed): a hash lookup
 * per type, not per allocation. */
static struct type_group *group_of(struct type_grouper *grouper, uint32_t *by_id, uint32_t id,
				   const char *type, uint64_t size)
{
	if (id && by_id[id])
		return &grouper->entries[by_id[id] - 1];
	struct type_group *group = type_grouper_find(grouper, type, size);
	if (group && id)
		by_id[id] = (uint32_t)(group - grouper->entries) + 1;
	return group;
}

void garbage_counts_init(struct garbage_counts *garbage, const struct analysis *analysis)
{
	*garbage = (struct garbage_counts){
		.classes = analysis->runtime.ops ? analysis->runtime.ops->garbage : NULL};
}

void garbage_counts_add(struct garbage_counts *garbage, const struct analysis *analysis,
			size_t index, uint64_t bytes)
{
	const struct runtime *runtime = analysis->runtime.ops;
	size_t class;
	if (runtime == NULL || !runtime->object_at(analysis, index, &class) ||
	    class >= garbage->classes->count)
		return;
	garbage->objects[class]++;
	garbage->bytes[class] += bytes;
}

bool allocation_site_counted(const struct analysis *analysis, size_t index)
{
	if (analysis->sites.recorded == 0)
		return false;
	const struct runtime *runtime = analysis->runtime.ops;
	size_t garbage_class;
	/* (any block the runtime knows: its objects, and the parts of them) */
	return runtime == NULL || !runtime->has_objects(analysis) ||
	       runtime->block_role(analysis, index, &garbage_class) == NULL;
}

/* Each type group's sites (group_allocations counted them by the group's number in its grouper,
 * twice it for the live, twice plus one for the unreachable); -1 when out of memory. */
static int attach_sites(const struct analysis *analysis, struct heap_summary *summary,
			struct type_grouper *live, struct type_grouper *lost)
{
	if (site_breakdown_finish(&summary->type_sites, &analysis->sites, analysis->symbols) != 0)
		return -1;
	for (size_t i = 0; i < live->count; i++)
		live->entries[i].sites = site_breakdown_of(&summary->type_sites, i * 2);
	for (size_t i = 0; i < lost->count; i++)
		lost->entries[i].sites = site_breakdown_of(&summary->type_sites, i * 2 + 1);
	return 0;
}

/* Roots whose bytes held count the memory of very many roots too (each is a short walk). */
#define ROOTS_HELD_EXACTLY 64

/* The live allocations by type, reachable or not, with what they retain, the garbage by class,
 * and the untyped ones by site; -1 when out of memory. */
static int group_allocations(const struct analysis *analysis, struct heap_summary *summary)
{
	const struct heap *heap = &analysis->heap;
	const struct graph *graph = analysis->has_graph ? &analysis->graph : NULL;
	struct type_grouper live = {0}, lost = {0};
	const uint32_t *of = analysis->types.of;
	size_t ids = analysis->types.names.count + 1;
	uint32_t *live_by_id = calloc(ids, sizeof *live_by_id), *lost_by_id = calloc(ids, sizeof *lost_by_id);
	if (live_by_id == NULL || lost_by_id == NULL)
		goto out_of_memory;
	const uint8_t *dominated = analysis->same_type_dominated;
	for (size_t i = 0; i < heap->count; i++) {
		const struct allocation *allocation = &heap->allocations[i];
		if (allocation->state != ALLOCATION_LIVE)
			continue;
		const char *type = analysis_type(analysis, i);
		uint32_t id = of ? of[i] : 0;
		uint32_t node = graph ? graph_allocation_node(graph, i) : GRAPH_NONE;
		bool reachable = graph == NULL || graph_reachable(graph, node);
		struct type_group *group = reachable ? group_of(&live, live_by_id, id, type, allocation->size)
						     : group_of(&lost, lost_by_id, id, type, allocation->size);
		if (group == NULL)
			goto out_of_memory;
		/* a block that is part of an object adds to its bytes, not to the objects */
		bool part = analysis->types.owned && analysis->types.owned[i];
		group->count += !part;
		group->bytes += allocation->size;
		/* count what this object retains unless an object of its own type already does:
		 * in a list of struct conn, the head retains the rest */
		if (graph && reachable && dominated && !dominated[i])
			group->retained += graph->retained[node];
		if (!reachable) {
			garbage_counts_add(&summary->garbage, analysis, i, allocation->size);
			summary->unreachable_objects += !part;
			summary->unreachable_bytes += allocation->size;
		} else {
			summary->reachable_bytes += allocation->size;
		}
		uint32_t site = allocation_site(&analysis->sites, i);
		if (type == NULL && site &&
		    site_groups_add(&summary->untyped_sites, site, allocation->size, part) != 0)
			goto out_of_memory;
		uint64_t number = (uint64_t)(group - (reachable ? live.entries : lost.entries));
		if (allocation_site_counted(analysis, i) &&
		    site_breakdown_add(&summary->type_sites, number * 2 + !reachable, site,
				       allocation->size, part) != 0)
			goto out_of_memory;
	}
	site_groups_finish(&summary->untyped_sites, &analysis->sites, analysis->symbols);
	if (attach_sites(analysis, summary, &live, &lost) != 0)
		goto out_of_memory;
	/* (qsort must not be given a null array, even an empty one) */
	summary->type_count = live.count;
	summary->types = type_grouper_steal(&live);
	if (summary->type_count)
		qsort(summary->types, summary->type_count, sizeof *summary->types, compare_bytes);
	summary->unreachable_count = lost.count;
	summary->unreachable = type_grouper_steal(&lost);
	if (summary->unreachable_count)
		qsort(summary->unreachable, summary->unreachable_count, sizeof *summary->unreachable,
		      compare_bytes);
	free(live_by_id);
	free(lost_by_id);
	return 0;
out_of_memory:
	free(live_by_id);
	free(lost_by_id);
	type_grouper_free(&live);
	type_grouper_free(&lost);
	return -1;
}

/* The roots, those of one name as one (a symbol split by other symbols' words, a module's data
 * in pieces), with what each retains and holds, and what several hold together; -1 with err
 * set on failure. */
static int group_roots(const struct graph *graph, struct heap_summary *summary,
		       struct hs_error *err)
{
	/* found by a hash of names, as a Python process has tens of thousands of roots */
	struct root_groups groups = {0};
	uint32_t *root_of = malloc((graph->root_count + 1) * sizeof *root_of);
	if (root_of == NULL || !root_groups_presize(&groups, graph->root_count + 1))
		goto out_of_memory;
	for (size_t r = 0; r < graph->root_count; r++) {
		uint32_t node = (uint32_t)(graph->heap_nodes + r);
		bool added;
		struct root_group *group = root_groups_insert(&groups, graph->roots[r].name, &added);
		if (group == NULL)
			goto out_of_memory;
		if (added)
			snprintf(group->name, sizeof group->name, "%s", graph->roots[r].name);
		root_of[r] = (uint32_t)(group - groups.entries);
		group->objects += graph->starts[node + 1] - graph->starts[node];
	}
	summary->root_count = groups.count;
	summary->roots = root_groups_steal(&groups);
	struct root_sharing sharing;
	int shared = root_sharing_find(graph, root_of, (uint32_t)summary->root_count,
				       ROOTS_HELD_EXACTLY, &sharing, err);
	free(root_of);
	if (shared != 0)
		return -1;
	for (size_t k = 0; k < summary->root_count; k++) {
		summary->roots[k].retained = sharing.retained[k];
		summary->roots[k].holds = sharing.holds[k];
		summary->roots[k].holds_exact = sharing.holds_exact[k];
	}
	summary->shared = sharing.groups;
	summary->shared_count = sharing.group_count;
	summary->shared_bytes = sharing.shared_bytes;
	sharing.groups = NULL;
	root_sharing_free(&sharing);
	return 0;
out_of_memory:
	free(root_of);
	root_groups_free(&groups);
	return hs_error_nomem(err, "summarising the heap");
}

int heap_summary_build(const struct analysis *analysis, struct heap_summary *summary,
		       struct hs_error *err)
{
	memset(summary, 0, sizeof *summary);
	garbage_counts_init(&summary->garbage, analysis);
	if (group_allocations(analysis, summary) != 0)
		goto out_of_memory;
	if (!analysis->has_graph)
		return 0;
	if (group_roots(&analysis->graph, summary, err) != 0 ||
	    cycles_find(&analysis->graph, &analysis->heap, &analysis->types, NULL, &summary->cycles,
			&summary->cycle_count, err) != 0) {
		heap_summary_free(summary);
		return -1;
	}
	if (sort_roots(summary) != 0)
		goto out_of_memory;
	return 0;
out_of_memory:
	heap_summary_free(summary);
	return hs_error_nomem(err, "summarising the heap");
}

void heap_summary_free(struct heap_summary *summary)
{
	free(summary->types);
	free(summary->unreachable);
	free(summary->roots);
	free(summary->shared);
	free(summary->cycles);
	site_groups_free(&summary->untyped_sites);
	site_breakdown_free(&summary->type_sites);
	memset(summary, 0, sizeof *summary);
}
