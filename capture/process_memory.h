/* Copying memory out of a stopped process: process_vm_readv, falling back to /proc/PID/mem where
 * that is refused. Pages that cannot be read are not fatal: they are reported as absent ranges. And
 * /proc/PID/pagemap tells which private anonymous pages were never touched, so they need no copy. */
#ifndef HEAPSNAP_PROCESS_MEMORY_H
#define HEAPSNAP_PROCESS_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

struct address_range {
	uint64_t start, end;
};

struct range_list {
	struct address_range *ranges;
	size_t count, capacity;
};

/* Appends [start, end), merging with the last range when they touch. */
int range_list_add(struct range_list *list, uint64_t start, uint64_t end);
void range_list_free(struct range_list *list);

struct process_memory {
	pid_t pid;
	int mem_fd;	 /* /proc/PID/mem, opened on demand */
	int pagemap_fd;	 /* /proc/PID/pagemap, -1 if unavailable */
	bool use_mem_fd; /* process_vm_readv was refused */
	uint64_t bytes_read; /* by process_memory_read, in all */
	bool no_pagemap_scan; /* find untouched pages by reading pagemap even where PAGEMAP_SCAN
				 exists (the path older kernels take; for tests) */
};

int process_memory_open(struct process_memory *memory, pid_t pid, struct hs_error *err);
void process_memory_close(struct process_memory *memory);

/* Copies [addr, addr+size) into buf. Unreadable pages are zero-filled in buf and added to absent.
 * Fails only when nothing can be read at all from the process (it is gone). Several threads may
 * read through one process_memory at once, each with its own `absent` list. */
int process_memory_read(struct process_memory *memory, uint64_t addr, void *buf, size_t size,
			struct range_list *absent, struct hs_error *err);

/* Adds to `untouched` the runs of at least min_run_bytes, inside [start, end), of pages that are
 * neither present nor swapped: in private anonymous memory they read as zeros. Best effort: adds
 * nothing when pagemap cannot be read. */
int process_memory_untouched(struct process_memory *memory, uint64_t start, uint64_t end,
			     uint64_t min_run_bytes, struct range_list *untouched);

/* True when a private file mapping holds pages the process changed (copy-on-write copies, as
 * relocation leaves in RELRO): those bytes are no longer the file's, so they must be stored. When
 * pagemap cannot be read, answers true: storing too much is safe, storing too little is not. */
bool process_memory_has_private_pages(struct process_memory *memory, uint64_t start, uint64_t end);

/* Raw /proc/PID/pagemap entries of the pages of [start, end) (one per page). -1 on failure. */
int process_memory_pagemap(struct process_memory *memory, uint64_t start, uint64_t end,
			   uint64_t *entries);

/* pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst) */
#define PAGEMAP_PRESENT (1ull << 63)
#define PAGEMAP_SWAPPED (1ull << 62)
#define PAGEMAP_FILE_OR_SHARED (1ull << 61)
#define PAGEMAP_SOFT_DIRTY (1ull << 55)
#define PAGEMAP_FRAME_MASK ((1ull << 55) - 1)

#endif
