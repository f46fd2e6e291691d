/* The protobuf wire encoder against the examples of protobuf's encoding guide
 * (protobuf.dev/programming-guides/encoding): field 1 = 150 is 08 96 01, field 2 = "testing" is
 * 12 07 74 65 73 74 69 6e 67, packed field 4 = [3, 270, 86942] is 22 06 03 8e 02 9e a7 05; an
 * int64 of -2 takes ten bytes (a negative number as its two's complement); and the gzip writer's
 * output is a gzip member (magic 1f 8b, deflate) that gunzip (zlib's inflate, gzip mode) gives
 * back as written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "formats/gzip_file.h"
#include "formats/protobuf.h"
#include "test_util.h"

static bool same(const struct protobuf *buffer, const uint8_t *expected, size_t length)
{
	return !buffer->failed && buffer->length == length &&
	       memcmp(buffer->bytes, expected, length) == 0;
}

static void check_gzip(void)
{
	char path[] = "/tmp/heapsnap-test-gzip-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "a temporary file");
	if (fd < 0)
		return;
	static char text[100000];
	for (size_t i = 0; i < sizeof text; i++)
		text[i] = (char)('a' + (i * 7 + i / 13) % 26);
	struct hs_error err;
	CHECK(gzip_file_write(fd, path, text, sizeof text, &err) == 0, "gzip_file_write");
	close(fd);
	gzFile in = gzopen(path, "rb");
	static char back[sizeof text + 16];
	int got = in ? gzread(in, back, sizeof back) : -1;
	FILE *raw = fopen(path, "rb");
	unsigned char magic[3] = {0};
	CHECK(raw && fread(magic, 1, 3, raw) == 3 && magic[0] == 0x1f && magic[1] == 0x8b &&
		      magic[2] == 8,
	      "a gzip member, deflated: %02x %02x %02x", magic[0], magic[1], magic[2]);
	CHECK(in && got == (int)sizeof text && memcmp(back, text, sizeof text) == 0,
	      "gunzipped, the bytes written: %d", got);
	if (raw)
		fclose(raw);
	if (in)
		gzclose(in);
	unlink(path);
}

int main(void)
{
	struct protobuf buffer = {0};
	protobuf_varint(&buffer, 1, 150);
	CHECK(same(&buffer, (const uint8_t[]){0x08, 0x96, 0x01}, 3), "varint 150");

	protobuf_clear(&buffer);
	protobuf_bytes(&buffer, 2, "testing", 7);
	CHECK(same(&buffer, (const uint8_t[]){0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'}, 9),
	      "string \"testing\"");

	protobuf_clear(&buffer);
	protobuf_packed(&buffer, 4, (const uint64_t[]){3, 270, 86942}, 3);
	CHECK(same(&buffer, (const uint8_t[]){0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05}, 8),
	      "packed [3, 270, 86942]");

	protobuf_clear(&buffer);
	protobuf_varint(&buffer, 1, (uint64_t)(int64_t)-2);
	CHECK(same(&buffer,
		   (const uint8_t[]){0x08, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		   11),
	      "int64 -2 in ten bytes");

	protobuf_clear(&buffer);
	protobuf_packed(&buffer, 4, NULL, 0);
	protobuf_bytes(&buffer, 2, "", 0);
	CHECK(same(&buffer, (const uint8_t[]){0x12, 0x00}, 2),
	      "an empty packed field is left out, an empty string is not");
	protobuf_free(&buffer);

	check_gzip();
	return TEST_EXIT();
}
