/* Writing and reading the zstd seekable format (see seekable.h). The writer compresses frames on a
 * pool of threads and writes them in order as they finish, so compression and writing overlap; the
 * reader keeps a small LRU cache of decompressed frames so that nearby reads cost one decompression,
 * and decompresses the next frame on a thread of its own while a walk goes through the memory in
 * order. */
#include "seekable.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

static void put_le32(uint8_t *out, uint32_t value)
{
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(value >> (8 * i));
}

static uint32_t get_le32(const uint8_t *in)
{
	return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 |
	       (uint32_t)in[3] << 24;
}

/* Writes all of buf, retrying on short writes and EINTR. */
static int write_all(int fd, const char *path, const void *buf, size_t size, struct hs_error *err)
{
	const uint8_t *at = buf;
	while (size > 0) {
		ssize_t done = write(fd, at, size);
		if (done < 0) {
			if (errno == EINTR)
				continue;
			int saved = errno;
			if (saved == ENOSPC || saved == EDQUOT || saved == EFBIG)
				return hs_error_set_errno(err, saved,
							  "cannot write %s (free space in its "
							  "directory or choose another with -o)",
							  path);
			return hs_error_set_errno(err, saved, "cannot write %s", path);
		}
		at += done;
		size -= (size_t)done;
	}
	return 0;
}

/* ---- writer ---------------------------------------------------------------------------------- */

struct frame_slot {
	uint64_t frame; /* which frame the slot holds, valid when state != SLOT_FREE */
	enum { SLOT_FREE, SLOT_BUSY, SLOT_DONE, SLOT_FAILED } state;
	void *output;
	size_t output_size;
	enum hs_error_code code; /* why the frame failed (SLOT_FAILED), said in `error` */
	char error[256];
};

struct write_job {
	const struct byte_piece *pieces;
	size_t piece_count;
	uint64_t *piece_starts; /* stream offset of each piece, for binary search */
	uint64_t total;
	uint32_t frame_size;
	uint64_t frame_count;
	int level;

	pthread_mutex_t lock;
	pthread_cond_t changed;
	uint64_t next_frame;	/* next frame a worker will take */
	uint64_t written;	/* frames the writer has consumed so far */
	bool abort;
	struct frame_slot *slots;
	size_t slot_count;
	size_t output_capacity;

	/* the writer's own (the calling thread's): where the frames go, in order */
	int fd;
	const char *path;
	uint8_t *table; /* the seek table, filled as frames are written */
	uint64_t output_bytes;
};

/* Copies stream bytes [offset, offset+size) out of the pieces, or returns a pointer into a single
 * piece when the range lies inside one (no copy needed); NULL when a source could not be read. */
static const void *gather(const struct write_job *job, uint64_t offset, size_t size, uint8_t *scratch)
{
	size_t low = 0, high = job->piece_count;
	while (high - low > 1) {
		size_t mid = (low + high) / 2;
		if (job->piece_starts[mid] <= offset)
			low = mid;
		else
			high = mid;
	}
	size_t index = low;
	/* skip empty pieces that share a start offset */
	while (index < job->piece_count &&
	       offset >= job->piece_starts[index] + job->pieces[index].size)
		index++;
	if (index < job->piece_count && job->pieces[index].data != NULL &&
	    offset + size <= job->piece_starts[index] + job->pieces[index].size)
		return (const uint8_t *)job->pieces[index].data + (offset - job->piece_starts[index]);
	size_t filled = 0;
	while (filled < size && index < job->piece_count) {
		const struct byte_piece *piece = &job->pieces[index];
		uint64_t within = offset + filled - job->piece_starts[index];
		uint64_t available = piece->size - within;
		size_t take = size - filled < available ? size - filled : (size_t)available;
		if (piece->data != NULL)
			memcpy(scratch + filled, (const uint8_t *)piece->data + within, take);
		else if (piece->source == NULL)
			memset(scratch + filled, 0, take);
		else if (piece->source->read(piece->source, piece->source_at + within, scratch + filled,
					     take) != 0)
			return NULL;
		filled += take;
		index++;
	}
	return scratch;
}

/* Records in `slot` why its frame failed; returns the code. */
static enum hs_error_code frame_failed(struct frame_slot *slot, enum hs_error_code code,
				       const char *why)
{
	slot->code = code;
	snprintf(slot->error, sizeof slot->error, "%s", why);
	return code;
}

/* Compresses frame `frame` of the stream into slot->output: HS_ERR_NONE, or why not (the code, and
 * its words in slot->error). A source that cannot be read is HS_ERR_FAULT, for the caller to copy
 * what it can and write again. */
static enum hs_error_code compress_frame(const struct write_job *job, ZSTD_CCtx *context,
					 uint8_t *scratch, uint64_t frame, struct frame_slot *slot)
{
	uint64_t offset = frame * job->frame_size;
	size_t size = (size_t)(job->total - offset < job->frame_size ? job->total - offset
								   : job->frame_size);
	const void *input = gather(job, offset, size, scratch);
	if (input == NULL)
		return frame_failed(slot, HS_ERR_FAULT, "part of it could not be read");
	size_t produced = ZSTD_compress2(context, slot->output, job->output_capacity, input, size);
	if (ZSTD_isError(produced))
		return frame_failed(slot, HS_ERR_OTHER, ZSTD_getErrorName(produced));
	slot->output_size = produced;
	return HS_ERR_NONE;
}

static ZSTD_CCtx *compression_context(int level)
{
	ZSTD_CCtx *context = ZSTD_createCCtx();
	if (context) {
		ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level);
		/* a per-frame checksum lets the reader detect a flipped bit in any frame */
		ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1);
	}
	return context;
}

