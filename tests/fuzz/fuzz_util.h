/* What the libFuzzer harnesses share: the library's readers take a path, so a fuzz input is put in
 * an anonymous memory file (memfd) and named by its /proc/self/fd path; nothing touches the disk.
 * Every harness is one file, fuzz_NAME.c, with its seed corpus in corpus/NAME/. */
#ifndef HEAPSNAP_FUZZ_UTIL_H
#define HEAPSNAP_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

struct fuzz_file {
	int fd;
	char path[64]; /* /proc/self/fd/N */
};

/* A memfd holding `size` bytes (copied from `data` unless it is NULL: then zeros); exits on
 * failure, which is the harness's own, not the library's. */
static inline void fuzz_file_open(struct fuzz_file *file, const void *data, size_t size)
{
	file->fd = memfd_create("heapsnap-fuzz", MFD_CLOEXEC);
	if (file->fd < 0 || ftruncate(file->fd, (off_t)size) != 0 ||
	    (data && size && pwrite(file->fd, data, size, 0) != (ssize_t)size)) {
		perror("heapsnap fuzz: memfd");
		abort();
	}
	snprintf(file->path, sizeof file->path, "/proc/self/fd/%d", file->fd);
}

static inline void fuzz_file_close(struct fuzz_file *file)
{
	close(file->fd);
	file->fd = -1;
}

#endif
