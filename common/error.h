/* Errors as values. Every library function that can fail takes a `struct hs_error *` and returns -1
 * after filling it with a code, for the program to branch on, and one complete sentence, for the
 * user: what went wrong, where (file, offset, address, pid) and, when there is one, what the user
 * can do. Only the front ends print the sentence; nothing branches on its words. The model is
 * drgn's `struct drgn_error` (a code, the errno, a message). */
#ifndef HEAPSNAP_ERROR_H
#define HEAPSNAP_ERROR_H

#include <stddef.h>

#define HS_ERROR_MESSAGE_MAX 1024

/* What kind of failure an error is. A code says only what a caller may act on; the sentence says
 * the rest. New codes go at the end: the keeper of a capture by fork sends errors over a pipe. */
enum hs_error_code {
	/* no error: a zeroed struct hs_error */
	HS_ERR_NONE = 0,
	/* a failure of no kind of its own: the sentence is all there is (hs_error_set) */
	HS_ERR_OTHER,
	/* out of memory (hs_error_nomem) */
	HS_ERR_NOMEM,
	/* a system call failed; errnum holds its errno (hs_error_set_errno) */
	HS_ERR_OS,
	/* the caller asked for something impossible: a bad pid, a limit passed */
	HS_ERR_INVALID,
	/* the file is not of the kind expected: not a snapshot, not a core */
	HS_ERR_FORMAT,
	/* the input is of the right kind but damaged or cut short */
	HS_ERR_DAMAGED,
	/* valid, but beyond what heapsnap handles: a kernel thread, say */
	HS_ERR_UNSUPPORTED,
	/* we may not trace or read the target */
	HS_ERR_PERMISSION,
	/* the target process does not exist, or exited (or is a zombie) before it was copied */
	HS_ERR_GONE,
	/* memory that could not be read: a page of a process, a byte source being compressed */
	HS_ERR_FAULT,
	/* the process holding the target for a capture by fork ended: the target was let go and
	   there is nothing left to copy */
	HS_ERR_HOLD_LOST,
};

struct hs_error {
	enum hs_error_code code;
	int errnum; /* the errno for HS_ERR_OS (and any code made with one), else 0 */
	char message[HS_ERROR_MESSAGE_MAX];
};

/* Formats the message into `err` (which may be NULL), with code HS_ERR_OTHER, and returns -1, so a
 * caller can write `return hs_error_set(err, "...")`. */
int hs_error_set(struct hs_error *err, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/* The same with the code given. */
int hs_error_set_code(struct hs_error *err, enum hs_error_code code, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

/* HS_ERR_OS with errno `errnum`: the message, then ": " and strerror(errnum). */
int hs_error_set_errno(struct hs_error *err, int errnum, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

/* The same with another code than HS_ERR_OS, for a failed call that says more than that (the
 * target gone, a permission refused); errnum is kept. */
int hs_error_set_code_errno(struct hs_error *err, enum hs_error_code code, int errnum,
			    const char *format, ...) __attribute__((format(printf, 4, 5)));

/* HS_ERR_NOMEM, and the one sentence for it: "out of memory " followed by what was being done
 * (`what` is a format: "reading %s"). */
int hs_error_nomem(struct hs_error *err, const char *what, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefixes the existing message with more context ("reading FILE: " + old message); the code and
 * errno stay. */
int hs_error_prefix(struct hs_error *err, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/* A name for a code ("out of memory", "damaged input"), for tests and debugging output. */
const char *hs_error_code_name(enum hs_error_code code);

#endif
