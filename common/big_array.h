/* Arrays that grow to hundreds of MiB while they are filled (the heap's allocations, the graph's
 * edges), in mappings of their own grown with mremap: the kernel moves their pages, it neither
 * copies them nor touches new ones. The front ends tell malloc not to map memory of its own (see
 * cli_prepare_memory), so that what the analysis frees is reused rather than given back to the
 * kernel and faulted in again; in malloc's heap, growing these arrays would copy them each time,
 * and hold the old and the new copy at once. */
#ifndef HEAPSNAP_BIG_ARRAY_H
#define HEAPSNAP_BIG_ARRAY_H

#include <stddef.h>

/* Grows `array` (NULL for none) of *capacity elements of `element_size` bytes to hold `needed`
 * (doubling, at least 4096): the array, moved or not, or NULL when out of memory (the old one is
 * then intact). */
void *big_array_grow(void *array, size_t *capacity, size_t element_size, size_t needed);
#define BIG_ARRAY_AHEAD (1u << 17) /* entries faulted in ahead, half of them at a time */

/* Asks the prefault helper (prefault.h) to fault in the entries after the first `used`. */
void big_array_prefault_next(void *array, size_t capacity, size_t element_size, size_t used);

/* Called as the array fills, with the entries used so far (on hot paths: a test, mostly). */
static inline void big_array_filling(void *array, size_t capacity, size_t element_size,
				     size_t used)
{
	if (used % (BIG_ARRAY_AHEAD / 2) == 0)
		big_array_prefault_next(array, capacity, element_size, used);
}
/* Frees an array made by big_array_grow (NULL is fine). */
void big_array_free(void *array, size_t capacity, size_t element_size);

#endif
