/* Atomic, private snapshot files (see snapshot_file.h). */
#include "snapshot_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_BYTES 4096
#define NUMBERED_NAMES_MAX 1000
/* a named temporary file is FINAL + this + the writer's pid */
#define TEMPORARY_MARK ".tmp.heapsnap-"

/* The named temporary file being written; read by the signal handler, so set before the file
 * exists and cleared after it is gone or renamed. */
static char pending_path[PATH_BYTES];
static volatile sig_atomic_t pending_valid;

void snapshot_file_abandon(void)
{
	if (pending_valid)
		unlink(pending_path);
}

/* The file being written: unnamed (O_TMPFILE) when `name` is empty. */
struct temporary {
	int fd;
	char name[PATH_BYTES];
};

static void directory_of(const char *path, char *out)
{
	char copy[PATH_BYTES];
	snprintf(copy, sizeof copy, "%s", path);
	snprintf(out, PATH_BYTES, "%s", dirname(copy));
}

static void fsync_directory_of(const char *path)
{
	char directory[PATH_BYTES];
	directory_of(path, directory);
	int fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int set_temporary_name(struct temporary *temporary, const char *path, struct hs_error *err)
{
	if ((size_t)snprintf(temporary->name, sizeof temporary->name, "%s" TEMPORARY_MARK "%d", path,
			     (int)getpid()) >= sizeof temporary->name)
		return hs_error_set(err, "output path too long: %s", path);
	memcpy(pending_path, temporary->name, sizeof pending_path);
	pending_valid = 1;
	return 0;
}

static void clear_temporary_name(struct temporary *temporary)
{
	pending_valid = 0;
	temporary->name[0] = '\0';
}

/* Removes, in `directory`, the named temporary files of ours whose writer is dead (killed
 * outright, it could not remove them). A pid in use again keeps its file: never a live one's. */
static void remove_stale_temporaries(const char *directory)
{
	DIR *listing = opendir(directory);
	if (listing == NULL)
		return;
	struct dirent *entry;
	while ((entry = readdir(listing)) != NULL) {
		const char *mark = strstr(entry->d_name, TEMPORARY_MARK);
		if (mark == NULL)
			continue;
		const char *digits = mark + strlen(TEMPORARY_MARK);
		char *end;
		long pid = strtol(digits, &end, 10);
		if (end == digits || *end != '\0' || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		struct stat st;
		if (fstatat(dirfd(listing), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_uid == geteuid())
			unlinkat(dirfd(listing), entry->d_name, 0);
	}
	closedir(listing);
}

static int open_temporary(struct temporary *temporary, const char *path, struct hs_error *err)
{
	char directory[PATH_BYTES];
	directory_of(path, directory);
	/* (what a writer killed on a filesystem without O_TMPFILE, or at its very end, left) */
	remove_stale_temporaries(directory);
	temporary->name[0] = '\0';
	temporary->fd = open(directory, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	/* EOPNOTSUPP: a filesystem without O_TMPFILE; EISDIR: a kernel without it */
	if (temporary->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		if (set_temporary_name(temporary, path, err) != 0)
			return -1;
		temporary->fd = open(temporary->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (temporary->fd < 0) {
		int saved = errno;
		clear_temporary_name(temporary);
		if (saved == EACCES || saved == EROFS || saved == ENOENT)
			return hs_error_set_errno(err, saved,
						  "cannot create %s (choose a writable directory "
						  "with -o)",
						  path);
		return hs_error_set_errno(err, saved, "cannot create %s", path);
	}
	/* the umask could only have narrowed 0600; make it exact */
	fchmod(temporary->fd, 0600);
	return 0;
}

/* Gives the written file the name `target` unless that name exists: 0, or an errno value. */
static int link_new(struct temporary *temporary, const char *target)
{
	if (temporary->name[0] == '\0') {
		char fd_path[64];
		snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", temporary->fd);
		return linkat(AT_FDCWD, fd_path, AT_FDCWD, target, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
	}
	if (renameat2(AT_FDCWD, temporary->name, AT_FDCWD, target, RENAME_NOREPLACE) == 0) {
		clear_temporary_name(temporary);
		return 0;
	}
	if (errno != EINVAL)
		return errno;
	/* a filesystem without RENAME_NOREPLACE: a hard link never replaces either */
	if (link(temporary->name, target) != 0)
		return errno;
	unlink(temporary->name);
	clear_temporary_name(temporary);
	return 0;
}

/* Gives the written file the name `path`, replacing a file of ours there, never another user's
 * (one could otherwise make heapsnap, as root, replace a file it cannot write). */
static int link_replacing_own(struct temporary *temporary, const char *path, struct hs_error *err)
{
	int error = link_new(temporary, path);
	if (error == 0)
		return 0;
	if (error != EEXIST)
		return hs_error_set_errno(err, error, "cannot create %s", path);
	struct stat st;
	if (lstat(path, &st) == 0 && st.st_uid != geteuid())
		return hs_error_set(err,
				    "%s exists and belongs to uid %u; not replacing it (choose "
				    "another name with -o)",
				    path, (unsigned)st.st_uid);
	/* rename replaces atomically, and only a name can be renamed */
	if (temporary->name[0] == '\0') {
		char fd_path[64];
		snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", temporary->fd);
		if (set_temporary_name(temporary, path, err) != 0)
			return -1;
		unlink(temporary->name); /* a stale one of this pid */
		if (linkat(AT_FDCWD, fd_path, AT_FDCWD, temporary->name, AT_SYMLINK_FOLLOW) != 0) {
			int saved = errno;
			clear_temporary_name(temporary);
			return hs_error_set_errno(err, saved, "cannot create %s", path);
		}
	}
	if (rename(temporary->name, path) != 0)
		return hs_error_set_errno(err, errno, "cannot rename %s to %s", temporary->name,
					  path);
	clear_temporary_name(temporary);
	return 0;
}

/* `path` with -NUMBER before its ".snap" extension (or at its end without one). */
static int numbered_name(const char *path, int number, char *out, size_t out_size)
{
	size_t length = strlen(path);
	size_t stem = length >= 5 && strcmp(path + length - 5, ".snap") == 0 ? length - 5 : length;
	return (size_t)snprintf(out, out_size, "%.*s-%d%s", (int)stem, path, number, path + stem) <
			       out_size
		       ? 0
		       : -1;
}

static int link_numbered(struct temporary *temporary, char *path, size_t path_size,
			 struct hs_error *err)
{
	char candidate[PATH_BYTES];
	snprintf(candidate, sizeof candidate, "%s", path);
	for (int number = 2;; number++) {
		int error = link_new(temporary, candidate);
		if (error == 0)
			break;
		if (error != EEXIST)
			return hs_error_set_errno(err, error, "cannot create %s", candidate);
		if (number > NUMBERED_NAMES_MAX ||
		    numbered_name(path, number, candidate, sizeof candidate) != 0)
			return hs_error_set(err, "cannot create %s: %d names like it are taken", path,
					    NUMBERED_NAMES_MAX);
	}
	if ((size_t)snprintf(path, path_size, "%s", candidate) >= path_size)
		return hs_error_set(err, "output path too long: %s", candidate);
	return 0;
}

int safe_file_check(const char *path, const char *input, struct hs_error *err)
{
	struct stat out, in;
	if (input && stat(path, &out) == 0 && stat(input, &in) == 0 && out.st_dev == in.st_dev &&
	    out.st_ino == in.st_ino)
		return hs_error_set(err,
				    "%s is the file this command reads (%s): not writing over it "
				    "(choose another name with -o)",
				    path, input);
	return 0;
}

static int write_file(char *path, size_t path_size, bool numbered, const char *input,
		      safe_file_writer write, void *context, struct hs_error *err)
{
	if (safe_file_check(path, input, err) != 0)
		return -1;
	struct temporary temporary;
	if (open_temporary(&temporary, path, err) != 0)
		return -1;
	int result = write(temporary.fd, path, context, err);
	if (result == 0 && fsync(temporary.fd) != 0)
		result = hs_error_set_errno(err, errno, "cannot write %s (fsync)", path);
	if (result == 0)
		result = numbered ? link_numbered(&temporary, path, path_size, err)
				  : link_replacing_own(&temporary, path, err);
	if (close(temporary.fd) != 0 && result == 0)
		result = hs_error_set_errno(err, errno, "cannot write %s (close)", path);
	if (temporary.name[0] != '\0')
		unlink(temporary.name);
	clear_temporary_name(&temporary);
	if (result == 0)
		fsync_directory_of(path);
	return result;
}

int safe_file_write(const char *path, const char *input, safe_file_writer write, void *context,
		    struct hs_error *err)
{
	char copy[PATH_BYTES];
	if ((size_t)snprintf(copy, sizeof copy, "%s", path) >= sizeof copy)
		return hs_error_set(err, "output path too long: %s", path);
	return write_file(copy, sizeof copy, false, input, write, context, err);
}

/* A snapshot's core image, compressed: what snapshot_file_write hands safe_file_write */
struct image_write {
	const struct core_image *image;
	const struct seekable_options *options;
	struct seekable_stats *stats;
};

static int write_image(int fd, const char *path, void *context, struct hs_error *err)
{
	struct image_write *write = context;
	return core_image_write(write->image, fd, path, write->options, write->stats, err);
}

int snapshot_file_write(const struct core_image *image, const char *path, const char *input,
			const struct seekable_options *options, struct seekable_stats *stats,
			struct hs_error *err)
{
	struct image_write write = {image, options, stats};
	return safe_file_write(path, input, write_image, &write, err);
}

int snapshot_file_write_new(const struct core_image *image, char *path, size_t path_size,
			    const struct seekable_options *options, struct seekable_stats *stats,
			    struct hs_error *err)
{
	struct image_write write = {image, options, stats};
	return write_file(path, path_size, true, NULL, write_image, &write, err);
}
