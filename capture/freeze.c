/* Freezing and thawing a process with ptrace (see freeze.h). */
#include "freeze.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture/proc.h"
#include "common/array_grow.h"
#include "common/clock.h"

#define STOP_TIMEOUT_MS 5000
#define CAP_SYS_PTRACE_BIT 19

static bool have_cap_sys_ptrace(void)
{
	uint64_t effective;
	return proc_status_mask(0, "CapEff", &effective) &&
	       ((effective >> CAP_SYS_PTRACE_BIT) & 1);
}

static int yama_ptrace_scope(void)
{
	char *text;
	size_t size;
	if (proc_read_file("/proc/sys/kernel/yama/ptrace_scope", &text, &size) != 0)
		return -1;
	int scope = atoi(text);
	free(text);
	return scope;
}

int explain_attach_failure(pid_t pid, int errnum, struct hs_error *err)
{
	if (errnum == ESRCH)
		return hs_error_set_code(err, HS_ERR_GONE,
					 "no process with pid %d (has it exited? check `ps -p %d`)",
					 (int)pid, (int)pid);
	if (errnum != EPERM)
		return hs_error_set_code_errno(err, HS_ERR_PERMISSION, errnum,
					       "cannot attach to pid %d with ptrace", (int)pid);
	long long tracer = proc_status_number(pid, "TracerPid");
	if (tracer > 0) {
		char name[16];
		proc_thread_name((pid_t)tracer, (pid_t)tracer, name);
		if (strncmp(name, "heapsnap", 8) == 0)
			return hs_error_set_code(err, HS_ERR_PERMISSION,
						 "pid %d is being captured by another heapsnap "
						 "(pid %lld, %s); a process has one tracer at a "
						 "time: retry when that capture is done",
						 (int)pid, tracer, name);
		return hs_error_set_code(err, HS_ERR_PERMISSION,
					 "pid %d is already traced by pid %lld (%s); a process "
					 "has one tracer at a time: detach the debugger (gdb: "
					 "`detach`) and retry",
					 (int)pid, tracer, name[0] ? name : "?");
	}
	bool capable = have_cap_sys_ptrace();
	long long uid = proc_status_number(pid, "Uid");
	if (uid >= 0 && uid != (long long)geteuid() && !capable)
		return hs_error_set_code(err, HS_ERR_PERMISSION,
					 "permission denied: pid %d runs as uid %lld and "
					 "heapsnap as uid %d without CAP_SYS_PTRACE; run "
					 "heapsnap as uid %lld, or as root (or with "
					 "CAP_SYS_PTRACE)",
					 (int)pid, uid, (int)geteuid(), uid);
	int scope = yama_ptrace_scope();
	if (scope == 3)
		return hs_error_set_code(err, HS_ERR_PERMISSION,
					 "permission denied: YAMA ptrace_scope is 3, which "
					 "forbids ptrace for everyone until reboot; use the "
					 "in-process hook (LD_PRELOAD=libheapsnap.so) instead");
	if (scope == 2 && !capable)
		return hs_error_set_code(err, HS_ERR_PERMISSION,
					 "permission denied: YAMA ptrace_scope is 2 (only "
					 "CAP_SYS_PTRACE may trace); run heapsnap as root, or "
					 "set `sysctl kernel.yama.ptrace_scope=1`");
	if (scope == 1 && !capable)
		return hs_error_set_code(err, HS_ERR_PERMISSION,
					 "permission denied: YAMA ptrace_scope is 1 (only a "
					 "parent may trace its children) and heapsnap lacks "
					 "CAP_SYS_PTRACE; run it as root, or `sysctl "
					 "kernel.yama.ptrace_scope=0`, or start the target under "
					 "the in-process hook");
	if (!capable)
		return hs_error_set_code(err, HS_ERR_PERMISSION,
					 "permission denied attaching to pid %d: it is not "
					 "dumpable (setuid, file capabilities, or "
					 "prctl(PR_SET_DUMPABLE, 0)) and heapsnap lacks "
					 "CAP_SYS_PTRACE; run heapsnap as root",
					 (int)pid);
	return hs_error_set_code(err, HS_ERR_PERMISSION,
				 "permission denied attaching to pid %d although heapsnap has "
				 "CAP_SYS_PTRACE: a security module (SELinux, AppArmor), a "
				 "seccomp filter or the container's policy forbids ptrace; run "
				 "heapsnap where it is allowed or use the in-process hook",
				 (int)pid);
}

