/* The Python threads of a snapshot and their frames: from the main interpreter's thread list,
 * each thread's frames (frame objects up to 3.10; from 3.11 the _PyInterpreterFrame records in
 * its data-stack chunks) and, in each, the local variables by name and the values on the
 * evaluation stack. Threads are named by the id the snapshot has for them (the native id from
 * 3.11, else the thread whose TCB pthread_self() is). */
#ifndef HEAPSNAP_CPYTHON_THREADS_H
#define HEAPSNAP_CPYTHON_THREADS_H

#include <stddef.h>
#include <stdint.h>

#include "analyze/address_space.h"
#include "analyze/runtimes/cpython/cpython.h"

struct python_frame_value {
	int tid;	      /* the thread's id, 0 when not known */
	const char *function; /* its qualified name, "?" when unreadable */
	const char *local;    /* the local's name, NULL for a value on the evaluation stack */
	uint64_t value;	      /* the object */
};

/* A data-stack chunk (3.11+): memory that holds frames, read through them, not scanned. */
struct python_stack_chunk {
	uint64_t start, end;
};

/* Calls visit (unless NULL) for each non-NULL local and stack value of every frame of every thread, innermost
 * frame first; stops when it returns non-zero (and returns that). Fills chunks (up to max, their
 * number in *chunk_count) when chunks is not NULL. */
int cpython_threads_walk(struct address_space *space, const struct cpython_info *python,
			 int (*visit)(void *context, const struct python_frame_value *value),
			 void *context, struct python_stack_chunk *chunks, size_t max,
			 size_t *chunk_count);

#endif
