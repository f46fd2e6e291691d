/* The object graph of a heap: its nodes are the live allocations, plus one node per root (a
 * global or static variable, a thread's stack, registers or TLS, a mapping the program made
 * itself) and a virtual super-root that points at every root. An edge is an 8-byte-aligned word
 * inside a node that points into a live allocation, at its start or inside it: the conservative
 * scan, replaced by precise edges where the node's struct layout is known. Stored in compressed
 * rows with 32-bit node ids.
 *
 * On top of it: which allocations the roots reach (in C, the others are leaked: nobody can free
 * them any more), the dominator tree and each node's retained size (the bytes freed if it
 * were). */
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
#include "common/string_table.h"
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
	ROOT_RUNTIME,	/* a runtime's own root: a Python module global, a class attribute */
};

struct graph_root {
	enum root_kind kind;
	bool view; /* its edges are references heap objects hold (a module's globals), not more */
	char name[192];
};

struct graph {
	const struct heap *heap;
	/* nodes 0 .. heap_nodes-1 are the heap's allocations, numbered alike; the free ones have
	   no edges and are never reached (graph_allocation_node) */
	size_t heap_nodes;
	struct graph_root *roots;  /* root r is node heap_nodes + r */
	size_t root_count;
	uint32_t super_root; /* the last node */
	size_t node_count;   /* heap_nodes + root_count + 1 */
	uint32_t *starts;    /* compressed rows: node_count + 1 (edges are fewer than 2^32) */
	size_t starts_capacity; /* (big_array) */
	uint32_t *targets;
	uint32_t *offsets; /* per edge: where in its node the pointer is (bytes from its start), or
			      a label (GRAPH_LABEL set) a runtime model gave it */
	struct string_table labels; /* "[*]", "._conn", numbered by offset & GRAPH_LABEL_INDEX */
	uint64_t edge_count;
	size_t targets_capacity, offsets_capacity; /* (big_array) */

	/* analysis: idom and retained, or reached when the graph was built for reachability only
	   (paths.h finds the shortest paths) */
	uint32_t *idom;	    /* immediate dominator, GRAPH_NONE when unreachable (and the super-root) */
	uint64_t *retained; /* bytes retained by each node */
	uint8_t *reached;   /* without dominators: 1 for each node the super-root reaches */
};

#define GRAPH_RUNTIME_PART 0x80u /* in graph_model.not_from_memory_roots */

#define GRAPH_LABEL 0x80000000u
#define GRAPH_VIEW 0x40000000u	/* a labelled edge that shows a reference another edge holds */
#define GRAPH_LABEL_INDEX 0x3fffffffu

/* What a runtime knows of its objects (CPython's model), plugged into the graph: the edges of the
 * allocations it understands, with labels, and roots of its own. */
struct graph_emitter;
struct graph_range {
	uint64_t start, end;
};
struct graph_model {
	void *context;
	/* Per allocation, NULL for none: bytes at its start that are a runtime header (CPython's GC
	   links), so that pointers there are not references to it. */
	const uint8_t *header_bytes;
	/* Per allocation, NULL for none: non-zero for the runtime's objects, which the roots scanned
	   as memory (module data, stacks, registers, mappings) do not reach: the runtime has its own
	   account of what holds them (CPython: reference counts above the references found), and
	   there a stale pointer (a free list's) would keep garbage alive. GRAPH_RUNTIME_PART marks
	   a block one of its objects owns (a deque's blocks): it too is held through its owner
	   only, so that a stale pointer elsewhere does not take it from its owner's path and
	   retained bytes, but unlike an object it may be referred to by its inside. */
	const uint8_t *not_from_memory_roots;
	/* Memory the model reads through its own structures (CPython's frame stacks), not to be
	   scanned as a mapping of the program's own. */
	const struct graph_range *claimed;
	size_t claimed_count;
	/* Called first (it may intern labels); -1 when out of memory. */
	int (*prepare)(void *context, struct graph_emitter *emitter);
	/* Emits the edges of allocation `index` (graph_emit_edge), whose bytes are `bytes` (NULL
	   when the graph could not read them in one piece); returns 1 when it did, 0 when the
	   allocation is to be scanned as usual, -1 when out of memory. */
	int (*edges)(void *context, size_t index, const uint8_t *bytes,
		     struct graph_emitter *emitter);
	/* Emits the model's roots (graph_emit_root, then their edges); -1 when out of memory. */
	int (*roots)(void *context, struct graph_emitter *emitter);
	/* Emits roots found once every other edge is known (graph_emit_references_left); may be
	   NULL. */
	int (*late_roots)(void *context, struct graph_emitter *emitter);
};

