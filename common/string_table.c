/* Interned strings with a hash index (see string_table.h). */
#include "string_table.h"

#include <stdlib.h>
#include <string.h>

#include "common/array_grow.h"
#include "common/fnv.h"

static uint64_t string_hash(const char *text)
{
	return fnv1a_text(1469598103934665603ull, text) >> 7;
}

static uint64_t entry_hash(const void *context, uint32_t number)
{
	const struct string_table *table = context;
	return string_hash(table->strings[number]);
}

/* The number of `text` (UINT32_MAX when absent) and the index slot it has or would take. */
static uint32_t probe(const struct string_table *table, const char *text, uint32_t **slot_out)
{
	uint32_t *slot = hash_index_first(&table->index, string_hash(text));
	for (; *slot; slot = hash_index_next(&table->index, slot))
		if (strcmp(table->strings[*slot - 1], text) == 0)
			break;
	*slot_out = slot;
	return *slot ? *slot - 1 : UINT32_MAX;
}

uint32_t string_table_find(const struct string_table *table, const char *text)
{
	uint32_t *slot;
	return table->index.size ? probe(table, text, &slot) : UINT32_MAX;
}

uint32_t string_table_intern(struct string_table *table, const char *text)
{
	if (hash_index_reserve(&table->index, table->count, 256, entry_hash, table) != 0)
		return UINT32_MAX;
	uint32_t *slot;
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
	*slot = (uint32_t)++table->count;
	return (uint32_t)(table->count - 1);
}

void string_table_free(struct string_table *table)
{
	for (size_t i = 0; i < table->count; i++)
		free(table->strings[i]);
	free(table->strings);
	hash_index_free(&table->index);
	memset(table, 0, sizeof *table);
}