static void *compress_worker(void *argument)
{
	struct write_job *job = argument;
	uint8_t *scratch = malloc(job->frame_size);
	ZSTD_CCtx *context = compression_context(job->level);
	bool ready = scratch != NULL && context != NULL;
	pthread_mutex_lock(&job->lock);
	for (;;) {
		if (job->abort || job->next_frame >= job->frame_count)
			break;
		uint64_t frame = job->next_frame++;
		struct frame_slot *slot = &job->slots[frame % job->slot_count];
		/* the slot is reusable once the writer has consumed the frame that held it before */
		while (!job->abort && frame >= job->written + job->slot_count)
			pthread_cond_wait(&job->changed, &job->lock);
		if (job->abort)
			break;
		slot->frame = frame;
		slot->state = SLOT_BUSY;
		pthread_mutex_unlock(&job->lock);

		enum hs_error_code failure =
			ready ? compress_frame(job, context, scratch, frame, slot)
			      : frame_failed(slot, HS_ERR_NOMEM,
					     "out of memory for a compression context");

		pthread_mutex_lock(&job->lock);
		slot->state = failure != HS_ERR_NONE ? SLOT_FAILED : SLOT_DONE;
		pthread_cond_broadcast(&job->changed);
	}
	pthread_mutex_unlock(&job->lock);
	ZSTD_freeCCtx(context);
	free(scratch);
	return NULL;
}

static int online_cpus(void)
{
	long count = sysconf(_SC_NPROCESSORS_ONLN);
	return count > 0 ? (int)count : 1;
}

/* The seek table's entry for `frame`: its compressed and decompressed sizes, and its checksum,
 * the low 32 bits of XXH64 of its content, as the seekable format defines it: the very checksum
 * zstd ends each frame with (ZSTD_c_checksumFlag), so nothing is hashed twice. A reader that
 * finds a frame whose own checksum is not its entry's knows the frame is not this file's. */
static void put_entry(uint8_t *table, const struct write_job *job, uint64_t frame,
		      const struct frame_slot *slot)
{
	uint8_t *entry = table + 8 + frame * SEEKABLE_ENTRY_SIZE;
	uint32_t input_size = (uint32_t)(job->total - frame * job->frame_size < job->frame_size
						 ? job->total - frame * job->frame_size
						 : job->frame_size);
	put_le32(entry, (uint32_t)slot->output_size);
	put_le32(entry + 4, input_size);
	memcpy(entry + 8, slot->output + slot->output_size - 4, 4);
}

/* Writes the next frame, compressed into `slot`, and its seek table entry; fails when its
 * compression failed (`failed`, why in the slot) or the write did. */
static int write_frame(struct write_job *job, uint64_t frame, const struct frame_slot *slot,
		       bool failed, struct hs_error *err)
{
	if (failed)
		return hs_error_set_code(err, slot->code, "compressing frame %llu of %s: %s",
					 (unsigned long long)frame, job->path, slot->error);
	if (write_all(job->fd, job->path, slot->output, slot->output_size, err) != 0)
		return -1;
	put_entry(job->table, job, frame, slot);
	job->output_bytes += slot->output_size;
	return 0;
}

/* Compresses and writes every frame on the calling thread, through one slot. */
static int compress_in_caller(struct write_job *job, struct hs_error *err)
{
	uint8_t *scratch = malloc(job->frame_size);
	ZSTD_CCtx *context = compression_context(job->level);
	int result = 0;
	if (scratch == NULL || context == NULL)
		result = hs_error_nomem(err, "compressing %s", job->path);
	for (uint64_t frame = 0; result == 0 && frame < job->frame_count; frame++) {
		struct frame_slot *slot = &job->slots[0];
		bool failed = compress_frame(job, context, scratch, frame, slot) != HS_ERR_NONE;
		result = write_frame(job, frame, slot, failed, err);
	}
	ZSTD_freeCCtx(context);
	free(scratch);
	return result;
}

/* Compresses the frames on `threads` workers and writes each, in order, as it is done. */
static int compress_on_threads(struct write_job *job, int threads, struct hs_error *err)
{
	int result = 0, started = 0;
	pthread_mutex_init(&job->lock, NULL);
	pthread_cond_init(&job->changed, NULL);
	pthread_t *workers = calloc((size_t)threads, sizeof *workers);
	for (; workers != NULL && started < threads; started++)
		if (pthread_create(&workers[started], NULL, compress_worker, job) != 0)
			break;
	if (started == 0)
		result = hs_error_set(err, "cannot start a compression thread for %s", job->path);
	for (uint64_t frame = 0; result == 0 && frame < job->frame_count; frame++) {
		struct frame_slot *slot = &job->slots[frame % job->slot_count];
		pthread_mutex_lock(&job->lock);
		while (!(slot->frame == frame && (slot->state == SLOT_DONE || slot->state == SLOT_FAILED)))
			pthread_cond_wait(&job->changed, &job->lock);
		pthread_mutex_unlock(&job->lock);
		result = write_frame(job, frame, slot, slot->state == SLOT_FAILED, err);
		if (result != 0)
			break;
		pthread_mutex_lock(&job->lock);
		slot->state = SLOT_FREE;
		job->written = frame + 1;
		pthread_cond_broadcast(&job->changed);
		pthread_mutex_unlock(&job->lock);
	}
	pthread_mutex_lock(&job->lock);
	job->abort = true;
	pthread_cond_broadcast(&job->changed);
	pthread_mutex_unlock(&job->lock);
	for (int i = 0; i < started; i++)
		pthread_join(workers[i], NULL);
	pthread_mutex_destroy(&job->lock);
	pthread_cond_destroy(&job->changed);
	free(workers);
	return result;
}

