/* Putting a snapshot, or any file heapsnap writes (an export), on disk safely: mode 0600 (it holds
 * the process's secrets), written to an unnamed file in the destination directory (O_TMPFILE;
 * where the filesystem has none, a temporary name), fsynced, then linked in under its final name,
 * so no reader ever sees a partial file under the final name and a writer killed midway leaves
 * nothing behind (or, on a filesystem without O_TMPFILE, a temporary file the next write in that
 * directory removes); never over another user's file (nor through a symlink one owns), never
 * over the file the same command reads. */
#ifndef HEAPSNAP_SNAPSHOT_FILE_H
#define HEAPSNAP_SNAPSHOT_FILE_H

#include <stddef.h>

#include "common/error.h"
#include "formats/core_image.h"
#include "formats/seekable.h"

/* Puts the file's bytes into `fd` (a new, empty file that will be named `path`). */
typedef int (*safe_file_writer)(int fd, const char *path, void *context, struct hs_error *err);

/* Writes what `write` puts in the file under `path` exactly: a file of ours there is replaced;
 * another user's is refused, and so is `input` (the file the command reads; NULL: none), by
 * device and inode, whatever name either is given by. */
int safe_file_write(const char *path, const char *input, safe_file_writer write, void *context,
		    struct hs_error *err);
/* The refusal of safe_file_write for `input`, to say before long work (0: `path` is not it). */
int safe_file_check(const char *path, const char *input, struct hs_error *err);

/* A snapshot, through safe_file_write. */
int snapshot_file_write(const struct core_image *image, const char *path, const char *input,
			const struct seekable_options *options, struct seekable_stats *stats,
			struct hs_error *err);

/* Writes under `path`, or when that name is taken under the first free one of path-2.snap,
 * path-3.snap... (the number before a ".snap" extension); never replaces a file. `path` is
 * updated to the name taken. */
int snapshot_file_write_new(const struct core_image *image, char *path, size_t path_size,
			    const struct seekable_options *options, struct seekable_stats *stats,
			    struct hs_error *err);

/* Removes the temporary file of a write in progress, if it has a name. Async-signal-safe: the
 * front end calls it from its SIGINT/SIGTERM handler. */
void snapshot_file_abandon(void);

#endif
