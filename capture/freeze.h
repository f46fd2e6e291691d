/* Stopping every thread of a live process with ptrace and letting it go again. PTRACE_SEIZE +
 * PTRACE_INTERRUPT leave no trace in the process (no SIGSTOP is sent, group-stop state is kept), and
 * if heapsnap dies while the process is frozen the kernel detaches it and the process runs on. */
#ifndef HEAPSNAP_FREEZE_H
#define HEAPSNAP_FREEZE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/user.h>

#include "common/error.h"

struct frozen_thread {
	pid_t tid;
	bool seized;  /* attached: must be detached */
	bool stopped; /* observed in a ptrace stop */
	int pending_signal; /* a signal we intercepted, given back at detach */
	struct user_regs_struct registers;
	struct user_fpregs_struct fp_registers;
	bool has_registers, has_fp_registers;
	char name[16];
};

struct frozen_process {
	pid_t pid;
	struct frozen_thread *threads;
	size_t count, capacity;
};

/* Stops all threads, including those born while we attach; reads their registers and names. On
 * failure every thread already attached is let go again. */
int freeze_process(pid_t pid, struct frozen_process *frozen, struct hs_error *err);

/* Stops one thread of pid only (the leader, or the first other thread that stops), for work that
 * needs one stopped thread while the others run on; thaw_process lets it go. */
int freeze_one_thread(pid_t pid, struct frozen_process *frozen, struct hs_error *err);

/* Whether every thread whose registers were read is still in our stop. A frozen thread cannot
 * leave it but by dying, so false means the process was killed while frozen: what was copied
 * meanwhile may be a dying process's memory. */
bool freeze_still_held(const struct frozen_process *frozen);

/* Lets every thread go; safe to call twice. */
void thaw_process(struct frozen_process *frozen);
void frozen_process_free(struct frozen_process *frozen);

/* Explains why ptrace attach to pid failed with `errnum`, naming the cause and the remedy. */
int explain_attach_failure(pid_t pid, int errnum, struct hs_error *err);

#endif
