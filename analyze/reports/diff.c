/* Comparing snapshots of one process (see diff.h): the allocations of both heaps, sorted by
 * address, are matched in one merge; everything else is sums over the two lists. */
#include "diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/graph/same_type.h"
#include "common/array_grow.h"

#define NO_MATCH UINT32_MAX
#define CONTAINERS_MAX 10
#define CONTAINER_MIN_GROWTH 10 /* items: smaller growth is the ordinary life of a program */

bool diff_same_process(const struct analysis *before, const struct analysis *after, char *why,
		       size_t why_size)
{
	const struct snapshot_info *a = snapshot_info(before->snapshot);
	const struct snapshot_info *b = snapshot_info(after->snapshot);
	if (a->pid != b->pid) {
		snprintf(why, why_size, "they are of different processes (pid %d and pid %d)", a->pid,
			 b->pid);
		return false;
	}
	if (a->boot_id[0] && b->boot_id[0] && strcmp(a->boot_id, b->boot_id) != 0) {
		snprintf(why, why_size, "they were taken in different boots (pid %d was reused)",
			 a->pid);
		return false;
	}
	if (a->process_start_ticks && b->process_start_ticks &&
	    a->process_start_ticks != b->process_start_ticks) {
		snprintf(why, why_size,
			 "pid %d is two different processes (started at clock tick %llu and %llu)",
			 a->pid, (unsigned long long)a->process_start_ticks,
			 (unsigned long long)b->process_start_ticks);
		return false;
	}
	if (strcmp(a->exe, b->exe) != 0) {
		snprintf(why, why_size, "pid %d runs %s in one and %s in the other", a->pid, a->exe,
			 b->exe);
		return false;
	}
	return true;
}

static bool is_part(const struct analysis *analysis, size_t index)
{
	return analysis->types.owned && analysis->types.owned[index];
}

