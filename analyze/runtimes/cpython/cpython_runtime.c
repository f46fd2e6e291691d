/* CPython as a runtime (runtime.h): the interpreter found by its symbols and version, pymalloc
 * walked on top of malloc, the method cache marked as bookkeeping, objects typed by their
 * ob_type, and the graph modelled by reference counts and containers (cpython_graph.c). */
#include "analyze/runtimes/runtime.h"

#include "analyze/allocators/pymalloc_heap.h"
#include "analyze/analysis.h"
#include "analyze/runtimes/cpython/cpython_graph.h"

static bool detect(struct analysis *analysis, const struct analysis_options *options)
{
	cpython_detect(analysis->symbols, analysis->space, options->no_debuginfo, &analysis->python);
	return analysis->python.found;
}

static int walk_heap(struct analysis *analysis, const struct analysis_options *options,
		     struct hs_error *err)
{
	if (!analysis->python.has_layout)
		return 0; /* (a version without layouts: its objects are not typed) */
	return pymalloc_heap_walk(analysis->space, analysis->symbols, &analysis->python,
				  &analysis->python.layout, options->no_debuginfo, &analysis->heap,
				  &analysis->warnings, err);
}

static int find_objects(struct analysis *analysis, struct hs_error *err)
{
	/* the interpreter's method cache holds borrowed pointers: the graph is not to take them
	   for references (they would keep garbage alive) */
	uint64_t start, end;
	if (cpython_method_cache(analysis->symbols, analysis->space, &analysis->python, &start,
				 &end))
		heap_add_bookkeeping(&analysis->heap, start, end);
	return cpython_objects_find(&analysis->python_objects, analysis->space, &analysis->python,
				    &analysis->heap, &analysis->types, &analysis->warnings, err);
}

static bool has_objects(const struct analysis *analysis)
{
	return analysis->python_objects.bits != NULL;
}

static int graph_model(struct analysis *analysis, struct graph_model *model, void **state,
		       struct hs_error *err)
{
	*state = NULL;
	if (analysis->python_objects.bits == NULL)
		return 0;
	struct cpython_graph *python = cpython_graph_new(analysis->space, &analysis->python,
							 &analysis->python_objects,
							 &analysis->heap, model);
	if (python == NULL)
		return hs_error_set(err, "out of memory building the object graph");
	*state = python;
	return 0;
}

static void graph_model_free(void *state)
{
	cpython_graph_free(state);
}

const struct runtime cpython_runtime = {
	.name = "CPython",
	.heap_step = "pymalloc heap",
	.objects_step = "Python objects",
	.detect = detect,
	.walk_heap = walk_heap,
	.find_objects = find_objects,
	.has_objects = has_objects,
	.graph_model = graph_model,
	.graph_model_free = graph_model_free,
};
