/* The heapdiff report: what grew between snapshots and what keeps it alive, as aligned text (colour
 * only when asked), GitHub-flavoured markdown (tables, the retaining paths drawn as a mermaid
 * flowchart and listed in a collapsed block), JSON (schema heapsnap.diff/1, documented in
 * docs/json-schema.md) or DOT (the retaining paths alone, as a Graphviz digraph; cli/path_graph.h). Values read from memory (dict keys, strings) are
 * masked unless `show_values`: a report is made to be shared. Every format ends with what a
 * maintainer needs to reproduce it: tool version, both snapshots and the runtimes' versions. */
#ifndef HEAPSNAP_DIFF_REPORT_H
#define HEAPSNAP_DIFF_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "analyze/reports/diff.h"
#include "analyze/graph/paths.h"
#include "cli/cli.h"

struct diff_report_options {
	enum output_format format;
	bool colour;
	bool by_count;		  /* rank by objects, not bytes */
	size_t top;		  /* grown types whose retaining paths are shown */
	const char *type_pattern; /* shell pattern: only types matching it */
	uint64_t min_bytes;	  /* only types whose bytes grew by at least this */
	bool show_values;
	bool forced; /* compared although not shown to be one process */
};

/* `target` is the middle snapshot of three, else NULL; `paths` are AFTER's. -1 when out of
 * memory (or, for HTML, when writing failed). */
int diff_report_write(FILE *out, const struct heap_diff *diff, const struct analysis *target,
		       struct path_index *paths, const struct diff_report_options *options);

/* Whether a type passes the report's filters (pattern, min bytes) and grew. */
bool diff_report_shows(const struct heap_diff *diff, const struct diff_type *type,
		       const struct diff_report_options *options);

#endif