/* A label's id, interned (GRAPH_NONE when out of memory). */
uint32_t graph_emit_label(struct graph_emitter *emitter, const char *text);
/* An edge to whatever allocation holds `address` (none when it is not in one, or in its runtime
 * header), labelled with a label id or GRAPH_NONE. */
int graph_emit_edge(struct graph_emitter *emitter, uint64_t address, uint32_t label);
/* Scans [address, address + size) conservatively, as edges labelled `label` (GRAPH_NONE: by
 * their offset in the allocation being emitted, `base` bytes from its start). */
int graph_emit_scan(struct graph_emitter *emitter, const uint8_t *bytes, size_t size,
		    uint64_t base, uint32_t label);
/* The same edge, marked as a view: it shows a reference that another edge already holds (an
 * instance's attribute kept in its __dict__), so it does not count as one more. */
int graph_emit_view_edge(struct graph_emitter *emitter, uint64_t address, uint32_t label);
/* Starts a root; the edges emitted after it are its own. A view root shows references heap
 * objects hold (a module's globals, held by its dict); its edges do not count as more. */
int graph_emit_root(struct graph_emitter *emitter, enum root_kind kind, const char *name,
		    bool view);
/* Takes from counts[node] (heap_nodes entries, stopping at zero) the references found so far to
 * each heap node: edges from heap nodes and from roots that are not views, views and labelled
 * views left out. What is left of a reference count is the references held from elsewhere. */
void graph_emit_references_left(struct graph_emitter *emitter, uint32_t *counts);
/* The node of allocation `index`, GRAPH_NONE when it is not live. */
uint32_t graph_emit_node_of(struct graph_emitter *emitter, size_t index);

/* The label of an edge, or NULL when it has a plain offset. */
static inline const char *graph_edge_label(const struct graph *graph, uint64_t edge)
{
	uint32_t offset = graph->offsets[edge];
	return (offset & GRAPH_LABEL) ? graph->labels.strings[offset & GRAPH_LABEL_INDEX] : NULL;
}

/* The nodes and edges. `models` are the runtimes' (none for a C program; several when the
 * process runs several, each allocation the object of one at most): the first that knows an
 * allocation gives its edges; each one's roots are roots. `types` (may be NULL) gives precise edges: in an allocation whose struct
 * layout is known, only its pointer members (and members that are structs, unions or arrays,
 * scanned whole) are read for pointers; its integers and character arrays are not taken for
 * references. */
int graph_build(struct graph *graph, struct address_space *space, struct symbols *symbols,
		const struct heap *heap, const struct type_names *types,
		const struct graph_model *models, size_t model_count, struct warnings *warnings,
		struct hs_error *err);
/* Then with `dominators` the dominator tree and retained sizes, without only what the roots reach
 * (what is needed of a snapshot compared with another). The graph is freed on error. */
int graph_analyse(struct graph *graph, bool dominators, struct hs_error *err);
void graph_free(struct graph *graph);

/* The key of a node for graph_mark_same_key_dominated: 0 for a node that has none. */
typedef uint32_t (*graph_node_key)(void *context, uint32_t node);
/* Sets marks[node] (heap_nodes entries) to 1 for each heap node with a strict dominator of the
 * same non-zero key, else 0: with the key a type, what an object retains that another object
 * of its type already retains, at any depth (a type's retained bytes count each byte once).
 * Needs the dominator tree; -1 when out of memory. */
int graph_mark_same_key_dominated(const struct graph *graph, graph_node_key key, void *context,
				  uint8_t *marks);

/* Whether the super-root reaches `node` (GRAPH_NONE, a free allocation's: no). */
static inline bool graph_reachable(const struct graph *graph, uint32_t node)
{
	if (node == GRAPH_NONE)
		return false;
	return node == graph->super_root ||
	       (graph->idom ? graph->idom[node] != GRAPH_NONE : graph->reached[node] != 0);
}

/* The node of allocation `index`, GRAPH_NONE when it is not live. */
static inline uint32_t graph_allocation_node(const struct graph *graph, size_t index)
{
	return graph->heap->allocations[index].state == ALLOCATION_LIVE ? (uint32_t)index
									 : GRAPH_NONE;
}

static inline uint64_t graph_node_size(const struct graph *graph, uint32_t node)
{
	return node < graph->heap_nodes &&
			       graph->heap->allocations[node].state == ALLOCATION_LIVE
		       ? graph->heap->allocations[node].size
		       : 0;
}

#endif
