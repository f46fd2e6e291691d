/* Errors as values. Every library function that can fail takes a `struct hs_error *` and returns -1
 * after filling it with one complete sentence: what went wrong, where (file, offset, address, pid)
 * and, when there is one, what the user can do. Only the front ends print it. */
#ifndef HEAPSNAP_ERROR_H
#define HEAPSNAP_ERROR_H

#include <stddef.h>

#define HS_ERROR_MESSAGE_MAX 1024

struct hs_error {
	char message[HS_ERROR_MESSAGE_MAX];
};

/* Formats the message into `err` (which may be NULL) and returns -1, so a caller can write
 * `return hs_error_set(err, "...")`. */
int hs_error_set(struct hs_error *err, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/* Like hs_error_set, then appends ": " and strerror(errnum). */
int hs_error_set_errno(struct hs_error *err, int errnum, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with more context ("reading FILE: " + old message). */
int hs_error_prefix(struct hs_error *err, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

#endif
