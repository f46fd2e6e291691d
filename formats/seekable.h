/* The zstd seekable format: a byte stream cut into independent zstd frames, followed by a skippable
 * frame holding the seek table (compressed and decompressed size of every frame). `zstd -d` reads it
 * as an ordinary zstd file; we can decompress any byte range by decompressing only the frames that
 * hold it. Spec: https://github.com/facebook/zstd/blob/dev/contrib/seekable_format/zstd_seekable_compression_format.md
 *
 * The reader also accepts a plain uncompressed file (raw mode), so the ELF core parser serves both
 * snapshots and imported cores. */
#ifndef HEAPSNAP_SEEKABLE_H
#define HEAPSNAP_SEEKABLE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

#define SEEKABLE_MAGIC 0x8F92EAB1u
#define SEEKABLE_SKIPPABLE_MAGIC 0x184D2A5Eu
#define SEEKABLE_FOOTER_SIZE 9
#define SEEKABLE_CHECKSUM_FLAG 0x80 /* the footer's descriptor: entries carry checksums */
#define SEEKABLE_ENTRY_SIZE 12	    /* compressed size, decompressed size, checksum */
#define SEEKABLE_DEFAULT_FRAME_SIZE (4u << 20)
/* A frame's decompressed size must fit the seek table's 32-bit field; we refuse more than 1 GiB,
 * as zstd's reference implementation does. */
#define SEEKABLE_MAX_FRAME_SIZE (1u << 30)

/* Bytes read when they are compressed rather than held in memory: a stopped clone's memory, say,
 * which would otherwise be copied whole into a buffer first. `read` fills `out` with the `size`
 * bytes at `at`; it returns 0, or -1 when any of them cannot be read. Called from several
 * compression threads at once. */
struct byte_source {
	int (*read)(const struct byte_source *source, uint64_t at, void *out, size_t size);
};

/* One piece of the stream to write: `size` bytes at `data`; or, when data is NULL, read from
 * `source` at `source_at`; or `size` zero bytes when both are NULL. */
struct byte_piece {
	const void *data;
	uint64_t size;
	const struct byte_source *source;
	uint64_t source_at;
};

struct seekable_options {
	int level;	     /* zstd level; 0 means the default (1) */
	int threads;	     /* compression threads; 0 means one per online CPU */
	uint32_t frame_size; /* bytes of input per frame; 0 means SEEKABLE_DEFAULT_FRAME_SIZE */
	/* compress in the calling thread, starting no thread and taking no lock: for a process
	   forked from a signal handler, which must not rely on either (the in-process hook) */
	bool in_caller;
};

struct seekable_stats {
	uint64_t input_bytes;
	uint64_t output_bytes;
	uint32_t frames;
};

/* Compresses the concatenation of `pieces` into `fd` (from its current position). `path` only names
 * the file in error messages. A byte_source that cannot be read fails it with HS_ERR_FAULT. */
int seekable_write(int fd, const char *path, const struct byte_piece *pieces, size_t piece_count,
		   const struct seekable_options *options, struct seekable_stats *stats,
		   struct hs_error *err);

struct seekable_reader;

/* What kind of file `fd` holds, judged from its first and last bytes. */
enum seekable_kind {
	SEEKABLE_KIND_SEEKABLE_ZSTD, /* zstd frames ending in a seek table */
	SEEKABLE_KIND_PLAIN_ZSTD,    /* zstd without a seek table */
	SEEKABLE_KIND_OTHER,
};
enum seekable_kind seekable_detect(int fd);
/* Whether the file's last zstd frame is incomplete: a file cut short, not a whole stream that
 * merely has no seek table. */
bool seekable_ends_mid_frame(int fd);
/* Decompresses the start of a zstd stream (of whatever kind) into `out`, as far as the file's
 * first MiB goes; returns how many bytes came out (0 when none). */
size_t seekable_peek(int fd, uint8_t *out, size_t size);

/* Opens a seekable zstd file, validating the seek table against the file's size. Takes ownership of
 * fd on success. `cache_bytes` bounds the memory kept for decompressed frames. */
struct seekable_reader *seekable_open(int fd, const char *path, size_t cache_bytes,
				      struct hs_error *err);
/* Opens an uncompressed file: reads are served from a read-only mapping of it. */
struct seekable_reader *seekable_open_raw(int fd, const char *path, struct hs_error *err);
void seekable_close(struct seekable_reader *reader);

/* Size of the decompressed stream. */
uint64_t seekable_size(const struct seekable_reader *reader);
uint64_t seekable_file_size(const struct seekable_reader *reader);
uint32_t seekable_frame_count(const struct seekable_reader *reader);
/* For raw mode, the whole file's bytes; NULL for compressed files. */
const uint8_t *seekable_raw_bytes(const struct seekable_reader *reader);

/* Copies stream bytes [offset, offset+size) into buf, decompressing only the frames needed. Fails
 * cleanly past the end of the stream and on a corrupt frame. */
/* The decompressed frame holding stream `offset`, in place: its bytes, and in *start, *end the
 * stream offsets it covers. Valid until the reader decompresses another frame, which changes
 * seekable_generation (a raw reader's one view never changes). NULL on error. */
const uint8_t *seekable_frame_at(struct seekable_reader *reader, uint64_t offset, uint64_t *start,
				 uint64_t *end, struct hs_error *err);
uint64_t seekable_generation(const struct seekable_reader *reader);
int seekable_read(struct seekable_reader *reader, uint64_t offset, void *buf, size_t size,
		  struct hs_error *err);

/* -1, with the first failure's message (file, frame number, its offset, why), once any frame has
 * failed to read or decompress; 0 while every frame read so far was whole. A damaged frame is
 * remembered: later reads of it fail at once. */
int seekable_check_damage(const struct seekable_reader *reader, struct hs_error *err);
/* How many frames failed so far. */
uint64_t seekable_damaged_frames(const struct seekable_reader *reader);
/* The decompressed stream's range [*start, *end) of the `nth` frame that failed so far (in
 * stream order); false past the last. */
bool seekable_damaged_range(const struct seekable_reader *reader, uint64_t nth, uint64_t *start,
			    uint64_t *end);

#endif
