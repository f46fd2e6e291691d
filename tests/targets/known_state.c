/* A target with a state known in advance, for capture tests: globals with fixed values, a heap
 * pattern, and worker threads parked in named functions. It writes "ready" plus what it allocated
 * to the file given as its first argument, then waits to be captured (or, with --work, keeps
 * computing a checksum so tests can tell whether it was ever left stopped or perturbed). */
#include <pthread.h>
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
size_t known_block_sizes[BLOCKS];
volatile uint64_t work_checksum; /* advanced by the workers with --work */
volatile uint64_t work_steps;
static int do_work;

/* Each worker sleeps inside a function of its own so backtraces are distinct and checkable. */
__attribute__((noinline)) static void park_in_worker_wait(void)
{
	for (;;)
		pause();
}

__attribute__((noinline)) static void *worker_main(void *argument)
{
	(void)argument;
	if (!do_work)
		park_in_worker_wait();
	/* deterministic work: a checksum over a fixed sequence, so a correct final value proves
	 * no step was lost or corrupted while the process was frozen and resumed */
	for (;;) {
		uint64_t step = __atomic_fetch_add(&work_steps, 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&work_checksum, step * 2654435761u % 1000003u, __ATOMIC_SEQ_CST);
		if ((step & 1023) == 0)
			usleep(100);
	}
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
	pthread_t threads[WORKERS];
	for (int i = 0; i < WORKERS; i++)
		pthread_create(&threads[i], NULL, worker_main, NULL);
	char temporary[4096];
	snprintf(temporary, sizeof temporary, "%s.tmp", argv[1]);
	FILE *out = fopen(temporary, "w");
	if (out == NULL)
		return 1;
	fprintf(out, "pid %d\n", (int)getpid());
	for (int i = 0; i < BLOCKS; i++)
		fprintf(out, "block %p %zu\n", (void *)known_blocks[i], known_block_sizes[i]);
	fclose(out);
	rename(temporary, argv[1]);
	park_in_main_wait();
	return 0;
}
