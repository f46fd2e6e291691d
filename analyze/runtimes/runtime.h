/* The runtime interface: a language runtime whose objects live in the heap the allocators walked
 * (CPython today). analysis.c runs each step of the runtime the process runs without knowing
 * which one it is: find it among the modules, walk the allocator it keeps on top of malloc, name
 * its objects and their parts (and mark its bookkeeping), then give the object graph its model
 * of references. A runtime keeps its state in the analysis (CPython's: analysis.python and
 * analysis.python_objects, which the reports read for its lines). */
#ifndef HEAPSNAP_RUNTIME_H
#define HEAPSNAP_RUNTIME_H

#include <stdbool.h>

#include "common/error.h"

struct analysis;
struct analysis_options;
struct graph_model;

struct runtime {
	const char *name;	  /* "CPython" */
	const char *heap_step;	  /* its allocator's step in --timings: "pymalloc heap" */
	const char *objects_step; /* its objects' step: "Python objects" */
	/* After the modules' symbols: whether the process runs it (its state is then set). */
	bool (*detect)(struct analysis *analysis, const struct analysis_options *options);
	/* After malloc's walk: the allocator it keeps on top of it (pymalloc), walked into the same
	 * heap. -1 with err set on failure. */
	int (*walk_heap)(struct analysis *analysis, const struct analysis_options *options,
			 struct hs_error *err);
	/* After the allocator's and C++'s types: its bookkeeping (borrowed pointers the graph must
	 * not follow) and its objects, named. */
	int (*find_objects)(struct analysis *analysis, struct hs_error *err);
	/* Whether it named objects (the C types then leave their blocks to it). */
	bool (*has_objects)(const struct analysis *analysis);
	/* Its model of references for the object graph (graph.h), with the state to give back to
	 * graph_model_free; *state stays NULL when it has no model for this process. */
	int (*graph_model)(struct analysis *analysis, struct graph_model *model, void **state,
			   struct hs_error *err);
	void (*graph_model_free)(void *state);
};

extern const struct runtime cpython_runtime;

/* Every runtime heapsnap knows, in the order they are looked for; NULL-terminated. */
extern const struct runtime *const known_runtimes[];

#endif
