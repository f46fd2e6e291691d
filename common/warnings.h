/* Warnings collected during an analysis: things that are wrong in the input (a corrupt chunk, a
 * file that changed since capture) but do not stop the analysis. Library code adds them; the front
 * end prints them. Identical messages are kept once, and the list is bounded. */
#ifndef HEAPSNAP_WARNINGS_H
#define HEAPSNAP_WARNINGS_H

#include <stddef.h>

#define WARNINGS_MAX 1000

struct warnings {
	char **items;
	size_t count, capacity;
	size_t dropped; /* beyond WARNINGS_MAX */
};

void warnings_add(struct warnings *warnings, const char *format, ...)
	__attribute__((format(printf, 2, 3)));
void warnings_free(struct warnings *warnings);

#endif
