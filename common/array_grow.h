/* Growing a malloc'd array one element at a time, by doubling: the one way the analysis does it. */
#ifndef HEAPSNAP_ARRAY_GROW_H
#define HEAPSNAP_ARRAY_GROW_H

#include <stddef.h>

/* Room for one more element in `array` (*capacity elements, `count` of them used; NULL when
 * none): the array, doubled (to `first` elements at first) and moved by realloc when it is full,
 * or NULL when out of memory (the old array is then intact and still the caller's). */
void *array_grow(void *array, size_t *capacity, size_t count, size_t element_size, size_t first);

#endif
