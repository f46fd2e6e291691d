/* A target for heaps after fork(): the parent fills its brk heap, forks, and the child (the
 * process under test, like a prefork server's worker) grows the heap further, frees some of what it
 * inherited, and writes what it holds to the file named by its first argument, with write(2) only
 * (no stdio, no malloc):
 *     held ADDRESS USABLE_SIZE      (malloc_usable_size)
 *     freed ADDRESS
 *     child PID
 * then "done", and waits. After the fork the kernel keeps the child's brk heap as several adjacent
 * mappings (the inherited part cannot merge with what the child grew), which is what the test is
 * about. The parent waits for the child; killing the parent kills the child (PR_SET_PDEATHSIG). */
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define INHERITED 12000
#define GROWN 12000

static void *blocks[INHERITED + GROWN];
static int record_fd;

static void record(const char *what, void *address, size_t size)
{
	char line[96];
	int length = size ? snprintf(line, sizeof line, "%s %p %zu\n", what, address, size)
			  : snprintf(line, sizeof line, "%s %p\n", what, address);
	if (write(record_fd, line, (size_t)length) != length)
		_exit(3);
}

static size_t block_size(int index)
{
	return 16 + (size_t)(index * 2654435761u % 700u);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: forked_heap RECORD\n");
		return 2;
	}
	for (int i = 0; i < INHERITED; i++) {
		blocks[i] = malloc(block_size(i));
		memset(blocks[i], 1, block_size(i));
	}
	pid_t child = fork();
	if (child < 0)
		return 1;
	if (child > 0) {
		int status;
		waitpid(child, &status, 0);
		return 0;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int i = INHERITED; i < INHERITED + GROWN; i++) {
		blocks[i] = malloc(block_size(i));
		memset(blocks[i], 2, block_size(i));
	}
	/* free every fifth inherited block: the child's free lists point into the inherited part */
	char temporary[4096];
	snprintf(temporary, sizeof temporary, "%s.tmp", argv[1]);
	record_fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (record_fd < 0)
		return 1;
	for (int i = 0; i < INHERITED + GROWN; i++) {
		if (i < INHERITED && i % 5 == 0) {
			record("freed", blocks[i], 0);
			free(blocks[i]);
			blocks[i] = NULL;
		}
	}
	for (int i = 0; i < INHERITED + GROWN; i++)
		if (blocks[i])
			record("held", blocks[i], malloc_usable_size(blocks[i]));
	char line[32];
	int length = snprintf(line, sizeof line, "child %d\ndone\n", (int)getpid());
	if (write(record_fd, line, (size_t)length) != length || close(record_fd) != 0 ||
	    rename(temporary, argv[1]) != 0)
		return 1;
	for (;;)
		pause();
}