/* The seek table after the frames: a skippable frame whose last 9 bytes are the footer. */
static int write_seek_table(struct write_job *job, struct hs_error *err)
{
	size_t entries = (size_t)job->frame_count * SEEKABLE_ENTRY_SIZE;
	put_le32(job->table, SEEKABLE_SKIPPABLE_MAGIC);
	put_le32(job->table + 4, (uint32_t)(entries + SEEKABLE_FOOTER_SIZE));
	uint8_t *footer = job->table + 8 + entries;
	put_le32(footer, (uint32_t)job->frame_count);
	footer[4] = SEEKABLE_CHECKSUM_FLAG; /* descriptor: each entry has its checksum */
	put_le32(footer + 5, SEEKABLE_MAGIC);
	size_t table_size = 8 + entries + SEEKABLE_FOOTER_SIZE;
	int result = write_all(job->fd, job->path, job->table, table_size, err);
	job->output_bytes += table_size;
	return result;
}

/* The job's frames (size, count, level) and where each piece starts in the stream; *threads
 * no more than there are frames. */
static int plan_job(struct write_job *job, const struct seekable_options *options, int *threads,
		    struct hs_error *err)
{
	job->frame_size = options && options->frame_size ? options->frame_size
							  : SEEKABLE_DEFAULT_FRAME_SIZE;
	if (job->frame_size > SEEKABLE_MAX_FRAME_SIZE)
		return hs_error_set_code(err, HS_ERR_INVALID,
					 "frame size %u is above the format's limit of %u bytes",
					 job->frame_size, SEEKABLE_MAX_FRAME_SIZE);
	job->level = options && options->level ? options->level : 1;
	*threads = options && options->threads > 0 ? options->threads : online_cpus();

	job->piece_starts = malloc((job->piece_count + 1) * sizeof *job->piece_starts);
	if (job->piece_starts == NULL)
		return hs_error_nomem(err, "writing %s", job->path);
	for (size_t i = 0; i < job->piece_count; i++) {
		job->piece_starts[i] = job->total;
		job->total += job->pieces[i].size;
	}
	job->frame_count = (job->total + job->frame_size - 1) / job->frame_size;
	if (job->frame_count > 0x8000000u)
		return hs_error_set_code(err, HS_ERR_INVALID,
					 "%s: %llu frames exceed the seekable format's limit",
					 job->path, (unsigned long long)job->frame_count);
	if ((uint64_t)*threads > job->frame_count)
		*threads = job->frame_count > 0 ? (int)job->frame_count : 1;
	return 0;
}

/* The slots frames are compressed into, and the seek table. */
static int allocate_output(struct write_job *job, struct hs_error *err)
{
	job->output_capacity = ZSTD_compressBound(job->frame_size);
	job->slots = calloc(job->slot_count, sizeof *job->slots);
	job->table = malloc(job->frame_count * SEEKABLE_ENTRY_SIZE + 8 + SEEKABLE_FOOTER_SIZE);
	bool ok = job->slots != NULL && job->table != NULL;
	for (size_t i = 0; ok && i < job->slot_count; i++)
		ok = (job->slots[i].output = malloc(job->output_capacity)) != NULL;
	return ok ? 0 : hs_error_nomem(err, "writing %s", job->path);
}

static void free_job(struct write_job *job)
{
	if (job->slots)
		for (size_t i = 0; i < job->slot_count; i++)
			free(job->slots[i].output);
	free(job->slots);
	free(job->table);
	free(job->piece_starts);
}

int seekable_write(int fd, const char *path, const struct byte_piece *pieces, size_t piece_count,
		   const struct seekable_options *options, struct seekable_stats *stats,
		   struct hs_error *err)
{
	struct write_job job = {
		.pieces = pieces, .piece_count = piece_count, .fd = fd, .path = path};
	int threads = 1;
	if (plan_job(&job, options, &threads, err) != 0) {
		free_job(&job);
		return -1;
	}
	bool in_caller = options && options->in_caller;
	job.slot_count = in_caller ? 1 : (size_t)threads * 2;
	if (allocate_output(&job, err) != 0) {
		free_job(&job);
		return -1;
	}
	int result = in_caller ? compress_in_caller(&job, err) : compress_on_threads(&job, threads, err);
	if (result == 0)
		result = write_seek_table(&job, err);
	if (stats) {
		stats->input_bytes = job.total;
		stats->output_bytes = job.output_bytes;
		stats->frames = (uint32_t)job.frame_count;
	}
	free_job(&job);
	return result;
}

/* ---- reader ---------------------------------------------------------------------------------- */

struct frame_entry {
	uint64_t file_offset;
	uint64_t stream_offset;
	uint32_t compressed_size;
	uint32_t decompressed_size;
	bool damaged; /* it failed to read or decompress once: it is not tried again */
	bool has_checksum; /* the seek table records its content's checksum */
	uint32_t checksum;
	uint32_t cache_slot; /* the slot holding it, plus one; 0: not cached */
};

struct cache_slot {
	int64_t frame; /* -1: empty */
	uint64_t last_use;
	uint8_t *data;
};

/* Read-ahead: when a frame is missed right after the one before it (a walk in address order), a
 * worker decompresses the frame after it into a buffer of its own while the caller works through
 * the current one. Only the calling thread changes the cache: on its next miss it takes the
 * worker's buffer in exchange for the slot's (so views into the cache stay valid as before). */
