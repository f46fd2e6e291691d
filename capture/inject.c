/* System calls run in another process's stopped thread (see inject.h). */
#include "inject.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>

#include "capture/process_memory.h"
#include "common/clock.h"

#define SCAN_CHUNK_BYTES (64u << 10)
#define STEP_TIMEOUT_NS (5000ull * 1000000ull)
#define USER_CODE_SEGMENT_64 0x33 /* %cs of a 64-bit user thread on x86-64 Linux */

/* Looks for 0f 05 in one executable mapping; 0 when found. */
static int find_in_mapping(struct process_memory *memory, const struct proc_mapping *mapping,
			   uint64_t *address)
{
	uint8_t *chunk = malloc(SCAN_CHUNK_BYTES);
	if (chunk == NULL)
		return -1;
	int found = -1;
	for (uint64_t at = mapping->start; at < mapping->end && found != 0;) {
		uint64_t size = mapping->end - at < SCAN_CHUNK_BYTES ? mapping->end - at
								    : SCAN_CHUNK_BYTES;
		struct range_list absent = {0};
		struct hs_error ignored;
		int read = process_memory_read(memory, at, chunk, size, &absent, &ignored);
		bool whole = read == 0 && absent.count == 0;
		range_list_free(&absent);
		if (!whole)
			break;
		for (uint64_t i = 0; i + 1 < size; i++)
			if (chunk[i] == 0x0f && chunk[i + 1] == 0x05) {
				*address = at + i;
				found = 0;
				break;
			}
		/* step back one byte so that a pair split across two chunks is seen */
		at += size > 1 && at + size < mapping->end ? size - 1 : size;
	}
	free(chunk);
	return found;
}

int inject_find_syscall(pid_t pid, const struct proc_maps *maps, uint64_t *address,
			struct hs_error *err)
{
	struct process_memory memory;
	if (process_memory_open(&memory, pid, err) != 0)
		return -1;
	int found = -1;
	/* libc's code first (its system call wrappers), then any other executable mapping */
	for (int pass = 0; pass < 2 && found != 0; pass++)
		for (size_t i = 0; i < maps->count && found != 0; i++) {
			const struct proc_mapping *mapping = &maps->mappings[i];
			bool is_libc = strstr(mapping->path, "/libc.so") != NULL ||
				       strstr(mapping->path, "/libc-") != NULL;
			if (!mapping->executable || !mapping->readable || is_libc != (pass == 0) ||
			    strcmp(mapping->path, "[vsyscall]") == 0)
				continue;
			found = find_in_mapping(&memory, mapping, address);
		}
	process_memory_close(&memory);
	if (found != 0)
		return hs_error_set(err, "no `syscall` instruction found in the executable code of "
					 "pid %d",
				    (int)pid);
	return 0;
}

int inject_wait_for_stop(pid_t tid, int *status)
{
	uint64_t deadline = monotonic_ns() + STEP_TIMEOUT_NS;
	for (unsigned spins = 0;; spins++) {
		pid_t got = waitpid(tid, status, __WALL | WNOHANG);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return 0;
		if (got == tid)
			return WIFSTOPPED(*status) ? 1 : 0;
		if (monotonic_ns() > deadline)
			return -1;
		/* the stop usually comes within microseconds: poll fast at first */
		struct timespec pause = {0, spins < 100 ? 2000 : 100000};
		nanosleep(&pause, NULL);
	}
}

