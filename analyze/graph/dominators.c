/* Dominators by the Semi-NCA algorithm (see dominators.h). Work arrays are indexed by depth-first
 * preorder number (1..count, 0 meaning "none"). Memory is what bounds the graphs this handles
 * (tens of millions of nodes), so the arrays are few and 32-bit: the preorder is kept in the
 * caller's `order`, and each node's DFS parent becomes its immediate dominator in place. */
#include "dominators.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/array_grow.h"

struct semi_nca {
	uint32_t *order;    /* preorder number - 1 -> node */
	uint32_t *number;   /* node -> preorder number, 0 if unreached: kept in the caller's idom */
	uint32_t *parent;   /* by number: DFS tree parent's number; then the immediate dominator */
	uint32_t *semi;	    /* by number: semidominator's number */
	uint32_t *ancestor; /* by number: forest link, 0 for a tree root */
	uint32_t *label;    /* by number: the number with the smallest semi on the compressed path */
	uint32_t *stack;    /* scratch for path compression, grown as deep as it goes */
	size_t stack_capacity;
	bool out_of_memory;
};

struct dfs_frame {
	uint32_t node;
	uint32_t next; /* its next edge to follow */
};

/* Numbers the nodes reachable from root in depth-first preorder, iteratively (a list of ten
 * million nodes is ten million deep). Returns the count, or 0 when out of memory. */
static uint32_t depth_first(const struct csr_graph *graph, uint32_t root, struct semi_nca *s)
{
	size_t capacity = 0, depth = 0;
	struct dfs_frame *frames = array_grow(NULL, &capacity, 0, sizeof *frames, 1024);
	if (frames == NULL)
		return 0;
	uint32_t count = 0;
	s->number[root] = ++count;
	s->order[0] = root;
	s->parent[count] = 0;
	frames[depth++] = (struct dfs_frame){root, graph->starts[root]};
	while (depth > 0) {
		struct dfs_frame *top = &frames[depth - 1];
		if (top->next == graph->starts[top->node + 1]) {
			depth--;
			continue;
		}
		uint32_t w = graph->targets[top->next++];
		if (s->number[w] != 0)
			continue;
		s->number[w] = ++count;
		s->order[count - 1] = w;
		s->parent[count] = s->number[top->node];
		if (depth == capacity) {
			void *grown = array_grow(frames, &capacity, depth, sizeof *frames, 1024);
			if (grown == NULL) {
				free(frames);
				return 0;
			}
			frames = grown;
		}
		frames[depth++] = (struct dfs_frame){w, graph->starts[w]};
	}
	free(frames);
	return count;
}

/* Path compression, iteratively: walk up to the last node whose ancestor is a tree root, then
 * update labels from the top down. */
static void compress(struct semi_nca *s, uint32_t v)
{
	size_t depth = 0;
	while (s->ancestor[s->ancestor[v]] != 0) {
		if (depth == s->stack_capacity) {
			void *grown = array_grow(s->stack, &s->stack_capacity, depth, sizeof *s->stack,
						 1024);
			if (grown == NULL) {
				s->out_of_memory = true;
				return;
			}
			s->stack = grown;
		}
		s->stack[depth++] = v;
		v = s->ancestor[v];
	}
	while (depth > 0) {
		uint32_t x = s->stack[--depth];
		uint32_t a = s->ancestor[x];
		if (s->semi[s->label[a]] < s->semi[s->label[x]])
			s->label[x] = s->label[a];
		s->ancestor[x] = s->ancestor[a];
	}
}

static uint32_t eval(struct semi_nca *s, uint32_t v)
{
	if (s->ancestor[v] == 0)
		return v;
	compress(s, v);
	return s->label[v];
}

int dominators_compute(const struct csr_graph *graph, uint32_t root, uint32_t *idom,
		       uint32_t *order, size_t *order_count)
{
	size_t n = graph->node_count;
	uint32_t edges = graph->starts[n];
	if (n >= UINT32_MAX - 2 || edges == UINT32_MAX)
		return -1;
	struct semi_nca s = {.order = order, .number = idom};
	memset(idom, 0, n * sizeof *idom);
	uint32_t **arrays[] = {&s.parent, &s.semi, &s.ancestor, &s.label};
	bool failed = false;
	for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
		failed |= (*arrays[i] = calloc(n + 2, sizeof(uint32_t))) == NULL;
	if (order == NULL)
		failed |= (s.order = malloc((n + 1) * sizeof *s.order)) == NULL;
	/* predecessors, by node: the reverse graph in compressed rows */
	uint32_t *pred_starts = calloc(n + 2, sizeof *pred_starts);
	uint32_t *preds = malloc(((size_t)edges + 1) * sizeof *preds);
	int result = -1;
	if (failed || pred_starts == NULL || preds == NULL)
		goto done;
	for (uint32_t e = 0; e < edges; e++)
		pred_starts[graph->targets[e] + 2]++;
	for (size_t v = 0; v < n; v++)
		pred_starts[v + 2] += pred_starts[v + 1];
	for (size_t v = 0; v < n; v++)
		for (uint32_t e = graph->starts[v]; e < graph->starts[v + 1]; e++)
			preds[pred_starts[graph->targets[e] + 1]++] = (uint32_t)v;

	uint32_t count = depth_first(graph, root, &s);
	if (count == 0)
		goto done;
	for (uint32_t i = 1; i <= count; i++) {
		s.semi[i] = i;
		s.label[i] = i;
	}
	/* semidominators, in reverse preorder */
	for (uint32_t i = count; i >= 2; i--) {
		uint32_t w = s.order[i - 1];
		for (uint32_t e = pred_starts[w]; e < pred_starts[w + 1]; e++) {
			uint32_t v = s.number[preds[e]];
			if (v == 0)
				continue; /* a predecessor the root does not reach */
			uint32_t u = eval(&s, v);
			if (s.semi[u] < s.semi[i])
				s.semi[i] = s.semi[u];
		}
		s.ancestor[i] = s.parent[i]; /* link */
	}
	if (s.out_of_memory)
		goto done;
	/* immediate dominators, in preorder: the nearest common ancestor in the dominator tree
	   of the DFS parent and the semidominator is found by walking up from the parent */
	for (uint32_t i = 2; i <= count; i++) {
		uint32_t d = s.parent[i];
		while (d > s.semi[i])
			d = s.parent[d];
		s.parent[i] = d;
	}
	/* the numbers are done with: idom takes their place */
	for (size_t v = 0; v < n; v++)
		idom[v] = DOMINATOR_NONE;
	for (uint32_t i = 2; i <= count; i++)
		idom[s.order[i - 1]] = s.order[s.parent[i] - 1];
	if (order_count)
		*order_count = count;
	result = 0;
done:
	for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
		free(*arrays[i]);
	free(s.stack);
	if (order == NULL)
		free(s.order);
	free(pred_starts);
	free(preds);
	return result;
}
