/* Which malloc a process calls: glibc's (in libc.so, or linked into a static executable), or one
 * that replaces it (jemalloc, tcmalloc, mimalloc, AddressSanitizer's, a program's own), found from
 * the modules mapped and the symbols they define, with the walker heapsnap has for it
 * (allocator.h); for one it has none for, the analysis must say it cannot see the heap rather
 * than report an empty one. */
#ifndef HEAPSNAP_MALLOC_PROVIDER_H
#define HEAPSNAP_MALLOC_PROVIDER_H

#include <stdbool.h>

#include "analyze/allocators/allocator.h"
#include "analyze/symbols.h"

struct malloc_provider {
	char name[48];		   /* "glibc malloc", "jemalloc", ...: what the user would call it */
	const char *module_path;   /* the module that defines it, or NULL when none was found */
	struct module_symbols *module;
	const struct allocator *allocator; /* its walker, or NULL when heapsnap has none */
	bool linked_statically; /* glibc linked into the executable (no libc.so) */
	/* mallocs with a walker that may hold blocks beside the chosen one: glibc's, when another
	   defines malloc (a library loaded with dlopen(RTLD_LOCAL) defines malloc without replacing
	   the process's); walked when their allocator says they are in use */
	struct beside_malloc {
		const struct allocator *allocator;
		struct module_symbols *module;
		bool linked_statically;
	} walk_beside[2];
	size_t walk_beside_count;
	/* heaps beside the malloc: allocators linked in without replacing it (jemalloc under a
	   prefix, as Rust's tikv-jemallocator builds it; mimalloc called as mi_malloc) and runtimes
	   with garbage-collected heaps of their own (V8, the JVM, Go): heapsnap does not walk them,
	   so what they hold is missing, and the analysis must say so */
	struct unwalked_allocator {
		char name[80];
		const char *module_path;
	} beside[4];
	size_t beside_count;
};

/* False when no malloc at all was recognised (no libc.so, no module with glibc's main_arena,
 * no known replacement). */
bool malloc_provider_find(struct symbols *symbols, struct malloc_provider *provider);

/* When no malloc was recognised, what the process is as far as its modules tell, in words for the
 * refusal ("it is a Go program (go1.19.8) (/usr/bin/x), whose objects are in ..."), or "". */
void malloc_provider_identify(struct symbols *symbols, char *out, size_t size);

#endif
