/* Retaining paths: for the objects of a type, the shortest path from a root to each, aggregated
 * by shape. A shape names the root, then each object on the way by its type and the member the
 * next pointer sits in ("struct conn.next", "struct item[*].detail"); addresses and array indices
 * are dropped, and a step repeated along a chain (a linked list) is shown once, marked, so all
 * the nodes of one list share one shape. Each shape has a short signature, a hash of its text: the
 * same leak found twice, on two machines, gets the same id. */
#ifndef HEAPSNAP_PATHS_H
#define HEAPSNAP_PATHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/graph/graph.h"
#include "analyze/heap.h"
#include "analyze/types.h"
#include "common/error.h"

#define PATH_ELEMENTS_MAX 12
#define PATH_SITES_MAX 3 /* the sites a shape keeps of its objects, the most common first */

struct path_shape {
	char elements[PATH_ELEMENTS_MAX][128]; /* root first, the object's type last */
	size_t element_count;
	uint64_t count;	   /* objects with this shape */
	uint64_t retained; /* bytes they retain (not counting ones retained by one another) */
	char signature[9];
	/* where its objects were made, when the index was given their sites (path_index_set_sites):
	   the first sites (number + 1) with their objects, how many distinct sites, and how many
	   objects no site was recorded for */
	struct path_site {
		uint32_t site;
		uint64_t count;
	} sites[PATH_SITES_MAX];
	size_t site_count;
	uint64_t without_site;
	bool has_sites;
};

struct path_index; /* the shape of every reachable node, computed once per graph */

/* The shapes of `graph` (with its dominator tree), built over `heap` whose allocations `types`
 * names; `same_type_dominated` (per allocation, graph_mark_same_type_dominated; NULL: none
 * marked) leaves out of a shape's retained bytes the objects another of their type retains.
 * `show_values`: paths keep the values a step can show (dict keys); else they are masked. The
 * index reads all four until it is freed. */
struct path_index *path_index_build(const struct graph *graph, const struct heap *heap,
				    const struct type_names *types,
				    const uint8_t *same_type_dominated, bool show_values,
				    struct hs_error *err);
void path_index_free(struct path_index *index);

/* Gives the index each allocation's site (number + 1, 0: none recorded; as
 * allocation_sites.site), read until it is freed: the shapes paths_of_type gives then say where
 * their objects were made. Before paths_prepare. */
void path_index_set_sites(struct path_index *index, const uint32_t *site_of);

/* The shapes of the live allocations whose type group is `type` (NULL: untyped) and `size`,
 * and, when `only` is given (per allocation), for which only[allocation] is non-zero (heapdiff:
 * the new ones); the most common first, at most `max`. Returns the number filled. A shape's
 * retained bytes leave out the objects another of the type retains: the index's
 * same_type_dominated, or with `only`, `only_dominated` (graph_mark_same_type_dominated). */
size_t paths_of_type(const struct path_index *index, const char *type, uint64_t size,
		     const uint8_t *only, const uint8_t *only_dominated, struct path_shape *shapes,
		     size_t max);

/* Counts the shapes of several type groups (`types[i]`, `sizes[i]`, as paths_of_type takes them)
 * in one pass over the heap, for the calls of paths_of_type that ask for them with the same
 * `only` and `only_dominated`: each pass reads every allocation, and a report asks for ten
 * groups or more. Replaces what an earlier call prepared; -1 when out of memory (paths_of_type
 * then counts each group itself). */
int paths_prepare(struct path_index *index, const char *const *types, const uint64_t *sizes,
		  size_t count, const uint8_t *only, const uint8_t *only_dominated);

/* The shape of the shortest path from a root to allocation `allocation` (by index in the heap),
 * root first, its own type last; false when no root reaches it. */
bool path_of_allocation(const struct path_index *index, size_t allocation, struct path_shape *out);

/* For a caller that groups every object by its shape in one pass (the pprof export): the
 * number of the shape of allocation `allocation`'s path, PATH_NO_SHAPE when it is free or no root
 * reaches it (equal numbers, equal shapes); and the elements of shape `shape`, root first, without
 * the object's type, as the reports render them. */
#define PATH_NO_SHAPE UINT32_MAX
uint32_t path_shape_number(const struct path_index *index, size_t allocation);
void path_shape_render(const struct path_index *index, uint32_t shape, struct path_shape *out);

/* The text of one step through heap node `node` along an edge with this offset (or label):
 * "struct conn.next", "list[*]", "__main__.Connection._conn_handler". */
void path_step_text(const struct graph *graph, const struct heap *heap,
		    const struct type_names *types, uint32_t node, uint32_t offset, char *out,
		    size_t size);

/* Where byte `offset` of heap node `node` lies in its type's layout, when the layout is known
 * (false otherwise): `member` gets ".next", "[*].detail" in an array of structs, "" or "[*]"
 * outside every member; `base` the type, an array's "[]" cut ("struct item"). */
bool path_member_at(const struct heap *heap, const struct type_names *types, uint32_t node,
		    uint32_t offset, char *base, size_t base_size, char *member, size_t member_size);

/* `text` with the values from memory a step can show (a dict's str or int key, "dict['alice']",
 * "dict[42]") replaced by "[*]": a report shows them only when asked, since a heap holds secrets. */
void path_mask_values(const char *text, char *out, size_t size);

/* What a signature is a hash of: the text with values masked and threads' ids dropped, so the
 * same leak gets the same signature in another run of the program. */
void path_signature_text(const char *text, char *out, size_t size);

/* Sets a shape's signature: a hash of its elements with values masked, so that it names the
 * shape whatever the keys, counts and addresses. */
void path_shape_sign(struct path_shape *shape);

/* FNV-1a of a string, chained through seed: what shape signatures are made of. */
uint64_t hash_bytes(const char *text, uint64_t seed);

#endif