struct read_ahead {
	pthread_t thread;
	bool started, stopping;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int64_t wanted;	 /* the frame to decompress next, -1: none */
	int64_t working; /* the frame being decompressed, -1: none */
	int64_t ready;	 /* the frame in data, -1: none */
	uint8_t *data;	 /* the worker's buffer (NULL until it needs one) */
	ZSTD_DCtx *context;
	uint8_t *compressed;
};

struct seekable_reader;
static void stop_ahead(struct seekable_reader *reader);

enum {
	/* 16 GiB of default-sized frames: a hit is found through its frame, a miss looks through
	   every slot (a decompression costs far more) */
	MAX_CACHE_SLOTS = 4096,
	/* zstd's densest block is an RLE block: a 3-byte header and 1 byte for up to 128 KiB */
	ZSTD_MAX_EXPANSION = (128 << 10) / 4,
};

struct seekable_reader {
	int fd;
	char *path;
	uint64_t file_size;
	uint64_t stream_size;
	/* raw mode */
	const uint8_t *raw;
	/* compressed mode */
	struct frame_entry *frames;
	uint32_t frame_count;
	ZSTD_DCtx *context;
	struct cache_slot *cache;
	size_t cache_count;
	uint64_t use_clock;
	uint64_t generation; /* frames decompressed so far: a view into the cache is valid while
				it has not changed */
	struct cache_slot *recent; /* the slot read last: most reads are near the one before */
	uint8_t *compressed;
	size_t compressed_capacity;
	uint32_t largest; /* decompressed size of the largest frame: every buffer holds it */
	struct read_ahead ahead;
	/* why the first damaged frame failed; empty while every frame read so far was whole */
	struct hs_error first_damage;
};

enum seekable_kind seekable_detect(int fd)
{
	uint8_t head[4];
	if (pread(fd, head, 4, 0) != 4)
		return SEEKABLE_KIND_OTHER;
	uint32_t magic = get_le32(head);
	bool zstd_frame = magic == ZSTD_MAGICNUMBER || (magic & 0xFFFFFFF0u) == 0x184D2A50u;
	if (!zstd_frame)
		return SEEKABLE_KIND_OTHER;
	struct stat st;
	uint8_t tail[4];
	if (fstat(fd, &st) == 0 && st.st_size >= SEEKABLE_FOOTER_SIZE &&
	    pread(fd, tail, 4, st.st_size - 4) == 4 && get_le32(tail) == SEEKABLE_MAGIC)
		return SEEKABLE_KIND_SEEKABLE_ZSTD;
	return SEEKABLE_KIND_PLAIN_ZSTD;
}

bool seekable_ends_mid_frame(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size <= 0)
		return false;
	const uint8_t *bytes = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (bytes == MAP_FAILED)
		return false;
	size_t at = 0, size = (size_t)st.st_size;
	bool cut = false;
	while (at < size) {
		size_t frame = ZSTD_findFrameCompressedSize(bytes + at, size - at);
		if (ZSTD_isError(frame) || frame == 0) {
			cut = true;
			break;
		}
		at += frame;
	}
	munmap((void *)bytes, size);
	return cut;
}

size_t seekable_peek(int fd, uint8_t *out, size_t size)
{
	enum { READ = 1 << 20 };
	uint8_t *in = malloc(READ);
	ZSTD_DCtx *context = ZSTD_createDCtx();
	size_t produced = 0;
	ssize_t got = in && context ? pread(fd, in, READ, 0) : -1;
	if (got > 0) {
		ZSTD_inBuffer input = {in, (size_t)got, 0};
		ZSTD_outBuffer output = {out, size, 0};
		while (output.pos < output.size && input.pos < input.size &&
		       !ZSTD_isError(ZSTD_decompressStream(context, &output, &input)))
			;
		produced = output.pos;
	}
	ZSTD_freeDCtx(context);
	free(in);
	return produced;
}

static struct seekable_reader *reader_new(int fd, const char *path, struct hs_error *err)
{
	struct stat st;
	if (fstat(fd, &st) != 0) {
		hs_error_set_errno(err, errno, "cannot stat %s", path);
		return NULL;
	}
	struct seekable_reader *reader = calloc(1, sizeof *reader);
	if (reader == NULL || (reader->path = strdup(path)) == NULL) {
		free(reader);
		hs_error_nomem(err, "opening %s", path);
		return NULL;
	}
	reader->fd = fd;
	reader->file_size = (uint64_t)st.st_size;
	return reader;
}

struct seekable_reader *seekable_open_raw(int fd, const char *path, struct hs_error *err)
{
	struct seekable_reader *reader = reader_new(fd, path, err);
	if (reader == NULL)
		return NULL;
	reader->stream_size = reader->file_size;
	if (reader->file_size > 0) {
		void *map = mmap(NULL, reader->file_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			hs_error_set_errno(err, errno, "cannot map %s", path);
			free(reader->path);
			free(reader);
			return NULL;
		}
		reader->raw = map;
	}
	return reader;
}

