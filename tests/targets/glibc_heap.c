/* A target with a glibc heap of known content, for the malloc walker's tests. The main thread and
 * four workers (each of which gets a thread arena) allocate blocks of many sizes, plus a few large
 * enough to be mmapped (one of them aligned by posix_memalign, which moves its chunk header into
 * its mapping); then each frees every third of its blocks, which fills the tcache, the fast
 * bins, and the unsorted, small and large bins. Before pausing, the target writes what it holds and
 * what it freed to the file named by its first argument, with write(2) only (no stdio, no malloc,
 * so recording does not change the heap):
 *     held ADDRESS USABLE_SIZE      (malloc_usable_size)
 *     freed ADDRESS
 *     corrupted CHUNK_ADDRESS       (with --corrupt: a held block whose chunk header was smashed)
 *     cycle CHUNK_ADDRESS           (with --fastbin-cycle: a fast bin made to loop by a double free)
 *     tcache_link CHUNK_ADDRESS     (with --tcache-link: a tcache entry whose link was overwritten)
 *     bin_link CHUNK_ADDRESS        (with --bin-link: a chunk in the unsorted bin whose fd was
 *                                    overwritten)
 *     bin_back CHUNK_ADDRESS        (with --bin-back: the same chunk's bk overwritten instead)
 *     bin_self CHUNK_ADDRESS        (with --bin-self: the same chunk's fd made to point to itself)
 *     nextsize CHUNK_ADDRESS        (with --nextsize: a chunk alone in its large bin whose
 *                                    fd_nextsize was overwritten)
 *     tcache_key CHUNK_ADDRESS      (with --tcache-key: a tcache entry whose key was overwritten)
 *     arena_top FIELD_ADDRESS       (with --arena-top: main_arena.top overwritten)
 *     thread_top FIELD_ADDRESS      (with --thread-top: a thread arena's top overwritten)
 *     heap_size HEAP_INFO_ADDRESS   (with --heap-size: a thread heap's heap_info.size overwritten)
 *     heap_owner HEAP_INFO_ADDRESS  (with --heap-owner: its heap_info.ar_ptr overwritten)
 *     lookalike ADDRESS             (with --chunk-lookalike: a mapping of its own, not malloc's,
 *                                    starting with what looks like an mmapped chunk's header
 *                                    whose size wraps the address space around)
 *     lookalike_large ADDRESS       (with --page-lookalike, which also records `lookalike`: pages
 *                                    inside a mapping of its own that start like mmapped chunks
 *                                    of 8 and 256 KiB, each pointed to from the program's data)
 *     pool ADDRESS                  (with --own-pool: 32 MiB the program mapped and filled itself,
 *                                    as an allocator heapsnap does not know would)
 *     threads N                     (threads that used malloc)
 * With --nondumpable it first makes itself non-dumpable (prctl PR_SET_DUMPABLE 0).
 * then "done". */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 4
#define BLOCKS 600
#define MMAPPED 3

static int record_fd;
static pthread_mutex_t record_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t allocated, recorded;
static void *thread_block; /* a block of the first worker's thread arena */

static void record(const char *what, void *address, size_t size)
{
	char line[96];
	int length = size ? snprintf(line, sizeof line, "%s %p %zu\n", what, address, size)
			  : snprintf(line, sizeof line, "%s %p\n", what, address);
	pthread_mutex_lock(&record_lock);
	if (write(record_fd, line, (size_t)length) != length)
		_exit(3);
	pthread_mutex_unlock(&record_lock);
}

/* Block sizes: mostly small (tcache and fast-bin sizes), some medium (small bins), some large
 * (large bins), in an order that keeps freed neighbours apart so they do not coalesce. */
static size_t block_size(int thread, int index)
{
	unsigned value = (unsigned)(index * 2654435761u + (unsigned)thread * 40503u);
	switch (index % 6) {
	case 0: case 1: case 2:
		return 8 + value % 120; /* fast-bin and tcache sizes */
	case 3:
		return 200 + value % 800; /* small bins */
	case 4:
		return 1100 + value % 3000; /* large bins */
	default:
		return 16 + value % 64;
	}
}

