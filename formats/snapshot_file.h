/* Putting a snapshot on disk safely: mode 0600 (it holds the process's secrets), written under a
 * temporary name in the destination directory, fsynced, then renamed, so no reader ever sees a
 * partial file under the final name, whatever happens midway. */
#ifndef HEAPSNAP_SNAPSHOT_FILE_H
#define HEAPSNAP_SNAPSHOT_FILE_H

#include "common/error.h"
#include "formats/core_image.h"
#include "formats/seekable.h"

int snapshot_file_write(const struct core_image *image, const char *path,
			const struct seekable_options *options, struct seekable_stats *stats,
			struct hs_error *err);

/* Removes the temporary file of a write in progress, if any. Async-signal-safe: the front end calls
 * it from its SIGINT/SIGTERM handler. */
void snapshot_file_abandon(void);

#endif
