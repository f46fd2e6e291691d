/* CPython's mimalloc, walked as an embedded mimalloc (see cpython_mimalloc.h). */
#include "analyze/runtimes/cpython/cpython_mimalloc.h"

#include "analyze/allocators/mimalloc_heap.h"

const struct allocator cpython_mimalloc_allocator = {
	.name = "CPython's mimalloc",
	.version_name = "mimalloc",
	.step = "CPython's mimalloc heap",
	.metadata_type = NULL,
	.place_names = mimalloc_place_names,
	.symbols = NULL, /* (layered on the process's malloc) */
	.walk = NULL, /* walked by the runtime, which knows where it is */
};

static const struct mimalloc_embedded cpython_embedded = {
	.allocator = &cpython_mimalloc_allocator,
	.what = "CPython's mimalloc (PYTHONMALLOC=mimalloc)",
	.not_found = "the interpreter allocates its objects with it, but no segment of it was found "
		     "in the process's anonymous memory: heapsnap cannot see the Python objects, "
		     "so there is no answer to give",
};

int cpython_mimalloc_walk(const struct allocator_input *input, bool probe, struct heap *heap,
			  struct warnings *warnings, struct hs_error *err)
{
	return mimalloc_heap_walk_embedded(input, &cpython_embedded, probe, heap, warnings, err);
}
