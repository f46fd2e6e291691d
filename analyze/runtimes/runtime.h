/* The runtime interface: a language runtime whose objects live in the heap the allocators walked
 * (CPython today). analysis.c runs each step of the runtime the process runs without knowing
 * which one it is: find it among the modules, walk the allocator it keeps on top of malloc, name
 * its objects and their parts (and mark its bookkeeping), then give the object graph its model
 * of references. A runtime keeps its own state (analysis.runtime_state, made by detect and
 * released by free, read by no one else); the reports and the front ends learn what to say of it through the
 * second half of the interface, and never read that state themselves. */
#ifndef HEAPSNAP_RUNTIME_H
#define HEAPSNAP_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct analysis;
struct analysis_options;
struct graph_model;
struct json_writer;

struct runtime {
	const char *name;	  /* "CPython" */
	const char *heap_step;	  /* its allocator's step in --timings: "pymalloc heap" */
	const char *objects_step; /* its objects' step: "Python objects" */
	/* After the modules' symbols: whether the process runs it; when it does, its state is made
	 * (analysis.runtime_state, the runtime's own: no one else reads it). */
	bool (*detect)(struct analysis *analysis, const struct analysis_options *options);
	/* Releases the state detect made. */
	void (*free)(struct analysis *analysis);
	/* After malloc's walk: the allocator it keeps on top of it (pymalloc), walked into the same
	 * heap. -1 with err set on failure. */
	int (*walk_heap)(struct analysis *analysis, const struct analysis_options *options,
			 struct hs_error *err);
	/* After the allocator's and C++'s types: its bookkeeping (borrowed pointers the graph must
	 * not follow) and its objects, named. */
	int (*find_objects)(struct analysis *analysis, struct hs_error *err);
	/* Whether it typed the heap's blocks, even if it found no object there (the C types then
	 * leave its blocks to it, and the reports count the damage to its objects); object_count
	 * says how many it found. */
	bool (*has_objects)(const struct analysis *analysis);
	/* Its model of references for the object graph (graph.h), with the state to give back to
	 * graph_model_free; *state stays NULL when it has no model for this process. */
	int (*graph_model)(struct analysis *analysis, struct graph_model *model, void **state,
			   struct hs_error *err);
	void (*graph_model_free)(void *state);

	/* ---- what the reports say of it ---- */
	const char *key;	 /* its key in JSON ("python": its version under "runtimes") */
	const char *language;	 /* its objects are "<language> objects": "Python" */
	const char *collector;	 /* what frees its garbage: "the cyclic collector" */
	/* Its version ("3.11.7"), or NULL when the process does not run it. */
	const char *(*version)(const struct analysis *analysis);
	/* How many objects it named. */
	uint64_t (*object_count)(const struct analysis *analysis);
	/* The summary's line about it (no newline), false when the process does not run it. */
	bool (*describe)(const struct analysis *analysis, char *out, size_t size);
	/* Its section of the JSON summary, key and value, when it has one. */
	void (*summary_json)(const struct analysis *analysis, struct json_writer *json);
	/* The damage it found among its objects in words ("3 objects with a damaged type, left
	 * untyped; ..."), false when none. */
	bool (*damage_words)(const struct analysis *analysis, char *out, size_t size);
	/* The same counts as a JSON object (when it has objects: has_objects). */
	void (*damage_json)(const struct analysis *analysis, struct json_writer *json);
	/* What block `index` is to it, for `list` ("tracked", "object", "part", "immortal"), and
	 * the collector's generation it sits in (-1: none); NULL when nothing. */
	const char *(*block_role)(const struct analysis *analysis, size_t index, int *generation);
	/* Whether an object starts in block `index`, and its generation (-1: none known). */
	bool (*object_at)(const struct analysis *analysis, size_t index, int *generation);
	/* The text of the string object in block `index` (up to size - 1 bytes), for
	 * --show-values: false when it is no string or cannot be read. */
	bool (*string_text)(const struct analysis *analysis, size_t index, char *out, size_t size);
	/* How many items the container object in block `index` holds: false when it is none. */
	bool (*container_length)(const struct analysis *analysis, size_t index, uint64_t *length);
};

extern const struct runtime cpython_runtime;

/* Every runtime heapsnap knows, in the order they are looked for; NULL-terminated. */
extern const struct runtime *const known_runtimes[];

#endif
