/* Finding and walking an allocator's two-level page map (see page_map.h). */
#include "page_map.h"

#include <elf.h>
#include <stdlib.h>

#include "analyze/allocators/module_data.h"

#define ROOT_CANDIDATES (1u << 20) /* words of the module's data tried as pointers to a leaf */
#define ROOT_PIECE 512		   /* words of a candidate root read at a time */

/* The search for the root among the words of the module's data. */
struct root_search {
	struct page_map *map;
	uint64_t data_start, data_end;
	page_map_is_leaf *is_leaf;
	void *context;
	size_t tried; /* words tried as pointers to a leaf */
};

/* Whether `word` may point at a leaf: aligned, in anonymous writable memory (the allocator's
 * metadata), and outside the module's data where the map says so. */
static bool may_be_leaf(const struct root_search *search, uint64_t word)
{
	const struct page_map *map = search->map;
	if (word == 0 || (word & (map->leaf_alignment - 1)))
		return false;
	const struct snapshot_region *region =
		snapshot_find_region(address_space_snapshot(map->space), word);
	return region != NULL && (region->flags & PF_W) && region->path == NULL &&
	       !(map->leaves_outside_data && word >= search->data_start && word < search->data_end);
}

/* Whether every word of the root-sized array at `root` is 0 or may point at a leaf, and one is
 * `leaf`: a word that points at a leaf from elsewhere (a thread's cache of leaves, in a static
 * executable's data) puts a wrong root around it, whose other words are whatever lies there. */
static bool is_root(const struct root_search *search, uint64_t root, uint64_t leaf)
{
	const struct page_map *map = search->map;
	uint64_t words[ROOT_PIECE];
	size_t count = (size_t)1 << map->root_bits;
	bool has_leaf = false;
	for (size_t i = 0; i < count; i += ROOT_PIECE) {
		size_t piece = count - i < ROOT_PIECE ? count - i : ROOT_PIECE;
		if (address_space_read(map->space, root + i * 8, words, piece * 8, NULL) != 0)
			return false;
		for (size_t k = 0; k < piece; k++) {
			if (words[k] == 0)
				continue;
			if (!may_be_leaf(search, words[k]))
				return false;
			has_leaf |= words[k] == leaf;
		}
	}
	return has_leaf;
}

/* Whether the word at `at` points at a leaf of the map whose root, inside the module's data,
 * it is a word of; then map->root is that root. */
static bool points_at_leaf(void *context, uint64_t at, uint64_t word)
{
	struct root_search *search = context;
	struct page_map *map = search->map;
	uint64_t root_index;
	if (search->tried == ROOT_CANDIDATES || !may_be_leaf(search, word))
		return false;
	search->tried++;
	if (!search->is_leaf(search->context, word, &root_index))
		return false;
	uint64_t root = at - root_index * 8;
	if (root < search->data_start || root + (8ull << map->root_bits) > search->data_end ||
	    !is_root(search, root, word))
		return false;
	map->root = root;
	return true;
}

bool page_map_find_root(struct page_map *map, uint64_t data_start, uint64_t data_end,
			page_map_is_leaf *is_leaf, void *context)
{
	struct root_search search = {.map = map,
				     .data_start = data_start,
				     .data_end = data_end,
				     .is_leaf = is_leaf,
				     .context = context};
	map->root = 0;
	return module_data_find_word(map->space, data_start, data_end, points_at_leaf, &search) != 0;
}

int page_map_walk(struct page_map *map, struct walk_report *report, page_map_visit_leaf *visit,
		  void *context, struct hs_error *err)
{
	size_t roots = (size_t)1 << map->root_bits, leaf_bytes = (size_t)8 << map->leaf_bits;
	free(map->root_words);
	map->root_words = malloc(roots * 8);
	uint64_t *words = malloc(leaf_bytes);
	if (map->root_words == NULL || words == NULL) {
		free(words);
		return hs_error_nomem(err, "reading %s's %s", report->allocator, map->kind);
	}
	if (address_space_read(map->space, map->root, map->root_words, roots * 8, NULL) != 0) {
		free(words);
		return hs_error_set(err, "%s's %s at 0x%llx cannot be read", report->allocator,
				    map->kind, (unsigned long long)map->root);
	}
	for (size_t i = 0; i < roots; i++) {
		uint64_t leaf = map->root_words[i];
		if (leaf == 0)
			continue;
		if ((leaf & (map->leaf_alignment - 1)) ||
		    address_space_read(map->space, leaf, words, leaf_bytes, NULL) != 0) {
			walk_damage(report, map->root + i * 8,
				    "the %s's root word at 0x%llx points at 0x%llx, which is not a "
				    "readable leaf: %s are not walked",
				    map->kind, (unsigned long long)(map->root + i * 8),
				    (unsigned long long)leaf, map->unwalked);
			map->root_words[i] = 0;
			continue;
		}
		if (visit(context, i, leaf, words, err) != 0) {
			free(words);
			return -1;
		}
	}
	free(words);
	return 0;
}

uint64_t page_map_entry(const struct page_map *map, uint64_t page)
{
	uint64_t root_index = page >> map->leaf_bits, entry = 0;
	if (map->root_words == NULL || root_index >= (1ull << map->root_bits) ||
	    map->root_words[root_index] == 0)
		return 0;
	uint64_t at = map->root_words[root_index] + (page & ((1ull << map->leaf_bits) - 1)) * 8;
	address_space_read_u64(map->space, at, &entry);
	return entry;
}

uint64_t page_map_root_end(const struct page_map *map)
{
	return map->root + (8ull << map->root_bits);
}

void page_map_free(struct page_map *map)
{
	free(map->root_words);
	map->root_words = NULL;
}
