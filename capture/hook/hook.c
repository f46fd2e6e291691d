/* The in-process hook (see heapsnap.h): the signal handler, the threads' rendezvous, the fork,
 * and the fork's capture of itself.
 *
 * On the signal, the thread that takes it (the trigger) lists the process's threads from
 * /proc/self/task and queues each one the same signal, marked as a rendezvous (SI_QUEUE, a magic
 * value); each saves the registers it was interrupted with (and its FS and GS bases) and waits.
 * When all have arrived (or after a bound, for a thread that blocks the signal), the trigger forks
 * with a raw clone and lets them go: the pause is the rendezvous and the fork. The fork, alone,
 * switches malloc to a private arena and to a stack of its own, and writes the snapshot with the
 * code `heapsnap capture` uses, from its own memory (the process's, as it was at the fork), with
 * the saved registers as the threads'. Everything on the signal path is async-signal-safe: raw
 * system calls, atomics, memory mapped once; no malloc, no stdio, no lock. The raw clone runs no
 * atfork handlers (glibc's fork would take malloc's locks, which the interrupted thread may hold)
 * and sends no SIGCHLD: the program never sees the fork; it is reaped at the next capture.
 *
 * One fork at a time: a signal that arrives while a snapshot is being prepared or written is not
 * served but counted, in memory shared with the fork, which says the count on standard error when
 * its snapshot is written (so a burst of signals cannot start forks without bound, and none is
 * lost silently). */
#include "capture/hook/heapsnap.h"

#include <asm/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <zstd.h>

#include "capture/capture.h"
#include "capture/freeze.h"
#include "capture/hook/hook_malloc.h"
#include "capture/hook/hook_sites.h"
#include "capture/proc.h"
#include "capture/process_memory.h"
#include "common/clock.h"

#define THREADS_MAX 4096
#define RENDEZVOUS_MAGIC 0x68736e70		 /* "hsnp" */
#define RENDEZVOUS_TIMEOUT_NS 200000000ull	 /* a thread that blocks the signal: 0.2 s */
#define RELEASE_TIMEOUT_NS 10000000000ull	 /* a waiting thread goes on after 10 s anyway */
#define FORK_STACK_BYTES (8u << 20)

struct saved_thread {
	pid_t tid;
	atomic_int saved;
	bool has_fp;
	struct user_regs_struct registers;
	struct user_fpregs_struct fp_registers;
};

static struct {
	int signal; /* 0: no handler installed */
	/* the program defines malloc itself: the fork would call it (see hook_malloc_interposed),
	   so every snapshot is refused, said on each signal */
	bool refused;
	char directory[4096];
	atomic_int busy;	   /* a capture is being prepared */
	atomic_uint generation;	   /* of the capture being prepared */
	atomic_uint released;	   /* futex word: the generation whose threads may go on */
	atomic_int arrived;	   /* threads that saved their registers */
	struct saved_thread *threads; /* THREADS_MAX of them, mapped at the first capture */
	size_t thread_count;
	pid_t child;	     /* the fork writing a snapshot, not reaped yet; 0: none */
	bool child_awaited;  /* heapsnap_capture reaps it, not the next signal */
	/* signals not served since the last report: shared with the forks, which report it */
	atomic_uint *not_served;
	/* what the fork needs */
	pid_t pid;
	char path[4096]; /* empty: the default name in `directory` */
	uint64_t start_monotonic_ns, start_realtime_ns;
} hook;

static pid_t current_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* "heapsnap hook: " + text on standard error, with write(2) only */
static void say(const char *first, const char *second)
{
	const char *parts[] = {"heapsnap hook: ", first, second ? second : "", "\n"};
	for (size_t i = 0; i < 4; i++) {
		size_t length = strlen(parts[i]);
		while (length > 0) {
			ssize_t written = write(STDERR_FILENO, parts[i], length);
			if (written <= 0)
				break;
			parts[i] += written;
			length -= (size_t)written;
		}
	}
}

/* The decimal digits of `value` in `out` (at least 11 bytes), with write(2)'s means. */
static const char *decimal(unsigned value, char *out)
{
	char *at = out + 10;
	*at = '\0';
	do
		*--at = (char)('0' + value % 10);
	while ((value /= 10) != 0);
	return at;
}

