/* bench/copy_floor.c: the floor of a freeze capture's pause. The freeze method copies every
 * writable private page of the stopped target into heapsnap's memory with process_vm_readv, in
 * 8 MiB chunks taken by one reader thread per CPU (up to 4), into a buffer populated beforehand.
 * This program does exactly that copy and nothing else, with one and with two threads, and then
 * a memcpy of the same bytes within its own memory (no kernel in the way): heapsnap's "copy
 * (frozen)" phase (`heapsnap capture PID --method freeze -v`) is compared against it.
 *
 * Build: gcc -O2 -pthread -o copy_floor bench/copy_floor.c
 * Run (as root): copy_floor PID  (each line: threads, MiB, seconds, GB/s) */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>

#define CHUNK (8u << 20)

struct chunk {
	uint64_t address, size;
	char *data;
};

static struct chunk *chunks;
static size_t chunk_count, next_chunk;
static int pid;
static int failures;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void *copy_chunks(void *unused)
{
	(void)unused;
	for (;;) {
		size_t i = __atomic_fetch_add(&next_chunk, 1, __ATOMIC_RELAXED);
		if (i >= chunk_count)
			return NULL;
		struct iovec local = {chunks[i].data, chunks[i].size};
		struct iovec remote = {(void *)(uintptr_t)chunks[i].address, chunks[i].size};
		if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)chunks[i].size)
			__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
	}
}

static void *populated(uint64_t bytes, int fill)
{
	char *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (memory == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memset(memory, fill, bytes);
	return memory;
}

/* The writable private mappings of the target, cut into chunks (data filled in later). */
static uint64_t plan(void)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/maps", pid);
	FILE *maps = fopen(path, "r");
	if (maps == NULL) {
		perror(path);
		exit(1);
	}
	uint64_t total = 0;
	size_t capacity = 0;
	while (fgets(line, sizeof line, maps)) {
		unsigned long long start, end;
		char permissions[8];
		if (sscanf(line, "%llx-%llx %7s", &start, &end, permissions) != 3 ||
		    permissions[1] != 'w' || permissions[3] != 'p' || strstr(line, "[vvar]"))
			continue;
		for (uint64_t at = start; at < end; at += CHUNK) {
			if (chunk_count == capacity) {
				capacity = capacity ? 2 * capacity : 1024;
				chunks = realloc(chunks, capacity * sizeof *chunks);
				if (chunks == NULL)
					exit(1);
			}
			uint64_t size = end - at < CHUNK ? end - at : CHUNK;
			chunks[chunk_count++] = (struct chunk){at, size, NULL};
			total += size;
		}
	}
	fclose(maps);
	return total;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: copy_floor PID\n");
		return 2;
	}
	pid = atoi(argv[1]);
	uint64_t total = plan();
	char *buffer = populated(total, 1);
	uint64_t offset = 0;
	for (size_t i = 0; i < chunk_count; i++, offset += chunks[i - 1].size)
		chunks[i].data = buffer + offset;
	for (int threads = 1; threads <= 2; threads++) {
		for (int run = 0; run < 2; run++) {
			next_chunk = 0;
			double start = now();
			pthread_t helper;
			int helped = threads == 2 && pthread_create(&helper, NULL, copy_chunks, NULL) == 0;
			copy_chunks(NULL);
			if (helped)
				pthread_join(helper, NULL);
			double seconds = now() - start;
			printf("process_vm_readv, %d thread%s: %.1f MiB in %.3f s = %.2f GB/s\n", threads,
			       threads > 1 ? "s" : "", total / 1048576.0, seconds, total / seconds / 1e9);
		}
	}
	char *copy = populated(total, 2);
	double start = now();
	memcpy(copy, buffer, total);
	double seconds = now() - start;
	printf("memcpy in one process: %.1f MiB in %.3f s = %.2f GB/s\n", total / 1048576.0, seconds,
	       total / seconds / 1e9);
	if (failures)
		printf("(%d chunks not read whole: the target changed its mappings)\n", failures);
	return 0;
}
