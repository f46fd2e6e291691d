/* One snapshot opened for analysis: the file, its address space, its modules' symbols, and its
 * heaps walked. The front ends of `list` and `summary` (and later `heapdiff`) start here. */
#ifndef HEAPSNAP_ANALYSIS_H
#define HEAPSNAP_ANALYSIS_H

#include <stdbool.h>

#include "analyze/address_space.h"
#include "analyze/allocators/allocator.h"
#include "analyze/runtimes/runtime.h"
#include "analyze/graph/graph.h"
#include "analyze/heap.h"
#include "analyze/module_files.h"
#include "analyze/outside_heaps.h"
#include "analyze/sites.h"
#include "analyze/symbols.h"
#include "analyze/types.h"
#include "common/error.h"
#include "common/timings.h"
#include "common/warnings.h"
#include "formats/snapshot.h"

struct analysis_options {
	const char *debug_dir; /* NULL: /usr/lib/debug */
	const char *sysroot;   /* where the process's files are (its root), NULL: none given */
	bool no_debuginfo;     /* find heap structures by heuristics only */
	/* a damaged zstd frame: go on with its memory unreadable (and a warning) rather than
	   fail */
	bool damaged_frames_unreadable;
	struct timings_observer observer; /* told of each step as it ends (may be empty) */
	/* debuginfod (debuginfod.h): the servers (NULL: DEBUGINFOD_URLS), whether not to ask, and
	   who is told of downloads */
	const char *debuginfod_urls;
	bool no_debuginfod;
	struct debug_fetch_observer fetch_observer;
};

struct analysis {
	struct snapshot *snapshot;
	struct address_space *space;
	struct module_files module_files; /* where the process's files are found here */
	struct symbols *symbols;
	struct heap heap;
	struct runtime_instance runtime; /* the runtime the process runs (runtime.h); ops NULL: none */
	struct type_names types;
	struct c_types_reading *c_types_reading; /* modules' variables, read while the heap is walked */
	struct allocation_sites sites; /* empty unless the snapshot records them (the hook's) */
	/* memory the process wrote that no walker reads: every report states it, heapdiff
	   compares it, and a --fail-on-growth gate never passes on its growth */
	struct outside_heaps outside_heaps;
	struct graph graph; /* built by analysis_build_graph */
	/* with the dominator tree, per allocation: 1 when an object of its type (or, untyped, of its
	   size) retains it, so its retained bytes are already in that one's */
	uint8_t *same_type_dominated;
	bool has_graph;
	bool damaged_frames_unreadable; /* analysis_options' */
	bool damage_warned;		/* the warning about damaged frames was given */
	struct warnings warnings;
	struct timings timings; /* of each step so far; a front end marks its own steps too */
};

struct analysis *analysis_open(const char *path, const struct analysis_options *options,
			       struct hs_error *err);
void analysis_close(struct analysis *analysis);
/* Builds the object graph of the walked heap: roots, reachability, dominators, paths. */
/* The runtimes the process runs (runtime.h), in the order found: up to `max` into `runtimes`;
 * returns their count. (One at most today: CPython.) */
#define ANALYSIS_RUNTIMES_MAX 4
size_t analysis_runtimes(const struct analysis *analysis, const struct runtime **runtimes,
			 size_t max);

int analysis_build_graph(struct analysis *analysis, struct hs_error *err);
/* The same without the dominator tree (graph.idom and graph.retained stay NULL): what the roots
 * reach, for less time and memory. A later analysis_build_graph builds it all. */
int analysis_build_reachability(struct analysis *analysis, struct hs_error *err);

/* The type of heap->allocations[index], or NULL when unknown (grouped by size). */
const char *analysis_type(const struct analysis *analysis, size_t index);
const char *allocation_state_name(enum allocation_state state);

/* Whether the runtime the process runs named any object (the reports then speak of its
 * garbage). */
bool runtime_has_objects(const struct analysis *analysis);

#endif
