/* Arrays in mappings of their own, grown with mremap (see big_array.h). */
#include "big_array.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "common/prefault.h"

#define PAGE 4096u

static size_t mapping_size(size_t capacity, size_t element_size)
{
	return (capacity * element_size + PAGE - 1) / PAGE * PAGE;
}

void *big_array_grow(void *array, size_t *capacity, size_t element_size, size_t needed)
{
	if (needed <= *capacity && array != NULL)
		return array;
	size_t grown = *capacity ? *capacity : 4096;
	while (grown < needed) {
		if (grown > SIZE_MAX / 2 / element_size)
			return NULL;
		grown *= 2;
	}
	void *moved;
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer does not follow pages mremap moves: where a thread maps memory another
	   thread's array moved away from, it would see a race. Copied instead, in its builds. */
	moved = mmap(NULL, mapping_size(grown, element_size), PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (moved == MAP_FAILED)
		return NULL;
	if (array != NULL) {
		memcpy(moved, array, *capacity * element_size);
		munmap(array, mapping_size(*capacity, element_size));
	}
#else
	if (array == NULL)
		moved = mmap(NULL, mapping_size(grown, element_size), PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	else
		moved = mremap(array, mapping_size(*capacity, element_size),
			       mapping_size(grown, element_size), MREMAP_MAYMOVE);
	if (moved == MAP_FAILED)
		return NULL;
#endif
	/* (no huge pages: on these VMs the kernel zeroes a huge page at several times the cost
	   per byte of small ones; see cli_prepare_memory) */
	*capacity = grown;
	return moved;
}

void big_array_prefault_next(void *array, size_t capacity, size_t element_size, size_t used)
{
	if (used >= capacity)
		return;
	size_t count = capacity - used < BIG_ARRAY_AHEAD ? capacity - used : BIG_ARRAY_AHEAD;
	prefault_ahead((char *)array + used * element_size, count * element_size);
}

void big_array_free(void *array, size_t capacity, size_t element_size)
{
	if (array != NULL)
		munmap(array, mapping_size(capacity, element_size));
}