static struct frozen_thread *find_thread(struct frozen_process *frozen, pid_t tid)
{
	for (size_t i = 0; i < frozen->count; i++)
		if (frozen->threads[i].tid == tid)
			return &frozen->threads[i];
	return NULL;
}

static struct frozen_thread *add_thread(struct frozen_process *frozen, pid_t tid)
{
	void *grown = array_grow(frozen->threads, &frozen->capacity, frozen->count,
				 sizeof *frozen->threads, 16);
	if (grown == NULL)
		return NULL;
	frozen->threads = grown;
	struct frozen_thread *thread = &frozen->threads[frozen->count++];
	memset(thread, 0, sizeof *thread);
	thread->tid = tid;
	return thread;
}

static long long now_ms(void)
{
	return (long long)(monotonic_ns() / 1000000u);
}

/* Waits until a seized thread reports a stop. Returns 1 when stopped, 0 when the thread is gone,
 * -1 on timeout. */
static int wait_for_stop(struct frozen_thread *thread)
{
	long long deadline = now_ms() + STOP_TIMEOUT_MS;
	for (;;) {
		int status;
		pid_t got = waitpid(thread->tid, &status, __WALL | WNOHANG);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return 0; /* ECHILD: not ours any more, it exited */
		if (got == 0) {
			if (now_ms() > deadline)
				return -1;
			struct timespec pause = {0, 100000};
			nanosleep(&pause, NULL);
			continue;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			thread->seized = false;
			return 0;
		}
		if (WIFSTOPPED(status)) {
			/* a signal-delivery stop (no ptrace event): the thread took a signal from its
			 * queue as we stopped it. Once reported, the kernel keeps it nowhere: held
			 * until detach, it would be lost if heapsnap were killed meanwhile. So the
			 * thread takes it now (its handler's frame is set up, or the default action
			 * done) and stops again at our interrupt, which the kernel takes before any
			 * other signal. An event stop (our interrupt, a group stop) is the stop. */
			if ((status >> 16) == 0) {
				if (ptrace(PTRACE_CONT, thread->tid, 0, (void *)(long)WSTOPSIG(status)) == 0)
					continue;
				thread->pending_signal = WSTOPSIG(status); /* given back at detach */
			}
			thread->stopped = true;
			return 1;
		}
	}
}

/* Attaches to every thread listed in /proc/PID/task that is not attached yet. Returns the number
 * of threads newly attached, or -1 on error. */
static int seize_new_threads(struct frozen_process *frozen, struct hs_error *err)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)frozen->pid);
	DIR *dir = opendir(path);
	if (dir == NULL) {
		if (errno == ENOENT)
			return hs_error_set_code(err, HS_ERR_GONE,
						 "pid %d exited during capture; no snapshot "
						 "written",
						 (int)frozen->pid);
		return hs_error_set_errno(err, errno, "cannot list %s", path);
	}
	int added = 0;
	struct dirent *entry;
	while ((entry = readdir(dir)) != NULL) {
		pid_t tid = (pid_t)atoi(entry->d_name);
		if (tid <= 0 || find_thread(frozen, tid))
			continue;
		struct proc_stat stat;
		if (proc_read_stat(frozen->pid, tid, &stat) == 0 && stat.state == 'Z')
			continue; /* a zombie thread never stops; it holds no stack worth reading */
		if (ptrace(PTRACE_SEIZE, tid, 0, 0) != 0) {
			int saved = errno;
			if (saved == ESRCH && tid != frozen->pid)
				continue; /* the thread exited meanwhile */
			/* the kernel refuses a thread that is exiting with EPERM; once the leader is
			 * held, permission is not the problem */
			if (saved == EPERM && tid != frozen->pid && find_thread(frozen, frozen->pid))
				continue;
			closedir(dir);
			if (saved == ESRCH && frozen->count > 0)
				return hs_error_set_code(err, HS_ERR_GONE,
							 "pid %d exited during capture; no "
							 "snapshot written",
							 (int)frozen->pid);
			return explain_attach_failure(frozen->pid, saved, err);
		}
		struct frozen_thread *thread = add_thread(frozen, tid);
		if (thread == NULL) {
			ptrace(PTRACE_DETACH, tid, 0, 0);
			closedir(dir);
			return hs_error_nomem(err, "attaching to pid %d", (int)frozen->pid);
		}
		thread->seized = true;
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0 && errno != ESRCH) {
			closedir(dir);
			return hs_error_set_errno(err, errno,
						  "cannot interrupt thread %d of pid %d", (int)tid,
						  (int)frozen->pid);
		}
		added++;
	}
	closedir(dir);
	return added;
}

