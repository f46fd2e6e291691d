/* Finding a debug file's dwz supplementary file. dwz moves what several debug files share (types,
 * strings, whole partial units) into one file and leaves in each a .gnu_debugaltlink section
 * naming it: its path, then its build-id. Debian's -dbgsym packages and Fedora's debuginfo are
 * made so. As gdb does, the file is looked for at that path (a relative one from the debug file's
 * directory, an absolute one also under each debug directory's root), then by its build-id under
 * each debug directory, last from the debuginfod servers, which serve it as the debug info of
 * its build-id. A file is used only when its build-id is the one the link names. */
#ifndef HEAPSNAP_DWZ_SUPPLEMENTARY_H
#define HEAPSNAP_DWZ_SUPPLEMENTARY_H

#include <stdbool.h>
#include <stddef.h>

#include "analyze/debuginfod.h"

struct dwz_link {
	bool present;	    /* the debug file has a .gnu_debugaltlink */
	char path[4096];    /* as written there */
	unsigned char build_id[64];
	size_t build_id_size;
};

/* Reads the debug file's .gnu_debugaltlink; link->present false when it has none. */
void dwz_link_read(const char *debug_file, struct dwz_link *link);

/* The supplementary file the link names (the caller frees it), or NULL when none is found;
 * `dirs` are the debug directories in order, `fetch` may be NULL; *url is set to the server it
 * came from in this run (NULL: found here or in the cache). */
char *dwz_supplementary_find(const char *debug_file, const struct dwz_link *link,
			     const char (*dirs)[4096], size_t dir_count, struct debug_fetch *fetch,
			     const char **url);

#endif
