/* `heapsnap list --format jsonl`'s lines: one JSON object per allocation, formatted by worker
 * threads a block of allocations at a time into memory, and written out in the allocations'
 * order. Formatting is most of what the command does once the snapshot is read, and every part
 * of a line is read-only analysis data, so the lines of a large heap are made on every core. */
#ifndef HEAPSNAP_LIST_LINES_H
#define HEAPSNAP_LIST_LINES_H

#include <stdbool.h>
#include <stdio.h>

#include "analyze/analysis.h"
#include "analyze/graph/paths.h"
#include "common/error.h"

#define LIST_ALL_STATES (-1)

struct list_lines_input {
	const struct analysis *analysis;
	const struct path_index *paths; /* NULL: lines without "path" */
	int state;			/* the allocations listed: an allocation_state, or all */
	bool sites;			/* each live allocation's "site" (--sites) */
	FILE *out;
};

/* Writes the lines; -1 with err set when out of memory (what was written stays written). */
int list_lines_write(const struct list_lines_input *input, struct hs_error *err);

#endif
