/* Unwinding the stacks `heapsnap capture --sites` copies at each allocation (registers and the
 * stack's top, as perf's --call-graph dwarf takes them) into return addresses, with the CFI of
 * the target's modules (elfutils libdw's unwinder). */
#ifndef HEAPSNAP_SITES_UNWIND_H
#define HEAPSNAP_SITES_UNWIND_H

#include <stdint.h>
#include <sys/types.h>

#include "capture/bpf/sites_events.h"
#include "common/error.h"
#include "formats/snapshot_notes.h"

struct sites_unwinder;

/* Reads `pid`'s modules (its mapped ELF files) for their CFI. */
struct sites_unwinder *sites_unwinder_open(pid_t pid, struct hs_error *err);
/* The return addresses of `event`'s stack, innermost first, the allocator's own frame left out
 * (as the hook stores them: [0] into the function that called the allocator); 0 past the last.
 * Returns how many were found (0: not even the caller's). */
int sites_unwinder_unwind(struct sites_unwinder *unwinder, const struct sites_event *event,
			  uint64_t pc[HEAPSNAP_SITE_FRAMES]);
void sites_unwinder_close(struct sites_unwinder *unwinder);

#endif
