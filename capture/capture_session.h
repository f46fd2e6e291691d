/* One capture of a live process, inside capture/: the session holds what a capture holds (the
 * target's memory and mappings, the plan, the frozen threads, the copy, the image being built)
 * and frees it in one place; a method (struct capture_method) takes the memory one way. Two
 * methods exist: fork (method_fork.c: a clone of the target, read once it runs again) and freeze
 * (method_freeze.c: a copy made while every thread is stopped). capture_process (capture.c) runs
 * the steps in order and makes the one fallback, from fork to freeze, where a fork step answers
 * HS_ERR_UNSUPPORTED. */
#ifndef HEAPSNAP_CAPTURE_SESSION_H
#define HEAPSNAP_CAPTURE_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "capture/capture.h"
#include "capture/capture_plan.h"
#include "capture/freeze.h"
#include "capture/proc.h"
#include "capture/process_memory.h"
#include "common/error.h"
#include "formats/core_image.h"
#include "formats/snapshot.h"
#include "formats/snapshot_notes.h"

struct capture_method;

struct capture_session {
	pid_t pid;
	const struct capture_options *options;
	struct capture_result *result;
	struct snapshot_info info;
	struct process_memory memory; /* the target's */
	struct proc_maps maps;
	struct capture_plan plan;
	bool planned;		/* the plan is made for the memory taken */
	struct range_list absent; /* what could not be read, recorded as absent */
	struct frozen_process frozen;
	struct copy_buffer buffer;
	struct core_image image;
	/* the method that stopped the target (it lets it go again), and the one whose copy is
	   written: the same, but when the fork method's clone fails while the target is held */
	const struct capture_method *stopper, *taker;
	void *state[2]; /* each method's own, by method_index */
	/* when each step ended (monotonic ns), for the phases of capture_result */
	uint64_t pause_start, frozen_at, planned_at, copied_at, pause_end;
	uint64_t read_before_freeze; /* memory.bytes_read when the target was stopped */
};

/* A way to take a stopped process's memory. Each step returns 0, or -1 with `err` set;
 * HS_ERR_UNSUPPORTED from prepare or take means "not by this method here" (err says why). */
struct capture_method {
	const char *name;	 /* "fork", "freeze": the snapshot's capture method */
	enum capture_method_kind kind;
	size_t index;		 /* in capture_session.state */
	/* while the target runs: what the method needs before the stop */
	int (*prepare)(struct capture_session *session, struct hs_error *err);
	/* stops every thread and reads their registers into session->frozen */
	int (*stop)(struct capture_session *session, struct hs_error *err);
	/* whether the plan is made once the target runs again, not while it is stopped */
	bool (*plans_later)(const struct capture_session *session);
	/* while stopped, the plan made: takes the memory (copies it, or makes the clone) */
	int (*take)(struct capture_session *session, struct hs_error *err);
	/* lets every thread go; `taken` says whether the take succeeded */
	int (*resume)(struct capture_session *session, bool taken, struct hs_error *err);
	/* the target running, called on the method that stopped it: the rest of the take (the
	   clone read; `taken` says whether the take succeeded); may be NULL */
	int (*finish)(struct capture_session *session, bool taken, struct hs_error *err);
	/* a byte source failed during the write (HS_ERR_FAULT): copies what it was to give, the
	   unreadable pages recorded as absent; may be NULL */
	int (*recopy)(struct capture_session *session, struct hs_error *err);
	/* after the write (written says whether it succeeded): what the method still holds let
	   go; may be NULL */
	void (*written)(struct capture_session *session, bool ok);
	/* frees the method's state */
	void (*free)(struct capture_session *session);
};

extern const struct capture_method capture_method_fork, capture_method_freeze;

/* Reads the mappings again (the target stopped) unless already read, and plans the copy from
 * `memory` unless already planned. */
int capture_session_plan(struct capture_session *session, struct process_memory *memory,
			 struct hs_error *err);

#endif