static int read_exact(int fd, const char *path, void *buf, size_t size, uint64_t offset,
		      struct hs_error *err)
{
	size_t done = 0;
	while (done < size) {
		ssize_t got = pread(fd, (uint8_t *)buf + done, size - done, (off_t)(offset + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return hs_error_set_errno(err, errno, "cannot read %s at offset %llu", path,
						  (unsigned long long)(offset + done));
		if (got == 0)
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s is truncated: it ends before offset %llu",
						 path, (unsigned long long)(offset + done));
		done += (size_t)got;
	}
	return 0;
}

/* Checks the footer and reads the whole seek table into *table (malloc'd, also on failure):
 * *count entries of *entry_size bytes, the table starting at *table_offset in the file. */
static int read_seek_table(struct seekable_reader *reader, uint8_t **table, uint32_t *count,
			   size_t *entry_size, uint64_t *table_offset, struct hs_error *err)
{
	const char *path = reader->path;
	uint8_t footer[SEEKABLE_FOOTER_SIZE];
	if (reader->file_size < SEEKABLE_FOOTER_SIZE + 8)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s is truncated: %llu bytes cannot hold a seek table", path,
					 (unsigned long long)reader->file_size);
	uint64_t footer_offset = reader->file_size - SEEKABLE_FOOTER_SIZE;
	if (read_exact(reader->fd, path, footer, sizeof footer, footer_offset, err) != 0)
		return -1;
	if (get_le32(footer + 5) != SEEKABLE_MAGIC)
		return hs_error_set_code(err, HS_ERR_FORMAT,
					 "%s has no zstd seek table at offset %llu (truncated, or not "
					 "a heapsnap snapshot)",
					 path, (unsigned long long)(footer_offset + 5));
	uint8_t descriptor = footer[4];
	if (descriptor & 0x7C)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s: bad seek table: reserved descriptor bits set at offset "
					 "%llu",
					 path, (unsigned long long)(footer_offset + 4));
	*count = get_le32(footer);
	*entry_size = (descriptor & 0x80) ? 12 : 8;
	uint64_t table_size = 8 + (uint64_t)*count * *entry_size + SEEKABLE_FOOTER_SIZE;
	if (*count > 0x8000000u || table_size > reader->file_size)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s: bad seek table: %u frames do not fit in a file of %llu "
					 "bytes (truncated or corrupt)",
					 path, *count, (unsigned long long)reader->file_size);
	*table_offset = reader->file_size - table_size;
	*table = malloc(table_size);
	if (*table == NULL)
		return hs_error_nomem(err, "reading the seek table of %s", path);
	if (read_exact(reader->fd, path, *table, table_size, *table_offset, err) != 0)
		return -1;
	if (get_le32(*table) != SEEKABLE_SKIPPABLE_MAGIC || get_le32(*table + 4) != table_size - 8)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s: bad seek table: no skippable frame header at offset "
					 "%llu (truncated or corrupt)",
					 path, (unsigned long long)*table_offset);
	return 0;
}

/* The frames the seek table lists, checked to have possible sizes and to end where the table
 * starts; *largest and *largest_compressed are the largest frame's sizes. */
static int read_frame_entries(struct seekable_reader *reader, const uint8_t *table, uint32_t count,
			      size_t entry_size, uint64_t table_offset, uint32_t *largest,
			      uint32_t *largest_compressed, struct hs_error *err)
{
	reader->frames = calloc(count ? count : 1, sizeof *reader->frames);
	if (reader->frames == NULL)
		return hs_error_nomem(err, "reading the seek table of %s", reader->path);
	reader->frame_count = count;
	uint64_t file_offset = 0, stream_offset = 0;
	*largest = *largest_compressed = 0;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *entry = table + 8 + (size_t)i * entry_size;
		struct frame_entry *frame = &reader->frames[i];
		frame->compressed_size = get_le32(entry);
		frame->decompressed_size = get_le32(entry + 4);
		frame->has_checksum = entry_size == 12;
		frame->checksum = frame->has_checksum ? get_le32(entry + 8) : 0;
		frame->file_offset = file_offset;
		frame->stream_offset = stream_offset;
		/* a frame cannot expand more than zstd's best case, so a size the table claims beyond
		   that is a lie that would only make us allocate for nothing */
		if (frame->decompressed_size > SEEKABLE_MAX_FRAME_SIZE ||
		    frame->compressed_size == 0 ||
		    frame->decompressed_size > (uint64_t)frame->compressed_size * ZSTD_MAX_EXPANSION)
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: bad seek table: entry %u has impossible sizes (%u "
						 "compressed, %u decompressed)",
						 reader->path, i, frame->compressed_size,
						 frame->decompressed_size);
		file_offset += frame->compressed_size;
		stream_offset += frame->decompressed_size;
		if (frame->decompressed_size > *largest)
			*largest = frame->decompressed_size;
		if (frame->compressed_size > *largest_compressed)
			*largest_compressed = frame->compressed_size;
	}
	if (file_offset != table_offset)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s: bad seek table: its frames add up to %llu bytes but the "
					 "table starts at offset %llu (truncated or corrupt)",
					 reader->path, (unsigned long long)file_offset,
					 (unsigned long long)table_offset);
	reader->stream_size = stream_offset;
	return 0;
}

/* The decompression context, the buffer of a compressed frame, and the cache of decompressed
 * frames, in `cache_bytes`. */
static int make_cache(struct seekable_reader *reader, size_t cache_bytes, uint32_t largest,
		      uint32_t largest_compressed, struct hs_error *err)
{
	reader->context = ZSTD_createDCtx();
	reader->compressed_capacity = largest_compressed;
	reader->compressed = malloc(largest_compressed ? largest_compressed : 1);
	reader->largest = largest ? largest : 1;
	/* never more slots than frames (a table of 1-byte frames would otherwise ask for one slot
	   per byte of cache_bytes), nor so many that the linear scans of the cache cost more than a
	   decompression */
	reader->cache_count = largest ? cache_bytes / largest : 1;
	if (reader->cache_count > MAX_CACHE_SLOTS)
		reader->cache_count = MAX_CACHE_SLOTS;
	if (reader->cache_count > reader->frame_count)
		reader->cache_count = reader->frame_count;
	if (reader->cache_count < 2)
		reader->cache_count = 2;
	reader->cache = calloc(reader->cache_count, sizeof *reader->cache);
	if (reader->context == NULL || reader->compressed == NULL || reader->cache == NULL)
		return hs_error_nomem(err, "opening %s", reader->path);
	for (size_t i = 0; i < reader->cache_count; i++)
		reader->cache[i].frame = -1;
	return 0;
}

