/* Typed hash tables: DEFINE_HASH_MAP(name, key_type, value_type, hash, eq) defines a map from
 * keys to values, DEFINE_HASH_TABLE(name, entry_type, key_type, entry_key, hash, eq) a set of
 * entries that carry their own key (interned shapes, type groups). Both are an array of entries
 * in the order they were added (grown by array_grow) and a hash_index over it: entries are
 * numbered densely, iterating them is deterministic (reports do not depend on the hash), and a
 * table handed out as an array (name_steal) needs no copy. The model is drgn's hash_table.h,
 * much smaller: no removal, one probe loop, inlined, with the key's hash and equality inlined too.
 *
 *     static inline uint64_t addr_hash(uint64_t a) { return a * 0x9E3779B97F4A7C15ull >> 20; }
 *     static inline bool addr_eq(uint64_t a, uint64_t b) { return a == b; }
 *     DEFINE_HASH_MAP(type_map, uint64_t, int32_t, addr_hash, addr_eq)
 *
 *     struct type_map types = {0};
 *     bool added;
 *     struct type_map_entry *entry = type_map_insert(&types, address, &added);
 *     if (entry == NULL) -> out of memory
 *     if (added) entry->value = ...;
 *     ... type_map_search(&types, address) ... type_map_free(&types);
 *
 * `hash(key)` gives a uint64_t whose low bits pick the slot (they must be well mixed);
 * `eq(a, b)` compares two keys; `entry_key(const entry_type *)` gives an entry's key. Keys are
 * passed by value: keep them small (a pointer to text, a few numbers). */
#ifndef HEAPSNAP_HASH_MAP_H
#define HEAPSNAP_HASH_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/array_grow.h"
#include "common/hash_index.h"

#define HASH_TABLE_FIRST 64 /* the index's first size, in slots; the entries' first capacity */

#define DEFINE_HASH_TABLE(name, entry_type, key_type, entry_key, hash, eq)                         \
	HASH_TABLE_DEFINE_(name, entry_type, key_type, entry_key, HASH_TABLE_NO_KEY_, hash, eq)

/* A map: entries of `struct name_entry {key_type key; value_type value;}`; name_insert sets a
 * new entry's key (its value is zeroed). */
