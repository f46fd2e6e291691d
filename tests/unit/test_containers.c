/* The typed vector and hash tables (common/vector.h, common/hash_map.h) and the byte readers
 * (common/bytes.h): a vector keeps what is appended, in order, through its growth; a map finds
 * each key once, keeps its entries in the order added through the index's growth, and a table
 * whose entries carry their key interns them; colliding hashes still find their own keys. */
#include <stdint.h>
#include <string.h>

#include "common/bytes.h"
#include "common/hash_map.h"
#include "common/vector.h"
#include "test_util.h"

DEFINE_VECTOR(u64_vector, uint64_t)

struct pair {
	uint32_t a, b;
};
DEFINE_VECTOR(pair_vector, struct pair)

static void test_vector(void)
{
	struct u64_vector numbers = {0};
	CHECK(u64_vector_pop(&numbers) == NULL, "an empty vector pops nothing");
	for (uint64_t i = 0; i < 100000; i++) {
		uint64_t *slot = u64_vector_append(&numbers);
		CHECK(slot != NULL, "append %llu", (unsigned long long)i);
		if (slot == NULL)
			return;
		*slot = i * 3;
	}
	CHECK(numbers.size == 100000 && numbers.capacity >= numbers.size, "size %zu, capacity %zu",
	      numbers.size, numbers.capacity);
	size_t wrong = 0;
	for (size_t i = 0; i < numbers.size; i++)
		wrong += *u64_vector_at(&numbers, i) != i * 3;
	CHECK(wrong == 0, "%zu elements changed while the vector grew", wrong);
	uint64_t *last = u64_vector_pop(&numbers);
	CHECK(last && *last == 99999 * 3 && numbers.size == 99999, "pop gives the last");
	uint64_t seven = 7;
	CHECK(u64_vector_push(&numbers, &seven) && numbers.data[numbers.size - 1] == 7, "push");
	uint64_t *stolen = u64_vector_steal(&numbers);
	CHECK(stolen && stolen[1] == 3 && numbers.data == NULL && numbers.size == 0 &&
		      numbers.capacity == 0,
	      "steal hands the array over and empties the vector");
	free(stolen);

	struct pair_vector pairs = {0};
	CHECK(pair_vector_reserve(&pairs, 1000) && pairs.capacity >= 1000 && pairs.size == 0,
	      "reserve: capacity %zu", pairs.capacity);
	struct pair *before = pairs.data;
	for (uint32_t i = 0; i < 1000; i++)
		pair_vector_push(&pairs, &(struct pair){i, i + 1});
	CHECK(pairs.data == before && pairs.size == 1000 && pairs.data[999].b == 1000,
	      "appends within the reserved capacity do not move the array");
	CHECK(pair_vector_reserve(&pairs, 10) && pairs.data == before, "reserving less is a no-op");
	pair_vector_free(&pairs);
	CHECK(pairs.data == NULL && pairs.size == 0, "free empties the vector");
	pair_vector_free(&pairs); /* twice is fine */
}

/* a poor hash on purpose: every key collides with 63 others */
static inline uint64_t poor_hash(uint64_t key)
{
	return key % 64;
}
static inline bool u64_eq(uint64_t a, uint64_t b)
{
	return a == b;
}
DEFINE_HASH_MAP(poor_map, uint64_t, uint32_t, poor_hash, u64_eq)

static inline uint64_t text_hash(const char *text)
{
	uint64_t hash = 1469598103934665603ull;
	for (; *text; text++)
		hash = (hash ^ (uint8_t)*text) * 1099511628211ull;
	return hash >> 7;
}
static inline bool text_eq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* a table whose entries carry their key: the text inline */
struct word {
	char text[16];
	unsigned seen;
};
static inline const char *word_key(const struct word *word)
{
	return word->text;
}
DEFINE_HASH_TABLE(word_table, struct word, const char *, word_key, text_hash, text_eq)

