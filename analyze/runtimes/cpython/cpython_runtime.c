/* CPython as a runtime (runtime.h): the interpreter found by its symbols and version, pymalloc
 * (or, under PYTHONMALLOC=mimalloc, CPython's mimalloc) walked on top of malloc, the method
 * cache marked as bookkeeping, objects typed by their ob_type, and the graph modelled by
 * reference counts and containers (cpython_graph.c); and what the reports say of it: its line,
 * its JSON section (as fields), the damage to its objects, each block's role, a string's text, a
 * container's length. */
#include "analyze/runtimes/runtime.h"

#include <stdio.h>
#include <stdlib.h>

#include "analyze/allocators/allocator.h"
#include "analyze/allocators/mimalloc_heap.h"
#include "analyze/runtimes/cpython/cpython_fields.h"
#include "analyze/runtimes/cpython/pymalloc_heap.h"
#include "analyze/runtimes/cpython/cpython_mimalloc.h"
#include "analyze/analysis.h"
#include "analyze/runtimes/cpython/cpython_graph.h"
#include "common/numbers.h"

/* The runtime's state in an analysis (analysis.runtime.state): the interpreter found, and its
 * objects once named. */
struct cpython_state {
	struct cpython_info python;
	struct python_objects objects;
};

/* NULL when the process runs another runtime, or none (version is asked of every runtime) */
static struct cpython_state *state_of(const struct analysis *analysis)
{
	return analysis->runtime.ops == &cpython_runtime ? analysis->runtime.state : NULL;
}

static bool detect(struct analysis *analysis, const struct analysis_options *options,
		   void **made)
{
	struct cpython_state *state = calloc(1, sizeof *state);
	if (state == NULL) {
		warnings_add(&analysis->warnings, "out of memory looking for a Python interpreter: "
						  "its objects are not named");
		return false;
	}
	cpython_detect(analysis->symbols, analysis->space, options->no_debuginfo, &state->python);
	if (!state->python.found) {
		free(state);
		return false;
	}
	*made = state;
	return true;
}

/* The allocator the objects come from, walked on top of malloc: CPython's mimalloc under
 * PYTHONMALLOC=mimalloc (3.13+), else pymalloc (whose walk finds nothing when the objects are
 * malloc's, PYTHONMALLOC=malloc). Where the symbols cannot tell (3.13+ without them), mimalloc's
 * segments are looked for, and pymalloc walked when there are none. */
static int walk_heap(struct analysis *analysis, const struct analysis_options *options,
		     struct hs_error *err)
{
	struct cpython_info *python = &state_of(analysis)->python;
	if (!python->has_layout)
		return 0; /* (a version without layouts: its objects are not typed) */
	enum cpython_object_allocator allocator = cpython_object_allocator(
	    analysis->symbols, analysis->space, python, options->no_debuginfo);
	struct allocator_input input = {.space = analysis->space,
					.symbols = analysis->symbols,
					.module = cpython_module(analysis->symbols, python),
					.no_debuginfo = options->no_debuginfo};
	if (input.module != NULL &&
	    (allocator == CPYTHON_ALLOCATOR_MIMALLOC || allocator == CPYTHON_ALLOCATOR_UNKNOWN)) {
		int walked = cpython_mimalloc_walk(&input, allocator == CPYTHON_ALLOCATOR_UNKNOWN,
							&analysis->heap, &analysis->warnings, err);
		if (walked < 0)
			return -1;
		if (walked == 0) {
			python->object_allocator = CPYTHON_ALLOCATOR_MIMALLOC;
			return 0;
		}
	}
	python->object_allocator = allocator == CPYTHON_ALLOCATOR_MALLOC ? CPYTHON_ALLOCATOR_MALLOC
									 : CPYTHON_ALLOCATOR_PYMALLOC;
	return pymalloc_heap_walk(analysis->space, analysis->symbols, python, &python->layout,
				  options->no_debuginfo, &analysis->heap, &analysis->warnings, err);
}

static int find_objects(struct analysis *analysis, struct hs_error *err)
{
	/* the interpreter's method cache holds borrowed pointers: the graph is not to take them
	   for references (they would keep garbage alive) */
	struct cpython_state *state = state_of(analysis);
	uint64_t start, end;
	if (cpython_method_cache(analysis->symbols, analysis->space, &state->python, &start, &end))
		heap_add_bookkeeping(&analysis->heap, start, end);
	return cpython_objects_find(&state->objects, analysis->space, &state->python,
				    &analysis->heap, &analysis->types, &analysis->warnings, err);
}

static bool has_objects(const struct analysis *analysis)
{
	return state_of(analysis)->objects.bits != NULL;
}

static int graph_model(struct analysis *analysis, struct graph_model *model, void **state,
		       struct hs_error *err)
{
	const struct cpython_state *cpython = state_of(analysis);
	*state = NULL;
	if (cpython->objects.bits == NULL)
		return 0;
	struct cpython_graph *python = cpython_graph_new(
		analysis->space, &cpython->python, &cpython->objects, &analysis->heap,
		cpython_fields_new(analysis->symbols, cpython->python.minor,
				   cpython->python.debuginfo_allowed),
		model);
	if (python == NULL)
		return hs_error_nomem(err, "building the object graph");
	*state = python;
	return 0;
}

