/* Fetching what this machine lacks to name a module's contents, by the build-id the snapshot
 * recorded, from the debuginfod servers (DEBUGINFOD_URLS, or --debuginfod URLS): its debug info,
 * and its file itself when the file here is missing or another build. elfutils' libdebuginfod does
 * the requests and keeps the cache; it is loaded at run time (dlopen, as gdb does), so heapsnap
 * runs where it is absent. Offline or failing servers cost a bounded time: a request that receives
 * nothing within DEBUGINFOD_TIMEOUT (10 s when unset) is abandoned, a server that timed out or
 * refused is not asked again in this run, and all of it stops after DEBUG_FETCH_BUDGET_SECONDS of
 * waiting. The modules left without names are said in one warning. */
#ifndef HEAPSNAP_DEBUGINFOD_H
#define HEAPSNAP_DEBUGINFOD_H

#include <stdbool.h>

#include "common/warnings.h"
#include "formats/snapshot.h"

/* When DEBUGINFOD_TIMEOUT is unset: seconds a request may wait without receiving anything. */
#define DEBUG_FETCH_DEFAULT_TIMEOUT 10
/* The time all failing requests of one run may cost together before no more are made. */
#define DEBUG_FETCH_BUDGET_SECONDS 30

/* Told of a download as it goes (a front end's progress), from the thread that fetches: what
 * ("debug info", "file"), of which module, from where, the bytes so far and in all (0 while
 * unknown). */
struct debug_fetch_observer {
	void (*fetching)(void *context, const char *what, const char *module, const char *url,
			 long done, long total);
	void *context;
};

struct debug_fetch_options {
	const char *urls; /* --debuginfod URLS; NULL: DEBUGINFOD_URLS */
	bool disabled;	  /* --no-debuginfod */
	struct debug_fetch_observer observer;
};

enum debug_fetch_kind { DEBUG_FETCH_DEBUGINFO, DEBUG_FETCH_EXECUTABLE };

struct debug_fetch;
/* NULL when there is nothing to ask: disabled, no server named, or libdebuginfod absent (then one
 * warning, when servers were named). */
struct debug_fetch *debug_fetch_new(const struct debug_fetch_options *options,
				    struct warnings *warnings);
void debug_fetch_free(struct debug_fetch *fetch);

/* The path of the module's file of that kind in the cache (the caller frees it), or NULL; *url
 * (when not NULL) is set to the server it came from in this run, or NULL when it was already in
 * the cache. A module whose debug info could not be had is remembered for the warning. Asked
 * again for the same module and kind, answers as the first time without a request. */
char *debug_fetch_file(struct debug_fetch *fetch, const struct snapshot_module *module,
		       enum debug_fetch_kind kind, const char **url);

/* Whether `path` is a file fetched in this run (or found in the cache), and from where (*url NULL:
 * the cache). */
bool debug_fetch_was_fetched(const struct debug_fetch *fetch, const char *path, const char **url);

/* Adds the one warning naming the modules whose debug info the servers did not give, why, and
 * what to do; nothing when every module asked for was named. Once. */
void debug_fetch_warn(struct debug_fetch *fetch);

#endif
