/* The analysis's hash index (see hash_index.h). */
#include "hash_index.h"

#include <stdlib.h>

int hash_index_reserve(struct hash_index *index, size_t count, size_t first_size,
		       uint64_t (*hash)(const void *context, uint32_t number), const void *context)
{
	if ((count + 1) * 2 <= index->size)
		return 0;
	struct hash_index grown = {.size = index->size ? index->size * 2 : first_size};
	grown.slots = calloc(grown.size, sizeof *grown.slots);
	if (grown.slots == NULL)
		return -1;
	for (size_t number = 0; number < count; number++) {
		uint32_t *slot = hash_index_first(&grown, hash(context, (uint32_t)number));
		while (*slot)
			slot = hash_index_next(&grown, slot);
		*slot = (uint32_t)number + 1;
	}
	free(index->slots);
	*index = grown;
	return 0;
}

void hash_index_free(struct hash_index *index)
{
	free(index->slots);
	index->slots = NULL;
	index->size = 0;
}
