/* The one hash table of the analysis: an open-addressing index over an array its user keeps
 * (interned strings, allocation sites; hash_map.h's typed tables: type groups, path shapes). A slot holds an entry's number
 * + 1, 0 when empty; the index is kept at most half full, so a probe ends at an empty slot soon.
 * The user walks a key's probe sequence itself, comparing its own entries (no call per probe):
 *
 *     for (slot = hash_index_first(&index, hash); *slot; slot = hash_index_next(&index, slot))
 *             if (entry (*slot - 1) has the key) return *slot - 1;
 *     ... append the new entry as number n, then *slot = n + 1;
 *
 * after hash_index_reserve has made room for one more entry. */
#ifndef HEAPSNAP_HASH_INDEX_H
#define HEAPSNAP_HASH_INDEX_H

#include <stddef.h>
#include <stdint.h>

struct hash_index {
	uint32_t *slots; /* size of them, a power of two; NULL before the first reserve */
	size_t size;
};

/* Room for one entry more than `count`: when the index would be over half full it doubles (to
 * `first_size` slots at first, a power of two) and puts the `count` entries back, each at
 * `hash(context, number)`. -1 when out of memory (the index is then unchanged). */
int hash_index_reserve(struct hash_index *index, size_t count, size_t first_size,
		       uint64_t (*hash)(const void *context, uint32_t number), const void *context);

/* The first slot of a hash's probe sequence (the index must have slots). */
static inline uint32_t *hash_index_first(const struct hash_index *index, uint64_t hash)
{
	return &index->slots[hash & (index->size - 1)];
}

/* The slot after `slot` in a probe sequence. */
static inline uint32_t *hash_index_next(const struct hash_index *index, uint32_t *slot)
{
	return slot + 1 == index->slots + index->size ? index->slots : slot + 1;
}

void hash_index_free(struct hash_index *index);

#endif
