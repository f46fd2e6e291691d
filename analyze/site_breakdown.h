/* The sites of each group's objects: where the objects of one type (or one retaining path) were
 * allocated, counted by (group, site) in one pass over the heap, then listed per group, the site
 * that made the most objects first, with how many objects no site was recorded for (made before
 * recording began). What `summary` and `heapdiff` say under each type when the snapshot records
 * sites: "1,000 new struct conn, allocated at conn_new <- accept_loop (server.c:41)". */
#ifndef HEAPSNAP_SITE_BREAKDOWN_H
#define HEAPSNAP_SITE_BREAKDOWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/sites.h"
#include "common/hash_map.h"

/* Sites described per group (the rest are counted, not named): what a report shows of one type. */
#define SITE_BREAKDOWN_DESCRIBED 5

/* One group's sites, as site_breakdown_of gives them. */
struct group_sites {
	const struct site_group *top; /* by objects, most first; `count` of them */
	size_t count;		      /* distinct sites (described: the first SITE_BREAKDOWN_DESCRIBED) */
	uint64_t without_count, without_bytes; /* objects no site was recorded for */
	bool counted; /* the group's objects were counted at all (none were: say nothing) */
};

struct site_tally_key {
	uint64_t group;
	uint32_t site; /* number + 1; 0: none recorded */
};
struct site_tally {
	struct site_tally_key key;
	struct site_group sites;
};
static inline struct site_tally_key site_tally_key_of(const struct site_tally *tally)
{
	return tally->key;
}
static inline uint64_t site_tally_key_hash(struct site_tally_key key)
{
	return (key.group * 0x9E3779B97F4A7C15ull ^ key.site * 0xC2B2AE3D27D4EB4Full) >> 11;
}
static inline bool site_tally_key_eq(struct site_tally_key a, struct site_tally_key b)
{
	return a.group == b.group && a.site == b.site;
}
DEFINE_HASH_TABLE(site_tallies, struct site_tally, struct site_tally_key, site_tally_key_of,
		  site_tally_key_hash, site_tally_key_eq)

struct site_breakdown {
	struct site_tallies adding; /* while adding */
	/* once finished, by group, then objects (most first): each site's counts; where each group
	   starts among them (group_start[g] to group_start[g + 1]; groups are small numbers: a type's
	   or a path's in its report) */
	struct site_group *sites;
	size_t count;
	size_t *group_start;
	uint64_t last_group;
};

/* Counts an allocation of `bytes` of group `group` made at `site` (number + 1, 0: none recorded);
 * a part of an object adds bytes only. -1 when out of memory. */
int site_breakdown_add(struct site_breakdown *breakdown, uint64_t group, uint32_t site,
		       uint64_t bytes, bool part);
/* Sorts the counts and describes each group's first sites (`sites` NULL: none described); -1
 * when out of memory. */
int site_breakdown_finish(struct site_breakdown *breakdown, const struct allocation_sites *sites,
			   struct symbols *symbols);
/* The sites of group `group` (finished; valid until the breakdown is freed). */
struct group_sites site_breakdown_of(const struct site_breakdown *breakdown, uint64_t group);
void site_breakdown_free(struct site_breakdown *breakdown);

#endif