int inject_syscall(struct frozen_thread *thread, uint64_t syscall_address,
		   struct injected_syscall *call, struct hs_error *err)
{
	pid_t tid = thread->tid;
	call->new_task = 0;
	call->result = -ENOSYS;
	struct user_regs_struct saved, regs;
	if (ptrace(PTRACE_GETREGS, tid, 0, &saved) != 0)
		return hs_error_set_errno(err, errno, "cannot read the registers of thread %d",
					  (int)tid);
	if (saved.cs != USER_CODE_SEGMENT_64)
		return hs_error_set(err, "thread %d runs 32-bit code; a system call cannot be run in "
					 "it",
				    (int)tid);
	/* every signal blocked while the thread runs our call: one it dequeued meanwhile would have
	 * to be held by heapsnap, and lost if heapsnap died; blocked, it waits in the kernel (a
	 * process-wide one for another thread, or for this one once its mask is back) */
	uint64_t saved_mask, all_blocked = ~(uint64_t)0;
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof saved_mask, &saved_mask) != 0 ||
	    ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof all_blocked, &all_blocked) != 0)
		return hs_error_set_errno(err, errno, "cannot block the signals of thread %d",
					  (int)tid);
	regs = saved;
	regs.rip = syscall_address;
	regs.rax = (unsigned long long)call->number;
	/* not inside a system call: no restart logic may touch these registers on resume */
	regs.orig_rax = (unsigned long long)-1;
	regs.rdi = call->arguments[0];
	regs.rsi = call->arguments[1];
	regs.rdx = call->arguments[2];
	regs.r10 = call->arguments[3];
	regs.r8 = call->arguments[4];
	regs.r9 = call->arguments[5];
	int result = -1;
	if (ptrace(PTRACE_SETREGS, tid, 0, &regs) != 0) {
		hs_error_set_errno(err, errno, "cannot set the registers of thread %d", (int)tid);
		ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof saved_mask, &saved_mask);
		return -1;
	}
	for (;;) {
		if (ptrace(PTRACE_SINGLESTEP, tid, 0, 0) != 0) {
			hs_error_set_errno(err, errno, "cannot step thread %d", (int)tid);
			break;
		}
		int status = 0;
		int stopped = inject_wait_for_stop(tid, &status);
		if (stopped == 0) {
			thread->seized = false;
			thread->stopped = false;
			return hs_error_set(err, "thread %d exited while running a system call",
					    (int)tid);
		}
		if (stopped < 0) {
			/* still running (blocked in the call): stop it to put its registers back */
			hs_error_set(err, "a system call in thread %d did not return within %llu ms",
				     (int)tid, STEP_TIMEOUT_NS / 1000000ull);
			if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0 ||
			    inject_wait_for_stop(tid, &status) != 1)
				return -1;
			break;
		}
		int event = status >> 16;
		if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK ||
		    event == PTRACE_EVENT_VFORK) {
			unsigned long message = 0;
			if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &message) == 0)
				call->new_task = (pid_t)message;
			continue;
		}
		if (event != 0)
			continue; /* a group stop or an interrupt: not ours to keep; step on */
		struct user_regs_struct now;
		if (WSTOPSIG(status) == SIGTRAP && ptrace(PTRACE_GETREGS, tid, 0, &now) == 0 &&
		    now.rip == syscall_address + 2) {
			call->result = (long)now.rax;
			result = 0;
			if (call->hold_ms > 0) {
				struct timespec hold = {call->hold_ms / 1000,
							(long)(call->hold_ms % 1000) * 1000000L};
				while (nanosleep(&hold, &hold) != 0 && errno == EINTR)
					;
			}
			break;
		}
		/* SIGKILL aside, a signal cannot reach the thread now (all are blocked); should one
		 * be reported all the same, it is kept for the detach */
		if (thread->pending_signal == 0 && WSTOPSIG(status) != SIGTRAP) {
			thread->pending_signal = WSTOPSIG(status);
			continue;
		}
		hs_error_set(err, "thread %d received signal %d while running a system call, with "
				  "signal %d already held for it",
			     (int)tid, WSTOPSIG(status), thread->pending_signal);
		break;
	}
	if (ptrace(PTRACE_SETREGS, tid, 0, &saved) != 0 ||
	    ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof saved_mask, &saved_mask) != 0)
		return hs_error_set_errno(err, errno,
					  "cannot restore the registers and signal mask of thread %d "
					  "after a system call",
					  (int)tid);
	return result;
}
