/* Capture planning and the copy buffer (see capture_plan.h). */
#include "capture_plan.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/array_grow.h"

/* Private anonymous mappings at least this large are checked for never-touched pages... */
#define UNTOUCHED_CHECK_MIN (4u << 20)
/* ...and runs of untouched pages at least this long are stored as zero segments, not copied. */
#define UNTOUCHED_RUN_MIN (1u << 20)

static int plan_add(struct capture_plan *plan, const struct planned_region *region)
{
	void *grown = array_grow(plan->regions, &plan->capacity, plan->count,
				 sizeof *plan->regions, 64);
	if (grown == NULL)
		return -1;
	plan->regions = grown;
	plan->regions[plan->count++] = *region;
	plan->read_bytes += region->read_size;
	return 0;
}

static bool is_special(const struct proc_mapping *mapping, const char *name)
{
	return strcmp(mapping->path, name) == 0;
}

/* Decides, per mapping, what the snapshot keeps: writable and anonymous memory in full, read-only
 * private file mappings the process has written to (RELRO) in full, the first page of other file
 * mappings that start at offset 0 (the ELF header, as the kernel does), nothing of the remaining
 * read-only file mappings (their bytes are in the file) or of unreadable ones. */
int capture_plan_make(const struct proc_maps *maps, struct process_memory *memory,
		      struct capture_plan *plan, struct hs_error *err)
{
	for (size_t i = 0; i < maps->count; i++) {
		const struct proc_mapping *mapping = &maps->mappings[i];
		struct planned_region region = {.mapping = mapping, .start = mapping->start,
						.end = mapping->end};
		if (is_special(mapping, "[vsyscall]"))
			continue; /* a fixed kernel page, not part of the process */
		bool kernel_data = strncmp(mapping->path, "[vvar", 5) == 0;
		bool anonymous = mapping->inode == 0;
		if (!mapping->readable || kernel_data) {
			region.read_size = 0;
		} else if (mapping->writable || anonymous) {
			region.read_size = mapping->end - mapping->start;
			if (anonymous && !mapping->shared &&
			    mapping->end - mapping->start >= UNTOUCHED_CHECK_MIN) {
				struct range_list untouched = {0};
				if (process_memory_untouched(memory, mapping->start, mapping->end,
							     UNTOUCHED_RUN_MIN, &untouched) != 0) {
					range_list_free(&untouched);
					return hs_error_nomem(err, "planning the capture");
				}
				uint64_t at = mapping->start;
				for (size_t k = 0; k < untouched.count; k++) {
					const struct address_range *run = &untouched.ranges[k];
					if (run->start > at) {
						struct planned_region part = region;
						part.start = at;
						part.end = run->start;
						part.read_size = run->start - at;
						if (plan_add(plan, &part) != 0)
							goto out_of_memory;
					}
					struct planned_region zero = region;
					zero.start = run->start;
					zero.end = run->end;
					zero.read_size = 0;
					zero.untouched = true;
					if (plan_add(plan, &zero) != 0)
						goto out_of_memory;
					at = run->end;
				}
				range_list_free(&untouched);
				if (at == mapping->start)
					goto whole;
				if (at < mapping->end) {
					region.start = at;
					region.read_size = mapping->end - at;
					if (plan_add(plan, &region) != 0)
						return hs_error_nomem(err, "planning the capture");
				}
				continue;
out_of_memory:
				range_list_free(&untouched);
				return hs_error_nomem(err, "planning the capture");
			}
		} else if (!mapping->shared &&
			   process_memory_has_private_pages(memory, mapping->start, mapping->end)) {
			/* read-only now, but written once (RELRO after relocation): the kernel and
			 * gdb keep these bytes, and so must we, or DT_DEBUG and the GOT read wrong */
			region.read_size = mapping->end - mapping->start;
		} else if (mapping->offset == 0) {
			region.header_page = true;
			region.read_size = mapping->end - mapping->start < CAPTURE_PAGE_BYTES
						   ? mapping->end - mapping->start
						   : CAPTURE_PAGE_BYTES;
		}
whole:
		if (plan_add(plan, &region) != 0)
			return hs_error_nomem(err, "planning the capture");
	}
	return 0;
}

void capture_plan_free(struct capture_plan *plan)
{
	free(plan->regions);
	memset(plan, 0, sizeof *plan);
}