struct seekable_reader *seekable_open(int fd, const char *path, size_t cache_bytes,
				      struct hs_error *err)
{
	struct seekable_reader *reader = reader_new(fd, path, err);
	if (reader == NULL)
		return NULL;
	uint8_t *table = NULL;
	uint32_t count = 0, largest = 0, largest_compressed = 0;
	size_t entry_size = 0;
	uint64_t table_offset = 0;
	if (read_seek_table(reader, &table, &count, &entry_size, &table_offset, err) != 0 ||
	    read_frame_entries(reader, table, count, entry_size, table_offset, &largest,
			       &largest_compressed, err) != 0 ||
	    make_cache(reader, cache_bytes, largest, largest_compressed, err) != 0) {
		free(table);
		reader->fd = -1; /* the caller keeps fd on failure */
		seekable_close(reader);
		return NULL;
	}
	free(table);
	return reader;
}

void seekable_close(struct seekable_reader *reader)
{
	if (reader == NULL)
		return;
	stop_ahead(reader);
	if (reader->raw)
		munmap((void *)reader->raw, reader->file_size);
	if (reader->cache)
		for (size_t i = 0; i < reader->cache_count; i++)
			free(reader->cache[i].data);
	free(reader->cache);
	free(reader->compressed);
	ZSTD_freeDCtx(reader->context);
	free(reader->frames);
	free(reader->path);
	if (reader->fd >= 0)
		close(reader->fd);
	free(reader);
}

uint64_t seekable_size(const struct seekable_reader *reader) { return reader->stream_size; }
uint64_t seekable_file_size(const struct seekable_reader *reader) { return reader->file_size; }
uint32_t seekable_frame_count(const struct seekable_reader *reader) { return reader->frame_count; }
const uint8_t *seekable_raw_bytes(const struct seekable_reader *reader) { return reader->raw; }

/* Decompresses frame `index` into out (reader->largest bytes), reading it through `compressed`
 * with `context`: the calling thread's, or the read-ahead worker's. */
static int decompress_frame(struct seekable_reader *reader, ZSTD_DCtx *context, uint8_t *compressed,
			    uint32_t index, uint8_t *out, struct hs_error *err)
{
	const struct frame_entry *frame = &reader->frames[index];
	if (read_exact(reader->fd, reader->path, compressed, frame->compressed_size,
		       frame->file_offset, err) != 0)
		return -1;
	/* a whole frame, but another file's (or another place's): its own checksum, which zstd
	   checks its content against as it decompresses, is not the one the seek table keeps */
	if (frame->has_checksum &&
	    (frame->compressed_size < 4 ||
	     get_le32(compressed + frame->compressed_size - 4) != frame->checksum))
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s: zstd frame %u at offset %llu is not this "
					 "snapshot's: its checksum is not the one its seek table "
					 "records",
					 reader->path, index,
					 (unsigned long long)frame->file_offset);
	size_t produced = ZSTD_decompressDCtx(context, out, frame->decompressed_size, compressed,
					      frame->compressed_size);
	if (ZSTD_isError(produced))
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s: corrupt zstd frame %u at offset %llu: %s",
					 reader->path, index,
					 (unsigned long long)frame->file_offset,
					 ZSTD_getErrorName(produced));
	if (produced != frame->decompressed_size)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s: corrupt zstd frame %u at offset %llu: it holds %zu "
					 "bytes, the seek table says %u",
					 reader->path, index,
					 (unsigned long long)frame->file_offset, produced,
					 frame->decompressed_size);
	return 0;
}

static void *read_ahead_worker(void *argument)
{
	struct seekable_reader *reader = argument;
	struct read_ahead *ahead = &reader->ahead;
	pthread_mutex_lock(&ahead->lock);
	for (;;) {
		while (!ahead->stopping && ahead->wanted < 0)
			pthread_cond_wait(&ahead->changed, &ahead->lock);
		if (ahead->stopping)
			break;
		uint32_t index = (uint32_t)ahead->wanted;
		ahead->wanted = -1;
		ahead->working = index;
		ahead->ready = -1;
		pthread_mutex_unlock(&ahead->lock);
		if (ahead->data == NULL)
			ahead->data = malloc(reader->largest);
		bool done = ahead->data != NULL &&
			    decompress_frame(reader, ahead->context, ahead->compressed, index,
					     ahead->data, NULL) == 0;
		pthread_mutex_lock(&ahead->lock);
		ahead->working = -1;
		ahead->ready = done ? (int64_t)index : -1; /* on failure the caller's own try reports why */
		pthread_cond_broadcast(&ahead->changed);
	}
	pthread_mutex_unlock(&ahead->lock);
	return NULL;
}

/* Takes frame `index` from the worker into `slot` when it has it (waiting if it is at it). */
static bool take_ahead(struct seekable_reader *reader, uint32_t index, struct cache_slot *slot)
{
	struct read_ahead *ahead = &reader->ahead;
	if (!ahead->started)
		return false;
	bool taken = false;
	pthread_mutex_lock(&ahead->lock);
	while (ahead->working == (int64_t)index)
		pthread_cond_wait(&ahead->changed, &ahead->lock);
	if (ahead->ready == (int64_t)index) {
		uint8_t *data = slot->data;
		slot->data = ahead->data;
		ahead->data = data;
		ahead->ready = -1;
		taken = true;
	} else if (ahead->wanted == (int64_t)index) {
		ahead->wanted = -1; /* asked, not begun (the worker was not scheduled): done here */
	}
	pthread_mutex_unlock(&ahead->lock);
	return taken;
}

