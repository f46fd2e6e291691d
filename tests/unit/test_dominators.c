/* Dominators against their definition: on thousands of random graphs with cycles (and on a long
 * chain, for depth), the immediate dominators computed by Semi-NCA (dominators.c) must equal those
 * derived by brute force: d dominates v when v cannot be reached from the root with d removed. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/graph/dominators.h"
#include "test_util.h"

#define MAX_NODES 40

static uint64_t state = 88172645463325252ull;
static uint64_t next_random(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

/* Nodes reachable from root without passing through `removed` (which is unreachable itself). */
static void reach(size_t n, bool adjacency[MAX_NODES][MAX_NODES], size_t root, size_t removed,
		  bool *seen)
{
	size_t stack[MAX_NODES], depth = 0;
	memset(seen, 0, n);
	if (root == removed)
		return;
	seen[root] = true;
	stack[depth++] = root;
	while (depth) {
		size_t v = stack[--depth];
		for (size_t w = 0; w < n; w++)
			if (adjacency[v][w] && !seen[w] && w != removed) {
				seen[w] = true;
				stack[depth++] = w;
			}
	}
}

int main(void)
{
	for (int round = 0; round < 3000; round++) {
		size_t n = 2 + next_random() % (MAX_NODES - 1);
		bool adjacency[MAX_NODES][MAX_NODES] = {{0}};
		uint32_t starts[MAX_NODES + 1];
		uint32_t targets[MAX_NODES * MAX_NODES];
		size_t edges = 0;
		unsigned density = 1 + (unsigned)(next_random() % 4);
		for (size_t v = 0; v < n; v++) {
			starts[v] = edges;
			for (size_t w = 0; w < n; w++)
				if (next_random() % (n / density + 1) == 0) {
					adjacency[v][w] = true;
					targets[edges++] = (uint32_t)w;
				}
		}
		starts[n] = edges;
		struct csr_graph graph = {n, starts, targets};
		uint32_t idom[MAX_NODES], order[MAX_NODES];
		size_t order_count = 0;
		CHECK(dominators_compute(&graph, 0, idom, order, &order_count) == 0, "compute");

		/* brute force: dominates[d][v] */
		bool reachable[MAX_NODES], without[MAX_NODES], dominates[MAX_NODES][MAX_NODES] = {{0}};
		reach(n, adjacency, 0, SIZE_MAX, reachable);
		for (size_t d = 0; d < n; d++) {
			reach(n, adjacency, 0, d, without);
			for (size_t v = 0; v < n; v++)
				dominates[d][v] = reachable[v] && reachable[d] && !without[v];
		}
		size_t reachable_count = 0;
		for (size_t v = 0; v < n; v++) {
			reachable_count += reachable[v];
			uint32_t expected = DOMINATOR_NONE;
			if (reachable[v] && v != 0) {
				/* the strict dominator that all other strict dominators dominate */
				for (size_t d = 0; d < n; d++) {
					if (d == v || !dominates[d][v])
						continue;
					bool closest = true;
					for (size_t e = 0; e < n && closest; e++)
						if (e != v && e != d && dominates[e][v] && !dominates[e][d])
							closest = false;
					if (closest)
						expected = (uint32_t)d;
				}
			}
			CHECK(idom[v] == expected, "round %d node %zu of %zu: idom %u, expected %u", round,
			      v, n, idom[v], expected);
		}
		CHECK(order_count == reachable_count, "round %d: preorder has %zu nodes, %zu reachable",
		      round, order_count, reachable_count);
		/* in the preorder, every node comes after its immediate dominator */
		uint32_t position[MAX_NODES];
		for (size_t i = 0; i < order_count; i++)
			position[order[i]] = (uint32_t)i;
		for (size_t i = 1; i < order_count; i++)
			CHECK(position[idom[order[i]]] < i, "round %d: preorder puts a node before its idom",
			      round);
		if (test_failures > 20)
			break;
	}

	/* a chain of two million nodes with a back edge: deep, and each node dominates the next */
	size_t n = 2000000;
	uint32_t *starts = malloc((n + 1) * sizeof *starts);
	uint32_t *targets = malloc((n + 1) * sizeof *targets);
	size_t edges = 0;
	for (size_t v = 0; v < n; v++) {
		starts[v] = edges;
		if (v + 1 < n)
			targets[edges++] = (uint32_t)(v + 1);
		if (v == n - 1)
			targets[edges++] = 1;
	}
	starts[n] = edges;
	struct csr_graph chain = {n, starts, targets};
	uint32_t *idom = malloc(n * sizeof *idom);
	CHECK(dominators_compute(&chain, 0, idom, NULL, NULL) == 0, "chain");
	bool chain_ok = idom[0] == DOMINATOR_NONE;
	for (size_t v = 1; v < n; v++)
		chain_ok &= idom[v] == v - 1;
	CHECK(chain_ok, "chain dominators");
	free(starts);
	free(targets);
	free(idom);
	return TEST_EXIT();
}
