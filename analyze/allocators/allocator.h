/* The allocator interface: what the analysis knows of a malloc besides the blocks its walker puts
 * in the heap. Each walker (glibc_heap.c, jemalloc_heap.c, pymalloc_heap.c) defines one `struct
 * allocator`; malloc_provider.c picks the one a process uses, analysis.c runs its walk, and the
 * reports, `list` and the types take its words from here, so nothing after the walk asks which
 * allocator ran. The walk records itself in the heap (heap_begin_allocator), and each arena it
 * adds belongs to it: several allocators share one heap (pymalloc on top of glibc's malloc or
 * jemalloc), and each block is named in its own allocator's words. */
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
	/* its word for a place ("fastbin", "slab_free"), "unknown" for a place it never uses */
	const char *(*place_name)(enum allocation_place place);
	/* Adds its blocks and arenas to `heap` and calls heap_finish. Fails when there is no heap
	 * to show or when out of memory; what cannot be walked is said in warnings. NULL for an
	 * allocator layered on another and walked with its runtime's knowledge (pymalloc). */
	int (*walk)(const struct allocator_input *input, struct heap *heap,
		    struct warnings *warnings, struct hs_error *err);
};

extern const struct allocator glibc_allocator;
extern const struct allocator jemalloc_allocator;
extern const struct allocator pymalloc_allocator;
extern const struct allocator tcmalloc_allocator;

/* The allocator that owns an allocation (through its arena), or NULL when its arena is unknown. */
const struct allocator *allocator_of(const struct heap *heap, const struct allocation *allocation);
/* Its place in its allocator's words ("unknown" when the allocator is). */
const char *allocator_place_name(const struct heap *heap, const struct allocation *allocation);
/* The malloc the heap was walked for (the first allocator walked, under what is layered on it);
 * NULL before any walk. */
const struct heap_allocator *heap_malloc(const struct heap *heap);
/* The heap's record of `allocator` (its version and method), or NULL when it was not walked. */
const struct heap_allocator *heap_allocator_find(const struct heap *heap,
						 const struct allocator *allocator);

/* What a walker finds corrupt: each spot counted in the heap's damage (heap_note_damage), told
 * in a warning prefixed by the allocator's name for the first ALLOCATOR_DAMAGE_TOLD, only
 * counted after them; allocator_damage_finish says how many were not told. */
#define ALLOCATOR_DAMAGE_TOLD 20
struct allocator_damage {
	struct heap *heap;
	struct warnings *warnings;
	const char *allocator; /* "jemalloc" */
	uint64_t untold;
};
void allocator_damage(struct allocator_damage *damage, uint64_t address, const char *format, ...)
	__attribute__((format(printf, 3, 4)));
void allocator_damage_finish(struct allocator_damage *damage);

/* The block at `address` among those a walk has added so far, when it adds them in address
 * order (before heap_finish), or NULL. */
struct allocation *allocator_block_at(struct heap *heap, uint64_t address);

/* Calls `test(context, address, word)` on each 8-byte word of [start, end), read a page at a
 * time (pages that cannot be read are passed over), until it answers true: the address of that
 * word, or 0. How the walkers find their globals by shape in a module's data. */
uint64_t allocator_find_word(struct address_space *space, uint64_t start, uint64_t end,
			     bool (*test)(void *context, uint64_t address, uint64_t word),
			     void *context);

/* The first bytes of the file `module` was mapped from (up to 64 MiB: where an allocator's
 * version string is, in its read-only data), malloc'd, their count in *count; NULL when the
 * file cannot be read or out of memory. */
char *allocator_module_file(struct module_symbols *module, size_t *count);

/* The writable data of `module` and its .bss (the anonymous mapping right after it, up to where
 * its image ends), merged into [*start, *end): where an allocator keeps its globals. False when
 * none of it is in the snapshot. */
bool allocator_module_data(struct address_space *space, struct symbols *symbols,
			   struct module_symbols *module, uint64_t *start, uint64_t *end);

#endif