static void graph_model_free(void *state)
{
	cpython_graph_free(state);
}

/* ---- what the reports say ---------------------------------------------------------------- */

static const char *version(const struct analysis *analysis)
{
	const struct cpython_state *state = state_of(analysis);
	return state && state->python.found ? state->python.version : NULL;
}

static uint64_t object_count(const struct analysis *analysis)
{
	return state_of(analysis)->objects.object_count;
}

/* How pymalloc's arenas were found (the CPython line says it beside the layouts). */
static const char *pymalloc_method(const struct heap *heap)
{
	const struct heap_allocator *pymalloc = heap_allocator_find(heap, &pymalloc_allocator);
	return pymalloc ? pymalloc->method : "";
}

static const char *object_allocator_name(enum cpython_object_allocator allocator)
{
	return allocator == CPYTHON_ALLOCATOR_MIMALLOC ? "mimalloc"
	       : allocator == CPYTHON_ALLOCATOR_MALLOC ? "malloc"
						       : "pymalloc";
}

/* Where the objects come from, for the CPython line: pymalloc's arenas and how they were found,
 * or CPython's mimalloc, its version and how its segments were found. */
static void allocator_words(const struct analysis *analysis, char *out, size_t size)
{
	const struct heap_allocator *mimalloc =
	    heap_allocator_find(&analysis->heap, &cpython_mimalloc_allocator);
	if (state_of(analysis)->python.object_allocator == CPYTHON_ALLOCATOR_MIMALLOC && mimalloc)
		snprintf(out, size,
			 "objects from CPython's mimalloc%s%s (PYTHONMALLOC=mimalloc), its segments "
			 "found with %s",
			 mimalloc->version[0] ? " " : "", mimalloc->version, mimalloc->method);
	else
		snprintf(out, size, "pymalloc's arenas found with %s",
			 pymalloc_method(&analysis->heap));
}

static bool describe(const struct analysis *analysis, char *out, size_t size)
{
	const struct cpython_info *python = &state_of(analysis)->python;
	if (python->found && python->has_layout) {
		char objects[32], allocator[160];
		format_count(state_of(analysis)->objects.object_count, objects, sizeof objects);
		allocator_words(analysis, allocator, sizeof allocator);
		snprintf(out, size, "CPython %s (%s): %s objects, layouts from %s, %s",
			 python->version, python->module_path, objects, python->layout_source,
			 allocator);
	} else if (python->found) {
		snprintf(out, size,
			 "CPython %s (%s): a version heapsnap has no layouts for (3.8 to 3.13 are "
			 "known); its objects are not typed",
			 python->version, python->module_path);
	}
	return python->found;
}

/* The fields of a JSON section, as many as fit in `max` (RUNTIME_FIELDS_MAX leaves room for
 * every one this runtime describes). */
struct field_list {
	struct runtime_field *fields;
	size_t count, max;
};

static void add_field(struct field_list *list, enum runtime_field_kind kind, const char *key,
		      const char *string, uint64_t number)
{
	if (list->count < list->max)
		list->fields[list->count++] = (struct runtime_field){kind, key, string, number};
}

static void damage_counts_fields(const struct python_damage *damage, struct field_list *list)
{
	add_field(list, RUNTIME_FIELD_UINT, "untyped", NULL, damage->untyped);
	add_field(list, RUNTIME_FIELD_UINT, "containers", NULL, damage->containers);
	add_field(list, RUNTIME_FIELD_UINT, "reference_counts", NULL, damage->reference_counts);
	add_field(list, RUNTIME_FIELD_UINT, "gc_links", NULL, damage->gc_links);
}

static size_t summary_fields(const struct analysis *analysis, struct runtime_field *fields,
			     size_t max)
{
	const struct cpython_state *state = state_of(analysis);
	if (!state->python.found || !state->python.has_layout)
		return 0;
	struct field_list list = {fields, 0, max};
	add_field(&list, RUNTIME_FIELD_STRING, "module", state->python.module_path, 0);
	add_field(&list, RUNTIME_FIELD_STRING, "layouts_from", state->python.layout_source, 0);
	add_field(&list, RUNTIME_FIELD_STRING, "object_allocator",
		  object_allocator_name(state->python.object_allocator), 0);
	add_field(&list, RUNTIME_FIELD_STRING, "pymalloc_found_with",
		  pymalloc_method(&analysis->heap), 0);
	const struct heap_allocator *mimalloc =
	    heap_allocator_find(&analysis->heap, &cpython_mimalloc_allocator);
	if (mimalloc)
		add_field(&list, RUNTIME_FIELD_STRING, "mimalloc_found_with", mimalloc->method, 0);
	add_field(&list, RUNTIME_FIELD_UINT, "objects", NULL, state->objects.object_count);
	add_field(&list, RUNTIME_FIELD_UINT, "gc_tracked", NULL, state->objects.tracked_count);
	add_field(&list, RUNTIME_FIELD_OBJECT, "damaged", NULL, 0);
	damage_counts_fields(&state->objects.damage, &list);
	add_field(&list, RUNTIME_FIELD_END, NULL, NULL, 0);
	return list.count;
}

