/* The object graph of one analysed snapshot as a Chrome DevTools heap snapshot (.heapsnapshot):
 * the JSON document V8 writes, which DevTools' Memory panel and memlab load. Written as it is
 * walked: the nodes, then the edges, straight from the graph's rows, and last the strings they
 * name (only the distinct ones are held), so a heap of millions of objects never exists as JSON
 * in memory.
 *
 * The synthetic root (node 0, id 1) points at one synthetic node per root of the graph, named as
 * `heapsnap summary` names it, and at "(unreachable)", which points at every live object no root
 * reaches (Python garbage, C leaks): so DevTools lists them too, under a root that says what
 * they are. Each live allocation is a node named by its type ("size 64" when untyped, as the
 * summary groups it) with its usable size as self size; free allocations are not nodes. Its
 * id is a hash of (address, type, size), heapdiff's identity of an object: the same object in
 * two snapshots of one process has the same id (DevTools' Comparison view and memlab's
 * three-snapshot filter match objects by id), and an address reused by another type or size
 * gets another.
 *
 * Edges: a Python attribute ("._conn", also when its instance keeps it in a __dict__, which
 * holds it too: heapsnap's graph has both) is a property edge named by the attribute; a
 * container's item ("[*]") an element numbered by its place among its node's edges; a dict key
 * shown (--show-values) a property "['key']" or an element by its number; the other labels of
 * the runtime's model ("(key)", "(table)", "+24") internal edges named by the label; a pointer
 * in a C struct whose layout is known a property named by its member ("next"); other pointers
 * elements numbered by their offset in bytes; a root's edges elements. */
#ifndef HEAPSNAP_DEVTOOLS_EXPORT_H
#define HEAPSNAP_DEVTOOLS_EXPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "analyze/analysis.h"
#include "common/error.h"

struct devtools_export_stats {
	uint64_t nodes, edges, strings;
	uint64_t unreachable; /* objects no root reaches, under "(unreachable)" */
	/* objects whose id was taken (a hash collision, about n^2 / 2^32 of n objects): they got
	   the next free one, which another snapshot may not give them */
	uint64_t id_collisions;
	uint64_t oversized; /* allocations of 4 GiB or more, whose self size is cut to 2^32 - 1 */
};

/* Writes the graph of `analysis` (analysis_build_reachability or analysis_build_graph done) to
 * `out`. `show_values`: edge names keep the values read from memory (dict keys); else they are
 * masked ("[*]"), as in every report. -1 when out of memory or the heap is too large for the
 * format's 32-bit numbers; a write error is left in ferror(out). */
int devtools_export_write(FILE *out, const struct analysis *analysis, bool show_values,
			  struct devtools_export_stats *stats, struct hs_error *err);

#endif
