/* Roots that hold memory together (see root_sharing.h). */
#include "root_sharing.h"

#include <stdlib.h>
#include <string.h>

#include "common/array_grow.h"

/* The root ids that reach one shared node: at most ROOT_GROUP_NAMED, ascending, then `more`. */
struct root_set {
	uint32_t members[ROOT_GROUP_NAMED];
	uint32_t count;
	bool more;
};

struct sharing_work {
	const struct graph *graph;
	uint32_t *top;	  /* per node: the root or shared node whose dominator subtree holds it */
	uint32_t *shared; /* shared heap nodes, ascending */
	size_t shared_count;
	uint64_t *pairs; /* (source node << 32 | shared index): source's subtree points at it */
	size_t pair_count, pair_capacity;
	struct root_set *sets; /* per shared index */
};

/* The root or shared node heading v's branch of the dominator tree. Paths are filled in as they
 * are walked, so each node is visited a bounded number of times. */
static uint32_t branch_head(struct sharing_work *work, uint32_t v)
{
	const uint32_t *idom = work->graph->idom;
	uint32_t at = v;
	while (work->top[at] == GRAPH_NONE && idom[at] != work->graph->super_root)
		at = idom[at];
	uint32_t head = work->top[at] != GRAPH_NONE ? work->top[at] : at;
	for (uint32_t fill = v; work->top[fill] == GRAPH_NONE;) {
		work->top[fill] = head;
		if (fill == at)
			break;
		fill = idom[fill];
	}
	return head;
}

static size_t shared_index(const struct sharing_work *work, uint32_t node)
{
	size_t low = 0, high = work->shared_count;
	while (low < high) {
		size_t middle = (low + high) / 2;
		if (work->shared[middle] < node)
			low = middle + 1;
		else
			high = middle;
	}
	return low < work->shared_count && work->shared[low] == node ? low : SIZE_MAX;
}

static bool is_shared(const struct graph *graph, uint32_t node)
{
	return node < graph->heap_nodes && graph->idom[node] == graph->super_root;
}

/* Adds `id` to a set; true when it changed. */
static bool set_add(struct root_set *set, uint32_t id)
{
	if (set->more)
		return false;
	uint32_t k = 0;
	while (k < set->count && set->members[k] < id)
		k++;
	if (k < set->count && set->members[k] == id)
		return false;
	if (set->count == ROOT_GROUP_NAMED) {
		set->more = true;
		return true;
	}
	memmove(&set->members[k + 1], &set->members[k], (set->count - k) * sizeof set->members[0]);
	set->members[k] = id;
	set->count++;
	return true;
}

static bool set_union(struct root_set *into, const struct root_set *from)
{
	bool changed = false;
	for (uint32_t k = 0; k < from->count; k++)
		changed |= set_add(into, from->members[k]);
	if (from->more && !into->more) {
		into->more = true;
		changed = true;
	}
	return changed;
}

static int compare_u64(const void *left, const void *right)
{
	uint64_t a = *(const uint64_t *)left, b = *(const uint64_t *)right;
	return a < b ? -1 : a > b;
}

/* The pairs whose source is `node`: [*first, *end). */
static void pairs_from(const struct sharing_work *work, uint32_t node, size_t *first, size_t *end)
{
	uint64_t key = (uint64_t)node << 32;
	size_t low = 0, high = work->pair_count;
	while (low < high) {
		size_t middle = (low + high) / 2;
		if (work->pairs[middle] < key)
			low = middle + 1;
		else
			high = middle;
	}
	*first = low;
	while (low < work->pair_count && work->pairs[low] >> 32 == node)
		low++;
	*end = low;
}

static int find_pairs(struct sharing_work *work)
{
	const struct graph *graph = work->graph;
	for (uint32_t u = 0; u < graph->super_root; u++) {
		if (graph->idom[u] == GRAPH_NONE)
			continue;
		uint32_t head = GRAPH_NONE;
		for (uint64_t e = graph->starts[u]; e < graph->starts[u + 1]; e++) {
			uint32_t w = graph->targets[e];
			if (!is_shared(graph, w))
				continue;
			if (head == GRAPH_NONE)
				head = branch_head(work, u);
			if (head == w)
				continue;
			if (work->pair_count == work->pair_capacity) {
				void *grown = array_grow(work->pairs, &work->pair_capacity,
							 work->pair_count, sizeof *work->pairs, 1024);
				if (grown == NULL)
					return -1;
				work->pairs = grown;
			}
			work->pairs[work->pair_count++] = (uint64_t)head << 32 | shared_index(work, w);
		}
	}
	if (work->pair_count)
		qsort(work->pairs, work->pair_count, sizeof *work->pairs, compare_u64);
	size_t kept = 0;
	for (size_t i = 0; i < work->pair_count; i++)
		if (kept == 0 || work->pairs[kept - 1] != work->pairs[i])
			work->pairs[kept++] = work->pairs[i];
	work->pair_count = kept;
	return 0;
}

