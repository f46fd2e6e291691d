/* The runtime interface: a language runtime whose objects live in the heap the allocators walked
 * (CPython today). analysis.c runs each step of the runtime the process runs without knowing
 * which one it is: find it among the modules, walk the allocator it keeps on top of malloc, name
 * its objects and their parts (and mark its bookkeeping), then give the object graph its model
 * of references. A runtime is an instance in the analysis (struct runtime_instance: its
 * operations and its own state, made by detect, released by free, read by no one else); the
 * reports and the front ends learn what to say of it through the second half of the
 * interface, and never read that state themselves. */
#ifndef HEAPSNAP_RUNTIME_H
#define HEAPSNAP_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct analysis;
struct analysis_options;
struct graph_model;
struct runtime;

/* The runtime a process runs, in its analysis: its operations and its own state (made by
 * detect, released by free; read by no one else). */
struct runtime_instance {
	const struct runtime *ops; /* NULL when the process runs none heapsnap knows */
	void *state;
};

/* The classes a runtime's collector sorts its garbage into (CPython: the generations 0, 1 and 2,
 * and none), declared by the runtime: the reports count the unreachable objects by them and
 * say them in its words. */
#define RUNTIME_GARBAGE_CLASSES_MAX 8
struct runtime_garbage_class {
	const char *name;   /* in text: "generation 0", "untracked" */
	int64_t json_value; /* its number under json_member; -1: null */
};
struct runtime_garbage_classes {
	const char *json_key;	  /* the reports' array of them: "python_garbage_by_generation" */
	const char *json_member;  /* what names a class in each element (and in `list`): "generation" */
	const char *text_heading; /* the summary's, after the language: "garbage by the ..." */
	const char *text_lead;	  /* heapdiff's, before the classes that hold some: "in the ..." */
	size_t count;
	struct runtime_garbage_class classes[RUNTIME_GARBAGE_CLASSES_MAX];
};

/* A member of a runtime's JSON section, described as data: analyze/ may not include cli/, where
 * the report's emitter is, so cli writes the fields through it. An object's members follow its
 * RUNTIME_FIELD_OBJECT and end with a RUNTIME_FIELD_END. */
enum runtime_field_kind { RUNTIME_FIELD_STRING, RUNTIME_FIELD_UINT, RUNTIME_FIELD_OBJECT,
			  RUNTIME_FIELD_END };
struct runtime_field {
	enum runtime_field_kind kind;
	const char *key;    /* NULL for an END */
	const char *string; /* a STRING's value, valid as long as the analysis */
	uint64_t number;    /* a UINT's value */
};
#define RUNTIME_FIELDS_MAX 32

/* ---- the callbacks, each a named type (as drgn's libdrgn/language.h) ---- */

/* After the modules' symbols: whether the process runs it; if so *state is its own state. */
typedef bool runtime_detect_fn(struct analysis *analysis, const struct analysis_options *options,
			       void **state);
/* Releases the state detect made. */
typedef void runtime_free_fn(void *state);
/* After malloc's walk: walks the allocator it keeps on malloc into the same heap; -1 on error. */
typedef int runtime_walk_heap_fn(struct analysis *analysis, const struct analysis_options *options,
				 struct hs_error *err);
/* After the C++ types: marks its bookkeeping (pointers not to follow) and names its objects. */
typedef int runtime_find_objects_fn(struct analysis *analysis, struct hs_error *err);
/* Whether it typed the heap's blocks, even finding no object (C types then leave them to it). */
typedef bool runtime_has_objects_fn(const struct analysis *analysis);
/* Its model of references for graph_build; *state (NULL: no model) goes to graph_model_free. */
typedef int runtime_graph_model_fn(struct analysis *analysis, struct graph_model *model,
				   void **state, struct hs_error *err);
/* Releases the state graph_model made. */
typedef void runtime_graph_model_free_fn(void *state);
/* Its version ("3.11.7"), NULL when the process does not run it (asked of every runtime). */
typedef const char *runtime_version_fn(const struct analysis *analysis);
/* How many objects it named. */
typedef uint64_t runtime_object_count_fn(const struct analysis *analysis);
/* The summary's line about it (no newline) into out; false when there is none. */
typedef bool runtime_describe_fn(const struct analysis *analysis, char *out, size_t size);
/* Its JSON summary's section (under its key) into fields[max]: their count, 0 when it has none. */
typedef size_t runtime_summary_fields_fn(const struct analysis *analysis,
					 struct runtime_field *fields, size_t max);
/* The damage among its objects in words ("3 objects with a damaged type, ..."); false: none. */
typedef bool runtime_damage_words_fn(const struct analysis *analysis, char *out, size_t size);
/* The same damage counts as the fields of a JSON object (asked when has_objects): their count. */
typedef size_t runtime_damage_fields_fn(const struct analysis *analysis,
					struct runtime_field *fields, size_t max);
/* What block `index` is to it for `list` ("tracked", "part") and its garbage class; NULL: none. */
typedef const char *runtime_block_role_fn(const struct analysis *analysis, size_t index,
					  size_t *garbage_class);
/* Whether an object starts in block `index`, and the garbage class it sits in (in `garbage`). */
typedef bool runtime_object_at_fn(const struct analysis *analysis, size_t index,
				  size_t *garbage_class);
/* The text of the string object in block `index` (up to size - 1 bytes); false: none readable. */
typedef bool runtime_string_text_fn(const struct analysis *analysis, size_t index, char *out,
				    size_t size);
/* How many items the container object in block `index` holds; false when it is none. */
typedef bool runtime_container_length_fn(const struct analysis *analysis, size_t index,
					 uint64_t *length);

/* A runtime: its names and its callbacks, in the order an analysis uses them. */
struct runtime {
	const char *name;	  /* "CPython" */
	const char *heap_step;	  /* its allocator's step in --timings: "pymalloc heap" */
	const char *objects_step; /* its objects' step: "Python objects" */
	runtime_detect_fn *detect;
	runtime_free_fn *free;
	runtime_walk_heap_fn *walk_heap; /* NULL: it keeps no allocator of its own */
	runtime_find_objects_fn *find_objects;
	runtime_has_objects_fn *has_objects;
	runtime_graph_model_fn *graph_model;
	runtime_graph_model_free_fn *graph_model_free;

	/* ---- what the reports say of it ---- */
	const char *key;       /* its key in JSON ("python": its version under "runtimes") */
	const char *language;  /* its objects are "<language> objects": "Python" */
	const char *collector; /* what frees its garbage: "the cyclic collector" */
	const struct runtime_garbage_classes *garbage; /* what its collector sorts garbage into */
	runtime_version_fn *version;
	runtime_object_count_fn *object_count;
	runtime_describe_fn *describe;
	runtime_summary_fields_fn *summary_fields;
	runtime_damage_words_fn *damage_words;
	runtime_damage_fields_fn *damage_fields;
	runtime_block_role_fn *block_role;
	runtime_object_at_fn *object_at;
	runtime_string_text_fn *string_text;
	runtime_container_length_fn *container_length;
};

extern const struct runtime cpython_runtime;

/* Every runtime heapsnap knows, in the order they are looked for; NULL-terminated. */
extern const struct runtime *const known_runtimes[];

#endif
