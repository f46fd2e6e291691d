/* Cycles among unreachable allocations (see cycles.h): Tarjan's strongly connected components,
 * iteratively, over the unreachable nodes only; then a breadth-first search inside each component
 * for the shortest way back to its first object. Its arrays are as long as the unreachable nodes
 * are many (a node's slot in them is found by a binary search), not as the graph is large. */
#include "cycles.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/graph/paths.h"
#include "common/array_grow.h"

#define UNVISITED UINT32_MAX

struct finder {
	const struct graph *graph;
	const struct heap *heap; /* the one the graph was built over */
	const struct type_names *types;
	uint32_t *nodes; /* the unreachable live heap nodes, in order: slot -> node */
	size_t node_count;
	/* by slot */
	uint32_t *order, *low, *component;
	uint64_t *edge_at; /* for a node on the call stack: the next edge to look at */
	uint32_t *bfs_from; /* in the breadth-first search: the node it was reached from */
	uint64_t *bfs_edge; /* ... and by which edge */
	bool *on_stack;
	uint32_t *stack; /* Tarjan's stack of nodes */
	uint32_t *calls; /* the depth-first search's call stack, of nodes */
	struct cycle_shape *shapes;
	size_t shape_count, shape_capacity;
};

static bool unreachable(const struct graph *graph, uint32_t node)
{
	/* (reachability first: a small array, where the allocations are 24 bytes each) */
	return node < graph->heap_nodes && !graph_reachable(graph, node) &&
	       graph->heap->allocations[node].state == ALLOCATION_LIVE;
}

/* The slot of an unreachable node, UNVISITED for any other. */
static uint32_t slot_of(const struct finder *finder, uint32_t node)
{
	size_t low = 0, high = finder->node_count;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		if (finder->nodes[mid] < node)
			low = mid + 1;
		else
			high = mid;
	}
	return low < finder->node_count && finder->nodes[low] == node ? (uint32_t)low : UNVISITED;
}

static bool is_part(const struct type_names *types, uint32_t node)
{
	return types->owned && types->owned[node];
}

static int add_shape(struct finder *finder, const char *text, uint64_t objects, uint64_t bytes)
{
	for (size_t i = 0; i < finder->shape_count; i++)
		if (strcmp(finder->shapes[i].text, text) == 0) {
			finder->shapes[i].count++;
			finder->shapes[i].objects += objects;
			finder->shapes[i].bytes += bytes;
			return 0;
		}
	void *grown = array_grow(finder->shapes, &finder->shape_capacity, finder->shape_count,
				 sizeof *finder->shapes, 16);
	if (grown == NULL)
		return -1;
	finder->shapes = grown;
	struct cycle_shape *shape = &finder->shapes[finder->shape_count++];
	memset(shape, 0, sizeof *shape);
	snprintf(shape->text, sizeof shape->text, "%s", text);
	shape->count = 1;
	shape->objects = objects;
	shape->bytes = bytes;
	char masked[512];
	path_signature_text(text, masked, sizeof masked);
	uint64_t hash = hash_bytes(masked, 0x6379636c65ull);
	snprintf(shape->signature, sizeof shape->signature, "%08x", (unsigned)(hash ^ hash >> 32));
	return 0;
}