static void *work(void *argument)
{
	int thread = (int)(intptr_t)argument;
	static __thread unsigned char *blocks[BLOCKS];
	for (int i = 0; i < BLOCKS; i++) {
		size_t size = block_size(thread, i);
		blocks[i] = malloc(size);
		memset(blocks[i], (int)(i * 7 + thread), size);
	}
	pthread_barrier_wait(&allocated);
	/* free every third block: neighbours stay held, so freed chunks keep their place */
	for (int i = 0; i < BLOCKS; i++) {
		if (i % 3 != 1)
			continue;
		record("freed", blocks[i], 0);
		free(blocks[i]);
		blocks[i] = NULL;
	}
	for (int i = 0; i < BLOCKS; i++)
		if (blocks[i])
			record("held", blocks[i], malloc_usable_size(blocks[i]));
	if (thread == 1)
		thread_block = blocks[0];
	pthread_barrier_wait(&recorded);
	if (thread > 0)
		for (;;)
			pause();
	return blocks[0];
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *mode = argc > 2 ? argv[2] : "";
	int corrupt = strcmp(mode, "--corrupt") == 0;
	/* a process that forbids being traced or dumped: the in-process hook still snapshots it */
	if (strcmp(mode, "--nondumpable") == 0 && prctl(PR_SET_DUMPABLE, 0) != 0)
		return 4;
	char temporary[4096];
	snprintf(temporary, sizeof temporary, "%s.tmp", argv[1]);
	record_fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (record_fd < 0)
		return 1;
	pthread_barrier_init(&allocated, NULL, WORKERS + 1);
	pthread_barrier_init(&recorded, NULL, WORKERS + 1);
	pthread_t threads[WORKERS];
	for (int i = 0; i < WORKERS; i++)
		pthread_create(&threads[i], NULL, work, (void *)(intptr_t)(i + 1));
	void *mapped[MMAPPED];
	for (int i = 0; i < MMAPPED; i++) {
		/* the last one aligned: memalign puts its chunk some way into its mapping */
		if (i == MMAPPED - 1 && posix_memalign(&mapped[i], 64 << 10, 300u << 10) != 0)
			return 1;
		if (i < MMAPPED - 1)
			mapped[i] = malloc((256u << 10) + (size_t)i * 100000);
		memset(mapped[i], 0x5a, 4096);
	}
	void *fill[7] = {0}, *cycle_a = NULL, *cycle_b = NULL, *link_blocks[4] = {0}, *big = NULL;
	void *guard = NULL;
	if (strcmp(mode, "--fastbin-cycle") == 0) {
		cycle_a = malloc(40);
		cycle_b = malloc(40);
		guard = malloc(40);
		for (int i = 0; i < 7; i++)
			fill[i] = malloc(40);
	} else if (strcmp(mode, "--tcache-link") == 0) {
		guard = malloc(72);
		for (int i = 0; i < 4; i++)
			link_blocks[i] = malloc(72);
	} else if (strcmp(mode, "--bin-link") == 0 || strcmp(mode, "--bin-back") == 0 ||
		   strcmp(mode, "--bin-self") == 0 || strcmp(mode, "--arena-top") == 0 ||
		   strcmp(mode, "--nextsize") == 0) {
		/* (no block of work() has 5000's chunk size: alone in its large bin, it heads it) */
		big = malloc(strcmp(mode, "--nextsize") == 0 ? 5000 : 3000);
		guard = malloc(100);
	} else if (strcmp(mode, "--tcache-key") == 0) {
		/* a size work() never frees, so its tcache bin holds these only */
		guard = malloc(150);
		for (int i = 0; i < 3; i++)
			link_blocks[i] = malloc(150);
	}
	unsigned char *first = work((void *)0); /* the main thread's share, then wait */
	for (int i = 0; i < MMAPPED; i++)
		record("held", mapped[i], malloc_usable_size(mapped[i]));
	/* the damage is done after the record of work() is written, with blocks allocated before
	 * it, so that no recorded free is reused and no recorded block is disturbed */
	if (cycle_a) {
		for (int i = 0; i < 7; i++) {
			record("freed", fill[i], 0);
			free(fill[i]);
		}
		record("freed", cycle_a, 0);
		record("freed", cycle_b, 0);
		free(cycle_a);
		free(cycle_b);
		free(cycle_a); /* glibc checks only the list's head: now a -> b -> a */
		record("cycle", (char *)cycle_a - 16, 0);
		record("held", guard, malloc_usable_size(guard));
	}
	if (link_blocks[0] && strcmp(mode, "--tcache-key") == 0) {
		for (int i = 0; i < 3; i++) {
			record("freed", link_blocks[i], 0);
			free(link_blocks[i]);
		}
		/* the second word of a tcache entry is glibc's key: overwrite the middle one's */
		uint64_t garbage = 0x4646464646464646ull;
		memcpy((char *)link_blocks[1] + 8, &garbage, 8);
		record("tcache_key", (char *)link_blocks[1] - 16, 0);
		record("held", guard, malloc_usable_size(guard));
	} else if (link_blocks[0]) {
		for (int i = 0; i < 4; i++) {
			record("freed", link_blocks[i], 0);
			free(link_blocks[i]);
		}
		/* the last freed is the head of its tcache list: smash its link */
		uint64_t garbage = 0x4242424242424242ull;
		memcpy(link_blocks[3], &garbage, 8);
		record("tcache_link", (char *)link_blocks[3] - 16, 0);
		record("held", guard, malloc_usable_size(guard));
	}
	if (big) {
		/* too big for the tcache, kept apart by held blocks: it goes to the unsorted bin */
		record("freed", big, 0);
		free(big);
		record("held", guard, malloc_usable_size(guard));
		uint64_t garbage = 0x4343434343434340ull, *links = (uint64_t *)big;
		if (strcmp(mode, "--bin-link") == 0) {
			links[0] = garbage;
			record("bin_link", (char *)big - 16, 0);
		} else if (strcmp(mode, "--bin-back") == 0) {
			links[1] = garbage;
			record("bin_back", (char *)big - 16, 0);
		} else if (strcmp(mode, "--bin-self") == 0) {
			links[0] = (uint64_t)(uintptr_t)((char *)big - 16);
			record("bin_self", (char *)big - 16, 0);
		} else if (strcmp(mode, "--arena-top") == 0) {
			/* the unsorted bin's head is bin_at(1), &bins[0] - 16: the address of the
			 * arena's top field, which the bin's newest chunk's bk holds */
			uint64_t *top_field = (uint64_t *)(uintptr_t)links[1];
			*top_field = 0x4444444444444440ull;
			record("arena_top", top_field, 0);
		} else {
			/* a request too big for any free chunk sorts the unsorted bin (`big` goes to
			 * its large bin, alone, its size links pointing to itself), then is mmapped */
			void *sorter = malloc(400u << 10);
			record("held", sorter, malloc_usable_size(sorter));
			links[2] = garbage;
			record("nextsize", (char *)big - 16, 0);
		}
	}
	if (strcmp(mode, "--thread-top") == 0 || strcmp(mode, "--heap-size") == 0 ||
	    strcmp(mode, "--heap-owner") == 0) {
		/* a thread heap starts at its 64 MiB-aligned heap_info: ar_ptr, prev, size */
		uint64_t *heap_info = (uint64_t *)((uintptr_t)thread_block & ~((64ul << 20) - 1));
		if (strcmp(mode, "--heap-size") == 0) {
			heap_info[2] = 0x4545454545454540ull;
			record("heap_size", heap_info, 0);
		} else if (strcmp(mode, "--heap-owner") == 0) {
			heap_info[0] = 0x4747474747474740ull;
			record("heap_owner", heap_info, 0);
		} else {
			/* malloc_state since 2.27: mutex, flags, have_fastchunks (16 bytes with
			 * padding), 10 fast bins, then top */
			uint64_t *top_field = (uint64_t *)(uintptr_t)(heap_info[0] + 16 + 10 * 8);
			*top_field = 0x4848484848484840ull;
			record("thread_top", top_field, 0);
		}
	}
	if (strcmp(mode, "--own-pool") == 0) {
		unsigned char *pool = mmap(NULL, 32 << 20, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (pool == MAP_FAILED)
			return 1;
		memset(pool, 0x77, 32 << 20);
		record("pool", pool, 0);
	}
	if (strcmp(mode, "--chunk-lookalike") == 0) {
		/* data, as a JVM's heap may hold: prev_size 0, then a page-aligned size with
		   IS_MMAPPED that reaches past the end of the address space */
		uint64_t *words = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (words == MAP_FAILED)
			return 1;
		words[0] = 0;
		words[1] = 0xfffffffffffff000ull | 2;
		record("lookalike", words, 0);
	}
	if (strcmp(mode, "--page-lookalike") == 0) {
		/* pages in the middle of a mapping of the program's own that start like mmapped
		   chunks, each pointed to (as CI once met in python3's heap: a page holding 0,
		   0x2002, then a str): one of 8 KiB, one of 256 KiB */
		static void *pointers[2];
		uint64_t *words = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (words == MAP_FAILED)
			return 1;
		memset(words, 0x5a, 1 << 20);
		uint64_t *small = words + (12 << 10) / 8, *large = words + (64 << 10) / 8;
		small[0] = 0;
		small[1] = 0x2002;
		large[0] = 0;
		large[1] = (256 << 10) | 2;
		pointers[0] = small + 2;
		pointers[1] = large + 2;
		record("lookalike", small, 0);
		record("lookalike_large", large, 0);
	}
	if (corrupt) {
		/* smash the size field of a held block in the main heap (not the last one) */
		unsigned char *victim = first;
		uint64_t garbage = 0x4141414141414141ull;
		memcpy(victim - 8, &garbage, 8);
		record("corrupted", victim - 16, 0);
	}
	char line[32];
	int length = snprintf(line, sizeof line, "threads %d\ndone\n", WORKERS + 1);
	if (write(record_fd, line, (size_t)length) != length)
		return 3;
	close(record_fd);
	rename(temporary, argv[1]);
	for (;;)
		pause();
}
