/* The seekable zstd writer and reader: random data written from many pieces (some of them runs of
 * zeros) must read back byte-exact at random offsets, `zstd -d` must accept the file, and damaged
 * files (truncated, a flipped bit in a frame, a broken seek table) must be refused with a message
 * that names the problem, never read wrongly. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "formats/seekable.h"
#include "test_util.h"
#include "common/clock.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static char directory[] = "/tmp/heapsnap-test-seekable-XXXXXX";

static void path_in(char *out, const char *name)
{
	snprintf(out, 4096, "%s/%s", directory, name);
}

static struct seekable_reader *open_file(const char *path, struct hs_error *err)
{
	int fd = open(path, O_RDONLY);
	struct seekable_reader *reader = seekable_open(fd, path, 8u << 20, err);
	if (reader == NULL)
		close(fd);
	return reader;
}

static void copy_file(const char *from, const char *to, size_t limit)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	static char buffer[1 << 20];
	size_t copied = 0;
	ssize_t got;
	while (copied < limit && (got = read(in, buffer, sizeof buffer)) > 0) {
		size_t take = (size_t)got < limit - copied ? (size_t)got : limit - copied;
		if (write(out, buffer, take) != (ssize_t)take)
			break;
		copied += take;
	}
	close(in);
	close(out);
}

static long max_rss_kib(void)
{
	struct rusage usage;
	getrusage(RUSAGE_SELF, &usage);
	return usage.ru_maxrss;
}

static double seconds_now(void)
{
	return monotonic_seconds();
}

/* A seek table of many 1-byte frames (a 110 KB file) once made the reader's cache one slot per byte
 * of its budget: 64 M slots, 1.5 GB touched. Memory must follow what the file holds. */
static void test_tiny_frames_bounded(void)
{
	enum { BYTES = 5000 };
	static uint8_t input[BYTES];
	for (size_t i = 0; i < BYTES; i++)
		input[i] = (uint8_t)(i * 7);
	struct byte_piece piece = {input, BYTES, NULL, 0};
	struct seekable_options options = {.frame_size = 1, .in_caller = true};
	struct seekable_stats stats;
	struct hs_error err = {0};
	char path[4096];
	path_in(path, "tiny_frames.zst");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(seekable_write(fd, path, &piece, 1, &options, &stats, &err) == 0, "%s", err.message);
	close(fd);
	CHECK(stats.frames == BYTES, "%u frames", stats.frames);

	long rss_before = max_rss_kib();
	double began = seconds_now();
	fd = open(path, O_RDONLY);
	struct seekable_reader *reader = seekable_open(fd, path, 64u << 20, &err);
	CHECK(reader != NULL, "open: %s", err.message);
	if (reader == NULL) {
		close(fd);
		return;
	}
	static uint8_t output[BYTES];
	CHECK(seekable_read(reader, 0, output, BYTES, &err) == 0, "read: %s", err.message);
	CHECK(memcmp(output, input, BYTES) == 0, "1-byte frames read back wrong");
	for (size_t i = 0; i < 2000; i++) {
		size_t offset = (size_t)(next_random() % BYTES);
		uint8_t byte;
		CHECK(seekable_read(reader, offset, &byte, 1, &err) == 0 && byte == input[offset],
		      "byte %zu: %s", offset, err.message);
	}
	seekable_close(reader);
	long grown_kib = max_rss_kib() - rss_before;
	double took = seconds_now() - began;
	CHECK(grown_kib < 64 * 1024, "opening a %u-frame file of 1-byte frames took %ld KiB",
	      stats.frames, grown_kib);
	CHECK(took < 5, "opening and reading a file of 1-byte frames took %.1f s", took);
}

/* A frame that fails is remembered: reading it again fails at once, and the reader says which. */
static void check_damage_remembered(struct seekable_reader *reader, uint64_t offset)
{
	struct hs_error err = {0}, damage = {0};
	uint8_t byte;
	CHECK(seekable_check_damage(reader, &damage) != 0, "the damage is not reported");
	CHECK(damage.code == HS_ERR_DAMAGED &&
		      strstr(damage.message, "corrupt zstd frame") != NULL &&
		      strstr(damage.message, "at offset") != NULL,
	      "damage message: %s", damage.message);
	CHECK(seekable_read(reader, offset, &byte, 1, &err) != 0, "a damaged frame read back");
	CHECK(err.code == HS_ERR_DAMAGED && strstr(err.message, "failed before") != NULL,
	      "second read: %s", err.message);
}

/* A byte source reading the calling process's own memory, `at` being the address; one that
 * fails at the address `fail_at`. */
static uintptr_t fail_at;
static int read_own_memory(const struct byte_source *source, uint64_t at, void *out, size_t size)
{
	(void)source;
	if (fail_at != 0 && fail_at >= at && fail_at < at + size)
		return -1;
	memcpy(out, (const void *)(uintptr_t)at, size);
	return 0;
}

