/* Opening only regular files (see open_file.h). */
#include "open_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int refuse(const struct stat *st)
{
	errno = S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
	return -1;
}

int open_regular_file(const char *path)
{
	/* looked at before opening, since opening a device can already do something */
	struct stat before;
	if (stat(path, &before) != 0)
		return -1;
	if (!S_ISREG(before.st_mode))
		return refuse(&before);
	/* O_NONBLOCK: if a FIFO took the file's place meanwhile, open returns rather than wait */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -1;
	struct stat opened;
	if (fstat(fd, &opened) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (!S_ISREG(opened.st_mode)) {
		close(fd);
		return refuse(&opened);
	}
	return fd;
}

const char *open_regular_file_reason(int errnum)
{
	return errnum == EINVAL ? "not a regular file" : strerror(errnum);
}
