/* CPython's own mimalloc (3.13+, Objects/mimalloc, compiled into libpython with its symbols
 * local): the interpreter's object and memory allocator under PYTHONMALLOC=mimalloc, layered on
 * the process's malloc like pymalloc and walked by the CPython runtime with mimalloc's walker
 * (allocators/mimalloc_heap.h), its blocks named in mimalloc's words. */
#ifndef HEAPSNAP_CPYTHON_MIMALLOC_H
#define HEAPSNAP_CPYTHON_MIMALLOC_H

#include <stdbool.h>

#include "analyze/allocators/allocator.h"

extern const struct allocator cpython_mimalloc_allocator;

/* Walks it on top of the malloc already walked into `heap` (`input->module` is libpython's).
 * Returns 0 when walked; when no segment is found, 1 if `probe` (nothing is added: the runtime
 * could not tell which allocator it uses) and otherwise -1 with an error naming
 * PYTHONMALLOC=mimalloc. */
int cpython_mimalloc_walk(const struct allocator_input *input, bool probe, struct heap *heap,
			  struct warnings *warnings, struct hs_error *err);

#endif