static bool cached(const struct seekable_reader *reader, uint32_t index)
{
	return reader->frames[index].cache_slot != 0;
}

/* After a miss of `index`: when the frame before it is cached (a walk in order), has the worker
 * decompress the next one not cached. */
static void ask_ahead(struct seekable_reader *reader, uint32_t index)
{
	struct read_ahead *ahead = &reader->ahead;
	uint32_t next = index + 1;
	if (next < reader->frame_count && cached(reader, next))
		next++; /* decompressed here while the worker was at index */
	if (reader->cache_count < 4 || index == 0 || next >= reader->frame_count ||
	    !cached(reader, index - 1) || cached(reader, next) || reader->frames[next].damaged)
		return;
	if (!ahead->started) {
		ahead->context = ZSTD_createDCtx();
		ahead->compressed = malloc(reader->compressed_capacity ? reader->compressed_capacity : 1u);
		ahead->wanted = ahead->working = ahead->ready = -1;
		if (ahead->context == NULL || ahead->compressed == NULL ||
		    pthread_mutex_init(&ahead->lock, NULL) != 0)
			goto fail;
		if (pthread_cond_init(&ahead->changed, NULL) != 0) {
			pthread_mutex_destroy(&ahead->lock);
			goto fail;
		}
		if (pthread_create(&ahead->thread, NULL, read_ahead_worker, reader) != 0) {
			pthread_cond_destroy(&ahead->changed);
			pthread_mutex_destroy(&ahead->lock);
			goto fail;
		}
		ahead->started = true;
	}
	pthread_mutex_lock(&ahead->lock);
	if (ahead->ready != (int64_t)next && ahead->working != (int64_t)next) {
		ahead->wanted = next;
		pthread_cond_broadcast(&ahead->changed);
	}
	pthread_mutex_unlock(&ahead->lock);
	return;
fail:
	/* no read-ahead: every frame is then decompressed when it is read */
	ZSTD_freeDCtx(ahead->context);
	free(ahead->compressed);
	ahead->context = NULL;
	ahead->compressed = NULL;
	size_t kept = reader->cache_count < 4 ? reader->cache_count : 3;
	for (size_t i = kept; i < reader->cache_count; i++) {
		if (reader->cache[i].frame >= 0)
			reader->frames[reader->cache[i].frame].cache_slot = 0;
		if (reader->recent == &reader->cache[i])
			reader->recent = NULL;
		free(reader->cache[i].data);
		reader->cache[i] = (struct cache_slot){.frame = -1};
	}
	reader->cache_count = kept;
}

static void stop_ahead(struct seekable_reader *reader)
{
	struct read_ahead *ahead = &reader->ahead;
	if (ahead->started) {
		pthread_mutex_lock(&ahead->lock);
		ahead->stopping = true;
		pthread_cond_broadcast(&ahead->changed);
		pthread_mutex_unlock(&ahead->lock);
		pthread_join(ahead->thread, NULL);
		pthread_cond_destroy(&ahead->changed);
		pthread_mutex_destroy(&ahead->lock);
	}
	ZSTD_freeDCtx(ahead->context);
	free(ahead->compressed);
	free(ahead->data);
	memset(ahead, 0, sizeof *ahead);
}

/* The least recently used slot (an empty one first), other than `keep`. */
static struct cache_slot *victim_slot(struct seekable_reader *reader, const struct cache_slot *keep)
{
	struct cache_slot *victim = NULL;
	for (size_t i = 0; i < reader->cache_count; i++) {
		struct cache_slot *slot = &reader->cache[i];
		if (slot == keep)
			continue;
		if (slot->frame < 0)
			return slot;
		if (victim == NULL || slot->last_use < victim->last_use)
			victim = slot;
	}
	return victim;
}

/* Marks frame `index` damaged so that later reads fail at once rather than decompress it again
 * (an analysis reads words one by one: each would cost a whole frame). */
static void remember_damage(struct seekable_reader *reader, uint32_t index,
			    const struct hs_error *failure)
{
	reader->frames[index].damaged = true;
	if (reader->first_damage.code == HS_ERR_NONE)
		reader->first_damage = *failure;
}

static int damaged_frame_error(const struct seekable_reader *reader, uint32_t index,
			       struct hs_error *err)
{
	return hs_error_set_code(err, HS_ERR_DAMAGED,
				 "%s: zstd frame %u at offset %llu is damaged (it failed before)",
				 reader->path, index,
				 (unsigned long long)reader->frames[index].file_offset);
}

/* Puts frame `index` in `slot`: the worker's copy when it has it, else decompressed here. */
static int fill_slot(struct seekable_reader *reader, struct cache_slot *slot, uint32_t index,
		     bool from_worker, struct hs_error *err)
{
	if (slot->frame >= 0)
		reader->frames[slot->frame].cache_slot = 0;
	slot->frame = -1;
	reader->generation++;
	if (!from_worker || !take_ahead(reader, index, slot)) {
		if (slot->data == NULL && (slot->data = malloc(reader->largest)) == NULL)
			return hs_error_nomem(err, "decompressing %s", reader->path);
		/* the reason is kept even when the caller does not ask for it */
		struct hs_error failure = {0};
		if (decompress_frame(reader, reader->context, reader->compressed, index, slot->data,
				     &failure) != 0) {
			remember_damage(reader, index, &failure);
			if (err != NULL)
				*err = failure;
			return -1;
		}
	}
	slot->frame = index;
	slot->last_use = ++reader->use_clock;
	reader->frames[index].cache_slot = (uint32_t)(slot - reader->cache) + 1;
	return 0;
}

