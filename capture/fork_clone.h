/* The fork method of live capture: a copy-on-write clone of the frozen target, made inside the
 * target by a `clone` system call run in one of its stopped threads (capture/inject.h). The clone is
 * traced by heapsnap from birth and stopped before it runs one instruction of user code; it has no
 * exit signal, so the target is never told of it; it dies with heapsnap (PTRACE_O_EXITKILL). The
 * target runs again as soon as the clone exists, and its memory is copied from the clone, whose
 * pages are the target's as they were at the clone. Then the clone is killed and reaped, by
 * heapsnap as its tracer and by the target (a second, short stop of one thread running `wait4`),
 * so that the target keeps no zombie. "heapsnap" here is the process that calls these functions:
 * capture/fork_keeper.h runs them in a process of their own, which outlives a killed heapsnap.
 *
 * HEAPSNAP_TEST_CLONE_HOLD_MS=N (tests only) holds the thread that ran the clone N ms at the end of
 * the system call, its registers still set for it, so that a test can kill heapsnap there. */
#ifndef HEAPSNAP_FORK_CLONE_H
#define HEAPSNAP_FORK_CLONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "capture/freeze.h"
#include "capture/proc.h"
#include "capture/process_memory.h"
#include "common/error.h"

/* Why a clone of pid would not be safe, written into `reason` (returns 0 when it would be). A
 * seccomp filter may kill a process for a `clone`; under strict overcommit the clone's commit
 * charge could make the target's own allocations fail; a stopped process must not be run. */
int fork_clone_unsafe(pid_t pid, char *reason, size_t size);

/* Adds to `special` the mappings of pid a clone does not see as pid does: not inherited
 * (MADV_DONTFORK, VmFlags "dc") or zeroed in the clone (MADV_WIPEONFORK, "wf"). */
int fork_clone_special_mappings(pid_t pid, struct range_list *special, struct hs_error *err);

struct fork_clone {
	pid_t target;
	pid_t child;		 /* 0: none */
	uint64_t syscall_address; /* the `syscall` instruction used, kept for the reaping */
	bool killed;		  /* fork_clone_kill ran */
};

/* Makes the clone of `frozen` (every thread stopped, registers saved), running a `clone` system
 * call at syscall_address (inject_find_syscall): on success clone->child is
 * a stopped process with the target's memory. On failure the target is as it was (still frozen)
 * and the error says why (a failed clone names its errno); a clone made but unfit is left in
 * clone->child for fork_clone_remove, which the caller calls in every case once the target runs. */
int fork_clone_make(struct frozen_process *frozen, uint64_t syscall_address,
		    struct fork_clone *clone, struct hs_error *err);

/* Kills the clone and reaps it as its tracer, the target running and not stopped: the longer part
 * of the removal (the kernel frees the clone's page tables). fork_clone_remove then takes the
 * zombie from the target. */
int fork_clone_kill(struct fork_clone *clone, struct hs_error *err);

/* Kills and reaps the clone (fork_clone_kill, if not done), the target running: heapsnap reaps it as its tracer, then one thread
 * of the target is stopped for as long as a `wait4` takes, which removes the zombie the target
 * would otherwise keep. pause_ns: that second stop. Safe to call when there is no clone. */
int fork_clone_remove(struct fork_clone *clone, uint64_t *pause_ns, struct hs_error *err);

#endif
