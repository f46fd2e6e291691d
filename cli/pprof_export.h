/* A snapshot's live heap as a pprof heap profile (formats/pprof.h), for `go tool pprof`,
 * Pyroscope and Parca: two sample types, inuse_objects (count) and inuse_space (bytes), and each
 * sample's stack one of two kinds. By retaining path (the default): the shape of the shortest
 * path from a root to the objects, as the reports print it (analyze/graph/paths.h), the root the
 * outermost frame and the type the leaf, so a flame graph shows what holds the heap; objects no
 * root reaches hang from "(unreachable)". By allocation site (when the snapshot records sites):
 * the call stack that made the allocation, the type again the leaf. A block that belongs to an
 * object (a list's items, a dict's table) adds its bytes under its own path, with its owner's
 * type as the leaf and no object: per leaf, the counts and bytes are the summary's. */
#ifndef HEAPSNAP_PPROF_EXPORT_H
#define HEAPSNAP_PPROF_EXPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "analyze/analysis.h"
#include "analyze/graph/paths.h"
#include "common/error.h"

enum pprof_stacks { PPROF_STACKS_PATHS, PPROF_STACKS_SITES };

struct pprof_export_stats {
	uint64_t samples;
	uint64_t objects, bytes;	  /* in the profile */
	uint64_t unreached_objects, unreached_bytes; /* under "(unreachable)" */
	uint64_t unsited_objects;	  /* by site: under "(no site recorded)" */
};

/* What a profile is of, and where it goes: pprof_export_write's arguments. */
struct pprof_export_request {
	const char *output;	/* the file written (through safe_file_write) */
	const char *input;	/* the snapshot it must never replace */
	const char *program;	/* "heapsnap export", "heapdiff": the caveats on stderr name it */
	const char *what;	/* the first comment's words: "live heap", "objects new since BEFORE" */
	const struct analysis *before; /* heapdiff's BEFORE (the unseen memory's change), or NULL */
	const struct analysis *analysis;
	const struct path_index *paths; /* built over analysis's graph; NULL for sites */
	const uint8_t *only;		/* per allocation of analysis; NULL: all */
	enum pprof_stacks stacks;
};

/* The profile of the request built and written to its output, gzip-compressed, through
 * safe_file_write; what is in it in `stats`. Its comments say what it is and carry the report's
 * caveats, each also on stderr as "PROGRAM: warning: ...": the memory no walker reads (with
 * `before`, how it changed), what is under "(unreachable)" or "(no site recorded)", and every
 * warning of the analyses (which the command prints on stderr itself, as always). */
int pprof_export_write(const struct pprof_export_request *request,
		       struct pprof_export_stats *stats, struct hs_error *err);

#endif
