/* A target for allocation sites: three functions allocate blocks of three sizes, kept in untyped
 * (void *) tables so that no type names them. It records where each function calls malloc, and
 * where main calls each function (built with frame pointers, the hook follows the stack there),
 * with write(2) only:
 *     site FUNCTION LINE
 *     caller FUNCTION LINE
 * then allocates 10 blocks from each function, writes "phase 1" and waits for a line on stdin;
 * then 100 more from make_small, 200 from make_medium and 300 from make_large, writes "phase 2",
 * and waits until killed.
 *
 *     sites RECORD_FILE */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* global, so that the compiler keeps every allocation (a table nobody reads could go) */
void *small_blocks[200], *medium_blocks[300], *large_blocks[400];
static int record_fd;

static void record(const char *text)
{
	if (write(record_fd, text, strlen(text)) < 0)
		_exit(3);
}

static void record_site(const char *function, int line)
{
	char text[96];
	snprintf(text, sizeof text, "site %s %d\n", function, line);
	record(text);
}

__attribute__((noinline)) static void make_small(int index)
{
	small_blocks[index] = malloc(40); enum { SMALL_LINE = __LINE__ };
	if (index == 0)
		record_site("make_small", SMALL_LINE);
}

__attribute__((noinline)) static void make_medium(int index)
{
	medium_blocks[index] = calloc(1, 72); enum { MEDIUM_LINE = __LINE__ };
	if (index == 0)
		record_site("make_medium", MEDIUM_LINE);
}

__attribute__((noinline)) static void make_large(int index)
{
	large_blocks[index] = realloc(NULL, 136); enum { LARGE_LINE = __LINE__ };
	if (index == 0)
		record_site("make_large", LARGE_LINE);
}

int main(int argc, char **argv)
{
	if (argc != 2 || (record_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		return 2;
	for (int i = 0; i < 10; i++) {
		make_small(i);
		make_medium(i);
		make_large(i);
	}
	record("phase 1\n");
	char text[64];
	char line[16];
	if (read(STDIN_FILENO, line, sizeof line) <= 0)
		return 1;
	int small_call = 0, medium_call = 0, large_call = 0;
	for (int i = 10; i < 110; i++) {
		make_small(i); small_call = __LINE__;
	}
	for (int i = 10; i < 210; i++) {
		make_medium(i); medium_call = __LINE__;
	}
	for (int i = 10; i < 310; i++) {
		make_large(i); large_call = __LINE__;
	}
	snprintf(text, sizeof text, "caller make_small %d\ncaller make_medium %d\n", small_call,
		 medium_call);
	record(text);
	snprintf(text, sizeof text, "caller make_large %d\n", large_call);
	record(text);
	record("phase 2\n");
	for (;;)
		pause();
}
