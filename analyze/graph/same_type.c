/* The same-type dominance mark (see same_type.h): a node's key is its type's id, or for an
 * untyped block a number past the type ids for its size, and graph_mark_same_key_dominated does
 * the rest. */
#include "analyze/graph/same_type.h"

#include <stdbool.h>
#include <stdlib.h>

#include "common/hash_map.h"

static inline uint64_t size_hash(uint64_t size)
{
	return size * 0x9E3779B97F4A7C15ull >> 17;
}

static inline bool size_eq(uint64_t a, uint64_t b)
{
	return a == b;
}

/* the untyped blocks' sizes, each once, numbered in the order first met */
DEFINE_HASH_MAP(size_numbers, uint64_t, uint8_t, size_hash, size_eq)

struct type_keys {
	const struct heap *heap;
	const uint32_t *of; /* per allocation: 1 + its type's id, 0 when untyped */
	const uint8_t *only;
	struct size_numbers sizes;
	uint32_t names; /* type ids are 1 .. names; sizes come after */
};

static uint32_t type_key(void *context, uint32_t node)
{
	const struct type_keys *keys = context;
	if (keys->only && !keys->only[node])
		return 0;
	uint32_t id = keys->of ? keys->of[node] : 0;
	if (id)
		return id;
	const struct size_numbers_entry *found =
		size_numbers_search(&keys->sizes, keys->heap->allocations[node].size);
	return found ? keys->names + 1 + (uint32_t)(found - keys->sizes.entries) : 0;
}

/* The sizes of the untyped blocks counted, each once (a few distinct sizes among millions of
 * blocks: a table, not a sort of every block); false when out of memory. */
static bool collect_sizes(struct type_keys *keys, size_t nodes)
{
	for (size_t node = 0; node < nodes; node++) {
		if ((keys->only && !keys->only[node]) || (keys->of && keys->of[node]))
			continue;
		bool added;
		if (size_numbers_insert(&keys->sizes, keys->heap->allocations[node].size, &added) == NULL)
			return false;
	}
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
	size_numbers_free(&keys.sizes);
	return marks;
}
