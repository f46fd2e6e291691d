/* bench/summary's target: about COUNT million small allocations (16 to 200 bytes, ~1 GiB for 10
 * million), a third of them freed again in a scattered pattern, then it waits to be captured. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long count = (argc > 1 ? atol(argv[1]) : 10) * 1000000L;
	void **blocks = malloc((size_t)count * sizeof *blocks);
	unsigned state = 12345;
	for (long i = 0; i < count; i++) {
		state = state * 1103515245u + 12345u;
		size_t size = 16 + (state >> 16) % 185;
		blocks[i] = malloc(size);
		memset(blocks[i], (int)i, size < 16 ? size : 16);
	}
	for (long i = 0; i < count; i += 3)
		free(blocks[(i * 7) % count]);
	printf("ready\n");
	fflush(stdout);
	pause();
	return 0;
}
