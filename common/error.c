/* The error value used across heapsnap (see error.h): setting its code, errno and sentence; no
 * global state. */
#include "error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The message from `format`, then ": strerror(errnum)" when with_errno (even for errno 0: a
 * caller that passes one says it, as it always did). */
static int set(struct hs_error *err, enum hs_error_code code, int errnum, bool with_errno,
	       const char *format, va_list args) __attribute__((format(printf, 5, 0)));
static int set(struct hs_error *err, enum hs_error_code code, int errnum, bool with_errno,
	       const char *format, va_list args)
{
	if (err == NULL)
		return -1;
	err->code = code;
	err->errnum = errnum;
	int used = vsnprintf(err->message, sizeof err->message, format, args);
	if (with_errno && used >= 0 && (size_t)used < sizeof err->message)
		snprintf(err->message + used, sizeof err->message - (size_t)used, ": %s",
			 strerror(errnum));
	return -1;
}

int hs_error_set(struct hs_error *err, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	set(err, HS_ERR_OTHER, 0, false, format, args);
	va_end(args);
	return -1;
}

int hs_error_set_code(struct hs_error *err, enum hs_error_code code, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	set(err, code, 0, false, format, args);
	va_end(args);
	return -1;
}

int hs_error_set_errno(struct hs_error *err, int errnum, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	set(err, HS_ERR_OS, errnum, true, format, args);
	va_end(args);
	return -1;
}

int hs_error_set_code_errno(struct hs_error *err, enum hs_error_code code, int errnum,
			    const char *format, ...)
{
	va_list args;
	va_start(args, format);
	set(err, code, errnum, true, format, args);
	va_end(args);
	return -1;
}

int hs_error_nomem(struct hs_error *err, const char *what, ...)
{
	if (err == NULL)
		return -1;
	char text[HS_ERROR_MESSAGE_MAX];
	va_list args;
	va_start(args, what);
	vsnprintf(text, sizeof text, what, args);
	va_end(args);
	return hs_error_set_code(err, HS_ERR_NOMEM, "out of memory %s", text);
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

const char *hs_error_code_name(enum hs_error_code code)
{
	static const char *const names[] = {
		[HS_ERR_NONE] = "no error",
		[HS_ERR_OTHER] = "error",
		[HS_ERR_NOMEM] = "out of memory",
		[HS_ERR_OS] = "system call failed",
		[HS_ERR_INVALID] = "invalid argument",
		[HS_ERR_FORMAT] = "wrong format",
		[HS_ERR_DAMAGED] = "damaged input",
		[HS_ERR_UNSUPPORTED] = "unsupported",
		[HS_ERR_PERMISSION] = "permission denied",
		[HS_ERR_GONE] = "target gone",
		[HS_ERR_FAULT] = "unreadable memory",
		[HS_ERR_HOLD_LOST] = "target let go",
	};
	if ((size_t)code < sizeof names / sizeof names[0] && names[code] != NULL)
		return names[code];
	return "unknown error";
}
