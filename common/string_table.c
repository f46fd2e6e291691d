/* Interned strings with a hash index (see string_table.h). */
#include "string_table.h"

#include <stdlib.h>
#include <string.h>

#include "common/array_grow.h"

static uint64_t string_hash(const char *text)
{
	uint64_t hash = 1469598103934665603ull;
	for (; *text; text++)
		hash = (hash ^ (uint8_t)*text) * 1099511628211ull;
	return hash >> 7;
}

/* Doubles the index (kept at most half full). */
static int grow_index(struct string_table *table)
{
	size_t size = table->index_size ? table->index_size * 2 : 256;
	uint32_t *index = calloc(size, sizeof *index);
	if (index == NULL)
		return -1;
	for (size_t i = 0; i < table->count; i++) {
		size_t slot = string_hash(table->strings[i]) & (size - 1);
		while (index[slot])
			slot = (slot + 1) & (size - 1);
		index[slot] = (uint32_t)i + 1;
	}
	free(table->index);
	table->index = index;
	table->index_size = size;
	return 0;
}

/* The number of `text` (UINT32_MAX when absent) and the index slot it has or would take. */
static uint32_t probe(const struct string_table *table, const char *text, size_t *slot_out)
{
	size_t mask = table->index_size - 1, slot = string_hash(text) & mask;
	for (; table->index[slot]; slot = (slot + 1) & mask)
		if (strcmp(table->strings[table->index[slot] - 1], text) == 0)
			break;
	*slot_out = slot;
	return table->index[slot] ? table->index[slot] - 1 : UINT32_MAX;
}

uint32_t string_table_find(const struct string_table *table, const char *text)
{
	size_t slot;
	return table->index_size ? probe(table, text, &slot) : UINT32_MAX;
}

uint32_t string_table_intern(struct string_table *table, const char *text)
{
	if ((table->count + 1) * 2 > table->index_size && grow_index(table) != 0)
		return UINT32_MAX;
	size_t slot;
	uint32_t number = probe(table, text, &slot);
	if (number != UINT32_MAX)
		return number;
	if (table->count >= UINT32_MAX - 2)
		return UINT32_MAX;
	void *grown = array_grow(table->strings, &table->capacity, table->count,
				 sizeof *table->strings, 64);
	if (grown == NULL)
		return UINT32_MAX;
	table->strings = grown;
	char *copy = strdup(text);
	if (copy == NULL)
		return UINT32_MAX;
	table->strings[table->count] = copy;
	table->index[slot] = (uint32_t)++table->count;
	return (uint32_t)(table->count - 1);
}

void string_table_free(struct string_table *table)
{
	for (size_t i = 0; i < table->count; i++)
		free(table->strings[i]);
	free(table->strings);
	free(table->index);
	memset(table, 0, sizeof *table);
}
