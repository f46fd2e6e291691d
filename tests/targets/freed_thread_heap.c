/* A target whose only other thread allocates 400,000 small blocks, frees them all and ends, so a
 * malloc that keeps per-thread memory has it to retire (mimalloc frees the thread's segments into
 * its segment cache). The main thread then allocates one block, writes "held ADDRESS" to the file
 * named by its first argument (with write(2): no stdio, no malloc), and waits. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define BLOCKS 400000

static void *blocks[BLOCKS];

static void *churn(void *argument)
{
	(void)argument;
	for (int i = 0; i < BLOCKS; i++)
		if ((blocks[i] = malloc(200)) == NULL)
			_exit(3);
	for (int i = 0; i < BLOCKS; i++)
		free(blocks[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: freed_thread_heap RECORD\n");
		return 2;
	}
	pthread_t thread;
	if (pthread_create(&thread, NULL, churn, NULL) != 0 || pthread_join(thread, NULL) != 0)
		return 1;
	void *volatile held = malloc(100);
	char line[64], temporary[4096];
	int length = snprintf(line, sizeof line, "held 0x%llx\n",
			      (unsigned long long)(uintptr_t)held);
	snprintf(temporary, sizeof temporary, "%s.tmp", argv[1]);
	int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, line, (size_t)length) != length || close(fd) != 0 ||
	    rename(temporary, argv[1]) != 0)
		return 1;
	for (;;)
		pause();
}
