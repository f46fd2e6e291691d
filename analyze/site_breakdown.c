/* The sites of each group's objects (see site_breakdown.h). */
#include "site_breakdown.h"

#include <stdlib.h>
#include <string.h>

int site_breakdown_add(struct site_breakdown *breakdown, uint64_t group, uint32_t site,
		       uint64_t bytes, bool part)
{
	struct site_tally_key key = {group, site};
	bool added;
	struct site_tally *tally = site_tallies_insert(&breakdown->adding, key, &added);
	if (tally == NULL)
		return -1;
	if (added) {
		tally->key = key;
		tally->sites.site = site;
	}
	tally->sites.count += !part;
	tally->sites.bytes += bytes;
	return 0;
}

/* By group; in a group the sites by objects (then bytes), most first, objects without a site
 * last. */
static int compare_tallies(const void *left, const void *right)
{
	const struct site_tally *a = left, *b = right;
	if (a->key.group != b->key.group)
		return a->key.group < b->key.group ? -1 : 1;
	if ((a->key.site == 0) != (b->key.site == 0))
		return a->key.site == 0 ? 1 : -1;
	if (a->sites.count != b->sites.count)
		return a->sites.count > b->sites.count ? -1 : 1;
	if (a->sites.bytes != b->sites.bytes)
		return a->sites.bytes > b->sites.bytes ? -1 : 1;
	return (a->key.site > b->key.site) - (a->key.site < b->key.site);
}

int site_breakdown_finish(struct site_breakdown *breakdown, const struct allocation_sites *sites,
			  struct symbols *symbols)
{
	size_t count = breakdown->adding.count;
	struct site_tally *tallies = site_tallies_steal(&breakdown->adding);
	if (count == 0) {
		free(tallies);
		return 0;
	}
	qsort(tallies, count, sizeof *tallies, compare_tallies);
	uint64_t last_group = tallies[count - 1].key.group;
	breakdown->sites = calloc(count, sizeof *breakdown->sites);
	breakdown->group_start = last_group < SIZE_MAX / sizeof(size_t) - 2
					 ? calloc(last_group + 2, sizeof *breakdown->group_start)
					 : NULL;
	if (breakdown->sites == NULL || breakdown->group_start == NULL) {
		free(tallies);
		return -1;
	}
	breakdown->last_group = last_group;
	/* each group's sites counted, then summed: where each starts (the tallies are in order) */
	for (size_t i = 0; i < count; i++)
		breakdown->group_start[tallies[i].key.group + 1]++;
	for (uint64_t g = 1; g <= last_group + 1; g++)
		breakdown->group_start[g] += breakdown->group_start[g - 1];
	for (size_t i = 0, rank = 0; i < count; i++) {
		rank = i && tallies[i].key.group == tallies[i - 1].key.group ? rank + 1 : 0;
		breakdown->sites[i] = tallies[i].sites;
		if (sites && rank < SITE_BREAKDOWN_DESCRIBED && tallies[i].key.site)
			breakdown->sites[i].description =
				allocation_sites_describe(sites, symbols, tallies[i].key.site);
	}
	breakdown->count = count;
	free(tallies);
	return 0;
}

struct group_sites site_breakdown_of(const struct site_breakdown *breakdown, uint64_t group)
{
	struct group_sites out = {0};
	if (breakdown->count == 0 || group > breakdown->last_group)
		return out;
	size_t first = breakdown->group_start[group], end = breakdown->group_start[group + 1];
	if (end == first)
		return out;
	out.counted = true;
	if (breakdown->sites[end - 1].site == 0) { /* (sorted last in its group) */
		out.without_count = breakdown->sites[end - 1].count;
		out.without_bytes = breakdown->sites[end - 1].bytes;
		end--;
	}
	out.top = end > first ? &breakdown->sites[first] : NULL;
	out.count = end - first;
	return out;
}

void site_breakdown_free(struct site_breakdown *breakdown)
{
	site_tallies_free(&breakdown->adding);
	free(breakdown->sites);
	free(breakdown->group_start);
	memset(breakdown, 0, sizeof *breakdown);
}