static bool ahead_working_on(struct seekable_reader *reader, uint32_t index)
{
	struct read_ahead *ahead = &reader->ahead;
	if (!ahead->started)
		return false;
	pthread_mutex_lock(&ahead->lock);
	bool working = ahead->working == (int64_t)index;
	pthread_mutex_unlock(&ahead->lock);
	return working;
}

/* Returns the decompressed bytes of frame `index`, from the cache or freshly decompressed. */
static const uint8_t *load_frame(struct seekable_reader *reader, uint32_t index,
				 struct hs_error *err)
{
	if (reader->recent && reader->recent->frame == (int64_t)index)
		return reader->recent->data;
	if (reader->frames[index].cache_slot != 0) {
		struct cache_slot *slot = &reader->cache[reader->frames[index].cache_slot - 1];
		slot->last_use = ++reader->use_clock;
		reader->recent = slot;
		return slot->data;
	}
	if (reader->frames[index].damaged) {
		damaged_frame_error(reader, index, err);
		return NULL;
	}
	struct cache_slot *victim = victim_slot(reader, NULL);
	/* the worker is still at this frame (the walk goes faster than one thread decompresses):
	   rather than wait, decompress the next one here meanwhile */
	uint32_t next = index + 1;
	if (next < reader->frame_count && reader->cache_count >= 4 && ahead_working_on(reader, index) &&
	    !cached(reader, next) && !reader->frames[next].damaged) {
		struct cache_slot *other = victim_slot(reader, victim);
		if (fill_slot(reader, other, next, false, err) != 0)
			return NULL;
	}
	if (fill_slot(reader, victim, index, true, err) != 0)
		return NULL;
	reader->recent = victim;
	ask_ahead(reader, index);
	return victim->data;
}

/* The frame holding `offset` (offset < stream_size): a binary search of the seek table. */
static uint32_t frame_of(const struct seekable_reader *reader, uint64_t offset)
{
	uint32_t low = 0, high = reader->frame_count;
	while (high - low > 1) {
		uint32_t mid = low + (high - low) / 2;
		if (reader->frames[mid].stream_offset <= offset)
			low = mid;
		else
			high = mid;
	}
	return low;
}

const uint8_t *seekable_frame_at(struct seekable_reader *reader, uint64_t offset, uint64_t *start,
				 uint64_t *end, struct hs_error *err)
{
	if (offset >= reader->stream_size) {
		hs_error_set_code(err, HS_ERR_DAMAGED,
				  "%s is truncated or corrupt: offset %llu passes the end of its "
				  "%llu bytes",
				  reader->path, (unsigned long long)offset,
				  (unsigned long long)reader->stream_size);
		return NULL;
	}
	if (reader->raw) {
		*start = 0;
		*end = reader->stream_size;
		return reader->raw;
	}
	uint32_t index = frame_of(reader, offset);
	while (index < reader->frame_count && reader->frames[index].decompressed_size == 0)
		index++; /* (empty frames hold no offset) */
	if (index == reader->frame_count) {
		hs_error_set_code(err, HS_ERR_DAMAGED, "%s: no frame holds offset %llu",
				  reader->path, (unsigned long long)offset);
		return NULL;
	}
	const uint8_t *data = load_frame(reader, index, err);
	if (data == NULL)
		return NULL;
	*start = reader->frames[index].stream_offset;
	*end = *start + reader->frames[index].decompressed_size;
	return data;
}

uint64_t seekable_generation(const struct seekable_reader *reader)
{
	return reader->generation;
}

int seekable_read(struct seekable_reader *reader, uint64_t offset, void *buf, size_t size,
		  struct hs_error *err)
{
	if (offset > reader->stream_size || size > reader->stream_size - offset)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s is truncated or corrupt: a read of %zu bytes at "
					 "offset %llu passes the end of its %llu bytes",
					 reader->path, size, (unsigned long long)offset,
					 (unsigned long long)reader->stream_size);
	if (reader->raw) {
		memcpy(buf, reader->raw + offset, size);
		return 0;
	}
	uint8_t *out = buf;
	for (uint32_t index = frame_of(reader, offset); size > 0 && index < reader->frame_count; index++) {
		const struct frame_entry *frame = &reader->frames[index];
		if (frame->decompressed_size == 0)
			continue;
		const uint8_t *data = load_frame(reader, index, err);
		if (data == NULL)
			return -1;
		uint64_t within = offset - frame->stream_offset;
		size_t take = frame->decompressed_size - within < size
				      ? (size_t)(frame->decompressed_size - within)
				      : size;
		memcpy(out, data + within, take);
		out += take;
		offset += take;
		size -= take;
	}
	return 0;
}

uint64_t seekable_damaged_frames(const struct seekable_reader *reader)
{
	uint64_t count = 0;
	for (uint32_t i = 0; i < reader->frame_count; i++)
		count += reader->frames[i].damaged;
	return count;
}

bool seekable_damaged_range(const struct seekable_reader *reader, uint64_t nth, uint64_t *start,
			    uint64_t *end)
{
	for (uint32_t i = 0; i < reader->frame_count; i++)
		if (reader->frames[i].damaged && nth-- == 0) {
			*start = reader->frames[i].stream_offset;
			*end = *start + reader->frames[i].decompressed_size;
			return true;
		}
	return false;
}

int seekable_check_damage(const struct seekable_reader *reader, struct hs_error *err)
{
	if (reader->first_damage.code == HS_ERR_NONE)
		return 0;
	if (err != NULL)
		*err = reader->first_damage;
	return -1;
}
