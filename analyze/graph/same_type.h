/* The same-type dominance mark: which objects are retained by another object of their own type
 * (in a list of struct conn, every node but the head), so that a type's retained bytes count
 * each object once. Untyped blocks are of one type per size. */
#ifndef HEAPSNAP_SAME_TYPE_H
#define HEAPSNAP_SAME_TYPE_H

#include <stdint.h>

#include "analyze/graph/graph.h"
#include "analyze/heap.h"
#include "analyze/types.h"

/* Per heap node, 1 when an object of its type dominates it, counting only the nodes `only`
 * marks (NULL: all); NULL when out of memory or the graph has no dominators. Freed with free. */
uint8_t *graph_mark_same_type_dominated(const struct graph *graph, const struct heap *heap,
					const struct type_names *types, const uint8_t *only);

#endif