bool planned_regions_match(const struct planned_region *a, const struct planned_region *b)
{
	const struct proc_mapping *x = a->mapping, *y = b->mapping;
	return a->start == b->start && a->end == b->end && a->read_size == b->read_size &&
	       a->untouched == b->untouched && a->header_page == b->header_page &&
	       x->readable == y->readable && x->writable == y->writable && x->shared == y->shared &&
	       x->inode == y->inode && x->offset == y->offset && strcmp(x->path, y->path) == 0;
}

struct populate_range {
	uint8_t *data;
	size_t size;
};

static void *populate(void *argument)
{
	struct populate_range *range = argument;
	if (madvise(range->data, range->size, MADV_POPULATE_WRITE) != 0)
		for (size_t at = 0; at < range->size; at += CAPTURE_PAGE_BYTES)
			range->data[at] = 0;
	return NULL;
}

int copy_buffer_prepare(struct copy_buffer *buffer, uint64_t bytes, struct hs_error *err)
{
	memset(buffer, 0, sizeof *buffer);
	size_t capacity = bytes ? (size_t)bytes : 1;
	uint8_t *data = mmap(NULL, capacity, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (data == MAP_FAILED)
		return hs_error_set_code(err, HS_ERR_NOMEM,
					 "cannot allocate %llu bytes to copy the target's memory "
					 "(free memory, or raise the limits on heapsnap)",
					 (unsigned long long)bytes);
	/* populated now, before the freeze. Not with huge pages: they populate twice as fast when
	 * free memory is at hand, but ten times slower when the kernel must compact for them first
	 * (measured here: 0.14 s against 2.1 s for 1.2 GB; 4 KiB pages always 0.26 s) */
	/* zeroing the pages is the cost, and it divides between CPUs: two halves at once */
	size_t half = capacity / 2 & ~(size_t)(CAPTURE_PAGE_BYTES - 1);
	struct populate_range first = {data, half}, second = {data + half, capacity - half};
	pthread_t helper;
	bool helped = half > 0 && pthread_create(&helper, NULL, populate, &second) == 0;
	populate(&first);
	if (helped)
		pthread_join(helper, NULL);
	else
		populate(&second);
	buffer->data = data;
	buffer->capacity = capacity;
	return 0;
}

uint8_t *copy_buffer_take(struct copy_buffer *buffer, uint64_t size)
{
	for (; buffer->capacity - buffer->used < size; buffer = buffer->overflow) {
		if (buffer->overflow != NULL)
			continue;
		/* the target grew: chain a buffer big enough for this and some more */
		struct copy_buffer *more = malloc(sizeof *more);
		uint64_t wanted = size > (64u << 20) ? size : (64u << 20);
		if (more == NULL || copy_buffer_prepare(more, wanted, NULL) != 0) {
			free(more);
			return NULL;
		}
		buffer->overflow = more;
	}
	uint8_t *space = buffer->data + buffer->used;
	buffer->used += size;
	return space;
}

void copy_buffer_release(struct copy_buffer *buffer)
{
	if (buffer->overflow) {
		copy_buffer_release(buffer->overflow);
		free(buffer->overflow);
	}
	if (buffer->data)
		munmap(buffer->data, buffer->capacity);
	memset(buffer, 0, sizeof *buffer);
}

/* The copy is split into chunks that reader threads take in turn: with two or more CPUs, two
 * process_vm_readv streams copy nearly twice as fast as one, and this time is the target's pause. */
#define COPY_CHUNK_BYTES (8u << 20)
#define COPY_THREADS_MAX 4

struct copy_chunk {
	uint64_t addr, size;
	uint8_t *data;
};

struct copy_job {
	struct process_memory *memory;
	struct copy_chunk *chunks;
	size_t chunk_count;
	size_t next; /* taken atomically */
	bool failed;
};

struct copy_worker {
	struct copy_job *job;
	struct range_list absent;
	struct hs_error err;
	int result;
};

static void *copy_worker_main(void *argument)
{
	struct copy_worker *worker = argument;
	struct copy_job *job = worker->job;
	for (;;) {
		size_t index = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
		if (index >= job->chunk_count || __atomic_load_n(&job->failed, __ATOMIC_RELAXED))
			break;
		const struct copy_chunk *chunk = &job->chunks[index];
		if (process_memory_read(job->memory, chunk->addr, chunk->data, chunk->size,
					&worker->absent, &worker->err) != 0) {
			worker->result = -1;
			__atomic_store_n(&job->failed, true, __ATOMIC_RELAXED);
			break;
		}
	}
	return NULL;
}

int capture_plan_copy(struct capture_plan *plan, struct process_memory *memory,
		      struct copy_buffer *buffer, struct range_list *absent, struct hs_error *err)
{
	struct copy_job job = {.memory = memory};
	size_t capacity = 0;
	for (size_t i = 0; i < plan->count; i++) {
		struct planned_region *region = &plan->regions[i];
		if (region->data != NULL || region->source != NULL || region->read_size == 0)
			continue;
		region->data = copy_buffer_take(buffer, region->read_size);
		if (region->data == NULL) {
			free(job.chunks);
			return hs_error_nomem(err, "copying pid %d's memory",
					      (int)memory->pid);
		}
		for (uint64_t offset = 0; offset < region->read_size; offset += COPY_CHUNK_BYTES) {
			void *grown = array_grow(job.chunks, &capacity, job.chunk_count,
						 sizeof *job.chunks, 256);
			if (grown == NULL) {
				free(job.chunks);
				return hs_error_nomem(err, "copying pid %d's memory",
						      (int)memory->pid);
			}
			job.chunks = grown;
			uint64_t size = region->read_size - offset < COPY_CHUNK_BYTES
						? region->read_size - offset
						: COPY_CHUNK_BYTES;
			job.chunks[job.chunk_count++] =
				(struct copy_chunk){region->start + offset, size, region->data + offset};
		}
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t thread_count = cpus > 1 ? (size_t)cpus : 1;
	if (thread_count > COPY_THREADS_MAX)
		thread_count = COPY_THREADS_MAX;
	if (thread_count > job.chunk_count)
		thread_count = job.chunk_count ? job.chunk_count : 1;
	struct copy_worker workers[COPY_THREADS_MAX] = {0};
	pthread_t threads[COPY_THREADS_MAX];
	size_t started = 0;
	for (size_t i = 0; i < thread_count; i++) {
		workers[i].job = &job;
		/* the calling thread is a worker too; a thread that cannot start is not needed */
		if (i > 0 && pthread_create(&threads[started + 1], NULL, copy_worker_main,
					    &workers[i]) == 0)
			started++;
	}
	copy_worker_main(&workers[0]);
	for (size_t i = 1; i <= started; i++)
		pthread_join(threads[i], NULL);
	int result = 0;
	for (size_t i = 0; i < thread_count; i++) {
		if (workers[i].result != 0 && result == 0) {
			if (err)
				*err = workers[i].err;
			result = -1;
		}
		for (size_t k = 0; k < workers[i].absent.count && result == 0; k++)
			if (range_list_add(absent, workers[i].absent.ranges[k].start,
					   workers[i].absent.ranges[k].end) != 0)
				result = hs_error_nomem(err, "copying pid %d's memory",
							(int)memory->pid);
		range_list_free(&workers[i].absent);
	}
	free(job.chunks);
	return result;
}

int capture_plan_in_place(struct capture_plan *plan, struct process_memory *memory,
			  struct range_list *absent, struct hs_error *err)
{
	enum { PROBE_BYTES = 1u << 20 };
	uint8_t *probe = mmap(NULL, PROBE_BYTES, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (probe == MAP_FAILED)
		return hs_error_nomem(err, "planning the capture");
	int result = 0;
	for (size_t i = 0; i < plan->count && result == 0; i++) {
		struct planned_region *region = &plan->regions[i];
		if (region->data != NULL || region->read_size == 0)
			continue;
		/* readable throughout? (process_vm_readv says so without a fault) */
		bool whole = true;
		for (uint64_t at = 0; whole && at < region->read_size; at += PROBE_BYTES) {
			size_t size = region->read_size - at < PROBE_BYTES ? (size_t)(region->read_size - at)
									    : PROBE_BYTES;
			struct iovec local = {probe, size};
			struct iovec remote = {(void *)(uintptr_t)(region->start + at), size};
			whole = process_vm_readv(memory->pid, &local, 1, &remote, 1, 0) == (ssize_t)size;
		}
		if (whole) {
			region->data = (uint8_t *)(uintptr_t)region->start;
			continue;
		}
		region->data = malloc(region->read_size);
		if (region->data == NULL)
			result = hs_error_nomem(err, "copying the memory of pid %d",
						(int)memory->pid);
		else
			result = process_memory_read(memory, region->start, region->data,
						     region->read_size, absent, err);
	}
	munmap(probe, PROBE_BYTES);
	return result;
}
