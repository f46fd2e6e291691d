/* Cycles among the allocations no root reaches: in a Python process, garbage waiting for the
 * cyclic collector (which heapsnap never runs: the target is only read); in C, leaked structures
 * that point at each other. Each strongly connected component of the unreachable part of the
 * graph is one cycle; its shape is the shortest way round it from its first object (by type name),
 * each step named by type and label ("__main__.Connection._conn_handler ->
 * __main__.ConnectionHandler._conn -> __main__.Connection"), and cycles of one shape are counted
 * together under a stable signature. */
#ifndef HEAPSNAP_CYCLES_H
#define HEAPSNAP_CYCLES_H

#include <stddef.h>
#include <stdint.h>

#include "analyze/graph/graph.h"
#include "analyze/heap.h"
#include "analyze/types.h"
#include "common/error.h"

struct cycle_shape {
	char text[512];
	uint64_t count;		 /* cycles of this shape */
	uint64_t objects, bytes; /* in them (parts of objects add bytes, not objects) */
	char signature[9];
};

/* The cycle shapes of `graph` (built over `heap`, whose allocations `types` names), most
 * frequent first. With `only` (per allocation), just the cycles with at least one member for
 * which it is non-zero (heapdiff: the new ones). */
int cycles_find(const struct graph *graph, const struct heap *heap, const struct type_names *types,
		const uint8_t *only, struct cycle_shape **shapes, size_t *count,
		struct hs_error *err);

#endif