int freeze_process(pid_t pid, struct frozen_process *frozen, struct hs_error *err)
{
	memset(frozen, 0, sizeof *frozen);
	frozen->pid = pid;
	/* list the threads until a pass finds no new one: threads born while we attach are caught */
	for (;;) {
		int added = seize_new_threads(frozen, err);
		if (added < 0) {
			thaw_process(frozen);
			return -1;
		}
		for (size_t i = 0; i < frozen->count; i++) {
			struct frozen_thread *thread = &frozen->threads[i];
			if (!thread->seized || thread->stopped)
				continue;
			int stopped = wait_for_stop(thread);
			if (stopped < 0) {
				hs_error_set(err,
					     "thread %d of pid %d did not stop within %d ms "
					     "(stuck in the kernel, state D?); retry later",
					     (int)thread->tid, (int)pid, STOP_TIMEOUT_MS);
				thaw_process(frozen);
				return -1;
			}
		}
		if (added == 0)
			break;
	}
	/* no thread stopped: every one exited under us (a zombie leader alone does not count) */
	size_t stopped = 0;
	for (size_t i = 0; i < frozen->count; i++)
		stopped += frozen->threads[i].stopped;
	if (stopped == 0) {
		thaw_process(frozen);
		return hs_error_set_code(err, HS_ERR_GONE,
					 "pid %d exited during capture; no snapshot written",
					 (int)pid);
	}
	for (size_t i = 0; i < frozen->count; i++) {
		struct frozen_thread *thread = &frozen->threads[i];
		if (!thread->stopped)
			continue;
		thread->has_registers =
			ptrace(PTRACE_GETREGS, thread->tid, 0, &thread->registers) == 0;
		thread->has_fp_registers =
			ptrace(PTRACE_GETFPREGS, thread->tid, 0, &thread->fp_registers) == 0;
		proc_thread_name(pid, thread->tid, thread->name);
	}
	return 0;
}

int freeze_one_thread(pid_t pid, struct frozen_process *frozen, struct hs_error *err)
{
	memset(frozen, 0, sizeof *frozen);
	frozen->pid = pid;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *dir = opendir(path);
	if (dir == NULL)
		return hs_error_set_code(err, HS_ERR_GONE, "pid %d exited during capture",
					 (int)pid);
	/* the leader first: it is listed first, and it is the thread most likely to live on */
	struct dirent *entry;
	while ((entry = readdir(dir)) != NULL) {
		pid_t tid = (pid_t)atoi(entry->d_name);
		struct proc_stat stat;
		if (tid <= 0 || (proc_read_stat(pid, tid, &stat) == 0 && stat.state == 'Z'))
			continue;
		if (ptrace(PTRACE_SEIZE, tid, 0, 0) != 0)
			continue;
		struct frozen_thread *thread = add_thread(frozen, tid);
		if (thread == NULL) {
			ptrace(PTRACE_DETACH, tid, 0, 0);
			break;
		}
		thread->seized = true;
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) == 0 && wait_for_stop(thread) == 1) {
			closedir(dir);
			return 0;
		}
		thaw_process(frozen);
		frozen->count = 0;
	}
	closedir(dir);
	return hs_error_set(err, "no thread of pid %d could be stopped (has it exited?)", (int)pid);
}

bool freeze_still_held(const struct frozen_process *frozen)
{
	size_t held = 0;
	for (size_t i = 0; i < frozen->count; i++) {
		const struct frozen_thread *thread = &frozen->threads[i];
		if (!thread->seized || !thread->stopped || !thread->has_registers)
			continue;
		struct user_regs_struct now;
		if (ptrace(PTRACE_GETREGS, thread->tid, 0, &now) != 0)
			return false;
		held++;
	}
	return held > 0;
}

void thaw_process(struct frozen_process *frozen)
{
	for (size_t i = 0; i < frozen->count; i++) {
		struct frozen_thread *thread = &frozen->threads[i];
		if (!thread->seized)
			continue;
		/* PTRACE_DETACH needs a stopped tracee; one we never saw stop gets its stop first */
		if (!thread->stopped && wait_for_stop(thread) != 1) {
			thread->seized = false;
			continue;
		}
		ptrace(PTRACE_DETACH, thread->tid, 0, (void *)(long)thread->pending_signal);
		thread->seized = false;
	}
}

void frozen_process_free(struct frozen_process *frozen)
{
	free(frozen->threads);
	memset(frozen, 0, sizeof *frozen);
}
