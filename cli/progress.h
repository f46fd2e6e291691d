/* A progress line on standard error while an analysis runs over two seconds ("heapsnap summary:
 * 14 s, graph: edges done"), so a long wait is not taken for a hang. Only on a terminal, never in
 * JSON output; cleared before anything else is printed. One per program run. */
#ifndef HEAPSNAP_CLI_PROGRESS_H
#define HEAPSNAP_CLI_PROGRESS_H

#include <stdbool.h>

#include "analyze/debuginfod.h"
#include "common/timings.h"

/* Starts the line's clock (and its thread) when `wanted` and standard error is a terminal. */
void progress_begin(const char *command, bool wanted);
/* What analyses should tell as they go: each step they finish. */
struct timings_observer progress_observer(void);
/* What debuginfod downloads should tell as they go: shown on standard error when it is a terminal
 * or DEBUGINFOD_PROGRESS is set, about twice a second. */
struct debug_fetch_observer progress_fetch_observer(void);
/* Clears the line and stops; safe to call again, or without progress_begin. */
void progress_end(void);

#endif
