/* Atomic, private snapshot files (see snapshot_file.h). */
#include "snapshot_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The temporary file being written; read by the signal handler, so set before the file exists and
 * cleared after it is renamed. */
static char pending_path[4096];
static volatile sig_atomic_t pending_valid;

void snapshot_file_abandon(void)
{
	if (pending_valid)
		unlink(pending_path);
}

static void fsync_directory_of(const char *path)
{
	char copy[4096];
	snprintf(copy, sizeof copy, "%s", path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int snapshot_file_write(const struct core_image *image, const char *path,
			const struct seekable_options *options, struct seekable_stats *stats,
			struct hs_error *err)
{
	char temporary[4096];
	if ((size_t)snprintf(temporary, sizeof temporary, "%s.tmp.%d", path, (int)getpid()) >=
	    sizeof temporary)
		return hs_error_set(err, "output path too long: %s", path);
	memcpy(pending_path, temporary, sizeof temporary);
	pending_valid = 1;
	int fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int saved = errno;
		pending_valid = 0;
		if (saved == EACCES || saved == EROFS || saved == ENOENT)
			return hs_error_set_errno(err, saved,
						  "cannot create %s (choose a writable directory "
						  "with -o)",
						  temporary);
		return hs_error_set_errno(err, saved, "cannot create %s", temporary);
	}
	/* the umask could only have narrowed 0600; make it exact */
	fchmod(fd, 0600);
	int result = core_image_write(image, fd, path, options, stats, err);
	if (result == 0 && fsync(fd) != 0)
		result = hs_error_set_errno(err, errno, "cannot write %s (fsync)", path);
	if (close(fd) != 0 && result == 0)
		result = hs_error_set_errno(err, errno, "cannot write %s (close)", path);
	if (result == 0 && rename(temporary, path) != 0)
		result = hs_error_set_errno(err, errno, "cannot rename %s to %s", temporary, path);
	if (result != 0)
		unlink(temporary);
	pending_valid = 0;
	if (result == 0)
		fsync_directory_of(path);
	return result;
}
