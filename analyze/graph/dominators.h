/* Dominators of a directed graph from one root, by the Semi-NCA algorithm (Georgiadis, Tarjan and
 * Werneck: Lengauer-Tarjan's semidominators with path compression, then each immediate dominator
 * by a walk up the dominator tree; O(n^2) in theory, faster than Lengauer-Tarjan in practice, and
 * with fewer arrays). Node a dominates node b when every path from the
 * root to b passes through a; the immediate dominator of b is its closest strict dominator. In
 * a heap graph rooted at a virtual super-root, the objects a node dominates are exactly the
 * objects that would be freed with it: its retained size. Everything is iterative, so a linked
 * list of ten million nodes does not overflow the stack. */
#ifndef HEAPSNAP_DOMINATORS_H
#define HEAPSNAP_DOMINATORS_H

#include <stddef.h>
#include <stdint.h>

#define DOMINATOR_NONE UINT32_MAX

/* A graph in compressed sparse rows: the successors of node v are
 * targets[starts[v]] .. targets[starts[v + 1] - 1]. */
struct csr_graph {
	size_t node_count;
	const uint32_t *starts; /* node_count + 1 entries */
	const uint32_t *targets;
};

/* Fills idom[v] with v's immediate dominator, DOMINATOR_NONE for the root and for nodes the root
 * cannot reach. When `order` is not NULL it receives the reachable nodes in depth-first preorder
 * (a node's dominators all come before it) and *order_count their number. Returns -1 when out of
 * memory (or for more than 2^32 - 3 nodes or edges). */
int dominators_compute(const struct csr_graph *graph, uint32_t root, uint32_t *idom,
		       uint32_t *order, size_t *order_count);

#endif
