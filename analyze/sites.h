/* Allocation sites: where each live allocation was made, when the snapshot carries them (the
 * in-process hook with HEAPSNAP_SITES=1 records the caller of every allocation). A site is the
 * return address into the function that called the allocator, shown as that function and the
 * source line of the call ("make_node (server.c:42)"), from the module's symbols and DWARF line
 * tables. Untyped allocations are grouped by it: what no type names, the site does. */
#ifndef HEAPSNAP_SITES_H
#define HEAPSNAP_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/heap.h"
#include "analyze/symbols.h"
#include "common/error.h"
#include "formats/snapshot.h"

struct allocation_sites {
	uint64_t *pc; /* per allocation (parallel to heap->allocations): its site, 0 for none */
	size_t recorded; /* allocations with a site */
	struct site_cache *cache; /* sites described so far, and the DWARF opened for them */
};

/* Allocations grouped by site: count (objects), bytes. */
struct site_group {
	uint64_t pc;
	uint64_t count, bytes;
	const struct site_description *description;
};
struct site_groups {
	struct site_group *groups; /* by bytes, largest first, once finished */
	size_t count, capacity;
};
/* Adds an allocation of `bytes` made at `pc` (a part of an object adds bytes only). */
int site_groups_add(struct site_groups *groups, uint64_t pc, uint64_t bytes, bool part);
/* Sorts the groups and describes their sites. */
void site_groups_finish(struct site_groups *groups, const struct allocation_sites *sites,
			struct symbols *symbols);
void site_groups_free(struct site_groups *groups);

struct site_description {
	char function[128]; /* "make_node", or "0x7f..." when no symbol covers it */
	char file[256];	    /* the source file's path, "" when unknown */
	unsigned line;	    /* 0 when unknown */
	char text[400];	    /* "make_node (server.c:42)" */
};

/* Reads the snapshot's site note into `sites` (all empty when it has none); -1 when out of
 * memory or the note is malformed. */
int allocation_sites_load(struct allocation_sites *sites, struct snapshot *snapshot,
			  const struct heap *heap, struct hs_error *err);
void allocation_sites_free(struct allocation_sites *sites);

static inline uint64_t allocation_site(const struct allocation_sites *sites, size_t allocation)
{
	return sites->pc ? sites->pc[allocation] : 0;
}

/* Describes a site (cached: each is looked up once); NULL when out of memory. */
const struct site_description *allocation_sites_describe(const struct allocation_sites *sites,
							 struct symbols *symbols, uint64_t pc);

#endif