static bool same_files(const char *one, const char *other)
{
	FILE *a = fopen(one, "rb"), *b = fopen(other, "rb");
	bool same = a && b;
	for (int x = 0, y = 0; same && (x != EOF || y != EOF);) {
		x = fgetc(a);
		y = fgetc(b);
		same = x == y;
	}
	if (a)
		fclose(a);
	if (b)
		fclose(b);
	return same;
}

/* Pieces read from a source as they are compressed (a clone's memory) make the same file as the
 * same bytes held in memory; a source that cannot be read fails the write, and says so. */
static void test_sources(const struct byte_piece *pieces, size_t count, const char *reference,
			 const struct seekable_options *options)
{
	static const struct byte_source own_memory = {read_own_memory};
	struct byte_piece *sourced = calloc(count, sizeof *sourced);
	uintptr_t middle = 0;
	for (size_t i = 0; i < count; i++) {
		sourced[i] = pieces[i];
		if (pieces[i].data != NULL && pieces[i].size > 0) {
			sourced[i].data = NULL;
			sourced[i].source = &own_memory;
			sourced[i].source_at = (uint64_t)(uintptr_t)pieces[i].data;
			middle = (uintptr_t)pieces[i].data + pieces[i].size / 2;
		}
	}
	char path[4096];
	path_in(path, "sourced.zst");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	struct seekable_stats stats;
	struct hs_error err;
	CHECK(seekable_write(fd, path, sourced, count, options, &stats, &err) == 0, "%s",
	      err.message);
	close(fd);
	CHECK(same_files(path, reference), "bytes read from a source are written as the same bytes "
					   "held in memory");
	fail_at = middle;
	CHECK(middle != 0, "no piece to read from a source");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(seekable_write(fd, path, sourced, count, options, &stats, &err) != 0 &&
		      err.code == HS_ERR_FAULT && strstr(err.message, "could not be read") != NULL,
	      "a source that cannot be read fails the write, said: %s", err.message);
	close(fd);
	fail_at = 0;
	free(sourced);
}

