/* Which malloc a process calls: glibc's (in libc.so, or linked into a static executable), or one
 * that replaces it (jemalloc, tcmalloc, mimalloc, AddressSanitizer's, a program's own), found from
 * the modules mapped and the symbols they define. heapsnap walks glibc's heap only; for any other
 * the analysis must say it cannot see the heap rather than report an empty one. */
#ifndef HEAPSNAP_MALLOC_PROVIDER_H
#define HEAPSNAP_MALLOC_PROVIDER_H

#include <stdbool.h>

#include "analyze/symbols.h"

struct malloc_provider {
	char name[48];		   /* "glibc malloc", "jemalloc", ...: what the user would call it */
	const char *module_path;   /* the module that defines it, or NULL when none was found */
	struct module_symbols *module;
	bool glibc;		   /* glibc's ptmalloc: heapsnap walks it */
	bool static_glibc;	   /* glibc linked into the executable (no libc.so) */
};

/* False when no malloc at all was recognised (no libc.so, no module with glibc's main_arena,
 * no known replacement). */
bool malloc_provider_find(struct symbols *symbols, struct malloc_provider *provider);

#endif
