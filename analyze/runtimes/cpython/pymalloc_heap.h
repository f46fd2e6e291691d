/* The pymalloc walker: CPython's small-object allocator (requests of up to 512 bytes) carves 1 MiB
 * arenas (256 KiB before 3.10) into pools of one size class each; a pool header counts the pool's
 * blocks in use, chains its free ones, and says how far the pool has been carved. Every block is
 * added to the heap, live or free, beside what the glibc walker found (pymalloc's arenas are
 * mappings of their own, and bigger objects come from malloc).
 *
 * The arenas are those of pymalloc's arena table when debug information says where it is (a static
 * up to 3.11, the main interpreter's obmalloc state from 3.12); otherwise every pool-aligned
 * address of the anonymous mappings is a candidate, and a candidate is a pool only when its header
 * is consistent: a size class, the carving limit that class implies, a free chain inside the pool,
 * and a count of blocks in use that equals the blocks carved minus the free ones. */
#ifndef HEAPSNAP_PYMALLOC_HEAP_H
#define HEAPSNAP_PYMALLOC_HEAP_H

#include <stdbool.h>

#include "analyze/address_space.h"
#include "analyze/allocators/allocator.h"
#include "analyze/runtimes/cpython/cpython.h"
#include "analyze/runtimes/cpython/cpython_layout.h"
#include "analyze/heap.h"
#include "analyze/symbols.h"
#include "common/error.h"
#include "common/warnings.h"

/* pymalloc, CPython's object allocator, layered on the process's malloc: walked by the runtime
 * (its walk is NULL), its blocks named in its own words. */
extern const struct allocator pymalloc_allocator;

/* Adds the blocks of every pool to `heap` (already walked by the malloc's walker; this calls
 * heap_finish on it again) under one arena of kind "pymalloc", and records pymalloc_allocator
 * in the heap with how its arenas were found: "debug info" or "heuristics". */
int pymalloc_heap_walk(struct address_space *space, struct symbols *symbols,
		       const struct cpython_info *python, const struct cpython_layout *layout,
		       bool no_debuginfo, struct heap *heap, struct warnings *warnings,
		       struct hs_error *err);

#endif
