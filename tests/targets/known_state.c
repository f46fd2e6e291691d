/* A target with a state known in advance, for capture tests: globals with fixed values, a heap
 * pattern, and worker threads parked in named functions. It writes "ready" plus what it allocated
 * to the file given as its first argument, then waits to be captured (or, with --work, keeps
 * computing a checksum so tests can tell whether it was ever left stopped or perturbed). */
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 3
#define BLOCKS 64

long known_counter = 424242;
char known_text[64] = "heapsnap known text";
double known_ratio = 2.5;
struct known_pair {
	int first;
	long second;
} known_pair = {7, -99};
unsigned char *known_blocks[BLOCKS];
/* A writable mapping of a one-page file, four pages long: its last three pages cannot be read
 * (SIGBUS), so a capture must record them as absent rather than fail. */
unsigned char *unreadable_mapping, *unreadable_within;
size_t known_block_sizes[BLOCKS];
static int do_work;
static volatile int stop_work;
struct work_result {
	uint64_t steps, value;
} work_results[WORKERS];

/* One step of a worker's deterministic computation, with a malloc/free in it so that capture
 * happens while the allocator is busy. Replaying the same number of steps from the same seed must
 * give the same value: any register or memory the freeze disturbed would change it. */
static uint64_t work_step(uint64_t value, uint64_t step, int allocate)
{
	value = value * 6364136223846793005ull + 1442695040888963407ull + (step ^ (value >> 33));
	if (allocate) {
		size_t size = 32 + (value & 255);
		unsigned char *block = malloc(size);
		memset(block, (int)(value & 0xff), size);
		value += block[size - 1];
		free(block);
	} else {
		value += value & 0xff;
	}
	return value;
}

/* Each worker sleeps inside a function of its own so backtraces are distinct and checkable. */
__attribute__((noinline)) static void park_in_worker_wait(void)
{
	for (;;)
		pause();
}

__attribute__((noinline)) static void *worker_main(void *argument)
{
	int index = (int)(intptr_t)argument;
	if (!do_work)
		park_in_worker_wait();
	uint64_t value = (uint64_t)index + 1, steps = 0;
	while (!stop_work) {
		value = work_step(value, steps, 1);
		steps++;
		if ((steps & 4095) == 0)
			usleep(200); /* leave the CPUs to the capture too */
	}
	work_results[index] = (struct work_result){steps, value};
	return NULL;
}

__attribute__((noinline)) static void park_in_main_wait(void)
{
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: known_state READY_FILE [--work]\n");
		return 2;
	}
	do_work = argc > 2 && strcmp(argv[2], "--work") == 0;
	for (int i = 0; i < BLOCKS; i++) {
		size_t size = 16 + (size_t)i * 40;
		known_blocks[i] = malloc(size);
		known_block_sizes[i] = size;
		for (size_t k = 0; k < size; k++)
			known_blocks[i][k] = (unsigned char)(i * 7 + k);
	}
	/* with --work, SIGUSR1 (taken by sigwait in main only) ends the work and checks it */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGUSR1);
	if (do_work)
		pthread_sigmask(SIG_BLOCK, &stop, NULL);
	char backing[4096];
	snprintf(backing, sizeof backing, "%s.page", argv[1]);
	int fd = open(backing, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 2 * 4096) != 0)
		return 1;
	unreadable_mapping = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	/* and one mapped from the file's second page: a capture by fork reads such a mapping
	   (not from the file's start) from its clone as it writes, and must start over */
	unreadable_within = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 4096);
	close(fd);
	if (unreadable_mapping == MAP_FAILED || unreadable_within == MAP_FAILED)
		return 1;
	unreadable_mapping[0] = 0x5a;
	unreadable_within[0] = 0x5b;
	pthread_t threads[WORKERS];
	for (int i = 0; i < WORKERS; i++)
		pthread_create(&threads[i], NULL, worker_main, (void *)(intptr_t)i);
	char temporary[4096];
	snprintf(temporary, sizeof temporary, "%s.tmp", argv[1]);
	FILE *out = fopen(temporary, "w");
	if (out == NULL)
		return 1;
	fprintf(out, "pid %d\n", (int)getpid());
	fprintf(out, "unreadable %p %d\n", (void *)(unreadable_mapping + 2 * 4096), 2 * 4096);
	fprintf(out, "unreadable %p %d\n", (void *)(unreadable_within + 4096), 3 * 4096);
	for (int i = 0; i < BLOCKS; i++)
		fprintf(out, "block %p %zu\n", (void *)known_blocks[i], known_block_sizes[i]);
	fclose(out);
	rename(temporary, argv[1]);
	if (!do_work)
		park_in_main_wait();
	int received;
	sigwait(&stop, &received);
	stop_work = 1;
	int good = 1;
	uint64_t total = 0;
	for (int i = 0; i < WORKERS; i++) {
		pthread_join(threads[i], NULL);
		uint64_t value = (uint64_t)i + 1;
		for (uint64_t step = 0; step < work_results[i].steps; step++)
			value = work_step(value, step, 0);
		good &= value == work_results[i].value;
		total += work_results[i].steps;
	}
	snprintf(temporary, sizeof temporary, "%s.result", argv[1]);
	out = fopen(temporary, "w");
	fprintf(out, "%s %llu\n", good ? "ok" : "bad", (unsigned long long)total);
	fclose(out);
	return good ? 0 : 1;
}
