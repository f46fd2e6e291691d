/* A target whose ended threads' stacks still hold pointers: each of four threads allocates
 * blocks, keeps their addresses only in its own stack (locals), and ends; the main thread joins
 * them, so glibc keeps their stacks in its cache for reuse. The blocks are lost: nothing the
 * program can reach points at them. It writes to the file named by its first argument
 *     lost ADDRESS       (one per block, read back with write(2): no stdio, no malloc)
 *     held ADDRESS       (blocks a global still points at, for contrast)
 * then "done", and waits. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 4
#define BLOCKS 50

static void *lost[THREADS][BLOCKS];
void *volatile held_blocks[BLOCKS];
/* exported (linked with --export-dynamic-symbol): a stripped copy keeps it in .dynsym, and it
 * names the words of held_blocks after it (the compiler places it first) */
void *volatile held_marker[2];

static void *work(void *argument)
{
	int index = (int)(long)argument;
	/* the only copy of each address that stays is in this stack frame */
	void *volatile mine[BLOCKS];
	for (int i = 0; i < BLOCKS; i++) {
		mine[i] = malloc(48 + (size_t)i);
		memset(mine[i], 7, 48);
		lost[index][i] = (void *)((uintptr_t)mine[i] ^ 0x5a5a5a5aul); /* hidden from a scan */
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	for (int i = 0; i < BLOCKS; i++)
		held_blocks[i] = malloc(64);
	pthread_t threads[THREADS];
	for (long t = 0; t < THREADS; t++)
		if (pthread_create(&threads[t], NULL, work, (void *)t) != 0)
			return 1;
	for (int t = 0; t < THREADS; t++)
		pthread_join(threads[t], NULL);
	char temporary[4096], line[64];
	snprintf(temporary, sizeof temporary, "%s.tmp", argv[1]);
	int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return 1;
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < BLOCKS; i++) {
			int length = snprintf(line, sizeof line, "lost %p\n",
					      (void *)((uintptr_t)lost[t][i] ^ 0x5a5a5a5aul));
			if (write(fd, line, (size_t)length) != length)
				return 1;
			lost[t][i] = NULL;
		}
	for (int i = 0; i < BLOCKS; i++) {
		int length = snprintf(line, sizeof line, "held %p\n", held_blocks[i]);
		if (write(fd, line, (size_t)length) != length)
			return 1;
	}
	if (write(fd, "done\n", 5) != 5 || close(fd) != 0 || rename(temporary, argv[1]) != 0)
		return 1;
	for (;;)
		pause();
}
