/* A static musl program holding 1,000 malloc blocks: heapsnap must name musl's malloc as one it
 * cannot walk (tests/e2e/test_other_heaps.py). Writes "ready" to its argument, then waits. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *kept[1000];

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	for (int i = 0; i < 1000; i++)
		kept[i] = malloc(64);
	FILE *ready = fopen(argv[1], "w");
	if (ready == NULL)
		return 1;
	fputs("ready", ready);
	fclose(ready);
	for (;;)
		pause();
}
