/* Two (or three) snapshots of one process compared: which objects are new, which were freed, and
 * which lived through. The snapshots come from the same process, so an object that lived through
 * keeps its address: an allocation is the same one when its address, size and type agree and it
 * was not garbage in BEFORE while reachable in AFTER (garbage is never reached again: that is a new
 * object where the garbage was freed); an address the allocator reused for a reachable object of
 * the same type and size counts as surviving: the diff can undercount churn, never invent growth. Per type: new, freed, the counts before and
 * after, and the bytes the new objects retain; surviving containers whose length grew (an
 * unpruned registry); and what became unreachable (Python: new cyclic garbage; C: new leaks),
 * with its cycles. With three snapshots (BASELINE, TARGET, FINAL), "new" means new in TARGET and
 * still there in FINAL: what a burst of load left behind. What `heapdiff` reports. */
#ifndef HEAPSNAP_DIFF_H
#define HEAPSNAP_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/analysis.h"
#include "analyze/graph/cycles.h"
#include "analyze/reports/summary.h"

struct diff_type {
	const char *type; /* NULL: untyped, grouped by size; interned by AFTER when it has one */
	uint64_t size;
	uint64_t count_before, bytes_before, count_after, bytes_after;
	uint64_t new_count, new_bytes;	   /* in AFTER and not in BEFORE (three: left behind) */
	uint64_t freed_count, freed_bytes; /* in BEFORE and not in AFTER */
	uint64_t new_retained; /* bytes the new objects retain, not counting one another */
	uint64_t new_unreachable; /* of the new objects, those no root reaches */
	uint64_t burst_count, burst_bytes; /* three snapshots: new in TARGET, whether or not left */
	struct group_sites new_sites; /* where the new objects were made (when AFTER records sites) */
};

/* A container (a Python list, dict or set) that lived through and holds more items. */
struct diff_container {
	size_t allocation; /* index in AFTER's heap */
	const char *type;
	uint64_t length_before, length_after;
};

struct heap_diff {
	const struct analysis *before, *after; /* three snapshots: BASELINE and FINAL */
	bool three;
	bool by_type_only;
	uint8_t *is_new; /* per allocation of AFTER: new (three: left behind by TARGET) */
	/* per allocation of AFTER: a new object another new one of its type retains */
	uint8_t *new_same_type_dominated;
	struct diff_type *types; /* every type of either snapshot, by bytes delta, largest first */
	size_t type_count;
	struct diff_container *containers; /* the most grown first */
	size_t container_count;
	/* live allocations (objects: parts of objects add bytes only) */
	uint64_t objects_before, bytes_before, objects_after, bytes_after;
	/* unreachable in AFTER and new, or reachable in BEFORE: new garbage (C: new leaks) */
	uint8_t *is_new_unreachable; /* per allocation of AFTER */
	uint64_t unreachable_objects, unreachable_bytes;
	struct type_group *unreachable; /* by type, by bytes */
	size_t unreachable_count;
	struct garbage_counts garbage; /* the new unreachable objects of AFTER's runtime, by class */
	struct cycle_shape *cycles; /* the cycles with a new unreachable member */
	size_t cycle_count;
	/* the new untyped allocations by the site that made them (when AFTER records sites) */
	struct site_groups new_untyped_sites;
	struct site_breakdown new_type_sites; /* what each type's new_sites point into */
};

/* Whether two snapshots are of one process (pid, boot and the process's start time agree);
 * when not, `why` says what differs. */
bool diff_same_process(const struct analysis *before, const struct analysis *after, char *why,
		       size_t why_size);

/* Compares BEFORE and AFTER (with `target` non-NULL: BASELINE=before, TARGET, FINAL=after). AFTER
 * needs its graph; BEFORE's graph, when built, tells which objects became unreachable. With
 * `by_type_only` (snapshots not shown to be of one process) no object is matched: every object
 * of AFTER counts as new and every one of BEFORE as freed; the deltas per type still hold. */
int heap_diff_build(const struct analysis *before, const struct analysis *target,
		    const struct analysis *after, bool by_type_only, struct heap_diff *diff,
		    struct hs_error *err);
void heap_diff_free(struct heap_diff *diff);

static inline int64_t diff_delta_count(const struct diff_type *type)
{
	return (int64_t)(type->count_after - type->count_before);
}

static inline int64_t diff_delta_bytes(const struct diff_type *type)
{
	return (int64_t)(type->bytes_after - type->bytes_before);
}

#endif
