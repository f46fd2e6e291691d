/* Bytes written to a file descriptor as one gzip member (RFC 1952), the compression pprof's
 * profile.proto asks of a profile on disk. zlib does the deflating. */
#ifndef HEAPSNAP_GZIP_FILE_H
#define HEAPSNAP_GZIP_FILE_H

#include <stddef.h>

#include "common/error.h"

/* Writes `bytes` gzip-compressed to `fd` (named `path` in errors); -1 on a write error or when
 * zlib cannot start. */
int gzip_file_write(int fd, const char *path, const void *bytes, size_t length,
		    struct hs_error *err);

#endif
