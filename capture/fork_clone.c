/* Making, and getting rid of, the copy-on-write clone of a frozen target (see fork_clone.h). */
#include "fork_clone.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture/inject.h"
#include "common/clock.h"

#define CLONE_TRAP_STACK 0x100ull /* below vm.mmap_min_addr: never mapped */

int fork_clone_unsafe(pid_t pid, char *reason, size_t size)
{
	long long seccomp = proc_status_number(pid, "Seccomp");
	if (seccomp > 0) {
		snprintf(reason, size,
			 "pid %d runs under a seccomp filter, which may kill it for a clone", (int)pid);
		return -1;
	}
	char *text;
	size_t length;
	if (proc_read_file("/proc/sys/vm/overcommit_memory", &text, &length) == 0) {
		bool strict = atoi(text) == 2;
		free(text);
		if (strict) {
			snprintf(reason, size,
				 "vm.overcommit_memory is 2 (strict): the clone's commit charge "
				 "could make pid %d's own allocations fail",
				 (int)pid);
			return -1;
		}
	}
	struct proc_stat stat;
	if (proc_read_stat(pid, pid, &stat) == 0 && (stat.state == 'T' || stat.state == 't')) {
		snprintf(reason, size, "pid %d is stopped (job control or a debugger)", (int)pid);
		return -1;
	}
#if !defined(__x86_64__)
	snprintf(reason, size, "the fork method is implemented for x86-64 only");
	return -1;
#endif
	return 0;
}

/* What fork_clone_special_mappings gathers. */
struct special_search {
	pid_t pid;
	struct range_list *special;
};

static int note_special_mapping(void *context, const struct proc_mapping *mapping,
				const char *flags, struct hs_error *err)
{
	struct special_search *search = context;
	if ((proc_has_vmflag(flags, "dc") || proc_has_vmflag(flags, "wf")) &&
	    range_list_add(search->special, mapping->start, mapping->end) != 0)
		return hs_error_nomem(err, "reading /proc/%d/smaps", (int)search->pid);
	return 0;
}

int fork_clone_special_mappings(pid_t pid, struct range_list *special, struct hs_error *err)
{
	struct special_search search = {.pid = pid, .special = special};
	return proc_read_smaps_flags(pid, note_special_mapping, &search, err);
}

/* The thread to run the clone in: stopped, registers read, no signal held for it; the leader
 * when it qualifies. */
static struct frozen_thread *choose_thread(struct frozen_process *frozen)
{
	struct frozen_thread *chosen = NULL;
	for (size_t i = 0; i < frozen->count; i++) {
		struct frozen_thread *thread = &frozen->threads[i];
		if (!thread->seized || !thread->stopped || !thread->has_registers ||
		    thread->pending_signal != 0)
			continue;
		if (chosen == NULL || thread->tid == frozen->pid)
			chosen = thread;
	}
	return chosen;
}

/* Kills a clone and reaps it as its tracer; true when it is reaped. */
static bool kill_and_reap(pid_t child)
{
	kill(child, SIGKILL);
	for (;;) {
		int status;
		pid_t got = waitpid(child, &status, __WALL);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return errno == ECHILD; /* not ours (any more): nothing to reap */
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return true;
	}
}

