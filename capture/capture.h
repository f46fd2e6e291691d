/* `heapsnap capture`: freeze a live process, copy its memory, registers and module list, let it go,
 * then compress and write the snapshot. By the freeze method the process is stopped while memory is
 * copied; by the fork method only while a copy-on-write clone of it is made, and the memory is
 * copied from the clone. Compression and writing happen after it runs again. */
#ifndef HEAPSNAP_CAPTURE_H
#define HEAPSNAP_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "formats/seekable.h"

/* How the target's memory is taken (see capture/fork_clone.h for the fork). */
enum capture_method_kind {
	CAPTURE_METHOD_DEFAULT, /* fork */
	CAPTURE_METHOD_FORK,	/* fork; freeze when the clone fails or is not safe */
	CAPTURE_METHOD_FREEZE,	/* copy everything while every thread is stopped */
};

/* Work done alongside a capture (recording allocation sites: capture/sites_recorder.h). */
struct core_image;
struct snapshot_info;
struct capture_hooks {
	void *arg;
	/* every thread of the target stopped: what the capture takes is the process of this
	   moment; called once, before the target runs again */
	void (*stopped)(void *arg);
	/* the snapshot being built: notes to add and info keys to fill (before the info note is
	   written); may run twice when the write starts over */
	int (*add_notes)(void *arg, struct snapshot_info *info, struct core_image *image,
			 struct hs_error *err);
};

struct capture_options {
	/* NULL: heapsnap-PID-YYYYmmddTHHMMSS.snap in `default_directory`, numbered -2, -3... when
	 * taken; never replacing a file */
	const char *output_path;
	const char *default_directory; /* NULL: the working directory */
	struct seekable_options compression;
	/* read memory through /proc/PID/mem instead of process_vm_readv (the fallback path; for
	 * hosts where process_vm_readv misbehaves, and for testing that path) */
	bool use_proc_mem;
	/* copy everything while the target is frozen, without the soft-dirty pre-copy */
	bool no_precopy;
	enum capture_method_kind method;
	const struct capture_hooks *hooks; /* NULL: none */
};

/* Where a capture's time went (for --verbose and the benchmarks). */
enum capture_phase {
	CAPTURE_PHASE_PREPARE, /* planning and populating the copy buffer, target running */
	CAPTURE_PHASE_PRECOPY, /* copying while the target runs (with soft-dirty tracking) */
	CAPTURE_PHASE_FREEZE,  /* stopping every thread, reading registers */
	CAPTURE_PHASE_PLAN,    /* reading the mappings again and planning, frozen */
	CAPTURE_PHASE_COPY,    /* copying memory, frozen */
	CAPTURE_PHASE_THAW,    /* letting every thread go */
	CAPTURE_PHASE_WRITE,   /* compressing and writing, target running */
	CAPTURE_PHASE_CLONE,   /* fork: making the clone, frozen (part of PLAN..COPY's place) */
	CAPTURE_PHASE_CLONE_COPY, /* fork: planning from the clone (its page map), copying the
				     little not read as it is written; target running */
	CAPTURE_PHASE_REAP,	  /* fork: waiting, after the write, for the clone's removal */
	CAPTURE_PHASES
};

struct capture_result {
	char path[4096];
	uint64_t memory_bytes; /* bytes of memory stored */
	uint64_t file_bytes;
	size_t threads, regions, modules;
	uint64_t pause_ns;
	uint64_t absent_bytes; /* unreadable at capture */
	bool precopied;		    /* memory was pre-copied while the target ran */
	uint64_t frozen_copy_bytes; /* bytes copied while the target was frozen */
	uint64_t phase_ns[CAPTURE_PHASES];
	enum capture_method_kind method; /* the one that ran: CAPTURE_METHOD_FORK or _FREEZE */
	/* why the fork method was not used though the options allowed it ("" when it was, or when
	   freeze was asked for): a front end prints it */
	char fork_declined[HS_ERROR_MESSAGE_MAX];
	uint64_t reap_pause_ns; /* fork: the second, short stop of one thread to reap the clone */
	/* fork: why the clone could not be reaped (the target keeps a zombie); "" when it was */
	char reap_failed[HS_ERROR_MESSAGE_MAX];
};

int capture_process(pid_t pid, const struct capture_options *options, struct capture_result *result,
		    struct hs_error *err);

/* The in-process hook's capture (capture/hook/hook.c), run in a fork of the process made from its
 * signal handler: the fork's memory is the process's, as it was at the fork, and each thread saved
 * its registers before it. Writes what `heapsnap capture` writes (source "hook"), compressing in
 * the calling thread: the fork has no other thread and must take no lock another may hold. */
struct frozen_process;
struct address_range;
struct heapsnap_site_note;
struct forked_self {
	pid_t pid; /* the process the snapshot is of: the fork's parent */
	const struct frozen_process *threads;
	uint64_t capture_start_ns, pause_ns;
	const struct address_range *exclude; /* the hook's own memory in the fork */
	size_t exclude_count;
	/* allocation sites (HEAPSNAP_SITES=1), sorted by address; NULL when not recorded */
	const struct heapsnap_site_note *sites;
	size_t site_count;
};
int capture_forked_self(const struct forked_self *self, const struct capture_options *options,
			struct capture_result *result, struct hs_error *err);

/* heapsnap-PID-YYYYmmddTHHMMSS.snap (UTC) in `directory` (NULL or "": the working directory): the
 * first choice; the writer numbers it when the name is taken. */
void capture_default_path(pid_t pid, uint64_t when_ns, const char *directory, char *out,
			  size_t out_size);

/* Fills the parts of the info note every writer shares: tool version, kernel release, boot id. */
struct snapshot_info;
void capture_fill_host_info(struct snapshot_info *info, const char *source);

#endif
