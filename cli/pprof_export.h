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
#include "formats/pprof.h"

enum pprof_stacks { PPROF_STACKS_PATHS, PPROF_STACKS_SITES };

struct pprof_export_stats {
	uint64_t samples;
	uint64_t objects, bytes;	  /* in the profile */
	uint64_t unreached_objects, unreached_bytes; /* under "(unreachable)" */
	uint64_t unsited_objects;	  /* by site: under "(no site recorded)" */
};

/* Fills `profile` (pprof_init done by pprof_export_start) with the live allocations of
 * `analysis`, or with `only` (per allocation; NULL: all) those for which only[i] is non-zero:
 * heapdiff's new objects. `paths` is needed for PPROF_STACKS_PATHS (built over the analysis's
 * graph), unused for sites. */
int pprof_export_fill(struct pprof_profile *profile, const struct analysis *analysis,
		      const struct path_index *paths, const uint8_t *only, enum pprof_stacks stacks,
		      struct pprof_export_stats *stats, struct hs_error *err);

/* An empty heap profile of `analysis`'s time, its sample types inuse_objects/count and
 * inuse_space/bytes, and a first comment saying what it is (`what`: "live heap", "new objects
 * since BEFORE"). */
int pprof_export_start(struct pprof_profile *profile, const struct analysis *analysis,
		       const char *what, enum pprof_stacks stacks, struct hs_error *err);

/* The report's caveats as comments of the profile, and each also on stderr as
 * "PROGRAM: warning: ...": memory no walker reads (with `before`, how it changed), what is under
 * "(unreachable)" or "(no site recorded)", and every warning of the analyses given (NULL ones
 * skipped). The warnings themselves are printed by the command as usual. */
int pprof_export_caveats(struct pprof_profile *profile, const char *program,
			 const struct analysis *before, const struct analysis *after,
			 const struct pprof_export_stats *stats, struct hs_error *err);

#endif