/* One component (members[0..count)): its shape, from the member with the first type name. */
static int describe(struct finder *finder, const uint32_t *members, size_t count)
{
	const struct type_names *types = finder->types;
	const struct graph *graph = finder->graph;
	uint32_t first = members[0];
	uint64_t objects = 0, bytes = 0;
	for (size_t i = 0; i < count; i++) {
		uint32_t v = members[i];
		objects += !is_part(types, v);
		bytes += graph_node_size(graph, v);
		const char *a = types_name(types, v), *b = types_name(types, first);
		if (!is_part(types, v) && a &&
		    (is_part(types, first) || b == NULL || strcmp(a, b) < 0 ||
		     (strcmp(a, b) == 0 && v < first)))
			first = v;
	}
	/* breadth-first inside the component, from first back to it */
	uint32_t component = finder->component[slot_of(finder, first)];
	uint32_t *queue = malloc((count + 1) * sizeof *queue);
	if (queue == NULL)
		return -1;
	for (size_t i = 0; i < count; i++)
		finder->bfs_from[slot_of(finder, members[i])] = UNVISITED;
	size_t head = 0, tail = 0;
	queue[tail++] = first;
	uint64_t back_edge = UINT64_MAX;
	uint32_t back_from = UNVISITED;
	while (head < tail && back_edge == UINT64_MAX) {
		uint32_t v = queue[head++];
		for (uint64_t e = graph->starts[v]; e < graph->starts[v + 1]; e++) {
			uint32_t w = graph->targets[e], slot = slot_of(finder, w);
			if (slot == UNVISITED || finder->component[slot] != component)
				continue;
			if (w == first) {
				back_edge = e;
				back_from = v;
				break;
			}
			if (finder->bfs_from[slot] != UNVISITED)
				continue;
			finder->bfs_from[slot] = v;
			finder->bfs_edge[slot] = e;
			queue[tail++] = w;
		}
	}
	free(queue);
	if (back_edge == UINT64_MAX)
		return 0;
	/* the path first -> ... -> back_from -> first, collected backwards */
	uint32_t hops[16];
	uint64_t hop_edges[16];
	size_t hop_count = 0;
	hops[hop_count] = back_from;
	hop_edges[hop_count++] = back_edge;
	for (uint32_t v = back_from; v != first && hop_count < 16;
	     v = finder->bfs_from[slot_of(finder, v)]) {
		uint32_t slot = slot_of(finder, v);
		hops[hop_count] = finder->bfs_from[slot];
		hop_edges[hop_count++] = finder->bfs_edge[slot];
	}
	char text[512] = "", step[160];
	size_t used = 0;
	for (size_t k = hop_count; k-- > 0;) {
		path_step_text(graph, finder->heap, types, hops[k], graph->offsets[hop_edges[k]], step,
			       sizeof step);
		used += (size_t)snprintf(text + used, used < sizeof text ? sizeof text - used : 0,
					 "%s -> ", step);
	}
	char last[112];
	const char *type = types_name(types, first);
	if (type)
		snprintf(last, sizeof last, "%s", type);
	else
		snprintf(last, sizeof last, "size %llu",
			 (unsigned long long)graph_node_size(graph, first));
	if (used < sizeof text)
		snprintf(text + used, sizeof text - used, "%s", last);
	return add_shape(finder, text, objects, bytes);
}

static int compare_shapes(const void *left, const void *right)
{
	const struct cycle_shape *a = left, *b = right;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return strcmp(a->text, b->text);
}