/* Each shared node's set of roots: those pointing into it, then, until nothing changes, those of
 * the shared nodes pointing into it. */
static int propagate(struct sharing_work *work, const uint32_t *root_of)
{
	const struct graph *graph = work->graph;
	size_t capacity = 0, depth = 0;
	uint32_t *pending = NULL; /* shared indices whose set changed */
	uint8_t *queued = calloc(work->shared_count + 1, 1);
	if (queued == NULL)
		return -1;
	for (size_t i = 0; i < work->pair_count; i++) {
		uint32_t source = (uint32_t)(work->pairs[i] >> 32);
		if (source < graph->heap_nodes)
			continue;
		size_t target = (uint32_t)work->pairs[i];
		set_add(&work->sets[target], root_of[source - graph->heap_nodes]);
	}
	for (size_t f = 0; f < work->shared_count; f++) {
		if (work->sets[f].count == 0)
			continue;
		void *grown = array_grow(pending, &capacity, depth, sizeof *pending, 1024);
		if (grown == NULL)
			goto fail;
		pending = grown;
		pending[depth++] = (uint32_t)f;
		queued[f] = 1;
	}
	while (depth > 0) {
		uint32_t from = pending[--depth];
		queued[from] = 0;
		size_t first, end;
		pairs_from(work, work->shared[from], &first, &end);
		for (size_t i = first; i < end; i++) {
			uint32_t to = (uint32_t)work->pairs[i];
			if (!set_union(&work->sets[to], &work->sets[from]) || queued[to])
				continue;
			void *grown = array_grow(pending, &capacity, depth, sizeof *pending, 1024);
			if (grown == NULL)
				goto fail;
			pending = grown;
			pending[depth++] = to;
			queued[to] = 1;
		}
	}
	free(pending);
	free(queued);
	return 0;
fail:
	free(pending);
	free(queued);
	return -1;
}

static int compare_sets(const struct root_set *a, const struct root_set *b)
{
	if (a->more != b->more)
		return a->more ? 1 : -1;
	if (a->count != b->count)
		return a->count < b->count ? -1 : 1;
	return memcmp(a->members, b->members, a->count * sizeof a->members[0]);
}

static int compare_set_indices(const void *left, const void *right, void *context)
{
	const struct root_set *sets = context;
	return compare_sets(&sets[*(const uint32_t *)left], &sets[*(const uint32_t *)right]);
}

static int compare_groups(const void *left, const void *right)
{
	const struct root_holding_group *a = left, *b = right;
	return a->bytes > b->bytes ? -1 : a->bytes < b->bytes;
}

/* The shared nodes grouped by their sets, groups of two or more roots kept. */
static int make_groups(struct sharing_work *work, struct root_sharing *sharing)
{
	uint32_t *order = malloc((work->shared_count + 1) * sizeof *order);
	if (order == NULL)
		return -1;
	for (size_t f = 0; f < work->shared_count; f++)
		order[f] = (uint32_t)f;
	if (work->shared_count)
		qsort_r(order, work->shared_count, sizeof *order, compare_set_indices, work->sets);
	size_t capacity = 0;
	for (size_t i = 0; i < work->shared_count; i++) {
		const struct root_set *set = &work->sets[order[i]];
		if (set->count + set->more < 2)
			continue;
		uint64_t bytes = work->graph->retained[work->shared[order[i]]];
		sharing->shared_bytes += bytes;
		if (i > 0 && sharing->group_count &&
		    compare_sets(set, &work->sets[order[i - 1]]) == 0) {
			sharing->groups[sharing->group_count - 1].bytes += bytes;
			continue;
		}
		void *grown = array_grow(sharing->groups, &capacity, sharing->group_count,
					 sizeof *sharing->groups, 64);
		if (grown == NULL) {
			free(order);
			return -1;
		}
		sharing->groups = grown;
		struct root_holding_group *group = &sharing->groups[sharing->group_count++];
		memset(group, 0, sizeof *group);
		memcpy(group->members, set->members, set->count * sizeof set->members[0]);
		group->member_count = set->count;
		group->more = set->more;
		group->bytes = bytes;
	}
	free(order);
	if (sharing->group_count)
		qsort(sharing->groups, sharing->group_count, sizeof *sharing->groups, compare_groups);
	return 0;
}

/* Pushes shared node f for a walk unless it was seen in this one. */
static int visit(uint32_t f, uint32_t *stamp, uint32_t mark, uint32_t **stack, size_t *capacity,
		 size_t *depth)
{
	if (stamp[f] == mark)
		return 0;
	stamp[f] = mark;
	void *grown = array_grow(*stack, capacity, *depth, sizeof **stack, 256);
	if (grown == NULL)
		return -1;
	*stack = grown;
	(*stack)[(*depth)++] = f;
	return 0;
}

/* Adds to *holds the shared memory of many roots (sets with `more`) that root `id` reaches: a
 * walk of the small graph from its roots. */
