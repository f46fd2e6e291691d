/* Malloc-heavy work on several threads, for the in-process hook's tests and benchmark: each thread
 * keeps a table of blocks and, driven by its own pseudo-random sequence, allocates (malloc, calloc,
 * realloc, posix_memalign, aligned_alloc, memalign, valloc), fills, checks and frees them. The sum
 * of every byte checked before a block is freed is a checksum that depends only on the sequence,
 * not on timing: signals and snapshots taken meanwhile must leave it unchanged.
 *
 *     malloc_hammer THREADS OPERATIONS_PER_THREAD [READY_FILE]
 *
 * It writes its pid to READY_FILE (if given) once the threads run, and prints "checksum N" at the
 * end. */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 512

struct worker {
	int index;
	long operations;
	uint64_t checksum;
	int failed;
};

static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* Checks a block's fill (its first `size` bytes are `seed + i`) and adds them to the checksum. */
static void check_block(struct worker *worker, const uint8_t *block, size_t size, uint8_t seed)
{
	for (size_t i = 0; i < size; i++) {
		if (block[i] != (uint8_t)(seed + i))
			worker->failed = 1;
		worker->checksum += block[i];
	}
}

static void *work(void *argument)
{
	struct worker *worker = argument;
	uint64_t state = 0x9E3779B97F4A7C15ull * (uint64_t)(worker->index + 1);
	uint8_t *blocks[SLOTS] = {0};
	size_t sizes[SLOTS] = {0};
	uint8_t seeds[SLOTS] = {0};
	for (long op = 0; op < worker->operations; op++) {
		uint64_t random = next_random(&state);
		size_t slot = random % SLOTS;
		size_t size = 1 + (size_t)(random >> 16) % ((random >> 40) % 8 == 0 ? 70000 : 600);
		if (blocks[slot]) {
			check_block(worker, blocks[slot], sizes[slot], seeds[slot]);
			if ((random >> 8) % 4 == 0) { /* grow or shrink in place, keeping the content */
				size_t keep = sizes[slot] < size ? sizes[slot] : size;
				uint8_t *moved = realloc(blocks[slot], size);
				if (moved == NULL) {
					worker->failed = 1;
					continue;
				}
				blocks[slot] = moved;
				sizes[slot] = keep;
				continue;
			}
			free(blocks[slot]);
			blocks[slot] = NULL;
			continue;
		}
		void *block = NULL;
		switch ((random >> 4) % 7) {
		case 0:
			block = malloc(size);
			break;
		case 1:
			block = calloc(1, size);
			break;
		case 2:
			block = realloc(NULL, size);
			break;
		case 3:
			if (posix_memalign(&block, 64, size) != 0)
				block = NULL;
			break;
		case 4:
			block = aligned_alloc(32, (size + 31) & ~(size_t)31);
			break;
		case 5:
			block = memalign(128, size);
			break;
		default:
			block = valloc(size);
			break;
		}
		if (block == NULL) {
			worker->failed = 1;
			continue;
		}
		seeds[slot] = (uint8_t)(random >> 24);
		for (size_t i = 0; i < size; i++)
			((uint8_t *)block)[i] = (uint8_t)(seeds[slot] + i);
		blocks[slot] = block;
		sizes[slot] = size;
	}
	for (size_t slot = 0; slot < SLOTS; slot++)
		if (blocks[slot]) {
			check_block(worker, blocks[slot], sizes[slot], seeds[slot]);
			free(blocks[slot]);
		}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	int count = atoi(argv[1]);
	long operations = atol(argv[2]);
	if (count < 1 || count > 64 || operations < 1)
		return 2;
	struct worker workers[64];
	pthread_t threads[64];
	for (int i = 0; i < count; i++) {
		workers[i] = (struct worker){.index = i, .operations = operations};
		if (pthread_create(&threads[i], NULL, work, &workers[i]) != 0)
			return 1;
	}
	if (argc > 3) {
		char temporary[4096], line[32];
		snprintf(temporary, sizeof temporary, "%s.tmp", argv[3]);
		int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int length = snprintf(line, sizeof line, "%d\n", (int)getpid());
		if (fd < 0 || write(fd, line, (size_t)length) != length)
			return 1;
		close(fd);
		rename(temporary, argv[3]);
	}
	uint64_t checksum = 0;
	int failed = 0;
	for (int i = 0; i < count; i++) {
		pthread_join(threads[i], NULL);
		checksum += workers[i].checksum;
		failed |= workers[i].failed;
	}
	printf("checksum %llu%s\n", (unsigned long long)checksum, failed ? " CORRUPT" : "");
	return failed;
}