int cycles_find(const struct graph *graph, const struct heap *heap, const struct type_names *types,
		const uint8_t *only, struct cycle_shape **shapes, size_t *count,
		struct hs_error *err)
{
	*shapes = NULL;
	*count = 0;
	struct finder finder = {.graph = graph, .heap = heap, .types = types};
	size_t n = 0;
	for (uint32_t v = 0; v < graph->heap_nodes; v++)
		n += unreachable(graph, v);
	finder.nodes = malloc((n + 1) * sizeof *finder.nodes);
	finder.order = malloc((n + 1) * sizeof *finder.order);
	finder.low = malloc((n + 1) * sizeof *finder.low);
	finder.stack = malloc((n + 1) * sizeof *finder.stack);
	finder.component = malloc((n + 1) * sizeof *finder.component);
	finder.calls = malloc((n + 1) * sizeof *finder.calls);
	finder.bfs_from = malloc((n + 1) * sizeof *finder.bfs_from);
	finder.bfs_edge = malloc((n + 1) * sizeof *finder.bfs_edge);
	finder.edge_at = malloc((n + 1) * sizeof *finder.edge_at);
	finder.on_stack = calloc(n + 1, sizeof *finder.on_stack);
	int result = -1;
	if (!finder.nodes || !finder.order || !finder.low || !finder.stack || !finder.component ||
	    !finder.calls || !finder.edge_at || !finder.on_stack || !finder.bfs_from ||
	    !finder.bfs_edge)
		goto done;
	for (uint32_t v = 0; v < graph->heap_nodes; v++)
		if (unreachable(graph, v))
			finder.nodes[finder.node_count++] = v;
	for (size_t k = 0; k < n; k++)
		finder.order[k] = finder.component[k] = UNVISITED;
	uint32_t counter = 0, components = 0;
	size_t stack_size = 0;
	for (size_t root_slot = 0; root_slot < n; root_slot++) {
		if (finder.order[root_slot] != UNVISITED)
			continue;
		uint32_t root = finder.nodes[root_slot];
		/* iterative Tarjan: calls[] is the DFS call stack */
		size_t depth = 0;
		finder.calls[depth++] = root;
		finder.order[root_slot] = finder.low[root_slot] = counter++;
		finder.edge_at[root_slot] = graph->starts[root];
		finder.stack[stack_size++] = root;
		finder.on_stack[root_slot] = true;
		while (depth > 0) {
			uint32_t v = finder.calls[depth - 1], vs = slot_of(&finder, v);
			if (finder.edge_at[vs] < graph->starts[v + 1]) {
				uint32_t w = graph->targets[finder.edge_at[vs]++];
				uint32_t ws = slot_of(&finder, w);
				if (ws == UNVISITED)
					continue; /* reachable, or not a heap node */
				if (finder.order[ws] == UNVISITED) {
					finder.order[ws] = finder.low[ws] = counter++;
					finder.edge_at[ws] = graph->starts[w];
					finder.stack[stack_size++] = w;
					finder.on_stack[ws] = true;
					finder.calls[depth++] = w;
				} else if (finder.on_stack[ws] && finder.order[ws] < finder.low[vs]) {
					finder.low[vs] = finder.order[ws];
				}
				continue;
			}
			depth--;
			if (depth > 0) {
				uint32_t parent = slot_of(&finder, finder.calls[depth - 1]);
				if (finder.low[vs] < finder.low[parent])
					finder.low[parent] = finder.low[vs];
			}
			if (finder.low[vs] != finder.order[vs])
				continue;
			/* v roots a component: pop it */
			size_t start = stack_size;
			do {
				start--;
				uint32_t member = slot_of(&finder, finder.stack[start]);
				finder.on_stack[member] = false;
				finder.component[member] = components;
			} while (finder.stack[start] != v);
			components++;
			size_t members = stack_size - start;
			stack_size = start;
			bool cyclic = members > 1;
			for (uint64_t e = graph->starts[v]; !cyclic && e < graph->starts[v + 1]; e++)
				cyclic = graph->targets[e] == v;
			bool wanted = only == NULL;
			for (size_t k = start; !wanted && k < start + members; k++)
				wanted = only[finder.stack[k]] != 0;
			cyclic = cyclic && wanted;
			if (cyclic) {
				int described = describe(&finder, finder.stack + start, members);
				if (described != 0)
					goto done;
			}
		}
	}
	if (finder.shape_count)
		qsort(finder.shapes, finder.shape_count, sizeof *finder.shapes, compare_shapes);
	*shapes = finder.shapes;
	*count = finder.shape_count;
	finder.shapes = NULL;
	result = 0;
done:
	free(finder.nodes);
	free(finder.order);
	free(finder.low);
	free(finder.stack);
	free(finder.component);
	free(finder.calls);
	free(finder.bfs_from);
	free(finder.bfs_edge);
	free(finder.edge_at);
	free(finder.on_stack);
	free(finder.shapes);
	if (result != 0)
		return hs_error_nomem(err, "finding cycles");
	return 0;
}
