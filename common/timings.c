/* Wall-clock timings of an analysis's steps (see timings.h). */
#include "timings.h"

#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "common/clock.h"

void timings_start(struct timings *timings)
{
	timings->last = monotonic_seconds();
}

void timings_mark(struct timings *timings, const char *name)
{
	double at = monotonic_seconds(), seconds = at - timings->last;
	timings->last = at;
	if (timings->observer.step_done)
		timings->observer.step_done(timings->observer.context, name);
	struct rusage usage;
	long peak = getrusage(RUSAGE_SELF, &usage) == 0 ? usage.ru_maxrss : 0;
	for (size_t i = 0; i < timings->count; i++)
		if (strcmp(timings->steps[i].name, name) == 0) {
			timings->steps[i].seconds += seconds;
			timings->steps[i].peak_kib = peak;
			return;
		}
	if (timings->count < TIMINGS_MAX)
		timings->steps[timings->count++] = (struct timing_step){name, seconds, peak};
}

void timings_aside(struct timings *timings, const char *name, double seconds)
{
	if (timings->aside_count < sizeof timings->asides / sizeof timings->asides[0])
		timings->asides[timings->aside_count++] = (struct timing_aside){name, seconds};
}
