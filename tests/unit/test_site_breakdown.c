/* The sites per group (site_breakdown.c) against counting by brute force: on random allocations
 * of random groups and sites (some without a site, some parts of objects), each group's sites must
 * be exactly those it was given, with their objects and bytes, most objects first, the objects
 * without a site apart; a group given nothing is not counted. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "analyze/site_breakdown.h"
#include "test_util.h"

#define GROUPS 12
#define SITES 9 /* numbers + 1: 1 to SITES - 1; 0 is "none recorded" */

static uint64_t state = 0x2545F4914F6CDD1Dull;
static uint64_t next_random(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

/* One group checked against what it was given (objects[site], bytes[site]). */
static void check_group(const struct site_breakdown *breakdown, uint64_t group,
			const uint64_t objects[SITES], const uint64_t bytes[SITES], bool given)
{
	struct group_sites sites = site_breakdown_of(breakdown, group);
	CHECK(sites.counted == given, "group %llu counted: %d", (unsigned long long)group,
	      sites.counted);
	CHECK(sites.without_count == objects[0] && sites.without_bytes == bytes[0],
	      "group %llu: %llu without a site, not %llu", (unsigned long long)group,
	      (unsigned long long)objects[0], (unsigned long long)sites.without_count);
	size_t distinct = 0;
	for (uint32_t site = 1; site < SITES; site++)
		distinct += bytes[site] != 0;
	CHECK(sites.count == distinct, "group %llu: %zu sites, not %zu", (unsigned long long)group,
	      distinct, sites.count);
	for (size_t i = 0; i < sites.count && sites.count == distinct; i++) {
		const struct site_group *found = &sites.top[i];
		CHECK(found->site > 0 && found->site < SITES && found->count == objects[found->site] &&
			      found->bytes == bytes[found->site],
		      "group %llu, site %u: %llu objects, %llu bytes", (unsigned long long)group,
		      found->site, (unsigned long long)found->count,
		      (unsigned long long)found->bytes);
		CHECK(i == 0 || sites.top[i - 1].count >= found->count,
		      "group %llu: the sites by objects, most first", (unsigned long long)group);
	}
}

int main(void)
{
	for (int round = 0; round < 300; round++) {
		struct site_breakdown breakdown = {0};
		uint64_t objects[GROUPS][SITES] = {{0}}, bytes[GROUPS][SITES] = {{0}};
		bool given[GROUPS] = {0};
		size_t allocations = next_random() % 400;
		for (size_t i = 0; i < allocations; i++) {
			/* (group 5 is never given anything: a type without sites counted) */
			uint64_t group = next_random() % GROUPS;
			if (group == 5)
				continue;
			uint32_t site = (uint32_t)(next_random() % 4 == 0 ? 0 : next_random() % SITES);
			uint64_t size = 16 + next_random() % 200;
			bool part = next_random() % 10 == 0;
			CHECK(site_breakdown_add(&breakdown, group, site, size, part) == 0, "added");
			objects[group][site] += !part;
			bytes[group][site] += size;
			given[group] = true;
		}
		CHECK(site_breakdown_finish(&breakdown, NULL, NULL) == 0, "finished");
		for (uint64_t group = 0; group < GROUPS; group++)
			check_group(&breakdown, group, objects[group], bytes[group], given[group]);
		struct group_sites beyond = site_breakdown_of(&breakdown, GROUPS + 100);
		CHECK(!beyond.counted && beyond.count == 0, "a group past the last is empty");
		site_breakdown_free(&breakdown);
	}
	return TEST_EXIT();
}
