/* Which types keep growing across a series of snapshots of one process (`heapsnap watch`): per
 * type, its objects and bytes at each capture of a sliding window, and the verdict of the
 * Mann-Kendall trend test (with the correction for ties) on each series. A type is a leak
 * suspect when one of its series has an increasing trend at TREND_ALPHA over at least
 * TREND_MIN_POINTS captures AND its latest value is above the window's first by a margin
 * (TREND_MARGIN of the first, and at least TREND_MIN_OBJECTS objects or TREND_MIN_BYTES bytes):
 * the test alone would call a rising edge of a sawtooth a trend; the margin makes a series that
 * returned to its floor no suspect. */
#ifndef HEAPSNAP_TREND_H
#define HEAPSNAP_TREND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/reports/summary.h"
#include "common/error.h"

#define TREND_WINDOW 32	    /* the captures a trend is judged over: the latest ones */
#define TREND_MIN_POINTS 4  /* fewer captures: no verdict */
#define TREND_ALPHA 0.01    /* one-sided significance of the increasing trend */
#define TREND_MARGIN 0.10   /* the latest value above the window's first by this share... */
#define TREND_MIN_OBJECTS 32 /* ...and by this many objects (the count series)... */
#define TREND_MIN_BYTES (64 * 1024) /* ...or bytes (the bytes series) */

/* The Mann-Kendall statistic of a series in time order: S (concordant minus discordant pairs),
 * its variance under no trend with the correction for tied values, the normal score with
 * continuity correction, and the one-sided p-value of an increasing trend. */
struct mann_kendall {
	double s, variance, z, p_increasing;
};
void mann_kendall(const double *values, size_t count, struct mann_kendall *out);

/* One type's series over the window (index 0 the oldest kept). */
struct type_trend {
	char *name;
	double objects[TREND_WINDOW], bytes[TREND_WINDOW];
};

struct trends {
	struct type_trend *types; /* sorted by name */
	size_t type_count, type_capacity;
	double hours[TREND_WINDOW]; /* each capture's time, in hours since the first */
	size_t points;		    /* captures in the window (up to TREND_WINDOW) */
	uint64_t captures;	    /* captures added in all */
};

struct trend_verdict {
	bool suspect;
	size_t points;
	struct mann_kendall objects, bytes;
	double objects_per_hour, bytes_per_hour; /* from the window's first capture to its latest */
	double objects_first, objects_last, bytes_first, bytes_last;
};

/* Every live allocation by type, reachable or not: a summary's types (with its graph, the
 * reachable ones) and its unreachable ones, merged by type and by bytes, largest first; the
 * same with or without the graph. The caller frees *groups. */
int live_type_groups(const struct heap_summary *summary, struct type_group **groups,
		     size_t *count, struct hs_error *err);

void trends_init(struct trends *trends);
void trends_free(struct trends *trends);
/* Adds one capture, at `hours` since the first, with the live types of its summary, reachable or
 * not (a type the summary has not is at 0 in it). */
int trends_add(struct trends *trends, double hours, const struct heap_summary *summary,
	       struct hs_error *err);
/* The verdict on trends->types[index] over the window. */
void trend_judge(const struct trends *trends, size_t index, struct trend_verdict *verdict);

#endif
