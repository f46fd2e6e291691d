/* Finding, on the machine that analyses a snapshot, the file each module of the process was
 * mapped from. The process saw its files under its own root: a container's /usr/lib/libc.so.6
 * is not the host's. A file is used only when its build-id is the one recorded at capture; the
 * places tried, in order: under --sysroot DIR (a container's root, or its image unpacked), the
 * path on this machine, and, while the captured process still runs (same pid, start time and
 * boot), its own root /proc/PID/root; last, when debuginfod servers are named, the file of that
 * build-id from them. */
#ifndef HEAPSNAP_MODULE_FILES_H
#define HEAPSNAP_MODULE_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "formats/snapshot.h"

struct module_files {
	const char *sysroot;  /* NULL: none given */
	char live_root[48];   /* "/proc/PID/root" while the captured process runs, else empty */
	int pid;
	bool hinted;          /* the hint about --sysroot was given */
	/* where a file found nowhere here is asked for (debuginfod.h), or NULL */
	struct debug_fetch *fetch;
};

void module_files_init(struct module_files *files, const struct snapshot *snapshot,
		       const char *sysroot);

/* Opens the file of module `module` read-only: the first place whose file is regular and has the
 * recorded build-id (or, when none was recorded, the first that opens). Returns the descriptor
 * and sets *used_path (the caller frees it); -1 when no place has it, with `why` saying what was
 * found at each. */
int module_files_open(const struct module_files *files, const struct snapshot_module *module,
		      char **used_path, char *why, size_t why_size);

/* After a file was not found: how to point heapsnap at the right files, the first time only
 * (false after that, or when --sysroot was given). */
bool module_files_hint(struct module_files *files, char *out, size_t size);

/* The directories where separate debug files are looked for: `debug_dir` (or /usr/lib/debug),
 * then DIR/usr/lib/debug of the sysroot and of the live root. Returns how many were written. */
size_t module_files_debug_dirs(const struct module_files *files, const char *debug_dir,
			       char dirs[][4096], size_t max);

#endif
