/* The clocks heapsnap reads: nanoseconds of the monotonic clock (durations, pauses) and of the
 * real-time clock (when a snapshot was taken), seconds for timings, and a real-time deadline for
 * pthread_cond_timedwait. Inline: clock_gettime is the vDSO's, async-signal-safe, so the hook may
 * call these from its signal handler. */
#ifndef HEAPSNAP_CLOCK_H
#define HEAPSNAP_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t clock)
{
	struct timespec now;
	clock_gettime(clock, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static inline uint64_t monotonic_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static inline uint64_t realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

static inline double monotonic_seconds(void)
{
	return (double)monotonic_ns() / 1e9;
}

/* The real-time clock `after_ns` from now, as pthread_cond_timedwait takes it. */
static inline struct timespec realtime_deadline(uint64_t after_ns)
{
	uint64_t at = realtime_ns() + after_ns;
	return (struct timespec){.tv_sec = (time_t)(at / 1000000000u),
				 .tv_nsec = (long)(at % 1000000000u)};
}

#endif