#define DEFINE_HASH_MAP(name, key_type, value_type, hash, eq)                                      \
	struct name##_entry {                                                                      \
		key_type key;                                                                      \
		value_type value;                                                                  \
	};                                                                                         \
	static inline key_type name##_entry_key(const struct name##_entry *entry)                  \
	{                                                                                          \
		return entry->key;                                                                 \
	}                                                                                          \
	static inline void name##_entry_new(struct name##_entry *entry, key_type key)              \
	{                                                                                          \
		entry->key = key;                                                                  \
	}                                                                                          \
	HASH_TABLE_DEFINE_(name, struct name##_entry, key_type, name##_entry_key,                  \
			   name##_entry_new, hash, eq)

/* (a table's new entry: its key is the caller's to set) */
#define HASH_TABLE_NO_KEY_(entry, key) ((void)(entry), (void)(key))

/* `new_entry(entry, key)` is called on each new, zeroed entry. */
#define HASH_TABLE_DEFINE_(name, entry_type, key_type, entry_key, new_entry, hash, eq)             \
	struct name {                                                                              \
		entry_type *entries; /* count of them, in the order added */                       \
		size_t count, capacity;                                                            \
		struct hash_index index;                                                           \
	};                                                                                         \
                                                                                                   \
	/* (what hash_index calls when it grows: entries are rehashed, not compared) */            \
	__attribute__((unused)) static uint64_t name##_number_hash(const void *context,           \
								   uint32_t number)                \
	{                                                                                          \
		return hash(entry_key(&((const struct name *)context)->entries[number]));          \
	}                                                                                          \
                                                                                                   \
	/* The entry with `key`, NULL when there is none. */                                       \
	__attribute__((unused)) static inline entry_type *name##_search(const struct name *table,  \
									key_type key)              \
	{                                                                                          \
		if (table->index.size == 0)                                                        \
			return NULL;                                                               \
		for (uint32_t *slot = hash_index_first(&table->index, hash(key)); *slot;           \
		     slot = hash_index_next(&table->index, slot))                                  \
			if (eq(entry_key(&table->entries[*slot - 1]), key))                        \
				return &table->entries[*slot - 1];                                 \
		return NULL;                                                                       \
	}                                                                                          \
                                                                                                   \
	/* The entry with `key`, added at the end, zeroed, when there is none (*added, unless      \
	 * `added` is NULL, says which): the caller then fills it in, its key equal to `key`,      \
	 * before the table is used again. NULL when out of memory (the table is then unchanged    \
	 * but perhaps for a larger index). Pointers to entries are invalid after an insert. */    \
	__attribute__((unused)) static inline entry_type *name##_insert(struct name *table,       \
									key_type key, bool *added) \
	{                                                                                          \
		if (table->count >= UINT32_MAX - 1 ||                                              \
		    hash_index_reserve(&table->index, table->count, HASH_TABLE_FIRST,              \
				       name##_number_hash, table) != 0)                            \
			return NULL;                                                               \
		uint32_t *slot = hash_index_first(&table->index, hash(key));                       \
		for (; *slot; slot = hash_index_next(&table->index, slot))                         \
			if (eq(entry_key(&table->entries[*slot - 1]), key)) {                      \
				if (added)                                                         \
					*added = false;                                            \
				return &table->entries[*slot - 1];                                 \
			}                                                                          \
		void *grown = array_grow(table->entries, &table->capacity, table->count,           \
					 sizeof *table->entries, HASH_TABLE_FIRST);                \
		if (grown == NULL)                                                                 \
			return NULL;                                                               \
		table->entries = grown;                                                            \
		entry_type *entry = &table->entries[table->count];                                 \
		memset(entry, 0, sizeof *entry);                                                   \
		new_entry(entry, key);                                                             \
		*slot = (uint32_t)++table->count;                                                  \
		if (added)                                                                         \
			*added = true;                                                             \
		return entry;                                                                      \
	}                                                                                          \
                                                                                                   \
	/* Sizes an empty table for `count` entries, when their number is known ahead: no         \
	 * rehashing on the way (the table still grows past it). False when out of memory. */      \
	__attribute__((unused)) static inline bool name##_presize(struct name *table, size_t count) \
	{                                                                                          \
		size_t size = HASH_TABLE_FIRST;                                                    \
		while (size < count * 2 + 2)                                                       \
			size *= 2;                                                                 \
		if (table->count != 0 || table->index.size >= size)                                \
			return true;                                                               \
		void *grown = array_grow(table->entries, &table->capacity, count ? count - 1 : 0,  \
					 sizeof *table->entries, HASH_TABLE_FIRST);                \
		if (grown == NULL)                                                                 \
			return false;                                                              \
		table->entries = grown;                                                            \
		hash_index_free(&table->index);                                                    \
		return hash_index_reserve(&table->index, 0, size, name##_number_hash, table) == 0; \
	}                                                                                          \
                                                                                                   \
	/* The entries, the caller's to free (NULL when none were ever added; free them even when \
	 * count is 0); the table is left empty. The array can then be sorted: the index is gone.  \
	 */                                                                                        \
	__attribute__((unused)) static inline entry_type *name##_steal(struct name *table)        \
	{                                                                                          \
		entry_type *entries = table->entries;                                              \
		hash_index_free(&table->index);                                                    \
		*table = (struct name){0};                                                         \
		return entries;                                                                    \
	}                                                                                          \
                                                                                                   \
	__attribute__((unused)) static inline void name##_free(struct name *table)                \
	{                                                                                          \
		free(table->entries);                                                              \
		hash_index_free(&table->index);                                                    \
		*table = (struct name){0};                                                         \
	}

#endif
