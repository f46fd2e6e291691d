/* Recording where a live process allocates, from outside, for `heapsnap capture --sites`: BPF
 * uprobes on its allocator (capture/bpf/sites.bpf.c) keep its live allocations in a kernel map
 * and send a copy of each allocating stack, unwound here (sites_unwind.h); at the capture, the
 * allocations still live with their stacks become the snapshot's SITES note, in the hook's form. */
#ifndef HEAPSNAP_SITES_RECORDER_H
#define HEAPSNAP_SITES_RECORDER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "capture/capture.h"
#include "common/error.h"

struct sites_recorder_options {
	uint64_t sample_bytes; /* one allocation per that many bytes on average; 0: every one */
	uint32_t max_live;     /* entries of the kernel's live-allocation map */
};

#define SITES_DEFAULT_MAX_LIVE 262144

/* What a window recorded, for the snapshot's info note and the front end's lines. */
struct sites_recorder_stats {
	char allocator[32];	    /* "glibc", "jemalloc", ... */
	char allocator_path[4096];  /* the file probed */
	uint64_t window_ns;	    /* from the probes' attachment to the target's stop */
	uint64_t allocations;	    /* allocator calls seen */
	uint64_t sampled;	    /* of them, recorded (all when not sampling) */
	uint64_t no_stack;	    /* sampled, but no stack: the ring buffer was full */
	uint64_t map_full;	    /* sampled, but the live map was full */
	uint64_t unwound_none;	    /* live at the stop, but the stack could not be unwound */
	uint64_t live;		    /* live at the stop with a site: the SITES note's entries */
};

struct sites_recorder;

/* Loads the BPF programs and attaches them to `pid`'s allocator. Errors say why BPF is refused
 * (HS_ERR_PERMISSION, HS_ERR_UNSUPPORTED) and name the alternative, the in-process hook. */
struct sites_recorder *sites_recorder_start(pid_t pid, const struct sites_recorder_options *options,
					    struct hs_error *err);
/* Unwinds the stacks sent, waiting up to timeout_ms for one; HS_ERR_GONE once the target has
 * exited (stats then say what was recorded). */
int sites_recorder_poll(struct sites_recorder *recorder, int timeout_ms, struct hs_error *err);
/* Hooks for capture_process: the recording stops when the target is stopped, and the
 * allocations live then, with their sites, are added to the snapshot. */
void sites_recorder_capture_hooks(struct sites_recorder *recorder, struct capture_hooks *hooks);
const struct sites_recorder_stats *sites_recorder_stats(struct sites_recorder *recorder);
void sites_recorder_free(struct sites_recorder *recorder);

#endif