static void test_map(void)
{
	struct poor_map map = {0};
	CHECK(poor_map_search(&map, 5) == NULL, "an empty map finds nothing");
	enum { KEYS = 5000 };
	for (uint64_t k = 0; k < KEYS; k++) {
		bool added = false;
		struct poor_map_entry *entry = poor_map_insert(&map, k * 7919, &added);
		CHECK(entry && added && entry->key == k * 7919 && entry->value == 0,
		      "insert %llu: a new entry, its key set, its value zeroed", (unsigned long long)k);
		if (entry == NULL)
			return;
		entry->value = (uint32_t)k;
	}
	CHECK(map.count == KEYS && map.index.size >= 2 * KEYS, "count %zu, index %zu", map.count,
	      map.index.size);
	size_t wrong = 0;
	for (uint64_t k = 0; k < KEYS; k++) {
		struct poor_map_entry *entry = poor_map_search(&map, k * 7919);
		wrong += entry == NULL || entry->value != k || entry != &map.entries[k];
		bool added = true;
		wrong += poor_map_insert(&map, k * 7919, &added) != entry || added;
	}
	CHECK(wrong == 0, "%zu keys not found again, in place", wrong);
	CHECK(map.count == KEYS, "inserting a key again adds nothing: %zu", map.count);
	CHECK(poor_map_search(&map, 1) == NULL && poor_map_search(&map, 7919 * KEYS) == NULL,
	      "absent keys are not found");
	struct poor_map_entry *entries = poor_map_steal(&map);
	CHECK(entries && entries[42].key == 42 * 7919 && map.count == 0 && map.index.size == 0,
	      "steal hands the entries over in the order added");
	free(entries);
	CHECK(poor_map_insert(&map, 3, NULL) != NULL && map.count == 1,
	      "a stolen map is empty and usable; `added` may be NULL");
	poor_map_free(&map);

	CHECK(poor_map_presize(&map, 1000) && map.index.size >= 2000 && map.capacity >= 1000,
	      "presize: index %zu, capacity %zu", map.index.size, map.capacity);
	size_t size = map.index.size;
	struct poor_map_entry *before = map.entries;
	for (uint64_t k = 0; k < 1000; k++)
		poor_map_insert(&map, k, NULL);
	CHECK(map.index.size == size && map.entries == before,
	      "a presized map neither rehashes nor moves up to its size");
	poor_map_free(&map);

	struct word_table words = {0};
	const char *text[] = {"alpha", "beta", "alpha", "gamma", "beta", "alpha"};
	for (size_t i = 0; i < sizeof text / sizeof *text; i++) {
		bool added;
		struct word *word = word_table_insert(&words, text[i], &added);
		if (word == NULL)
			return;
		if (added)
			snprintf(word->text, sizeof word->text, "%s", text[i]);
		word->seen++;
	}
	CHECK(words.count == 3 && strcmp(words.entries[0].text, "alpha") == 0 &&
		      words.entries[0].seen == 3 && strcmp(words.entries[2].text, "gamma") == 0 &&
		      words.entries[1].seen == 2,
	      "a table interns entries by the key they carry, in the order first seen");
	struct word *beta = word_table_search(&words, "beta");
	CHECK(beta == &words.entries[1], "search finds an entry by its key");
	word_table_free(&words);
}

static void test_bytes(void)
{
	const uint8_t bytes[] = {0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};
	CHECK(u16_at(bytes, 1) == 0x0201, "u16_at: %#x", u16_at(bytes, 1));
	CHECK(u32_at(bytes, 1) == 0x04030201u, "u32_at at an odd offset: %#x", u32_at(bytes, 1));
	CHECK(u64_at(bytes, 2) == 0x0908070605040302ull, "u64_at at an unaligned offset: %#llx",
	      (unsigned long long)u64_at(bytes, 2));
}

int main(void)
{
	test_vector();
	test_map();
	test_bytes();
	return TEST_EXIT();
}
