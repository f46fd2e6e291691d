/* Pre-copy: copying the target's memory while it still runs, so that the freeze only has to copy
 * what changed meanwhile (the technique of live migration and of CRIU's pre-dump). The kernel's
 * soft-dirty bits, reset through /proc/PID/clear_refs, mark every page written after the reset;
 * /proc/PID/pagemap reports them with the page frame behind each page. At the freeze, a page copied
 * earlier is kept only when it is still backed by the same frame and has not been written since;
 * every other page is copied again, so the snapshot is exactly the memory at the freeze.
 *
 * Resetting soft-dirty bits changes no byte of the target, but it does change kernel state: the
 * target takes one minor fault on its next write to each page, and a tool that tracks the same
 * process with soft-dirty bits (CRIU) would be misled. `heapsnap capture --no-precopy` avoids it. */
#ifndef HEAPSNAP_PRECOPY_H
#define HEAPSNAP_PRECOPY_H

#include <stdbool.h>
#include <stdint.h>

#include "capture/capture_plan.h"
#include "capture/proc.h"
#include "capture/process_memory.h"
#include "common/error.h"

struct precopy {
	struct proc_maps maps;	  /* the mappings the pre-copy was made from */
	struct capture_plan plan; /* its regions, with their copies */
	uint64_t **entries;	  /* per region, pagemap entries as of the copy; NULL: untracked */
	uint64_t recopied_bytes;  /* set by precopy_settle */
};

/* Whether this host lets heapsnap see soft-dirty bits and page frames (root, a kernel built with
 * CONFIG_MEM_SOFT_DIRTY): probed on heapsnap's own memory. */
bool precopy_supported(void);

/* Resets the target's soft-dirty bits and copies the planned memory while it runs. Takes over
 * maps and plan. */
int precopy_run(struct precopy *precopy, struct proc_maps *maps, struct capture_plan *plan,
		struct process_memory *memory, struct copy_buffer *buffer, struct hs_error *err);

/* With the target frozen: gives each region of `plan` that matches a pre-copied one that copy,
 * after copying again the pages written or replaced since. Regions left without data need a full
 * copy (capture_plan_copy). */
int precopy_settle(struct precopy *precopy, struct capture_plan *plan,
		   struct process_memory *memory, struct range_list *absent, struct hs_error *err);

void precopy_free(struct precopy *precopy);

#endif
