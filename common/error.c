/* The error value used across heapsnap: formatting helpers only, no global state. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int hs_error_set(struct hs_error *err, const char *format, ...)
{
	if (err == NULL)
		return -1;
	va_list args;
	va_start(args, format);
	vsnprintf(err->message, sizeof err->message, format, args);
	va_end(args);
	return -1;
}

int hs_error_set_errno(struct hs_error *err, int errnum, const char *format, ...)
{
	if (err == NULL)
		return -1;
	va_list args;
	va_start(args, format);
	int used = vsnprintf(err->message, sizeof err->message, format, args);
	va_end(args);
	if (used >= 0 && (size_t)used < sizeof err->message)
		snprintf(err->message + used, sizeof err->message - (size_t)used, ": %s",
			 strerror(errnum));
	return -1;
}

int hs_error_prefix(struct hs_error *err, const char *format, ...)
{
	if (err == NULL)
		return -1;
	char prefix[HS_ERROR_MESSAGE_MAX];
	va_list args;
	va_start(args, format);
	vsnprintf(prefix, sizeof prefix, format, args);
	va_end(args);
	size_t prefix_length = strlen(prefix);
	size_t old_length = strlen(err->message);
	if (prefix_length >= sizeof err->message)
		prefix_length = sizeof err->message - 1;
	if (prefix_length + old_length >= sizeof err->message)
		old_length = sizeof err->message - 1 - prefix_length;
	memmove(err->message + prefix_length, err->message, old_length);
	memcpy(err->message, prefix, prefix_length);
	err->message[prefix_length + old_length] = '\0';
	return -1;
}
