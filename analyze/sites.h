/* Allocation sites: where each live allocation was made, when the snapshot carries them (the
 * in-process hook with HEAPSNAP_SITES=1 records a short call stack of every allocation). A site is
 * that stack: the function that called the allocator and the source line of the call, then its
 * callers as far as they were followed ("make_node (server.c:42) <- serve (server.c:90)"), from
 * the modules' symbols and DWARF line tables. Untyped allocations are grouped by it: what no type
 * names, the site does. */
#ifndef HEAPSNAP_SITES_H
#define HEAPSNAP_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/heap.h"
#include "analyze/symbols.h"
#include "common/error.h"
#include "formats/snapshot.h"
#include "formats/snapshot_notes.h"

struct site_chain {
	uint64_t pc[HEAPSNAP_SITE_FRAMES]; /* innermost first, 0 past the last */
};

struct allocation_sites {
	uint32_t *site; /* per allocation (parallel to heap->allocations): its site's number + 1 */
	size_t recorded; /* allocations with a site */
	struct site_chain *chains; /* the distinct stacks, by number */
	size_t chain_count, chain_capacity;
	struct site_cache *cache; /* frames described so far, and the DWARF opened for them */
	/* INFO's sites_sample_bytes: 0 when every allocation was recorded; N when one allocation
	   per N bytes on average was (the others have no site: counts at sites are a sample) */
	uint64_t sample_bytes;
	const char *recorder; /* who recorded them: "the hook", or "eBPF, capture --sites" */
};

struct site_description {
	char function[128]; /* of the innermost frame: "make_node", or "0x7f..." without a symbol */
	char file[256];	    /* its source file's path, "" when unknown */
	unsigned line;	    /* 0 when unknown */
	char text[400];	    /* "make_node (server.c:42)" */
	char stack[HEAPSNAP_SITE_FRAMES][400]; /* each frame's text; "" past the last */
	char chain[1024]; /* "make_node (server.c:42) <- serve (server.c:90)" */
};

/* Reads the snapshot's site note into `sites` (all empty when it has none); -1 when out of
 * memory or the note is malformed. */
int allocation_sites_load(struct allocation_sites *sites, struct snapshot *snapshot,
			  const struct heap *heap, struct hs_error *err);
void allocation_sites_free(struct allocation_sites *sites);

/* The site of allocation `index`: its number + 1, 0 for none. */
static inline uint32_t allocation_site(const struct allocation_sites *sites, size_t allocation)
{
	return sites->site ? sites->site[allocation] : 0;
}

/* Allocations grouped by site: count (objects), bytes. */
struct site_group {
	uint32_t site; /* number + 1 */
	uint64_t count, bytes;
	const struct site_description *description;
};
struct site_groups {
	struct site_group *groups; /* by bytes, largest first, once finished */
	size_t count, capacity;
	size_t *slot_of; /* while adding: group index + 1 by site number */
	size_t slot_capacity;
};
/* Adds an allocation of `bytes` made at `site` (a part of an object adds bytes only). */
int site_groups_add(struct site_groups *groups, uint32_t site, uint64_t bytes, bool part);
/* Sorts the groups and describes their sites. */
void site_groups_finish(struct site_groups *groups, const struct allocation_sites *sites,
			struct symbols *symbols);
void site_groups_free(struct site_groups *groups);

/* Describes site `site` (number + 1; cached); NULL when out of memory. */
const struct site_description *allocation_sites_describe(const struct allocation_sites *sites,
							 struct symbols *symbols, uint32_t site);

#endif
