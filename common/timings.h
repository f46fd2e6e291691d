/* How long each step of an analysis took, and the memory peak as it ended (opening the snapshot, walking each heap, building the
 * graph, ...), wall-clock: recorded by the library as it goes, printed by a front end asked for
 * them (`--timings`), and read by the benchmarks to say where the time goes. */
#ifndef HEAPSNAP_TIMINGS_H
#define HEAPSNAP_TIMINGS_H

#include <stddef.h>

#define TIMINGS_MAX 32

/* Told of each step as it ends (a front end's progress line); called from the thread that ends
 * it, so it must be quick and thread-safe. */
struct timings_observer {
	void (*step_done)(void *context, const char *name);
	void *context;
};

struct timings {
	struct timing_step {
		const char *name; /* a string constant */
		double seconds;
		long peak_kib; /* the process's peak resident memory when it ended */
	} steps[TIMINGS_MAX];
	size_t count;
	double last; /* when the previous step ended, seconds on the monotonic clock */
	struct timings_observer observer; /* none when step_done is NULL */
	/* work another thread did while the steps ran (not part of their sum) */
	struct timing_aside {
		const char *name; /* a string constant */
		double seconds;
	} asides[4];
	size_t aside_count;
};

/* Starts the clock for the first step. */
void timings_start(struct timings *timings);
/* Ends the step `name` (a string constant) now; the next starts. Steps of one name add up. */
void timings_mark(struct timings *timings, const char *name);
/* Records `seconds` of work another thread did beside the steps (its time overlaps theirs). */
void timings_aside(struct timings *timings, const char *name, double seconds);

#endif
