/* Running one system call inside a stopped thread of another process, through ptrace, without
 * writing one byte of its memory: the thread's registers are pointed at a `syscall` instruction
 * found in the process's own executable code, the thread is stepped over that one instruction, and
 * its registers are put back exactly as they were. The fork capture uses it to make the `clone` of
 * the target, and to reap that clone afterwards with `wait4`. x86-64 only. */
#ifndef HEAPSNAP_INJECT_H
#define HEAPSNAP_INJECT_H

#include <stdint.h>
#include <sys/types.h>

#include "capture/freeze.h"
#include "capture/proc.h"
#include "common/error.h"

/* Finds a `syscall` instruction (bytes 0f 05) in an executable mapping of pid, libc's first. */
int inject_find_syscall(pid_t pid, const struct proc_maps *maps, uint64_t *address,
			struct hs_error *err);

struct injected_syscall {
	long number;
	uint64_t arguments[6];
	long result;	 /* what the system call returned: >= 0, or -errno */
	unsigned hold_ms; /* tests: the thread is held this long at the call's end, before its
			     registers are put back (the unsafe moment, made long) */
	pid_t new_task;	 /* a task it made that ptrace attached to us (PTRACE_O_TRACECLONE set on
			    the thread), 0 if none */
};

/* Waits for the next stop of `tid`, a task we trace, for at most 5 s: 1 when stopped (its wait
 * status in *status), 0 when it is gone, -1 on timeout. */
int inject_wait_for_stop(pid_t tid, int *status);

/* Runs `call` in `thread`, which is seized by us and stopped. Its registers are restored before
 * returning, on failure too whenever the thread still exists; it stays stopped. Its signals are
 * blocked meanwhile (and its mask then restored), so none is taken from the kernel's queues.
 * The one unsafe moment: should the caller die (SIGKILL) while the call runs, the kernel lets the
 * thread go on with the registers set for the call, after the `syscall` instruction (hence
 * capture/fork_keeper.h). Returns
 * -1 only when the system call could not be run or its end not seen; a system call that ran and
 * failed returns 0 with call->result < 0. */
int inject_syscall(struct frozen_thread *thread, uint64_t syscall_address,
		   struct injected_syscall *call, struct hs_error *err);

#endif
