/* Arrays grown by doubling (see array_grow.h). */
#include "array_grow.h"

#include <stdint.h>
#include <stdlib.h>

void *array_grow(void *array, size_t *capacity, size_t count, size_t element_size, size_t first)
{
	if (array != NULL && count < *capacity)
		return array;
	size_t grown = *capacity ? *capacity : first ? first : 1;
	while (grown <= count) {
		if (grown > SIZE_MAX / 2 / element_size)
			return NULL;
		grown *= 2;
	}
	void *moved = realloc(array, grown * element_size);
	if (moved == NULL)
		return NULL;
	*capacity = grown;
	return moved;
}
