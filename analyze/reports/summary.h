/* One snapshot's heap summarised: live allocations grouped by type (untyped ones by size) with
 * count, bytes and retained bytes; the roots with what they retain; the unreachable allocations
 * (in C, leaked) by type. What `heapsnap summary` prints and what `heapdiff` compares. */
#ifndef HEAPSNAP_SUMMARY_H
#define HEAPSNAP_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "analyze/analysis.h"
#include "analyze/graph/cycles.h"
#include "analyze/graph/root_sharing.h"
#include "analyze/runtimes/runtime.h"
#include "analyze/site_breakdown.h"
#include "common/fnv.h"
#include "common/hash_map.h"

struct type_group {
	const char *type; /* NULL: untyped, grouped by size */
	uint64_t size;
	uint64_t count, bytes;
	uint64_t retained; /* bytes retained by the group's objects not retained by one another */
	struct group_sites sites; /* where its objects were made (when the snapshot records sites) */
};

/* Groups keyed by type name (equal names are one group, whichever analysis interned them) or, for
 * untyped allocations, by size, through a hash table: a heap has millions of allocations but few
 * distinct types and sizes. Groups stay in the order they were made (`entries`). */
struct type_key {
	const char *type; /* NULL: untyped, of `size`; else size is 0 */
	uint64_t size;
};
static inline uint64_t type_key_hash(struct type_key key)
{
	return fnv1a_text(key.size * 0x9E3779B97F4A7C15ull, key.type) >> 17;
}
static inline bool type_key_eq(struct type_key a, struct type_key b)
{
	return a.size == b.size && (a.type == b.type || (a.type && b.type && strcmp(a.type, b.type) == 0));
}
static inline struct type_key type_group_key(const struct type_group *group)
{
	return (struct type_key){group->type, group->size};
}
DEFINE_HASH_TABLE(type_grouper, struct type_group, struct type_key, type_group_key, type_key_hash,
		  type_key_eq)
/* The group of (type, size), made if new (size is ignored for a named type); NULL when out of
 * memory. Pointers into the entries stay valid only until the next call. (type_grouper_free
 * frees them.) */
struct type_group *type_grouper_find(struct type_grouper *grouper, const char *type, uint64_t size);

/* The unreachable objects of the process's runtime by the classes its collector sorts garbage
 * into, as the runtime declares them (runtime.h: CPython's generations 0, 1, 2 and none). */
struct garbage_counts {
	const struct runtime_garbage_classes *classes; /* NULL: no runtime runs */
	uint64_t objects[RUNTIME_GARBAGE_CLASSES_MAX], bytes[RUNTIME_GARBAGE_CLASSES_MAX];
};
/* Empty counts in the classes of the runtime `analysis` runs. */
void garbage_counts_init(struct garbage_counts *garbage, const struct analysis *analysis);
/* Counts allocation `index` (unreachable, of `bytes`) when an object of the runtime starts
 * there, in the class it sits in. */
void garbage_counts_add(struct garbage_counts *garbage, const struct analysis *analysis,
			size_t index, uint64_t bytes);

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
	struct garbage_counts garbage; /* the unreachable objects of the runtime, by class */
	struct cycle_shape *cycles; /* among the unreachable, the most frequent shape first */
	size_t cycle_count;
	/* untyped live allocations by the site that made them (when the snapshot records sites) */
	struct site_groups untyped_sites;
	struct site_breakdown type_sites; /* what each group's sites point into */
};


/* Needs the graph (analysis_build_graph) for retained bytes, roots and reachability; without it,
 * only types with counts and bytes. */
int heap_summary_build(const struct analysis *analysis, struct heap_summary *summary,
		       struct hs_error *err);
void heap_summary_free(struct heap_summary *summary);

/* Whether the site of allocation `index` is worth counting: the snapshot records sites and the
 * block is no object of the runtime (a Python object's C stack is the interpreter's, the same
 * for every type, and pymalloc's small objects were never malloc'd: it would say nothing). */
bool allocation_site_counted(const struct analysis *analysis, size_t index);

/* "struct conn", or "size 64" for an untyped group. */
void type_group_name(const struct type_group *group, char *out, size_t out_size);

#endif