/* The registers a thread was interrupted with, as ptrace would have shown them. */
static void save_context(struct saved_thread *slot, const ucontext_t *context)
{
	const greg_t *g = context->uc_mcontext.gregs;
	struct user_regs_struct *r = &slot->registers;
	memset(r, 0, sizeof *r);
	r->r15 = (unsigned long long)g[REG_R15];
	r->r14 = (unsigned long long)g[REG_R14];
	r->r13 = (unsigned long long)g[REG_R13];
	r->r12 = (unsigned long long)g[REG_R12];
	r->rbp = (unsigned long long)g[REG_RBP];
	r->rbx = (unsigned long long)g[REG_RBX];
	r->r11 = (unsigned long long)g[REG_R11];
	r->r10 = (unsigned long long)g[REG_R10];
	r->r9 = (unsigned long long)g[REG_R9];
	r->r8 = (unsigned long long)g[REG_R8];
	r->rax = (unsigned long long)g[REG_RAX];
	r->rcx = (unsigned long long)g[REG_RCX];
	r->rdx = (unsigned long long)g[REG_RDX];
	r->rsi = (unsigned long long)g[REG_RSI];
	r->rdi = (unsigned long long)g[REG_RDI];
	r->orig_rax = ~0ull;
	r->rip = (unsigned long long)g[REG_RIP];
	r->cs = (unsigned long long)g[REG_CSGSFS] & 0xffff;
	r->eflags = (unsigned long long)g[REG_EFL];
	r->rsp = (unsigned long long)g[REG_RSP];
	r->ss = 0x2b; /* the user data segment of x86-64 Linux */
	unsigned long base = 0;
	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &base) == 0)
		r->fs_base = base;
	base = 0;
	if (syscall(SYS_arch_prctl, ARCH_GET_GS, &base) == 0)
		r->gs_base = base;
	slot->has_fp = context->uc_mcontext.fpregs != NULL;
	if (slot->has_fp)
		memcpy(&slot->fp_registers, context->uc_mcontext.fpregs, sizeof slot->fp_registers);
}

/* A thread asked to save its registers: it does, then waits until the fork is made. A thread the
 * capture did not list (born since) has nothing to do. */
static void rendezvous(const ucontext_t *context)
{
	unsigned generation = atomic_load(&hook.generation);
	pid_t tid = current_tid();
	struct saved_thread *slot = NULL;
	for (size_t i = 0; hook.threads && i < hook.thread_count && slot == NULL; i++)
		if (hook.threads[i].tid == tid && !atomic_load(&hook.threads[i].saved))
			slot = &hook.threads[i];
	if (slot == NULL)
		return;
	save_context(slot, context);
	atomic_store(&slot->saved, 1);
	atomic_fetch_add(&hook.arrived, 1);
	uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + RELEASE_TIMEOUT_NS;
	for (;;) {
		unsigned released = atomic_load(&hook.released);
		if (released == generation || clock_ns(CLOCK_MONOTONIC) > deadline)
			return;
		struct timespec wait = {0, 50000000};
		syscall(SYS_futex, &hook.released, FUTEX_WAIT_PRIVATE, released, &wait, NULL, 0);
	}
}

/* Whether the last fork is still writing (or heapsnap_capture has yet to reap it); a fork that
 * ended is reaped here. */
static bool snapshot_in_flight(void)
{
	if (hook.child <= 0)
		return false;
	siginfo_t ended = {.si_pid = 0};
	/* WNOWAIT: heapsnap_capture's fork is left for it to reap */
	if (syscall(SYS_waitid, P_PID, hook.child, &ended, WEXITED | WNOHANG | WNOWAIT | __WCLONE,
		    NULL) == 0 &&
	    ended.si_pid == 0)
		return true;
	if (hook.child_awaited)
		return true;
	syscall(SYS_wait4, hook.child, NULL, WNOHANG | __WCLONE, NULL);
	hook.child = 0;
	return false;
}

static void fork_main(void) __attribute__((noreturn));

/* Lists the other threads, gathers their registers, forks. Returns the fork's pid (in the
 * process; the fork never returns from here), or -1 with errno set: EBUSY when a snapshot is
 * being prepared or written already. `awaited`: the caller reaps the fork. */