int main(void)
{
	if (mkdtemp(directory) == NULL)
		return 2;
	/* 10 MiB of input in pieces: random bytes, compressible text, zero runs */
	enum { PIECES = 40 };
	struct byte_piece pieces[PIECES];
	size_t total = 0;
	uint8_t *expected = malloc(12u << 20);
	for (int i = 0; i < PIECES; i++) {
		size_t size = (size_t)(next_random() % (400u << 10));
		if (i == 7)
			size = 0; /* empty pieces are legal */
		uint8_t *data = NULL;
		if (i % 5 != 3) {
			data = malloc(size ? size : 1);
			for (size_t k = 0; k < size; k++)
				data[k] = i % 2 ? (uint8_t)next_random() : (uint8_t)("heapsnap"[k % 8]);
			memcpy(expected + total, data, size);
		} else {
			memset(expected + total, 0, size);
		}
		pieces[i] = (struct byte_piece){data, size, NULL, 0};
		total += size;
	}
	char path[4096];
	path_in(path, "good.zst");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	struct seekable_options options = {.level = 1, .threads = 3, .frame_size = 1u << 20};
	struct seekable_stats stats;
	struct hs_error err;
	CHECK(seekable_write(fd, path, pieces, PIECES, &options, &stats, &err) == 0, "%s",
	      err.message);
	close(fd);
	CHECK(stats.input_bytes == total, "input %llu vs %zu", (unsigned long long)stats.input_bytes,
	      total);
	CHECK(stats.frames == (total + (1u << 20) - 1) / (1u << 20), "frames %u", stats.frames);
	struct stat st;
	stat(path, &st);
	CHECK((uint64_t)st.st_size == stats.output_bytes, "file %lld vs stats %llu",
	      (long long)st.st_size, (unsigned long long)stats.output_bytes);

	/* compressed in the calling thread (the hook's forked child): the very same file */
	char inline_path[4096];
	path_in(inline_path, "good-in-caller.zst");
	int inline_fd = open(inline_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	struct seekable_options in_caller = options;
	in_caller.in_caller = true;
	struct seekable_stats inline_stats;
	CHECK(seekable_write(inline_fd, inline_path, pieces, PIECES, &in_caller, &inline_stats,
			     &err) == 0,
	      "%s", err.message);
	close(inline_fd);
	CHECK(inline_stats.output_bytes == stats.output_bytes, "in the caller: %llu bytes, not %llu",
	      (unsigned long long)inline_stats.output_bytes, (unsigned long long)stats.output_bytes);
	CHECK(same_files(path, inline_path),
	      "compressing in the caller writes the same bytes as the threads");
	test_sources(pieces, PIECES, path, &options);
	test_sources(pieces, PIECES, path, &in_caller);

	fd = open(path, O_RDONLY);
	CHECK(seekable_detect(fd) == SEEKABLE_KIND_SEEKABLE_ZSTD, "detect");
	close(fd);
	struct seekable_reader *reader = open_file(path, &err);
	CHECK(reader != NULL, "open: %s", err.message);
	if (reader) {
		CHECK(seekable_size(reader) == total, "size");
		uint8_t *buffer = malloc(3u << 20);
		for (int i = 0; i < 300; i++) {
			size_t length = (size_t)(next_random() % (3u << 20));
			size_t offset = (size_t)(next_random() % (total + 1));
			if (length > total - offset)
				length = total - offset;
			CHECK(seekable_read(reader, offset, buffer, length, &err) == 0, "read: %s",
			      err.message);
			CHECK(memcmp(buffer, expected + offset, length) == 0,
			      "bytes differ at %zu+%zu", offset, length);
		}
		CHECK(seekable_read(reader, total - 1, buffer, 2, &err) != 0, "read past the end");
		CHECK(strstr(err.message, "passes the end") != NULL, "message: %s", err.message);
		free(buffer);
		seekable_close(reader);
	}

	/* zstd(1) reads it as a plain zstd file: the seek table is a skippable frame */
	char command[9000], plain[4096];
	path_in(plain, "plain.bin");
	snprintf(command, sizeof command, "zstd -q -d -f '%s' -o '%s'", path, plain);
	CHECK(system(command) == 0, "zstd -d failed");
	int plain_fd = open(plain, O_RDONLY);
	uint8_t *decompressed = malloc(total + 1);
	CHECK(plain_fd >= 0 && read(plain_fd, decompressed, total + 1) == (ssize_t)total,
	      "zstd -d size");
	CHECK(memcmp(decompressed, expected, total) == 0, "zstd -d bytes");
	close(plain_fd);

	/* truncated: every cut must be refused at open or at read, never misread */
	char damaged[4096];
	path_in(damaged, "damaged.zst");
	size_t cuts[] = {0, 5, 100, (size_t)st.st_size / 2, (size_t)st.st_size - 1};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		copy_file(path, damaged, cuts[i]);
		reader = open_file(damaged, &err);
		CHECK(reader == NULL, "truncated to %zu bytes was accepted", cuts[i]);
		if (reader)
			seekable_close(reader);
		else
			CHECK(strstr(err.message, damaged) != NULL, "message names no file: %s",
			      err.message);
	}

	/* a flipped bit inside frame data: the frame checksum catches it */
	copy_file(path, damaged, (size_t)st.st_size);
	fd = open(damaged, O_RDWR);
	uint8_t byte;
	off_t where = 200000;
	pread(fd, &byte, 1, where);
	byte ^= 0x10;
	pwrite(fd, &byte, 1, where);
	close(fd);
	reader = open_file(damaged, &err);
	CHECK(reader != NULL, "a bit flip in data should pass open: %s", err.message);
	if (reader) {
		uint8_t *all = malloc(total);
		int result = seekable_read(reader, 0, all, total, &err);
		CHECK(result != 0, "bit flip not detected");
		CHECK(result != 0 && err.code == HS_ERR_DAMAGED &&
			      strstr(err.message, "corrupt zstd frame") != NULL,
		      "message: %s", err.message);
		/* where the damage is: the first frame that fails when read in order */
		uint64_t damaged_offset = 0;
		while (damaged_offset < total &&
		       seekable_read(reader, damaged_offset, all, 1, NULL) == 0)
			damaged_offset++;
		check_damage_remembered(reader, damaged_offset);
		free(all);
		seekable_close(reader);
	}

	/* a broken seek table: a frame size that does not add up */
	copy_file(path, damaged, (size_t)st.st_size);
	fd = open(damaged, O_RDWR);
	uint8_t entry[4];
	off_t first_entry = st.st_size - 9 - (off_t)stats.frames * 8;
	pread(fd, entry, 4, first_entry);
	entry[0] ^= 0x01;
	pwrite(fd, entry, 4, first_entry);
	close(fd);
	reader = open_file(damaged, &err);
	CHECK(reader == NULL, "broken seek table accepted");
	CHECK(reader != NULL ||
		      (err.code == HS_ERR_DAMAGED && strstr(err.message, "bad seek table") != NULL),
	      "message: %s", err.message);
	if (reader)
		seekable_close(reader);

	test_tiny_frames_bounded();

	snprintf(command, sizeof command, "rm -rf '%s'", directory);
	system(command);
	for (int i = 0; i < PIECES; i++)
		free((void *)pieces[i].data);
	free(expected);
	free(decompressed);
	return TEST_EXIT();
}