static int exact_holds(struct sharing_work *work, const uint32_t *root_of, uint32_t id,
		       uint32_t *stamp, uint32_t mark, uint64_t *holds)
{
	const struct graph *graph = work->graph;
	size_t capacity = 0, depth = 0, first, end;
	uint32_t *stack = NULL;
	int result = 0;
	for (size_t r = 0; r < graph->root_count && result == 0; r++) {
		if (root_of[r] != id)
			continue;
		pairs_from(work, (uint32_t)(graph->heap_nodes + r), &first, &end);
		for (size_t i = first; i < end && result == 0; i++)
			result = visit((uint32_t)work->pairs[i], stamp, mark, &stack, &capacity, &depth);
	}
	while (depth > 0 && result == 0) {
		uint32_t f = stack[--depth];
		if (work->sets[f].more)
			*holds += graph->retained[work->shared[f]];
		pairs_from(work, work->shared[f], &first, &end);
		for (size_t i = first; i < end && result == 0; i++)
			result = visit((uint32_t)work->pairs[i], stamp, mark, &stack, &capacity, &depth);
	}
	free(stack);
	return result;
}

static int compare_ids_by_holds(const void *left, const void *right, void *context)
{
	const uint64_t *holds = context;
	uint64_t a = holds[*(const uint32_t *)left], b = holds[*(const uint32_t *)right];
	return a > b ? -1 : a < b;
}

int root_sharing_find(const struct graph *graph, const uint32_t *root_of, uint32_t id_count,
		      size_t exact_count, struct root_sharing *sharing, struct hs_error *err)
{
	memset(sharing, 0, sizeof *sharing);
	struct sharing_work work = {.graph = graph};
	uint32_t *ids = NULL, *stamp = NULL;
	size_t shared_capacity = 0;
	int result = -1;
	sharing->holds = calloc(id_count + 1, sizeof *sharing->holds);
	sharing->retained = calloc(id_count + 1, sizeof *sharing->retained);
	sharing->holds_exact = malloc(id_count + 1);
	work.top = malloc(graph->node_count * sizeof *work.top);
	if (sharing->holds == NULL || sharing->retained == NULL || sharing->holds_exact == NULL ||
	    work.top == NULL)
		goto done;
	memset(sharing->holds_exact, 1, id_count + 1);
	for (size_t v = 0; v < graph->node_count; v++)
		work.top[v] = GRAPH_NONE;
	for (uint32_t v = 0; v < graph->heap_nodes; v++) {
		if (!is_shared(graph, v))
			continue;
		void *grown = array_grow(work.shared, &shared_capacity, work.shared_count,
					 sizeof *work.shared, 1024);
		if (grown == NULL)
			goto done;
		work.shared = grown;
		work.shared[work.shared_count++] = v;
	}
	work.sets = calloc(work.shared_count + 1, sizeof *work.sets);
	if (work.sets == NULL || find_pairs(&work) != 0 || propagate(&work, root_of) != 0 ||
	    make_groups(&work, sharing) != 0)
		goto done;
	/* holds: what each root retains, and the shared memory of the groups it is named in */
	for (size_t r = 0; r < graph->root_count; r++)
		sharing->retained[root_of[r]] += graph->retained[graph->heap_nodes + r];
	bool any_more = false;
	for (size_t f = 0; f < work.shared_count; f++) {
		const struct root_set *set = &work.sets[f];
		any_more |= set->more;
		if (set->count == 1 && !set->more)
			sharing->retained[set->members[0]] += graph->retained[work.shared[f]];
		for (uint32_t k = 0; k < set->count && !set->more && set->count > 1; k++)
			sharing->holds[set->members[k]] += graph->retained[work.shared[f]];
	}
	for (uint32_t id = 0; id < id_count; id++)
		sharing->holds[id] += sharing->retained[id];
	if (any_more) {
		/* the roots that hold the most get the groups of many roots counted too */
		memset(sharing->holds_exact, 0, id_count + 1);
		ids = malloc((id_count + 1) * sizeof *ids);
		stamp = calloc(work.shared_count + 1, sizeof *stamp);
		if (ids == NULL || stamp == NULL)
			goto done;
		for (uint32_t id = 0; id < id_count; id++)
			ids[id] = id;
		qsort_r(ids, id_count, sizeof *ids, compare_ids_by_holds, sharing->holds);
		for (size_t k = 0; k < exact_count && k < id_count; k++) {
			if (exact_holds(&work, root_of, ids[k], stamp, (uint32_t)k + 1,
					&sharing->holds[ids[k]]) != 0)
				goto done;
			sharing->holds_exact[ids[k]] = 1;
		}
	}
	result = 0;
done:
	free(work.top);
	free(work.shared);
	free(work.pairs);
	free(work.sets);
	free(ids);
	free(stamp);
	if (result != 0) {
		root_sharing_free(sharing);
		return hs_error_nomem(err, "finding what roots hold together");
	}
	return 0;
}

void root_sharing_free(struct root_sharing *sharing)
{
	free(sharing->holds);
	free(sharing->retained);
	free(sharing->holds_exact);
	free(sharing->groups);
	memset(sharing, 0, sizeof *sharing);
}
