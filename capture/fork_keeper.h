/* The keeper: the process that does every ptrace step of a capture by fork (freeze, clone, thaw,
 * kill and reap the clone) on heapsnap's behalf, so that killing heapsnap, even with SIGKILL, at
 * any moment harms neither the target nor leaves it a child.
 *
 * Why a second process: the clone system call runs in a thread of the target whose registers
 * heapsnap has set for it. Were heapsnap, the tracer, killed then, the kernel would let that thread
 * go on with those registers (and every signal blocked), and a clone killed with its tracer would
 * stay a zombie child of the target. The keeper is a child of heapsnap in a session of its own (a
 * signal to heapsnap's process group, a terminal's ^C, `timeout`, do not reach it), with every
 * signal but SIGKILL blocked; heapsnap drives it over a pipe. When the pipe closes (heapsnap done,
 * failed or killed) the keeper finishes the step it is in, lets the target run, kills and reaps the
 * clone, and exits. Only a SIGKILL aimed at the keeper itself, during the clone system call, is
 * left unsafe. */
#ifndef HEAPSNAP_FORK_KEEPER_H
#define HEAPSNAP_FORK_KEEPER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "capture/freeze.h"
#include "common/error.h"

struct fork_keeper {
	pid_t pid;	 /* the keeper; 0 when none */
	pid_t target;
	int command_fd;	 /* heapsnap -> keeper */
	int reply_fd;	 /* keeper -> heapsnap */
	bool released;	 /* fork_keeper_release was called */
};

/* Starts the keeper for `target` (while heapsnap has one thread: the keeper is a fork of it). It
 * finds the `syscall` instruction the clone will use while the target still runs. */
int fork_keeper_start(pid_t target, struct fork_keeper *keeper, struct hs_error *err);

/* Every thread of the target stopped by the keeper; `frozen` receives their registers and names
 * (threads heapsnap does not trace: thaw_process on it does nothing). */
int fork_keeper_freeze(struct fork_keeper *keeper, struct frozen_process *frozen,
		       struct hs_error *err);

/* The clone made, the target still frozen. On failure the target stays frozen, so that it can be
 * copied by freeze; the error says why. Every function here fails with HS_ERR_HOLD_LOST when the
 * keeper has ended unexpectedly: the target was let go, and there is nothing left to copy. */
int fork_keeper_clone(struct fork_keeper *keeper, pid_t *child, struct hs_error *err);

/* The target runs again. */
int fork_keeper_thaw(struct fork_keeper *keeper, struct hs_error *err);

/* Tells the keeper to kill the clone and reap it as its tracer (fork_clone_kill), without
 * waiting: the kernel frees the clone while heapsnap compresses. */
void fork_keeper_release(struct fork_keeper *keeper);

/* Removes the clone's zombie from the target (fork_clone_remove: a short stop of one thread, best
 * made when heapsnap no longer competes for the CPU) and ends the keeper. pause_ns: that stop. */
int fork_keeper_finish(struct fork_keeper *keeper, uint64_t *pause_ns, struct hs_error *err);

/* Ends the keeper whatever it holds (it thaws the target and removes the clone itself) and waits
 * for it. Safe to call twice, and when fork_keeper_start failed. */
void fork_keeper_stop(struct fork_keeper *keeper);

#endif