static pid_t capture_now(const ucontext_t *context, const char *path, bool awaited)
{
	int idle = 0;
	if (!atomic_compare_exchange_strong(&hook.busy, &idle, 1)) {
		errno = EBUSY;
		return -1;
	}
	if (snapshot_in_flight()) {
		atomic_store(&hook.busy, 0);
		errno = EBUSY;
		return -1;
	}
	if (hook.threads == NULL) {
		void *mapped = mmap(NULL, THREADS_MAX * sizeof *hook.threads, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mapped == MAP_FAILED) {
			atomic_store(&hook.busy, 0);
			errno = ENOMEM;
			return -1;
		}
		hook.threads = mapped;
	}
	hook.start_monotonic_ns = clock_ns(CLOCK_MONOTONIC);
	hook.start_realtime_ns = clock_ns(CLOCK_REALTIME);
	hook.path[0] = '\0';
	if (path) {
		size_t length = strlen(path);
		if (length >= sizeof hook.path) {
			atomic_store(&hook.busy, 0);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(hook.path, path, length + 1);
	}
	hook.pid = getpid();
	pid_t self = current_tid();
	atomic_store(&hook.arrived, 0);
	hook.thread_count = 0;
	unsigned generation = atomic_fetch_add(&hook.generation, 1) + 1;
	struct saved_thread *mine = &hook.threads[hook.thread_count++];
	mine->tid = self;
	save_context(mine, context);
	atomic_store(&mine->saved, 1);

	int sent = 0;
	int directory = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char entries[4096] __attribute__((aligned(8)));
	long got;
	while (directory >= 0 &&
	       (got = syscall(SYS_getdents64, directory, entries, sizeof entries)) > 0) {
		for (long at = 0; at < got;) {
			struct {
				uint64_t inode;
				int64_t offset;
				unsigned short length;
				unsigned char type;
				char name[];
			} *entry = (void *)(entries + at);
			at += entry->length;
			pid_t tid = 0;
			const char *digit = entry->name;
			for (; *digit >= '0' && *digit <= '9'; digit++)
				tid = tid * 10 + (*digit - '0');
			if (*digit != '\0' || tid <= 0 || tid == self || hook.thread_count == THREADS_MAX)
				continue;
			struct saved_thread *slot = &hook.threads[hook.thread_count];
			slot->tid = tid;
			atomic_store(&slot->saved, 0);
			hook.thread_count++;
			siginfo_t info;
			memset(&info, 0, sizeof info);
			info.si_signo = hook.signal;
			info.si_code = SI_QUEUE;
			info.si_pid = hook.pid;
			info.si_uid = getuid();
			info.si_value.sival_int = RENDEZVOUS_MAGIC;
			if (syscall(SYS_rt_tgsigqueueinfo, hook.pid, tid, hook.signal, &info) == 0)
				sent++;
			else
				slot->tid = 0; /* gone already */
		}
	}
	if (directory >= 0)
		close(directory);
	uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + RENDEZVOUS_TIMEOUT_NS;
	while (atomic_load(&hook.arrived) < sent && clock_ns(CLOCK_MONOTONIC) < deadline)
		syscall(SYS_sched_yield);

	/* fork without glibc: no atfork handlers, no SIGCHLD (exit signal 0) */
	pid_t child = (pid_t)syscall(SYS_clone, 0ul, NULL, NULL, NULL, 0ul);
	if (child == 0)
		fork_main();
	int saved_errno = errno;
	atomic_store(&hook.released, generation);
	syscall(SYS_futex, &hook.released, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
	if (child > 0) {
		hook.child_awaited = awaited;
		hook.child = child;
	}
	atomic_store(&hook.busy, 0);
	errno = saved_errno;
	return child;
}

/* ---- in the fork ------------------------------------------------------------------------------ */

static struct hook_range fork_arena;

static void fork_write(void) __attribute__((noreturn));
static void fork_write(void)
{
	uint64_t pause_ns = clock_ns(CLOCK_MONOTONIC) - hook.start_monotonic_ns;
	struct frozen_process frozen = {.pid = hook.pid};
	frozen.threads = calloc(hook.thread_count + 1, sizeof *frozen.threads);
	for (size_t i = 0; frozen.threads && i < hook.thread_count; i++) {
		const struct saved_thread *slot = &hook.threads[i];
		if (slot->tid <= 0 || !atomic_load(&slot->saved))
			continue; /* gone, or it never answered: no registers to show */
		struct frozen_thread *thread = &frozen.threads[frozen.count++];
		thread->tid = slot->tid;
		thread->stopped = true;
		thread->registers = slot->registers;
		thread->has_registers = true;
		thread->fp_registers = slot->fp_registers;
		thread->has_fp_registers = slot->has_fp;
		proc_thread_name(hook.pid, slot->tid, thread->name);
	}
	struct address_range exclude = {fork_arena.start, fork_arena.end};
	struct forked_self self = {.pid = hook.pid,
				   .threads = &frozen,
				   .capture_start_ns = hook.start_realtime_ns,
				   .pause_ns = pause_ns,
				   .exclude = &exclude,
				   .exclude_count = 1};
	if (hook_sites_on)
		self.sites = hook_sites_collect(&self.site_count);
	struct capture_options options = {.output_path = hook.path[0] ? hook.path : NULL,
					  .default_directory = hook.directory,
					  .compression = {.level = 1}};
	struct capture_result result;
	struct hs_error err;
	int status = frozen.threads ? capture_forked_self(&self, &options, &result, &err) : -1;
	if (status != 0)
		say("no snapshot written: ", frozen.threads ? err.message : "out of memory");
	unsigned not_served = atomic_exchange(hook.not_served, 0);
	if (not_served > 0) {
		char digits[11];
		say(decimal(not_served, digits),
		    not_served == 1 ? " signal not served: it came while a snapshot was being made"
				    : " signals not served: they came while a snapshot was being made");
	}
	syscall(SYS_exit_group, status == 0 ? 0 : 1);
	__builtin_unreachable();
}

static void fork_main(void)
{
	/* nothing meant for the process is for the fork: it only writes the snapshot */
	sigset_t all;
	sigfillset(&all);
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, NULL, sizeof(uint64_t));
	if (hook_malloc_fork_mode(&fork_arena) != 0) {
		say("no snapshot written: ", "no memory for the fork's arena");
		syscall(SYS_exit_group, 1);
	}
	/* a stack of its own: the thread it was forked from may have had a small one */
	static ucontext_t writer;
	void *stack = hook_stack(FORK_STACK_BYTES);
	if (stack == NULL || getcontext(&writer) != 0)
		fork_write();
	writer.uc_stack.ss_sp = stack;
	writer.uc_stack.ss_size = FORK_STACK_BYTES;
	writer.uc_link = NULL;
	makecontext(&writer, fork_write, 0);
	setcontext(&writer);
	fork_write(); /* setcontext failed: go on where we are */
}

/* ---- in the process ------------------------------------------------------------------------- */

#define REFUSAL                                                                               \
	"no snapshot: the program defines malloc itself (or a library preloaded before the "      \
	"hook does), so the hook cannot stand in for it in the fork that writes the snapshot (a " \
	"call there could wait forever on a lock); preload libheapsnap.so first, or use "         \
	"`heapsnap capture PID` from outside"

static void on_signal(int number, siginfo_t *info, void *context)
{
	(void)number;
	int saved_errno = errno;
	if (hook.refused) {
		say(REFUSAL, NULL);
		return;
	}
	bool asked = info && info->si_code == SI_QUEUE && info->si_pid == getpid() &&
		     info->si_value.sival_int == RENDEZVOUS_MAGIC;
	bool served = asked;
	if (asked || atomic_load(&hook.busy))
		rendezvous(context); /* (a user's signal merged with our request does the same) */
	else
		served = capture_now(context, NULL, false) >= 0 || errno != EBUSY;
	if (!served)
		atomic_fetch_add(hook.not_served, 1);
	errno = saved_errno;
}

static int install(int number)
{
	struct sigaction action;
	memset(&action, 0, sizeof action);
	action.sa_sigaction = on_signal;
	action.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&action.sa_mask);
	if (sigaction(number, &action, NULL) != 0)
		return -1;
	hook.signal = number;
	return 0;
}

