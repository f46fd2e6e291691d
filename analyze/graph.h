/* The object graph of a heap: its nodes are the live allocations, plus one node per root (a
 * global or static variable, a thread's stack, registers or TLS, a mapping the program made
 * itself) and a virtual super-root that points at every root. An edge is an 8-byte-aligned word
 * inside a node that points into a live allocation, at its start or inside it: the conservative
 * scan, replaced by precise edges where the node's struct layout is known. Stored in compressed
 * rows with 32-bit node ids.
 *
 * On top of it: which allocations the roots reach (in C, the others are leaked: nobody can free
 * them any more), the dominator tree and each node's retained size (the bytes freed if it were),
 * and a shortest path from a root to every reachable node. */
#ifndef HEAPSNAP_GRAPH_H
#define HEAPSNAP_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/address_space.h"
#include "analyze/heap.h"
#include "analyze/symbols.h"
#include "analyze/types.h"
#include "common/error.h"
#include "common/warnings.h"

#define GRAPH_NONE UINT32_MAX

enum root_kind {
	ROOT_GLOBAL,	/* a global variable: "global all_conns" */
	ROOT_STATIC,	/* a file-level or function static: "static lock (server)" */
	ROOT_DATA,	/* module data no symbol covers */
	ROOT_STACK,	/* a thread's stack, from its stack pointer up */
	ROOT_REGISTERS, /* a thread's registers */
	ROOT_TLS,	/* a thread's thread-local storage */
	ROOT_MAPPING,	/* writable memory the program mapped itself */
};

struct graph_root {
	enum root_kind kind;
	char name[192];
};

struct graph {
	const struct heap *heap;
	size_t heap_nodes;	   /* nodes 0 .. heap_nodes-1 are live allocations */
	uint32_t *node_allocation; /* node -> index in heap->allocations */
	uint32_t *allocation_node; /* index in heap->allocations -> node, GRAPH_NONE if not live */
	struct graph_root *roots;  /* root r is node heap_nodes + r */
	size_t root_count;
	uint32_t super_root; /* the last node */
	size_t node_count;   /* heap_nodes + root_count + 1 */
	uint64_t *starts;    /* compressed rows: node_count + 1 */
	uint32_t *targets;
	uint32_t *offsets; /* per edge: where in its node the pointer is (bytes from its start) */
	uint64_t edge_count;

	/* analysis */
	uint32_t *idom;	    /* immediate dominator, GRAPH_NONE when unreachable (and the super-root) */
	uint64_t *retained; /* bytes retained by each node */
	uint32_t *parent;   /* on a shortest path from the super-root, GRAPH_NONE if unreachable */
	uint32_t *parent_edge; /* the edge index (into targets) from parent to the node */
	uint32_t *bfs_order;   /* reachable nodes, nearest the super-root first */
	size_t bfs_count;
};

/* `types` (may be NULL) gives precise edges: in an allocation whose struct layout is known, only
 * its pointer members (and members that are structs, unions or arrays, scanned whole) are read
 * for pointers; its integers and character arrays are not taken for references. */
int graph_build(struct graph *graph, struct address_space *space, struct symbols *symbols,
		const struct heap *heap, const struct type_names *types, struct warnings *warnings,
		struct hs_error *err);
void graph_free(struct graph *graph);

static inline bool graph_reachable(const struct graph *graph, uint32_t node)
{
	return node == graph->super_root || graph->idom[node] != GRAPH_NONE;
}

static inline uint64_t graph_node_size(const struct graph *graph, uint32_t node)
{
	return node < graph->heap_nodes
		       ? graph->heap->allocations[graph->node_allocation[node]].size
		       : 0;
}

#endif
