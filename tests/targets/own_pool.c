/* A program that keeps its objects in a pool of its own (mmap'd, filled by itself), as a runtime
 * heapsnap does not walk would, beside a few malloc'd blocks. It writes "ready" to the file named
 * by its first argument; on SIGUSR1 it maps and fills another 32 MiB and writes "grown" to
 * "ARGUMENT.grown": the memory no walker reads doubles while the malloc heap stays as it was. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define POOL (32u << 20)

static volatile sig_atomic_t grow;
static void *pools[2];
static void *blocks[100];

static void on_signal(int signal)
{
	(void)signal;
	grow = 1;
}

static void *fill_pool(void)
{
	unsigned char *pool = mmap(NULL, POOL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				   -1, 0);
	if (pool == MAP_FAILED)
		_exit(1);
	for (size_t i = 0; i < POOL; i++)
		pool[i] = (unsigned char)(i * 31 + 7) | 1;
	return pool;
}

static void say(const char *name, const char *text)
{
	char temporary[4096];
	snprintf(temporary, sizeof temporary, "%s.tmp", name);
	int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		_exit(3);
	close(fd);
	rename(temporary, name);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	signal(SIGUSR1, on_signal);
	for (int i = 0; i < 100; i++)
		blocks[i] = calloc(1, 64);
	pools[0] = fill_pool();
	say(argv[1], "ready");
	while (!grow)
		pause();
	pools[1] = fill_pool();
	char name[4096];
	snprintf(name, sizeof name, "%s.grown", argv[1]);
	say(name, "grown");
	for (;;)
		pause();
}
