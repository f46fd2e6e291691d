/* Typed growing arrays: DEFINE_VECTOR(name, type) defines `struct name` and its functions, so an
 * array that grows by appending is written once, over array_grow (doubling, realloc), rather
 * than by hand each time. The model is drgn's vector.h, smaller: what the analysis uses. A zeroed
 * struct is an empty vector; its elements are `data[0 .. size - 1]`, which callers read and
 * write directly (sort, scan) and may take over with name_steal.
 *
 *     DEFINE_VECTOR(span_vector, struct span)
 *     struct span_vector spans = {0};
 *     struct span *span = span_vector_append(&spans);   (NULL: out of memory)
 *     ...
 *     span_vector_free(&spans);
 *
 * Growth starts at VECTOR_FIRST elements, or at what name_reserve asked for. */
#ifndef HEAPSNAP_VECTOR_H
#define HEAPSNAP_VECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "common/array_grow.h"

#define VECTOR_FIRST 16

#define DEFINE_VECTOR(name, type)                                                                  \
	struct name {                                                                              \
		type *data;                                                                        \
		size_t size, capacity;                                                             \
	};                                                                                         \
                                                                                                   \
	/* Room for `count` elements in all (the elements stay); false when out of memory (the    \
	 * vector is then unchanged). */                                                           \
	__attribute__((unused)) static inline bool name##_reserve(struct name *vector, size_t count) \
	{                                                                                          \
		if (count <= vector->capacity)                                                      \
			return true;                                                               \
		void *grown = array_grow(vector->data, &vector->capacity, count ? count - 1 : 0,  \
					 sizeof(type), count > VECTOR_FIRST ? count : VECTOR_FIRST); \
		if (grown == NULL)                                                                 \
			return false;                                                              \
		vector->data = grown;                                                              \
		return true;                                                                       \
	}                                                                                          \
                                                                                                   \
	/* A new last element, uninitialised; NULL when out of memory (the vector is then          \
	 * unchanged). Pointers into the vector are invalid after an append. */                     \
	__attribute__((unused)) static inline type *name##_append(struct name *vector)            \
	{                                                                                          \
		if (vector->size == vector->capacity) {                                            \
			void *grown = array_grow(vector->data, &vector->capacity, vector->size,    \
						 sizeof(type), VECTOR_FIRST);                      \
			if (grown == NULL)                                                         \
				return NULL;                                                       \
			vector->data = grown;                                                      \
		}                                                                                  \
		return &vector->data[vector->size++];                                              \
	}                                                                                          \
                                                                                                   \
	/* Appends a copy of `*element`; false when out of memory. */                              \
	__attribute__((unused)) static inline bool name##_push(struct name *vector,               \
							      const type *element)                 \
	{                                                                                          \
		type *slot = name##_append(vector);                                                \
		if (slot == NULL)                                                                  \
			return false;                                                              \
		*slot = *element;                                                                  \
		return true;                                                                       \
	}                                                                                          \
                                                                                                   \
	/* The last element, removed (it stays readable until the next append); NULL when         \
	 * empty. */                                                                               \
	__attribute__((unused)) static inline type *name##_pop(struct name *vector)               \
	{                                                                                          \
		return vector->size ? &vector->data[--vector->size] : NULL;                        \
	}                                                                                          \
                                                                                                   \
	__attribute__((unused)) static inline type *name##_at(const struct name *vector, size_t i) \
	{                                                                                          \
		return &vector->data[i];                                                           \
	}                                                                                          \
                                                                                                   \
	/* The elements, the caller's to free (NULL when none were ever added); the vector is     \
	 * left empty. */                                                                          \
	__attribute__((unused)) static inline type *name##_steal(struct name *vector)             \
	{                                                                                          \
		type *data = vector->data;                                                         \
		*vector = (struct name){0};                                                        \
		return data;                                                                       \
	}                                                                                          \
                                                                                                   \
	__attribute__((unused)) static inline void name##_free(struct name *vector)               \
	{                                                                                          \
		free(vector->data);                                                                \
		*vector = (struct name){0};                                                        \
	}

#endif