static bool damage_words(const struct analysis *analysis, char *out, size_t size)
{
	const struct python_damage *damage = &state_of(analysis)->objects.damage;
	const struct {
		uint64_t count;
		const char *one, *many;
	} kinds[] = {
		{damage->untyped, "object with a damaged type, left untyped",
		 "objects with a damaged type, left untyped"},
		{damage->containers, "container with damaged tables, walked as far as they go",
		 "containers with damaged tables, walked as far as they go"},
		{damage->reference_counts, "object with an impossible reference count, typed",
		 "objects with an impossible reference count, typed"},
		{damage->gc_links, "broken link in the collector's lists",
		 "broken links in the collector's lists"}};
	size_t used = 0;
	out[0] = '\0';
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		if (kinds[k].count == 0)
			continue;
		char count[32];
		format_count(kinds[k].count, count, sizeof count);
		int n = snprintf(out + used, size - used, "%s%s %s", used ? "; " : "", count,
				 kinds[k].count == 1 ? kinds[k].one : kinds[k].many);
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
	return used > 0;
}

static size_t damage_fields(const struct analysis *analysis, struct runtime_field *fields,
			    size_t max)
{
	struct field_list list = {fields, 0, max};
	damage_counts_fields(&state_of(analysis)->objects.damage, &list);
	return list.count;
}

/* The collector's generations, and none (untracked, or its list could not be read): the
 * garbage classes, in the order garbage_class numbers them. */
#define NO_GENERATION 3
static const struct runtime_garbage_classes garbage_classes = {
	.json_key = "python_garbage_by_generation",
	.json_member = "generation",
	.text_heading = "garbage by the collector's generation it sits in",
	.text_lead = "in the collector's",
	.count = 4,
	.classes = {{"generation 0", 0}, {"generation 1", 1}, {"generation 2", 2}, {"untracked", -1}},
};

static size_t garbage_class(uint8_t bits)
{
	int generation = python_object_generation(bits);
	return generation >= 0 ? (size_t)generation : NO_GENERATION;
}

static const char *block_role(const struct analysis *analysis, size_t index,
			      size_t *garbage_class_out)
{
	const uint8_t *bits = state_of(analysis)->objects.bits;
	*garbage_class_out = NO_GENERATION;
	if (bits == NULL || bits[index] == 0)
		return NULL;
	*garbage_class_out = garbage_class(bits[index]);
	if (bits[index] & PYOBJ_OWNED)
		return "part";
	if (bits[index] & PYOBJ_IMMORTAL)
		return "immortal";
	return (bits[index] & PYOBJ_TRACKED) ? "tracked" : "object";
}

static bool object_at(const struct analysis *analysis, size_t index, size_t *garbage_class_out)
{
	const uint8_t *bits = state_of(analysis)->objects.bits;
	if (bits == NULL || !(bits[index] & PYOBJ_OBJECT))
		return false;
	*garbage_class_out = garbage_class(bits[index]);
	return true;
}

/* Whether an object of a version with layouts starts in block `index`. */
static bool is_object(const struct analysis *analysis, size_t index)
{
	const struct cpython_state *state = state_of(analysis);
	return state->python.has_layout && state->objects.bits &&
	       (state->objects.bits[index] & PYOBJ_OBJECT);
}

static bool string_text(const struct analysis *analysis, size_t index, char *out, size_t size)
{
	if (!is_object(analysis, index))
		return false;
	const struct cpython_state *state = state_of(analysis);
	uint64_t address = python_object_address(&state->objects, &analysis->heap, index);
	return cpython_str_read(analysis->space, &state->python.layout, address, out, size);
}

static bool container_length(const struct analysis *analysis, size_t index, uint64_t *length)
{
	if (!is_object(analysis, index))
		return false;
	const struct cpython_state *state = state_of(analysis);
	return cpython_container_length(analysis->space, &state->python.layout, &state->objects,
					&analysis->heap, index, length);
}

static void free_state(void *made)
{
	struct cpython_state *state = made;
	if (state)
		cpython_objects_free(&state->objects);
	free(state);
}

const struct runtime cpython_runtime = {
	.name = "CPython",
	.heap_step = "pymalloc heap",
	.objects_step = "Python objects",
	.detect = detect,
	.free = free_state,
	.walk_heap = walk_heap,
	.find_objects = find_objects,
	.has_objects = has_objects,
	.graph_model = graph_model,
	.graph_model_free = graph_model_free,
	.key = "python",
	.language = "Python",
	.collector = "the cyclic collector",
	.garbage = &garbage_classes,
	.version = version,
	.object_count = object_count,
	.describe = describe,
	.summary_fields = summary_fields,
	.damage_words = damage_words,
	.damage_fields = damage_fields,
	.block_role = block_role,
	.object_at = object_at,
	.string_text = string_text,
	.container_length = container_length,
};
