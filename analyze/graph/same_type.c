/* The same-type dominance mark (see same_type.h): a node's key is its type's id, or for an
 * untyped block one past the type ids by its size, and graph_mark_same_key_dominated does the
 * rest. */
#include "analyze/graph/same_type.h"

#include <stdbool.h>
#include <stdlib.h>

struct type_keys {
	const struct heap *heap;
	const uint32_t *of; /* per allocation: 1 + its type's id, 0 when untyped */
	const uint8_t *only;
	uint64_t *sizes; /* the untyped blocks' sizes, sorted, each once */
	size_t size_count;
	uint32_t names; /* type ids are 1 .. names; sizes come after */
};

static int compare_sizes(const void *left, const void *right)
{
	uint64_t a = *(const uint64_t *)left, b = *(const uint64_t *)right;
	return (a > b) - (a < b);
}

static uint32_t type_key(void *context, uint32_t node)
{
	const struct type_keys *keys = context;
	if (keys->only && !keys->only[node])
		return 0;
	uint32_t id = keys->of ? keys->of[node] : 0;
	if (id)
		return id;
	uint64_t size = keys->heap->allocations[node].size;
	const uint64_t *found =
		bsearch(&size, keys->sizes, keys->size_count, sizeof *keys->sizes, compare_sizes);
	return found ? keys->names + 1 + (uint32_t)(found - keys->sizes) : 0;
}

/* The sizes of the untyped blocks counted, sorted, each once; false when out of memory. */
static bool collect_sizes(struct type_keys *keys, size_t nodes)
{
	keys->sizes = malloc((nodes ? nodes : 1) * sizeof *keys->sizes);
	if (keys->sizes == NULL)
		return false;
	size_t count = 0;
	for (size_t node = 0; node < nodes; node++)
		if (!(keys->only && !keys->only[node]) && !(keys->of && keys->of[node]))
			keys->sizes[count++] = keys->heap->allocations[node].size;
	if (count)
		qsort(keys->sizes, count, sizeof *keys->sizes, compare_sizes);
	size_t unique = 0;
	for (size_t i = 0; i < count; i++)
		if (unique == 0 || keys->sizes[unique - 1] != keys->sizes[i])
			keys->sizes[unique++] = keys->sizes[i];
	keys->size_count = unique;
	return true;
}

uint8_t *graph_mark_same_type_dominated(const struct graph *graph, const struct heap *heap,
					const struct type_names *types, const uint8_t *only)
{
	uint8_t *marks = malloc(graph->heap_nodes ? graph->heap_nodes : 1);
	struct type_keys keys = {.heap = heap, .of = types->of, .only = only,
				 .names = (uint32_t)types->names.count};
	if (marks == NULL || graph->idom == NULL || !collect_sizes(&keys, graph->heap_nodes) ||
	    graph_mark_same_key_dominated(graph, type_key, &keys, marks) != 0) {
		free(marks);
		marks = NULL;
	}
	free(keys.sizes);
	return marks;
}
