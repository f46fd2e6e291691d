/* The warning list (see warnings.h). */
#include "warnings.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array_grow.h"

void warnings_add(struct warnings *warnings, const char *format, ...)
{
	if (warnings == NULL)
		return;
	char message[1024];
	va_list args;
	va_start(args, format);
	vsnprintf(message, sizeof message, format, args);
	va_end(args);
	for (size_t i = 0; i < warnings->count; i++)
		if (strcmp(warnings->items[i], message) == 0)
			return;
	if (warnings->count >= WARNINGS_MAX) {
		warnings->dropped++;
		return;
	}
	void *grown = array_grow(warnings->items, &warnings->capacity, warnings->count,
				 sizeof *warnings->items, 16);
	if (grown == NULL) {
		warnings->dropped++;
		return;
	}
	warnings->items = grown;
	char *copy = strdup(message);
	if (copy == NULL) {
		warnings->dropped++;
		return;
	}
	warnings->items[warnings->count++] = copy;
}

void warnings_free(struct warnings *warnings)
{
	for (size_t i = 0; i < warnings->count; i++)
		free(warnings->items[i]);
	free(warnings->items);
	memset(warnings, 0, sizeof *warnings);
}
