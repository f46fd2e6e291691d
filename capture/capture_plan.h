/* What a capture copies, and where the copy goes. A plan turns /proc/PID/maps into the PT_LOAD
 * segments to be (which mappings are stored whole, which only by their ELF header page, which not
 * at all, where never-touched memory is left out); a copy buffer holds the copied bytes. Both are
 * made once while the target runs (to size and populate the buffer, and for the pre-copy) and once
 * while it is frozen. */
#ifndef HEAPSNAP_CAPTURE_PLAN_H
#define HEAPSNAP_CAPTURE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture/proc.h"
#include "capture/process_memory.h"
#include "common/error.h"
#include "formats/seekable.h"

#define CAPTURE_PAGE_BYTES 4096u

/* One PT_LOAD to be: a whole mapping, or part of a private anonymous one split at untouched runs. */
struct planned_region {
	const struct proc_mapping *mapping;
	uint64_t start, end;
	uint64_t read_size; /* bytes copied from start: 0, the ELF header page, or everything */
	uint8_t *data;	    /* where the copy is, once made */
	const struct byte_source *source; /* or, uncopied, where it is read from as it is written */
	bool untouched;	    /* a run of never-touched pages: zeros, not stored */
	bool header_page;   /* only the first page, kept if it is an ELF header */
};

struct capture_plan {
	struct planned_region *regions;
	size_t count, capacity;
	uint64_t read_bytes;
};

int capture_plan_make(const struct proc_maps *maps, struct process_memory *memory,
		      struct capture_plan *plan, struct hs_error *err);
void capture_plan_free(struct capture_plan *plan);

/* True when two planned regions describe the same memory the same way (same range, same mapping
 * attributes, same treatment): a copy made for one serves the other. */
bool planned_regions_match(const struct planned_region *a, const struct planned_region *b);

/* Memory to copy the target into, made ready before the target is frozen: a copy into pages that
 * are not yet mapped runs ten times slower (each page faults inside process_vm_readv), and that
 * time would all be pause. Space is handed out from the front; when it runs out (the target grew
 * since the buffer was sized), a further buffer is chained on. */
struct copy_buffer {
	uint8_t *data;
	size_t capacity, used;
	struct copy_buffer *overflow;
};

int copy_buffer_prepare(struct copy_buffer *buffer, uint64_t bytes, struct hs_error *err);
/* size bytes of the buffer, or NULL when out of memory */
uint8_t *copy_buffer_take(struct copy_buffer *buffer, uint64_t size);
void copy_buffer_release(struct copy_buffer *buffer);

/* For a capture of the calling process itself, from a fork whose memory nothing else changes:
 * each region that reads whole is used where it is, without a copy; the others are copied, their
 * unreadable pages as zeros (and added to absent). Single-threaded. */
int capture_plan_in_place(struct capture_plan *plan, struct process_memory *memory,
			  struct range_list *absent, struct hs_error *err);

/* Gives every region of the plan that has no copy yet its space in the buffer and copies it. */
int capture_plan_copy(struct capture_plan *plan, struct process_memory *memory,
		      struct copy_buffer *buffer, struct range_list *absent, struct hs_error *err);

#endif
