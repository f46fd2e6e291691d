/* A target with a known jemalloc heap, run with jemalloc linked in or preloaded
 * (LD_PRELOAD=libjemalloc.so.2): four threads (the main one and three workers, which jemalloc
 * spreads over several arenas) each allocate small, large and huge blocks (the huge ones go to
 * jemalloc's arena for oversized blocks), free some of them (small ones then wait in the thread's
 * tcache or, past its bound, in their slab; large ones in the tcache or as dirty extents), and
 * hold the rest. Once every thread is parked, the main thread writes to the file named by its
 * first argument, with write(2) only (no stdio, no malloc):
 *     held ADDRESS USABLE_SIZE      (malloc_usable_size)
 *     freed ADDRESS SIZE_ASKED
 *     allocated BYTES               (jemalloc's stats.allocated, after an epoch)
 *     tcache_bytes BYTES            (stats.arenas.<all>.tcache_bytes: bytes cached in tcaches)
 * then "done", and waits. mallctl is looked up at run time, so the same source serves the linked
 * and the preloaded build.
 *
 * It serves tcmalloc too (LD_PRELOAD=libtcmalloc_minimal.so.4, or linked with -ltcmalloc): the
 * blocks are the same, and in place of jemalloc's statistics it records tcmalloc's own count of
 * the bytes handed out, read with MallocExtension_GetNumericProperty (looked up the same way):
 *     current_allocated_bytes BYTES   (generic.current_allocated_bytes)
 * One of the two allocators must be loaded. */
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 4
#define BLOCKS 3000 /* per thread */

struct thread_blocks {
	void *address[BLOCKS];
	size_t asked[BLOCKS];
	int freed[BLOCKS];
};

static struct thread_blocks blocks[THREADS];
static pthread_barrier_t filled;
static int record_fd;

/* Mostly small blocks of many size classes, some large ones (16 KiB to 1 MiB, several of which
 * fit a tcache bin) and one huge block per thread (past oversize_threshold, 8 MiB). */
static size_t block_size(int thread, int index)
{
	unsigned mix = (unsigned)(index * 2654435761u + (unsigned)thread * 40503u);
	if (index == 7 || index == 8)
		return (10u << 20) + (unsigned)index; /* one freed, one held */
	if (index % 97 == 0)
		return 16384 + mix % (1u << 20);
	if (index % 13 == 0)
		return 1024 + mix % 14000;
	return 1 + mix % 600;
}

static void fill(int thread)
{
	struct thread_blocks *mine = &blocks[thread];
	for (int i = 0; i < BLOCKS; i++) {
		mine->asked[i] = block_size(thread, i);
		mine->address[i] = malloc(mine->asked[i]);
		if (mine->address[i] == NULL)
			_exit(3);
		memset(mine->address[i], thread + 1, mine->asked[i] < 64 ? mine->asked[i] : 64);
	}
	/* free every third block: many per size class, so some bins overflow their tcache bound
	 * and flush back to their slabs */
	for (int i = 0; i < BLOCKS; i++)
		if (i % 3 == 1) {
			free(mine->address[i]);
			mine->freed[i] = 1;
		}
}

static void *worker(void *argument)
{
	fill((int)(intptr_t)argument);
	pthread_barrier_wait(&filled);
	for (;;)
		pause();
	return NULL;
}

static void record(const char *what, uint64_t first, uint64_t second)
{
	char line[96];
	int length = snprintf(line, sizeof line, "%s 0x%llx %llu\n", what,
			      (unsigned long long)first, (unsigned long long)second);
	if (write(record_fd, line, (size_t)length) != length)
		_exit(3);
}

static uint64_t stat_u64(int (*mallctl)(const char *, void *, size_t *, void *, size_t),
			 const char *name)
{
	size_t value = 0, size = sizeof value;
	if (mallctl(name, &value, &size, NULL, 0) != 0)
		_exit(4);
	return value;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: jemalloc_heap RECORD\n");
		return 2;
	}
	int (*mallctl)(const char *, void *, size_t *, void *, size_t) =
		(int (*)(const char *, void *, size_t *, void *, size_t))dlsym(RTLD_DEFAULT,
									       "mallctl");
	/* (only without mallctl: a failed dlsym allocates glibc's dlerror state) */
	int (*numeric_property)(const char *, size_t *) =
		mallctl ? NULL
			: (int (*)(const char *, size_t *))dlsym(RTLD_DEFAULT,
								 "MallocExtension_GetNumericProperty");
	if (mallctl == NULL && numeric_property == NULL) {
		fprintf(stderr, "jemalloc_heap: neither jemalloc (mallctl) nor tcmalloc "
				"(MallocExtension_GetNumericProperty) is loaded\n");
		return 2;
	}
	pthread_barrier_init(&filled, NULL, THREADS);
	pthread_t threads[THREADS];
	for (int t = 1; t < THREADS; t++)
		if (pthread_create(&threads[t], NULL, worker, (void *)(intptr_t)t) != 0)
			return 1;
	fill(0);
	pthread_barrier_wait(&filled);
	char temporary[4096];
	snprintf(temporary, sizeof temporary, "%s.tmp", argv[1]);
	record_fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (record_fd < 0)
		return 1;
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < BLOCKS; i++) {
			uint64_t address = (uint64_t)(uintptr_t)blocks[t].address[i];
			if (blocks[t].freed[i])
				record("freed", address, blocks[t].asked[i]);
			else
				record("held", address,
				       malloc_usable_size(blocks[t].address[i]));
		}
	/* the stats last: nothing is allocated from here on */
	if (mallctl) {
		uint64_t epoch = 1;
		size_t epoch_size = sizeof epoch;
		if (mallctl("epoch", &epoch, &epoch_size, &epoch, epoch_size) != 0)
			return 4;
		record("allocated", 0, stat_u64(mallctl, "stats.allocated"));
		record("tcache_bytes", 0, stat_u64(mallctl, "stats.arenas.4096.tcache_bytes"));
	} else {
		size_t allocated = 0;
		if (!numeric_property("generic.current_allocated_bytes", &allocated))
			return 4;
		record("current_allocated_bytes", 0, allocated);
	}
	if (write(record_fd, "done\n", 5) != 5 || close(record_fd) != 0 ||
	    rename(temporary, argv[1]) != 0)
		return 1;
	for (;;)
		pause();
}