/* "SIGUSR2", "USR2" or "12"; 0 when it is none, or one that cannot or must not be caught. */
static int parse_signal(const char *text)
{
	static const struct {
		const char *name;
		int number;
	} names[] = {{"HUP", SIGHUP},	{"INT", SIGINT},     {"QUIT", SIGQUIT},	  {"USR1", SIGUSR1},
		     {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},	  {"TERM", SIGTERM},
		     {"CONT", SIGCONT}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},	  {"TTOU", SIGTTOU},
		     {"URG", SIGURG},	{"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},	  {"VTALRM", SIGVTALRM},
		     {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"POLL", SIGPOLL},	  {"PWR", SIGPWR},
		     {"SYS", SIGSYS}};
	if (strncmp(text, "SIG", 3) == 0)
		text += 3;
	int number = 0;
	if (*text >= '0' && *text <= '9') {
		for (; *text >= '0' && *text <= '9' && number < 1000; text++)
			number = number * 10 + (*text - '0');
		if (*text != '\0')
			return 0;
	} else {
		for (size_t i = 0; i < sizeof names / sizeof names[0] && !number; i++)
			if (strcmp(text, names[i].name) == 0)
				number = names[i].number;
	}
	if (number < 1 || number > SIGRTMAX || number == SIGKILL || number == SIGSTOP ||
	    number == SIGSEGV || number == SIGBUS || number == SIGFPE || number == SIGILL ||
	    number == SIGTRAP || number == SIGABRT || number == SIGCHLD ||
	    (number >= 32 && number < SIGRTMIN))
		return 0;
	return number;
}

