/* The two-level page map that jemalloc (its extent map, an rtree) and tcmalloc (its page map,
 * PageMap2) each keep from the pages of their memory to the descriptors of the extents or spans
 * that hold them: a root of 2^root_bits words in the library's data, each 0 or the address of a
 * leaf of 2^leaf_bits words, leaf word j of root word i standing for page (i << leaf_bits | j).
 * Leaves are the allocator's metadata (aligned, in anonymous writable memory). Without symbols
 * the root is found by its shape: a word of the module's data that points at such memory, which
 * the allocator's own test says is a leaf and for which root word it must be; the root starts
 * that many words before it, inside the data, and every non-zero word of it points at such memory
 * too. The walk reads the root and hands each leaf to the allocator; a root word that points at
 * no readable leaf is damage. What a leaf's words mean is the allocator's. */
#ifndef HEAPSNAP_PAGE_MAP_H
#define HEAPSNAP_PAGE_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "analyze/address_space.h"
#include "analyze/allocators/walk_report.h"
#include "common/error.h"

struct page_map {
	struct address_space *space;
	unsigned root_bits, leaf_bits;
	uint64_t leaf_alignment; /* a leaf's address is a multiple of it (a power of two) */
	/* leaves are never in the module's data (whose .bss may be anonymous memory too) */
	bool leaves_outside_data;
	const char *kind;     /* what the allocator calls it, in messages: "extent map" */
	const char *unwalked; /* what a leaf not read leaves out: "the extents of 1 GiB of
				 addresses" */
	uint64_t root;	      /* of the root: found, or set by the caller; 0 for none */
	uint64_t *root_words; /* the root, read by page_map_walk (0 for a leaf not read), or NULL */
};

/* The allocator's test of a candidate leaf at `leaf`: whether its words are a leaf of the map;
 * then *root_index is the root word that must point at it. */
typedef bool page_map_is_leaf(void *context, uint64_t leaf, uint64_t *root_index);

/* Finds the root in the module's data [data_start, data_end) by its shape (see the top of the
 * file): true with map->root set, false when none is there. */
bool page_map_find_root(struct page_map *map, uint64_t data_start, uint64_t data_end,
			page_map_is_leaf *is_leaf, void *context);

/* One leaf of the map, at `leaf`, pointed at by root word `root_index`, its words read into
 * `words`; fails only when out of memory. */
typedef int page_map_visit_leaf(void *context, uint64_t root_index, uint64_t leaf,
				const uint64_t *words, struct hs_error *err);

/* Reads the root at map->root into map->root_words and visits every leaf it points at, in
 * order; a root word that points at no readable leaf is told to `report` as damage. Fails when
 * out of memory, when the root cannot be read, or when a visit fails. */
int page_map_walk(struct page_map *map, struct walk_report *report, page_map_visit_leaf *visit,
		  void *context, struct hs_error *err);

/* The map's word for `page` after page_map_walk: 0 when it has none or it cannot be read. */
uint64_t page_map_entry(const struct page_map *map, uint64_t page);

/* The end of the root, for the range [map->root, end) of the allocator's bookkeeping. */
uint64_t page_map_root_end(const struct page_map *map);

void page_map_free(struct page_map *map);

#endif
