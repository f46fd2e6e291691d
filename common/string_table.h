/* A set of strings, each kept once and numbered in the order first given (0, 1, ...), with a hash
 * index: the type names of allocations and the labels of the graph's edges are stored as these
 * numbers, and equal strings are one pointer. */
#ifndef HEAPSNAP_STRING_TABLE_H
#define HEAPSNAP_STRING_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash_index.h"

struct string_table {
	char **strings; /* by number */
	size_t count, capacity;
	struct hash_index index;
};

/* The number of `text`, UINT32_MAX when it is not in the table. */
uint32_t string_table_find(const struct string_table *table, const char *text);
/* The number of `text`, added when new; UINT32_MAX when out of memory. */
uint32_t string_table_intern(struct string_table *table, const char *text);
void string_table_free(struct string_table *table);

#endif