/* Runs what the fork will run once in the process, so that every function it calls is bound
 * (lazy binding in libzstd) before a fork from a signal handler needs it. */
static void warm_up(void)
{
	char input[64] = "heapsnap", output[256];
	ZSTD_CCtx *context = ZSTD_createCCtx();
	if (context) {
		ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, 1);
		ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1);
		ZSTD_compress2(context, output, sizeof output, input, sizeof input);
		ZSTD_freeCCtx(context);
	}
}

__attribute__((constructor)) static void hook_start(void)
{
	static atomic_uint not_served_unshared;
	void *shared = mmap(NULL, sizeof *hook.not_served, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	hook.not_served = shared == MAP_FAILED ? &not_served_unshared : shared;
	const char *directory = getenv("HEAPSNAP_DIR");
	if (directory && strlen(directory) < sizeof hook.directory)
		memcpy(hook.directory, directory, strlen(directory) + 1);
	else if (directory)
		say("HEAPSNAP_DIR is too long; snapshots go to the working directory", NULL);
	hook.refused = !hook_malloc_interposed();
	warm_up();
	const char *sites = getenv("HEAPSNAP_SITES");
	if (sites && strcmp(sites, "1") == 0) {
		hook_malloc_note_code();
		if (hook_sites_start() != 0)
			say("HEAPSNAP_SITES=1: no memory for the allocation-site table; not recording",
			    NULL);
	}
	const char *name = getenv("HEAPSNAP_SIGNAL");
	if (name == NULL || name[0] == '\0')
		return;
	int number = parse_signal(name);
	if (number == 0) {
		say("HEAPSNAP_SIGNAL is not a signal the hook can use (say SIGUSR2, USR2 or 12): ",
		    name);
		return;
	}
	if (install(number) != 0)
		say("cannot install the handler for HEAPSNAP_SIGNAL=", name);
	else if (hook.refused)
		say(REFUSAL, NULL); /* (the handler says it again on each signal, rather than die) */
}

/* The signal heapsnap_capture gathers the other threads with when HEAPSNAP_SIGNAL names none: a
 * real-time signal near the top, which runtimes leave alone. */
#define API_SIGNAL_FROM_TOP 3

int heapsnap_capture(const char *path)
{
	if (hook.refused) {
		errno = ENOTSUP;
		return -1;
	}
	if (hook.signal == 0 && install(SIGRTMAX - API_SIGNAL_FROM_TOP) != 0)
		return -1;
	ucontext_t context;
	if (getcontext(&context) != 0)
		return -1;
	pid_t child = capture_now(&context, path, true);
	if (child < 0)
		return -1;
	int status = 0;
	pid_t waited;
	do
		waited = waitpid(child, &status, __WCLONE);
	while (waited < 0 && errno == EINTR);
	hook.child = 0;
	if (waited != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		errno = EIO;
		return -1;
	}
	return 0;
}
