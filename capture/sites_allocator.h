/* Which file of a live process holds the malloc it calls, and which of the allocation and free
 * entry points that file exports: where `heapsnap capture --sites` puts its uprobes. */
#ifndef HEAPSNAP_SITES_ALLOCATOR_H
#define HEAPSNAP_SITES_ALLOCATOR_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/* What each entry point's probe reads (see capture/bpf/sites.bpf.c). */
enum sites_entry_kind {
	SITES_ENTRY_MALLOC,	    /* (size); also operator new */
	SITES_ENTRY_CALLOC,	    /* (count, size) */
	SITES_ENTRY_REALLOC,	    /* (pointer, size) */
	SITES_ENTRY_ALIGNED,	    /* (alignment, size) */
	SITES_ENTRY_POSIX_MEMALIGN, /* (&pointer, alignment, size) */
	SITES_ENTRY_FREE,	    /* (pointer); also operator delete */
};

#define SITES_MAX_ENTRIES 24

struct sites_allocator {
	char path[4096]; /* the file, as the process maps it */
	char name[32];	 /* "glibc", "jemalloc", "tcmalloc", "mimalloc" */
	size_t entry_count;
	struct {
		const char *symbol;
		enum sites_entry_kind kind;
	} entries[SITES_MAX_ENTRIES];
};

/* The first file of `pid`'s mappings in symbol-lookup order (the executable, then libraries other
 * than libc, then libc) that defines and exports `malloc`; HS_ERR_UNSUPPORTED when none does (a
 * static executable without symbols, an allocator of its own under other names). */
int sites_allocator_find(pid_t pid, struct sites_allocator *out, struct hs_error *err);

#endif