int fork_clone_make(struct frozen_process *frozen, uint64_t syscall_address,
		    struct fork_clone *clone, struct hs_error *err)
{
	memset(clone, 0, sizeof *clone);
	clone->target = frozen->pid;
	clone->syscall_address = syscall_address;
	struct frozen_thread *thread = choose_thread(frozen);
	if (thread == NULL)
		return hs_error_set(err, "no thread of pid %d is stopped in a state fit to run a "
					 "clone",
				    (int)frozen->pid);
	/* PTRACE_O_TRACECLONE: the clone is attached to heapsnap before it runs, and stops first.
	 * Not PTRACE_O_EXITKILL on the target's thread: if heapsnap died now it would kill the
	 * target; the clone gets it as soon as it is seen. */
	if (ptrace(PTRACE_SETOPTIONS, thread->tid, 0, (void *)(long)PTRACE_O_TRACECLONE) != 0)
		return hs_error_set_errno(err, errno, "cannot set ptrace options on thread %d",
					  (int)thread->tid);
	/* flags 0: a new process (no CLONE_VM, CLONE_THREAD, CLONE_FILES...) with copy-on-write
	 * memory, and exit signal 0 (no SIGCHLD in the low byte): its parent is never signalled.
	 * The clone's stack pointer is set in the first page, which nothing maps: the clone never
	 * runs, but should heapsnap die between its birth and PTRACE_O_EXITKILL (microseconds), the
	 * detached clone faults at its first use of the stack (a `ret` a few instructions after the
	 * system call, in libc) instead of running on in the target's code. */
	struct injected_syscall call = {.number = SYS_clone,
					.arguments = {0, CLONE_TRAP_STACK, 0, 0, 0, 0}};
	const char *hold = getenv("HEAPSNAP_TEST_CLONE_HOLD_MS");
	if (hold != NULL)
		call.hold_ms = (unsigned)atoi(hold);
	int injected = inject_syscall(thread, clone->syscall_address, &call, err);
	ptrace(PTRACE_SETOPTIONS, thread->tid, 0, 0);
	if (call.new_task > 0) {
		clone->child = call.new_task;
		int status;
		if (inject_wait_for_stop(clone->child, &status) != 1 ||
		    ptrace(PTRACE_SETOPTIONS, clone->child, 0, (void *)(long)PTRACE_O_EXITKILL) != 0)
			/* clone->child stays set: fork_clone_remove kills and reaps it */
			return hs_error_set_errno(err, errno, "the clone of pid %d did not stop",
						  (int)frozen->pid);
	}
	if (injected != 0)
		return -1;
	if (call.result < 0)
		return hs_error_set_errno(err, (int)-call.result, "clone in pid %d failed",
					  (int)frozen->pid);
	if (clone->child != (pid_t)call.result)
		return hs_error_set(err, "the clone of pid %d (pid %ld) was not attached to heapsnap",
				    (int)frozen->pid, call.result);
	return 0;
}

/* True while `child` is a zombie whose parent is `parent`. */
static bool is_zombie_of(pid_t child, pid_t parent)
{
	struct proc_stat stat;
	return proc_read_stat(child, child, &stat) == 0 && stat.state == 'Z' && stat.ppid == parent;
}

int fork_clone_kill(struct fork_clone *clone, struct hs_error *err)
{
	if (clone->child <= 0 || clone->killed)
		return 0;
	clone->killed = true;
	if (!kill_and_reap(clone->child))
		return hs_error_set(err, "cannot reap the clone (pid %d) of pid %d",
				    (int)clone->child, (int)clone->target);
	return 0;
}

int fork_clone_remove(struct fork_clone *clone, uint64_t *pause_ns, struct hs_error *err)
{
	*pause_ns = 0;
	if (clone->child <= 0)
		return 0;
	if (fork_clone_kill(clone, err) != 0) {
		clone->child = 0;
		return -1;
	}
	pid_t child = clone->child;
	clone->child = 0;
	if (!is_zombie_of(child, clone->target))
		return 0;
	uint64_t start = monotonic_ns();
	struct frozen_process one;
	if (freeze_one_thread(clone->target, &one, err) != 0) {
		frozen_process_free(&one);
		return -1;
	}
	struct injected_syscall call = {.number = SYS_wait4,
					.arguments = {(uint64_t)child, 0, __WALL | WNOHANG, 0}};
	int result = inject_syscall(&one.threads[0], clone->syscall_address, &call, err);
	thaw_process(&one);
	*pause_ns = monotonic_ns() - start;
	frozen_process_free(&one);
	if (result == 0 && call.result != child && is_zombie_of(child, clone->target))
		return hs_error_set(err, "wait4 in pid %d did not reap its clone (pid %d): %s",
				    (int)clone->target, (int)child,
				    call.result < 0 ? strerror((int)-call.result) : "no child reaped");
	return result;
}
