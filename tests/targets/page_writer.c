/* A target that rewrites memory as fast as it can, so that a snapshot taken while it runs is
 * consistent only if the capture got every page as it was at one instant. One thread loops over
 * generations G = 1, 2, ...: it writes G into the first word of every page of a 64 MiB region
 * (recording how far it got), then discards one page with MADV_DONTNEED and reads it back (the
 * kernel maps the shared zero page: no write, so no soft-dirty bit, and a different frame).
 * The state lives in the region's first page, so a test can check any snapshot against the
 * invariant: pages before `position` hold G, the others G - 1, but for the page last discarded,
 * which holds 0 until it is written again. Writes "ready ADDRESS PAGES" to its argument's file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 16384

struct state {
	volatile uint64_t generation; /* G, set when a generation starts */
	volatile uint64_t position;   /* pages [1, position) of this generation are written */
	volatile uint64_t discarded;  /* the page discarded (0: none yet) */
	volatile uint64_t discarded_generation;
};

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	uint8_t *region = mmap(NULL, (size_t)PAGES * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		return 1;
	madvise(region, (size_t)PAGES * PAGE, MADV_NOHUGEPAGE); /* discard single pages */
	struct state *state = (struct state *)region;
	FILE *out = fopen(argv[1], "w");
	fprintf(out, "ready %p %d\n", (void *)region, PAGES);
	fclose(out);
	for (uint64_t generation = 1;; generation++) {
		state->generation = generation;
		state->position = 1;
		for (uint64_t page = 1; page < PAGES; page++) {
			*(volatile uint64_t *)(region + page * PAGE) = generation;
			state->position = page + 1;
		}
		uint64_t victim = 1 + generation % (PAGES - 1);
		madvise(region + victim * PAGE, PAGE, MADV_DONTNEED);
		(void)*(volatile uint64_t *)(region + victim * PAGE);
		state->discarded = victim;
		state->discarded_generation = generation;
	}
}
