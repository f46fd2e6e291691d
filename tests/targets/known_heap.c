/* A target with a known heap, run with jemalloc, tcmalloc or mimalloc linked in or preloaded
 * (LD_PRELOAD=libjemalloc.so.2, libtcmalloc_minimal.so.4 or libmimalloc.so.2): four threads (the
 * main one and three workers, which jemalloc spreads over several arenas, tcmalloc gives a thread
 * cache each and mimalloc a heap each) each
 * allocate small, large and huge blocks (the huge ones go to jemalloc's arena for oversized
 * blocks), free some of them (small ones then wait in the thread's tcache or, past its bound, in
 * their slab; large ones in the tcache or as dirty extents), and hold the rest. Once every thread
 * is parked, the main thread writes to the file named by its first argument, with write(2) only
 * (no stdio, no malloc):
 *     held ADDRESS USABLE_SIZE      (malloc_usable_size)
 *     freed ADDRESS SIZE_ASKED
 * and, under jemalloc,
 *     allocated BYTES               (jemalloc's stats.allocated, after an epoch)
 *     tcache_bytes BYTES            (stats.arenas.<all>.tcache_bytes: bytes cached in tcaches)
 * or, under tcmalloc, in place of jemalloc's statistics, tcmalloc's own count of the bytes handed
 * out, read with MallocExtension_GetNumericProperty:
 *     current_allocated_bytes BYTES   (generic.current_allocated_bytes)
 * or, under mimalloc, whose statistics a release build does not keep, every block mimalloc
 * itself enumerates (each thread runs mi_heap_visit_blocks on its own heap once its blocks are
 * filled and freed); that visit collects every page's free lists into `free`, so afterwards each
 * thread frees a few more of its own blocks (into local_free lists) and a few of the next
 * thread's (into xthread_free lists, or the owning heap's thread_delayed_free list):
 *     visited ADDRESS USABLE_SIZE   (every live block of the thread's heap at the visit)
 *     late ADDRESS                  (freed after the visit, also recorded as freed)
 *     version NUMBER                (mi_version())
 * then "done", and waits. The allocators' functions are looked up at run time, so the same source
 * serves the linked and the preloaded builds; one of the three must be loaded. */
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
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
/* every thread is made before any allocates: making one allocates its TLS vector in the
 * creating thread, and a block another thread has just freed (tcmalloc's central caches are
 * shared) must not become such an unrecorded live block */
static pthread_barrier_t created;
static int record_fd;

/* mimalloc's functions (NULL under jemalloc) and what each thread's visit of its heap found */
#define VISITED_MAX (2 * BLOCKS)
typedef bool (*visit_function)(const void *heap, const void *area, void *block, size_t size,
			       void *argument);
static void *(*mi_heap_get_default)(void);
static bool (*mi_heap_visit_blocks)(const void *heap, bool all_blocks, visit_function visit,
				    void *argument);
static struct visited {
	void *address[VISITED_MAX];
	size_t size[VISITED_MAX];
	int count;
} visited[THREADS];
static pthread_barrier_t visit_done;
static int late[THREADS][BLOCKS]; /* freed after the visit, by the thread that owns it or not */

static bool visit_block(const void *heap, const void *area, void *block, size_t size,
			void *argument)
{
	(void)heap;
	(void)area;
	struct visited *mine = argument;
	if (block == NULL)
		return true; /* the page itself */
	if (mine->count == VISITED_MAX)
		_exit(5);
	mine->address[mine->count] = block;
	mine->size[mine->count++] = size;
	return true;
}

/* Under mimalloc: the visit of the thread's own heap, then, once every thread has visited,
 * the frees after it: 1 held block in 12 of its own, 1 in 12 of the next thread's. */
static void visit_and_free_late(int thread)
{
	if (mi_heap_visit_blocks == NULL)
		return;
	pthread_barrier_wait(&visit_done);
	if (!mi_heap_visit_blocks(mi_heap_get_default(), true, visit_block, &visited[thread]))
		_exit(5);
	pthread_barrier_wait(&visit_done);
	int next = (thread + 1) % THREADS;
	for (int i = 0; i < BLOCKS; i++) {
		if (i % 12 == 5) {
			free(blocks[thread].address[i]);
			late[thread][i] = blocks[thread].freed[i] = 1;
		}
		if (i % 12 == 8) {
			free(blocks[next].address[i]);
			late[next][i] = blocks[next].freed[i] = 1;
		}
	}
}

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
	pthread_barrier_wait(&created);
	fill((int)(intptr_t)argument);
	visit_and_free_late((int)(intptr_t)argument);
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
		fprintf(stderr, "usage: known_heap RECORD\n");
		return 2;
	}
	int (*mallctl)(const char *, void *, size_t *, void *, size_t) =
		(int (*)(const char *, void *, size_t *, void *, size_t))dlsym(RTLD_DEFAULT,
									       "mallctl");
	/* (the others only when one is missing: a lookup that fails allocates dlerror's message, a
	   block the jemalloc and tcmalloc tests would find unrecorded) */
	int (*numeric_property)(const char *, size_t *) = NULL;
	int (*mi_version)(void) = NULL;
	if (mallctl == NULL)
		*(void **)&numeric_property = dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty");
	if (mallctl == NULL && numeric_property == NULL) {
		mi_version = (int (*)(void))dlsym(RTLD_DEFAULT, "mi_version");
		mi_heap_get_default = (void *(*)(void))dlsym(RTLD_DEFAULT, "mi_heap_get_default");
		*(void **)&mi_heap_visit_blocks = dlsym(RTLD_DEFAULT, "mi_heap_visit_blocks");
		if (mi_version == NULL || mi_heap_get_default == NULL ||
		    mi_heap_visit_blocks == NULL) {
			fprintf(stderr, "known_heap: none of jemalloc (mallctl), tcmalloc "
					"(MallocExtension_GetNumericProperty) and mimalloc "
					"(mi_heap_visit_blocks) is loaded\n");
			return 2;
		}
	}
	pthread_barrier_init(&filled, NULL, THREADS);
	pthread_barrier_init(&visit_done, NULL, THREADS);
	pthread_barrier_init(&created, NULL, THREADS);
	pthread_t threads[THREADS];
	for (int t = 1; t < THREADS; t++)
		if (pthread_create(&threads[t], NULL, worker, (void *)(intptr_t)t) != 0)
			return 1;
	pthread_barrier_wait(&created);
	fill(0);
	visit_and_free_late(0);
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
	if (mi_heap_visit_blocks) {
		for (int t = 0; t < THREADS; t++) {
			for (int k = 0; k < visited[t].count; k++)
				record("visited", (uint64_t)(uintptr_t)visited[t].address[k],
				       visited[t].size[k]);
			for (int i = 0; i < BLOCKS; i++)
				if (late[t][i])
					record("late", (uint64_t)(uintptr_t)blocks[t].address[i], 0);
		}
		record("version", 0, (uint64_t)mi_version());
		if (write(record_fd, "done\n", 5) != 5 || close(record_fd) != 0 ||
		    rename(temporary, argv[1]) != 0)
			return 1;
		for (;;)
			pause();
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
