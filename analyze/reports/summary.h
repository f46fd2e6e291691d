/* One snapshot's heap summarised: live allocations grouped by type (untyped ones by size) with
 * count, bytes and retained bytes; the roots with what they retain; the unreachable allocations
 * (in C, leaked) by type. What `heapsnap summary` prints and what `heapdiff` compares. */
#ifndef HEAPSNAP_SUMMARY_H
#define HEAPSNAP_SUMMARY_H

#include "common/hash_index.h"
#include <stddef.h>
#include <stdint.h>

#include "analyze/analysis.h"
#include "analyze/graph/cycles.h"
#include "analyze/graph/root_sharing.h"

struct type_group {
	const char *type; /* NULL: untyped, grouped by size */
	uint64_t size;
	uint64_t count, bytes;
	uint64_t retained; /* bytes retained by the group's objects not retained by one another */
};

/* Groups keyed by type name (equal names are one group, whichever analysis interned them) or, for
 * untyped allocations, by size, through a hash table: a heap has millions of allocations but few
 * distinct types and sizes. Groups stay in the order they were made. */
struct type_grouper {
	struct type_group *groups;
	size_t count, capacity;
	struct hash_index index;
};
/* The group of (type, size), made if new (size is ignored for a named type); NULL when out of
 * memory. Pointers into groups stay valid only until the next call. */
struct type_group *type_grouper_find(struct type_grouper *grouper, const char *type, uint64_t size);
void type_grouper_free(struct type_grouper *grouper);

struct root_group {
	char name[192];
	uint64_t retained; /* what it alone retains */
	uint64_t holds;	   /* what it reaches: retained, and what it holds with other roots */
	bool holds_exact;  /* false: holds leaves out memory held by very many roots */
	uint64_t objects;  /* allocations it points at directly */
};

struct heap_summary {
	struct type_group *types; /* live, by bytes, largest first */
	size_t type_count;
	struct type_group *unreachable; /* live but reachable from no root, by bytes */
	size_t unreachable_count;
	uint64_t unreachable_objects, unreachable_bytes;
	struct root_group *roots; /* by bytes held, largest first */
	size_t root_count;
	/* memory no single root retains, by the roots that hold it together (members index roots),
	   largest first; shared_bytes in all of them */
	struct root_holding_group *shared;
	size_t shared_count;
	uint64_t shared_bytes;
	uint64_t reachable_bytes; /* live bytes some root reaches */
	/* the unreachable Python objects (garbage) by the collector's generation they sit in;
	   index 3: in none (untracked, or their list could not be read) */
	uint64_t garbage_objects[4], garbage_bytes[4];
	struct cycle_shape *cycles; /* among the unreachable, the most frequent shape first */
	size_t cycle_count;
	/* untyped live allocations by the site that made them (when the snapshot records sites) */
	struct site_groups untyped_sites;
};


/* Needs the graph (analysis_build_graph) for retained bytes, roots and reachability; without it,
 * only types with counts and bytes. */
int heap_summary_build(const struct analysis *analysis, struct heap_summary *summary,
		       struct hs_error *err);
void heap_summary_free(struct heap_summary *summary);

/* "struct conn", or "size 64" for an untyped group. */
void type_group_name(const struct type_group *group, char *out, size_t out_size);

#endif
