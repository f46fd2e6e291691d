/* The allocator interface: what the analysis knows of a malloc besides the blocks its walker puts
 * in the heap. Each walker of a process's malloc here (glibc_heap.c, jemalloc_heap.c,
 * mimalloc_heap.c, tcmalloc_heap.c) defines one `struct allocator`, and so does each allocator a
 * runtime layers on it (runtimes/cpython: pymalloc, CPython's mimalloc), walked by its runtime.
 * Each declares here all that is particular to it: its names, its words for its places, the
 * symbols that recognise it; malloc_provider.c picks the one a process uses by those symbols,
 * analysis.c runs its walk, and the reports, `list` and the types take its words from here, so
 * nothing after the walk asks which allocator ran. The walk records itself in the heap
 * (heap_begin_allocator), and each arena it adds belongs to it: several allocators share one heap
 * (pymalloc on top of glibc's malloc or jemalloc), and each block is named in its own allocator's
 * words. */
#ifndef HEAPSNAP_ALLOCATOR_H
#define HEAPSNAP_ALLOCATOR_H

#include <stdbool.h>

#include "analyze/address_space.h"
#include "analyze/heap.h"
#include "analyze/symbols.h"
#include "common/error.h"
#include "common/warnings.h"

/* What a walk starts from. */
struct allocator_input {
	struct address_space *space;
	struct symbols *symbols;
	struct module_symbols *module; /* the module that defines the allocator (malloc_provider) */
	bool linked_statically;	       /* that module is the executable, not a shared library */
	bool no_debuginfo;	       /* find its structures by their shape only */
};

struct allocator {
	const char *name;	   /* what the user calls it: "glibc malloc", "jemalloc" */
	const char *version_name;  /* what its version is the version of: "glibc", "jemalloc" */
	const char *step;	   /* its step in --timings: "glibc heap" */
	const char *metadata_type; /* the type of its own blocks (PLACE_METADATA), or NULL */
	/* its words for its places, indexed by enum allocation_place ("fastbin", "slab_free"),
	   PLACE_COUNT of them; NULL for a place it never uses, which is named "unknown" */
	const char *const *place_names;
	/* the symbols that say a module defining malloc is this malloc (malloc_provider.c), tried
	   in order, NULL-terminated; NULL for an allocator layered on a malloc */
	const char *const *symbols;
	/* Adds its blocks and arenas to `heap` and calls heap_finish. Fails when there is no heap
	 * to show or when out of memory; what cannot be walked is said in warnings. NULL for an
	 * allocator layered on another and walked with its runtime's knowledge (pymalloc). */
	int (*walk)(const struct allocator_input *input, struct heap *heap,
		    struct warnings *warnings, struct hs_error *err);
	/* Whether it holds memory, asked of a malloc found beside the process's (malloc_provider.h)
	 * before it is walked after it; NULL: walk it. */
	bool (*in_use)(const struct allocator_input *input);
};

extern const struct allocator glibc_allocator;
extern const struct allocator jemalloc_allocator;
extern const struct allocator mimalloc_allocator;
extern const struct allocator tcmalloc_allocator;

/* The allocator that owns an allocation (through its arena), or NULL when its arena is unknown. */
const struct allocator *allocator_of(const struct heap *heap, const struct allocation *allocation);
/* The allocator an arena belongs to, or NULL when it is unknown. */
const struct allocator *allocator_of_arena(const struct heap *heap, const struct heap_arena *arena);
/* Its place in its allocator's words ("unknown" when the allocator is). */
const char *allocator_place_name(const struct heap *heap, const struct allocation *allocation);
/* The malloc the heap was walked for (the first allocator walked, under what is layered on it);
 * NULL before any walk. */
const struct heap_allocator *heap_malloc(const struct heap *heap);
/* The mallocs walked, in the order walked (the process's malloc first, then any found beside it),
 * without what is layered on one (pymalloc): up to `max` into `mallocs`; returns their count. */
size_t heap_mallocs(const struct heap *heap, const struct heap_allocator **mallocs, size_t max);
/* The heap's record of `allocator` (its version and method), or NULL when it was not walked. */
const struct heap_allocator *heap_allocator_find(const struct heap *heap,
						 const struct allocator *allocator);

#endif
