/* The metrics Prometheus collects, in the text format node_exporter's textfile collector and
 * `promtool check metrics` read (which OpenMetrics' text format also is, as written here: HELP
 * and TYPE lines, gauges without timestamps, `# EOF` at the end): per process the heap's live and
 * free bytes, the memory no walker reads, the capture's pause and duration, how many warnings the
 * analysis gave; per type (the largest by bytes, the rest summed as type="(other)") objects,
 * bytes and retained bytes, and, from `heapsnap watch`, whether it is a leak suspect. Type names
 * are program data: label values are escaped, made valid UTF-8 and bounded in length, and a name
 * changed to fit keeps a hash of the original so that no two types share a series. */
#ifndef HEAPSNAP_OPENMETRICS_H
#define HEAPSNAP_OPENMETRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/error.h"

struct analysis;
struct heap_summary;

/* The types with series of their own by default. */
#define OPENMETRICS_TOP_TYPES 20

/* The longest label value written, in bytes (a longer name is cut and given a hash). */
#define OPENMETRICS_LABEL_MAX 128

struct openmetrics_options {
	size_t top_types; /* the types by bytes with series of their own; the rest are "(other)" */
	bool retained;	  /* heapsnap_retained_bytes, when the analysis has its graph */
	/* the types `heapsnap watch` judged leak suspects; they have series of their own even
	   outside the top, and heapsnap_leak_suspect says 1 for them (0 for the other types
	   shown). NULL: no judgement was made, heapsnap_leak_suspect is not written */
	const char *const *suspects;
	size_t suspect_count;
	bool judged;
	/* the whole capture's time, known to the command that made it (0: not written; a
	   snapshot records its pause, not how long the writing took) */
	double capture_seconds;
};

/* Writes the metrics of one analysed snapshot (with its summary) to `out`: per type every live
 * allocation, reachable or not (live_type_groups); -1 when out of memory or writing failed. */
int openmetrics_write(FILE *out, const struct analysis *analysis,
		      const struct heap_summary *summary, const struct openmetrics_options *options,
		      struct hs_error *err);

/* `text` as a label value: valid UTF-8 (a bad byte becomes '?'), control characters as '?',
 * cut to fit OPENMETRICS_LABEL_MAX with "~" and 8 hex digits of its hash when it had to change
 * or be cut; not yet escaped. `out` holds OPENMETRICS_LABEL_MAX + 1 bytes. */
void openmetrics_label_value(const char *text, char *out);

#endif
