/* The gzip writer (see gzip_file.h): zlib's deflate with a gzip header and trailer (windowBits
 * 15 + 16), fed the whole input at once and drained in chunks to the file. */
#include "formats/gzip_file.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include <zlib.h>

static int write_all(int fd, const char *path, const uint8_t *bytes, size_t length,
		     struct hs_error *err)
{
	while (length) {
		ssize_t written = write(fd, bytes, length);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			return hs_error_set_errno(err, written < 0 ? errno : EIO, "writing %s", path);
		bytes += written;
		length -= (size_t)written;
	}
	return 0;
}

int gzip_file_write(int fd, const char *path, const void *bytes, size_t length,
		    struct hs_error *err)
{
	z_stream stream = {0};
	if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return hs_error_set(err, "cannot start zlib's deflate to write %s", path);
	const uint8_t *next = bytes;
	size_t left = length;
	uint8_t chunk[1 << 16];
	int status = Z_OK, result = 0;
	while (status != Z_STREAM_END && result == 0) {
		/* (avail_in is 32-bit: a larger input goes in in slices) */
		if (stream.avail_in == 0 && left) {
			uInt slice = left > (1u << 30) ? 1u << 30 : (uInt)left;
			stream.next_in = (Bytef *)next;
			stream.avail_in = slice;
			next += slice;
			left -= slice;
		}
		stream.next_out = chunk;
		stream.avail_out = sizeof chunk;
		status = deflate(&stream, left || stream.avail_in ? Z_NO_FLUSH : Z_FINISH);
		if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) {
			result = hs_error_set(err, "zlib's deflate failed writing %s (%d)", path, status);
			break;
		}
		result = write_all(fd, path, chunk, sizeof chunk - stream.avail_out, err);
	}
	deflateEnd(&stream);
	return result;
}
