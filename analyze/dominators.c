/* Lengauer-Tarjan dominators (see dominators.h). Work arrays are indexed by depth-first preorder
 * number (1..count, 0 meaning "none"), as in the paper. */
#include "dominators.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct lt_state {
	uint32_t *vertex;   /* preorder number -> node */
	uint32_t *number;   /* node -> preorder number, 0 if unreached */
	uint32_t *parent;   /* by number: DFS tree parent's number */
	uint32_t *semi;	    /* by number: semidominator's number */
	uint32_t *ancestor; /* by number: forest link, 0 for a tree root */
	uint32_t *label;    /* by number: the number with the smallest semi on the compressed path */
	uint32_t *dom;	    /* by number: immediate dominator's number */
	uint32_t *bucket_head, *bucket_next; /* by number: nodes whose semidominator is the key */
	uint32_t *stack;    /* scratch for the iterative passes */
};

/* Numbers the nodes reachable from root in depth-first preorder, iteratively. */
static uint32_t depth_first(const struct csr_graph *graph, uint32_t root, struct lt_state *s,
			    uint64_t *cursor)
{
	uint32_t count = 0;
	size_t depth = 0;
	s->number[root] = ++count;
	s->vertex[count] = root;
	s->parent[count] = 0;
	s->stack[depth++] = root;
	cursor[root] = graph->starts[root];
	while (depth > 0) {
		uint32_t v = s->stack[depth - 1];
		if (cursor[v] == graph->starts[v + 1]) {
			depth--;
			continue;
		}
		uint32_t w = graph->targets[cursor[v]++];
		if (s->number[w] != 0)
			continue;
		s->number[w] = ++count;
		s->vertex[count] = w;
		s->parent[count] = s->number[v];
		cursor[w] = graph->starts[w];
		s->stack[depth++] = w;
	}
	return count;
}

/* Path compression, iteratively: walk up to the last node whose ancestor is a tree root, then
 * update labels from the top down. */
static void compress(struct lt_state *s, uint32_t v)
{
	size_t depth = 0;
	while (s->ancestor[s->ancestor[v]] != 0) {
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

static uint32_t eval(struct lt_state *s, uint32_t v)
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
	struct lt_state s;
	uint32_t **arrays[] = {&s.vertex, &s.parent, &s.semi, &s.ancestor, &s.label,
			       &s.dom,	  &s.bucket_head, &s.bucket_next, &s.stack};
	memset(&s, 0, sizeof s);
	bool failed = false;
	for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
		failed |= (*arrays[i] = calloc(n + 2, sizeof(uint32_t))) == NULL;
	s.number = calloc(n + 1, sizeof(uint32_t));
	uint64_t *cursor = malloc((n + 1) * sizeof *cursor);
	/* predecessors, by node: the reverse graph in compressed rows */
	uint64_t *pred_starts = calloc(n + 2, sizeof *pred_starts);
	uint32_t *preds = malloc((graph->starts[n] + 1) * sizeof *preds);
	int result = -1;
	if (failed || s.number == NULL || cursor == NULL || pred_starts == NULL || preds == NULL)
		goto done;
	for (uint64_t e = 0; e < graph->starts[n]; e++)
		pred_starts[graph->targets[e] + 2]++;
	for (size_t v = 0; v < n; v++)
		pred_starts[v + 2] += pred_starts[v + 1];
	for (size_t v = 0; v < n; v++)
		for (uint64_t e = graph->starts[v]; e < graph->starts[v + 1]; e++)
			preds[pred_starts[graph->targets[e] + 1]++] = (uint32_t)v;

	uint32_t count = depth_first(graph, root, &s, cursor);
	free(cursor); /* only the search needs it: freed before the peak of what follows */
	cursor = NULL;
	for (uint32_t i = 1; i <= count; i++) {
		s.semi[i] = i;
		s.label[i] = i;
	}
	for (uint32_t i = count; i >= 2; i--) {
		uint32_t w = s.vertex[i];
		for (uint64_t e = pred_starts[w]; e < pred_starts[w + 1]; e++) {
			uint32_t v = s.number[preds[e]];
			if (v == 0)
				continue; /* a predecessor the root does not reach */
			uint32_t u = eval(&s, v);
			if (s.semi[u] < s.semi[i])
				s.semi[i] = s.semi[u];
		}
		s.bucket_next[i] = s.bucket_head[s.semi[i]];
		s.bucket_head[s.semi[i]] = i;
		uint32_t p = s.parent[i];
		s.ancestor[i] = p; /* link */
		for (uint32_t v = s.bucket_head[p]; v != 0; v = s.bucket_next[v]) {
			uint32_t u = eval(&s, v);
			s.dom[v] = s.semi[u] < s.semi[v] ? u : p;
		}
		s.bucket_head[p] = 0;
	}
	for (uint32_t i = 2; i <= count; i++)
		if (s.dom[i] != s.semi[i])
			s.dom[i] = s.dom[s.dom[i]];

	for (size_t v = 0; v < n; v++)
		idom[v] = DOMINATOR_NONE;
	for (uint32_t i = 2; i <= count; i++)
		idom[s.vertex[i]] = s.vertex[s.dom[i]];
	if (order) {
		for (uint32_t i = 1; i <= count; i++)
			order[i - 1] = s.vertex[i];
		*order_count = count;
	}
	result = 0;
done:
	for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
		free(*arrays[i]);
	free(s.number);
	free(cursor);
	free(pred_starts);
	free(preds);
	return result;
}
