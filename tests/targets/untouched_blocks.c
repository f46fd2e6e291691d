/* A target whose glibc heap holds big blocks written only in their first bytes, as a server's
 * request buffers are: most of their pages were never touched, so a capture keeps them as zeros
 * without storing them. Blocks of 8, 32, 1 and 16 MiB are mmapped; after malloc's mmap threshold
 * is raised (by freeing a 12 MiB mmapped block), a 6 MiB block comes from the main heap and another
 * from a thread's arena, whose thread then sits idle. Its record (argument 1), written with
 * write(2) only:
 *     held ADDRESS USABLE_SIZE      (malloc_usable_size)
 *     mallinfo UORDBLKS HBLKHD      (mallinfo2(): bytes in use in the arenas, and mmapped)
 *     done
 * On SIGUSR1 it allocates ten more 4 MiB blocks the same way and writes their record to
 * "ARGUMENT.more". Every block is kept in a global array, so pointers reach each. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

static void *held[32];
static int held_count;
static volatile sig_atomic_t more;
static pthread_barrier_t ready;

static void *take(size_t size)
{
	unsigned char *block = malloc(size);
	if (block == NULL)
		_exit(1);
	memset(block, 0x6b, 64);
	held[held_count++] = block;
	return block;
}

static void *idle_thread(void *argument)
{
	(void)argument;
	take(6u << 20);
	for (int i = 0; i < 100; i++)
		free(malloc(100 + (size_t)i)); /* a few free chunks in its tcache and top */
	pthread_barrier_wait(&ready);
	for (;;)
		pause();
	return NULL;
}

static void on_signal(int signal)
{
	(void)signal;
	more = 1;
}

/* Writes the held blocks from `from` on and mallinfo2's figures to `name`, through a temporary
 * file renamed in place once whole. */
static void write_record(const char *name, int from)
{
	char temporary[4096], line[128];
	snprintf(temporary, sizeof temporary, "%s.tmp", name);
	int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		_exit(1);
	for (int i = from; i < held_count; i++) {
		int length = snprintf(line, sizeof line, "held %p %zu\n", held[i],
				      malloc_usable_size(held[i]));
		if (write(fd, line, (size_t)length) != length)
			_exit(3);
	}
	struct mallinfo2 info = mallinfo2();
	int length = snprintf(line, sizeof line, "mallinfo %zu %zu\ndone\n", info.uordblks,
			      info.hblkhd);
	if (write(fd, line, (size_t)length) != length)
		_exit(3);
	close(fd);
	rename(temporary, name);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	signal(SIGUSR1, on_signal);
	static const size_t mapped[] = {8u << 20, 32u << 20, 1u << 20, 16u << 20};
	for (int i = 0; i < 4; i++)
		take(mapped[i]);
	free(malloc(12u << 20)); /* mmapped, then freed: the mmap threshold rises to 12 MiB */
	take(6u << 20);		 /* from the main heap now */
	pthread_t thread;
	pthread_barrier_init(&ready, NULL, 2);
	pthread_create(&thread, NULL, idle_thread, NULL);
	pthread_barrier_wait(&ready);
	write_record(argv[1], 0);
	while (!more)
		pause();
	int before = held_count;
	for (int i = 0; i < 10; i++)
		take(4u << 20);
	char name[4096];
	snprintf(name, sizeof name, "%s.more", argv[1]);
	write_record(name, before);
	for (;;)
		pause();
}