static bool same_type(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool reachable_in(const struct analysis *analysis, size_t index)
{
	return analysis->has_graph &&
	       graph_reachable(&analysis->graph, graph_allocation_node(&analysis->graph, index));
}

/* For each allocation of `b`, the index of the same allocation in `a` (NO_MATCH when new): both
 * live, at one address, with one size and type, and both an object or both a part of one; and,
 * when both graphs tell, not garbage in `a` and reachable in `b`: garbage (Python's waiting for
 * the collector, C's leaked) is never reached again, so a reachable object at its address is a
 * new one the allocator put where the garbage was freed. */
static uint32_t *match_allocations(const struct analysis *a, const struct analysis *b,
				   bool none)
{
	const struct heap *heap_a = &a->heap, *heap_b = &b->heap;
	uint32_t *match = malloc((heap_b->count + 1) * sizeof *match);
	if (match == NULL)
		return NULL;
	size_t i = 0;
	for (size_t j = 0; j < heap_b->count; j++) {
		const struct allocation *y = &heap_b->allocations[j];
		match[j] = NO_MATCH;
		if (none)
			continue;
		while (i < heap_a->count && heap_a->allocations[i].address < y->address)
			i++;
		if (i == heap_a->count || y->state != ALLOCATION_LIVE)
			continue;
		const struct allocation *x = &heap_a->allocations[i];
		if (x->address == y->address && x->state == ALLOCATION_LIVE && x->size == y->size &&
		    is_part(a, i) == is_part(b, j) &&
		    same_type(analysis_type(a, i), analysis_type(b, j)) &&
		    !(a->has_graph && b->has_graph && !reachable_in(a, i) && reachable_in(b, j)))
			match[j] = (uint32_t)i;
	}
	return match;
}

/* The group index of a type, through a small cache keyed by the interned name's pointer (each
 * analysis interns its names: one pointer per distinct name) so that millions of lookups rarely
 * hash a string. */
struct group_cache {
	struct type_grouper grouper;
	struct {
		const char *type;
		uint64_t size;
		size_t group;
		bool valid;
	} slots[4096];
};

static size_t group_of(struct group_cache *cache, const char *type, uint64_t size)
{
	if (type)
		size = 0;
	uint64_t key = (uint64_t)(uintptr_t)type ^ size * 0x9E3779B97F4A7C15ull;
	size_t slot = (size_t)((key * 0xC2B2AE3D27D4EB4Full) >> 52);
	if (cache->slots[slot].valid && cache->slots[slot].type == type &&
	    cache->slots[slot].size == size)
		return cache->slots[slot].group;
	struct type_group *group = type_grouper_find(&cache->grouper, type, size);
	if (group == NULL)
		return SIZE_MAX;
	size_t index = (size_t)(group - cache->grouper.entries);
	cache->slots[slot].type = type;
	cache->slots[slot].size = size;
	cache->slots[slot].group = index;
	cache->slots[slot].valid = true;
	return index;
}

/* The diff_type of group `index`, growing the array to hold it. */
static struct diff_type *diff_type_at(struct heap_diff *diff, size_t *capacity, size_t index,
				      const struct group_cache *cache)
{
	if (index >= *capacity) {
		size_t old_capacity = *capacity;
		struct diff_type *grown = array_grow(diff->types, capacity, index, sizeof *grown, 256);
		if (grown == NULL)
			return NULL;
		memset(grown + old_capacity, 0, (*capacity - old_capacity) * sizeof *grown);
		diff->types = grown;
	}
	if (index >= diff->type_count)
		diff->type_count = index + 1;
	struct diff_type *type = &diff->types[index];
	if (type->type == NULL) {
		type->type = cache->grouper.entries[index].type;
		type->size = cache->grouper.entries[index].size;
	}
	return type;
}

static int compare_growth(const void *left, const void *right)
{
	const struct diff_type *a = left, *b = right;
	int64_t da = diff_delta_bytes(a), db = diff_delta_bytes(b);
	if (da != db)
		return da > db ? -1 : 1;
	if (a->new_bytes != b->new_bytes)
		return a->new_bytes > b->new_bytes ? -1 : 1;
	if (a->type && b->type)
		return strcmp(a->type, b->type);
	return a->type ? -1 : b->type ? 1 : (a->size > b->size) - (a->size < b->size);
}

static int compare_containers(const void *left, const void *right)
{
	const struct diff_container *a = left, *b = right;
	uint64_t ga = a->length_after - a->length_before, gb = b->length_after - b->length_before;
	if (ga != gb)
		return ga > gb ? -1 : 1;
	return (a->allocation > b->allocation) - (a->allocation < b->allocation);
}

static int compare_bytes(const void *left, const void *right)
{
	const struct type_group *a = left, *b = right;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return a->count > b->count ? -1 : a->count < b->count;
}

/* Keeps the most grown containers: a surviving list, dict or set of AFTER, at `index`, whose
 * match in BEFORE is `old`. */
static void note_container(struct heap_diff *diff, size_t index, size_t old)
{
	const struct analysis *before = diff->before, *after = diff->after;
	if (!runtime_has_objects(after) || before->runtime.ops != after->runtime.ops)
		return;
	uint64_t length_after, length_before;
	if (!after->runtime.ops->container_length(after, index, &length_after) ||
	    length_after < CONTAINER_MIN_GROWTH ||
	    !before->runtime.ops->container_length(before, old, &length_before) ||
	    length_after < length_before + CONTAINER_MIN_GROWTH)
		return;
	struct diff_container entry = {index, analysis_type(after, index), length_before,
				       length_after};
	if (diff->container_count < CONTAINERS_MAX) {
		diff->containers[diff->container_count++] = entry;
	} else {
		struct diff_container *least = &diff->containers[CONTAINERS_MAX - 1];
		if (compare_containers(&entry, least) >= 0)
			return;
		*least = entry;
	}
	qsort(diff->containers, diff->container_count, sizeof *diff->containers,
	      compare_containers);
}

/* What heap_diff_build works with beside the diff it fills, freed when it ends. */
struct diff_build {
	struct heap_diff *diff;
	const struct analysis *before, *target, *after; /* target: NULL with two snapshots */
	bool by_type_only;
	struct group_cache *cache;
	size_t type_capacity;	  /* of diff->types */
	struct type_grouper lost; /* the new unreachable allocations by type */
	/* match_allocations': AFTER's in BEFORE; with three, TARGET's in BASELINE and FINAL's in
	   TARGET */
	uint32_t *after_match, *target_match, *final_match;
	uint8_t *seen_before; /* per allocation of BEFORE: still there in AFTER */
};

/* The arrays the diff and its build fill; -1 when out of memory. */
static int diff_build_start(struct diff_build *build)
{
	struct heap_diff *diff = build->diff;
	size_t after_count = build->after->heap.count;
	build->cache = calloc(1, sizeof *build->cache);
	diff->is_new = calloc(after_count + 1, 1);
	diff->is_new_unreachable = calloc(after_count + 1, 1);
	diff->containers = calloc(CONTAINERS_MAX, sizeof *diff->containers);
	build->seen_before = calloc(build->before->heap.count + 1, 1);
	build->after_match = match_allocations(build->before, build->after, build->by_type_only);
	if (!build->cache || !diff->is_new || !diff->is_new_unreachable || !diff->containers ||
	    !build->seen_before || !build->after_match)
		return -1;
	if (build->target == NULL)
		return 0;
	/* new in TARGET (against BASELINE), then followed into FINAL */
	build->target_match = match_allocations(build->before, build->target, build->by_type_only);
	build->final_match = match_allocations(build->target, build->after, build->by_type_only);
	return build->target_match && build->final_match ? 0 : -1;
}

static void diff_build_free(struct diff_build *build)
{
	free(build->seen_before);
	free(build->after_match);
	free(build->target_match);
	free(build->final_match);
	type_grouper_free(&build->lost);
	if (build->cache)
		type_grouper_free(&build->cache->grouper);
	free(build->cache);
}

/* The diff_type of the group of (type, size); NULL when out of memory. */
static struct diff_type *type_of_group(struct diff_build *build, const char *type, uint64_t size)
{
	size_t group = group_of(build->cache, type, size);
	return group == SIZE_MAX ? NULL
				 : diff_type_at(build->diff, &build->type_capacity, group, build->cache);
}

/* Three snapshots: what TARGET has that BASELINE has not (the burst), by type. */
static int count_burst(struct diff_build *build)
{
	const struct analysis *target = build->target;
	for (size_t j = 0; j < target->heap.count; j++) {
		if (target->heap.allocations[j].state != ALLOCATION_LIVE ||
		    build->target_match[j] != NO_MATCH)
			continue;
		struct diff_type *type = type_of_group(build, analysis_type(target, j),
						       target->heap.allocations[j].size);
		if (type == NULL)
			return -1;
		type->burst_count += !is_part(target, j);
		type->burst_bytes += target->heap.allocations[j].size;
	}
	return 0;
}

/* Which objects of AFTER are new (three snapshots: left behind by TARGET), and which of them
 * another new one of their type retains. First: what a new object retains depends on it. */
static int mark_new(struct diff_build *build)
{
	struct heap_diff *diff = build->diff;
	const struct analysis *after = build->after;
	for (size_t j = 0; j < after->heap.count; j++) {
		if (after->heap.allocations[j].state != ALLOCATION_LIVE)
			continue;
		uint32_t old = build->after_match[j];
		diff->is_new[j] = build->by_type_only ? 1
				  : build->target     ? build->final_match[j] != NO_MATCH &&
							build->target_match[build->final_match[j]] ==
							    NO_MATCH
						      : old == NO_MATCH;
	}
	if (after->graph.idom &&
	    (diff->new_same_type_dominated = graph_mark_same_type_dominated(
		 &after->graph, &after->heap, &after->types, diff->is_new)) == NULL)
		return -1;
	return 0;
}

/* A new allocation of AFTER, `j`, counted in its type: what it retains (not what one new object
 * of the type retains of another: the head of a new list retains its tail), and its site. */
static int count_new(struct diff_build *build, struct diff_type *type, size_t j, bool part)
{
	struct heap_diff *diff = build->diff;
	const struct analysis *after = build->after;
	const struct graph *graph = &after->graph;
	const struct allocation *allocation = &after->heap.allocations[j];
	uint32_t node = graph_allocation_node(graph, j);
	bool reachable = graph_reachable(graph, node);
	type->new_count += !part;
	type->new_bytes += allocation->size;
	if (reachable && diff->new_same_type_dominated && !diff->new_same_type_dominated[j])
		type->new_retained += graph->retained[node];
	type->new_unreachable += !reachable && !part;
	uint32_t site = allocation_site(&after->sites, j);
	if (type->type == NULL && site &&
	    site_groups_add(&diff->new_untyped_sites, site, allocation->size, part) != 0)
		return -1;
	if (allocation_site_counted(after, j) &&
	    site_breakdown_add(&diff->new_type_sites, (uint64_t)(type - diff->types), site,
			       allocation->size, part) != 0)
		return -1;
	return 0;
}

/* An allocation of AFTER that became unreachable (new garbage; C: a new leak): by type, and by
 * the class its runtime's collector sorts it in. */
static int count_new_unreachable(struct diff_build *build, size_t j, const char *name, bool part)
{
	struct heap_diff *diff = build->diff;
	const struct allocation *allocation = &build->after->heap.allocations[j];
	diff->is_new_unreachable[j] = 1;
	struct type_group *lost_group = type_grouper_find(&build->lost, name, allocation->size);
	if (lost_group == NULL)
		return -1;
	lost_group->count += !part;
	lost_group->bytes += allocation->size;
	diff->unreachable_objects += !part;
	diff->unreachable_bytes += allocation->size;
	garbage_counts_add(&diff->garbage, build->after, j, allocation->size);
	return 0;
}

/* Each live allocation of AFTER in its type's counts, and as new, a grown container, or newly
 * unreachable. */
static int count_after(struct diff_build *build)
{
	struct heap_diff *diff = build->diff;
	const struct analysis *before = build->before, *after = build->after;
	for (size_t j = 0; j < after->heap.count; j++) {
		const struct allocation *allocation = &after->heap.allocations[j];
		if (allocation->state != ALLOCATION_LIVE)
			continue;
		const char *name = analysis_type(after, j);
		struct diff_type *type = type_of_group(build, name, allocation->size);
		if (type == NULL)
			return -1;
		type->type = name; /* AFTER's interned name: what its path index compares */
		bool part = is_part(after, j);
		type->count_after += !part;
		type->bytes_after += allocation->size;
		diff->objects_after += !part;
		diff->bytes_after += allocation->size;
		uint32_t old = build->after_match[j];
		if (old != NO_MATCH)
			build->seen_before[old] = 1;
		bool is_new = diff->is_new[j];
		if (is_new && count_new(build, type, j, part) != 0)
			return -1;
		if (!is_new && old != NO_MATCH && !build->target && !part)
			note_container(diff, j, old);
		/* newly unreachable: new, or reachable before (BEFORE's graph tells) */
		bool was_unreachable = old != NO_MATCH && before->has_graph &&
				       !reachable_in(before, old);
		bool reachable = graph_reachable(&after->graph, graph_allocation_node(&after->graph, j));
		if (!reachable && (is_new || (!build->target && !was_unreachable)) &&
		    count_new_unreachable(build, j, name, part) != 0)
			return -1;
	}
	return 0;
}

/* Each live allocation of BEFORE in its type's counts, and as freed when AFTER has it not. */
static int count_before(struct diff_build *build)
{
	struct heap_diff *diff = build->diff;
	const struct analysis *before = build->before;
	for (size_t i = 0; i < before->heap.count; i++) {
		const struct allocation *allocation = &before->heap.allocations[i];
		if (allocation->state != ALLOCATION_LIVE)
			continue;
		struct diff_type *type = type_of_group(build, analysis_type(before, i), allocation->size);
		if (type == NULL)
			return -1;
		bool part = is_part(before, i);
		type->count_before += !part;
		type->bytes_before += allocation->size;
		diff->objects_before += !part;
		diff->bytes_before += allocation->size;
		if (!build->seen_before[i]) {
			type->freed_count += !part;
			type->freed_bytes += allocation->size;
		}
	}
	return 0;
}

/* The lists in their order, and the cycles among the new unreachable allocations. */
static int diff_build_finish(struct diff_build *build, struct hs_error *err)
{
	struct heap_diff *diff = build->diff;
	const struct analysis *after = build->after;
	/* (the types' sites by their number, before they are sorted) */
	if (site_breakdown_finish(&diff->new_type_sites, &after->sites, after->symbols) != 0)
		return hs_error_nomem(err, "comparing the snapshots");
	for (size_t i = 0; i < diff->type_count; i++)
		diff->types[i].new_sites = site_breakdown_of(&diff->new_type_sites, i);
	if (diff->type_count)
		qsort(diff->types, diff->type_count, sizeof *diff->types, compare_growth);
	site_groups_finish(&diff->new_untyped_sites, &after->sites, after->symbols);
	diff->unreachable_count = build->lost.count;
	diff->unreachable = type_grouper_steal(&build->lost);
	if (diff->unreachable_count)
		qsort(diff->unreachable, diff->unreachable_count, sizeof *diff->unreachable,
		      compare_bytes);
	return cycles_find(&after->graph, &after->heap, &after->types, diff->is_new_unreachable,
			   &diff->cycles, &diff->cycle_count, err);
}

int heap_diff_build(const struct analysis *before, const struct analysis *target,
		    const struct analysis *after, bool by_type_only, struct heap_diff *diff,
		    struct hs_error *err)
{
	memset(diff, 0, sizeof *diff);
	garbage_counts_init(&diff->garbage, after);
	diff->by_type_only = by_type_only;
	diff->before = before;
	diff->after = after;
	diff->three = target != NULL;
	struct diff_build build = {
		.diff = diff, .before = before, .target = target, .after = after,
		.by_type_only = by_type_only};
	int result;
	if (!after->has_graph)
		result = hs_error_set_code(err, HS_ERR_INVALID,
					   "the later snapshot's object graph is needed");
	else if (diff_build_start(&build) != 0 || (target && count_burst(&build) != 0) ||
		 mark_new(&build) != 0 || count_after(&build) != 0 || count_before(&build) != 0)
		result = hs_error_nomem(err, "comparing the snapshots");
	else
		result = diff_build_finish(&build, err);
	diff_build_free(&build);
	if (result != 0)
		heap_diff_free(diff);
	return result;
}

void heap_diff_free(struct heap_diff *diff)
{
	free(diff->is_new);
	free(diff->new_same_type_dominated);
	free(diff->is_new_unreachable);
	free(diff->types);
	free(diff->containers);
	free(diff->unreachable);
	free(diff->cycles);
	site_groups_free(&diff->new_untyped_sites);
	site_breakdown_free(&diff->new_type_sites);
	memset(diff, 0, sizeof *diff);
}
