/* A target that watches for what a fork capture must never do to it, for tests/e2e/
 * test_capture_fork.py. It counts SIGCHLD signals; pthread_atfork handlers and a loop in the main
 * thread log the pid they run in to the log file whenever it is not the target's own (and the
 * loop logs its own once at start), so a clone that ran one line of user code would leave its pid
 * there; a thread serves TCP on 127.0.0.1 (one line in, one line out: "echo X" -> "X", "status"
 * -> SIGCHLD count, what waitpid(-1, WNOHANG) returns and its errno, and the count of SIGRTMIN
 * taken, real-time signals being queued, never merged; a thread per client). It also holds a heap of
 * known blocks and two mappings a clone does not see as the target does (MADV_DONTFORK,
 * MADV_WIPEONFORK), filled with known bytes, and optionally a large heap (for the tests that kill
 * heapsnap mid-capture), an allow-all seccomp filter, and RLIMIT_NPROC at the number of its own
 * threads once they are made, so that a clone fails with EAGAIN unless it runs as root (for the
 * fallback tests).
 * usage: fork_watch READY_FILE LOG_FILE [--heap-mib N] [--seccomp] [--nproc-limit] */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BLOCKS 32
#define SPECIAL_BYTES (3 * 4096)

/* counted atomically: handlers may run in several threads at once */
static int sigchld_count, realtime_count;
static pid_t own_pid;

static void on_realtime(int signal_number)
{
	(void)signal_number;
	__atomic_fetch_add(&realtime_count, 1, __ATOMIC_RELAXED);
}
static const char *log_path;
unsigned char *known_blocks[BLOCKS];
unsigned char *dont_fork_mapping, *wipe_on_fork_mapping;
unsigned char **large_blocks;

static void on_sigchld(int signal_number)
{
	(void)signal_number;
	__atomic_fetch_add(&sigchld_count, 1, __ATOMIC_RELAXED);
}

/* Appends "pid N WHERE" to the log with one write (async-signal-safe). */
static void log_pid(const char *where)
{
	char line[96];
	int length = snprintf(line, sizeof line, "pid %ld %s\n", (long)syscall(SYS_getpid), where);
	FILE *file = fopen(log_path, "a");
	if (file) {
		fwrite(line, 1, (size_t)length, file);
		fclose(file);
	}
}

static void atfork_prepare(void) { log_pid("atfork-prepare"); }
static void atfork_parent(void) { log_pid("atfork-parent"); }
static void atfork_child(void) { log_pid("atfork-child"); }

static void *serve_client(void *argument)
{
	int client = (int)(intptr_t)argument;
	FILE *stream = fdopen(client, "r+");
	if (stream == NULL) {
		close(client);
		return NULL;
	}
	char line[256];
	while (fgets(line, sizeof line, stream)) {
		if (strncmp(line, "echo ", 5) == 0) {
			fputs(line + 5, stream);
		} else if (strncmp(line, "status", 6) == 0) {
			errno = 0;
			pid_t waited = waitpid(-1, NULL, WNOHANG);
			int waited_errno = errno;
			fprintf(stream, "sigchld %d waitpid %d errno %d realtime %d\n",
				__atomic_load_n(&sigchld_count, __ATOMIC_RELAXED), (int)waited, waited_errno,
				__atomic_load_n(&realtime_count, __ATOMIC_RELAXED));
		} else {
			fputs("?\n", stream);
		}
		fflush(stream);
	}
	fclose(stream);
	return NULL;
}

static void *server_main(void *argument)
{
	int listener = *(int *)argument;
	for (;;) {
		int client = accept(listener, NULL, NULL);
		pthread_t thread;
		if (client >= 0 &&
		    pthread_create(&thread, NULL, serve_client, (void *)(intptr_t)client) == 0)
			pthread_detach(thread);
		else if (client >= 0)
			serve_client((void *)(intptr_t)client); /* no thread to spare (--nproc-limit) */
	}
	return NULL;
}

static unsigned char *special_mapping(int advice, unsigned char fill)
{
	unsigned char *mapping = mmap(NULL, SPECIAL_BYTES, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mapping == MAP_FAILED)
		return NULL;
	memset(mapping, fill, SPECIAL_BYTES);
	if (madvise(mapping, SPECIAL_BYTES, advice) != 0)
		return NULL;
	return mapping;
}

static int allow_everything_filter(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog program = {.len = 1, .filter = &allow};
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
			       prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0
		       ? 0
		       : -1;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fork_watch READY_FILE LOG_FILE [--heap-mib N] [--seccomp]\n");
		return 2;
	}
	log_path = argv[2];
	long heap_mib = 0;
	bool nproc_limit = false;
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--nproc-limit") == 0)
			nproc_limit = true;
		else if (strcmp(argv[i], "--heap-mib") == 0 && i + 1 < argc)
			heap_mib = atol(argv[++i]);
		else if (strcmp(argv[i], "--seccomp") == 0 && allow_everything_filter() != 0) {
			perror("seccomp");
			return 1;
		}
	}
	own_pid = getpid();
	struct sigaction action = {.sa_handler = on_sigchld, .sa_flags = SA_RESTART};
	sigaction(SIGCHLD, &action, NULL);
	struct sigaction realtime = {.sa_handler = on_realtime, .sa_flags = SA_RESTART};
	sigaction(SIGRTMIN, &realtime, NULL);
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	for (int i = 0; i < BLOCKS; i++) {
		known_blocks[i] = malloc(64 + 48 * (size_t)i);
		memset(known_blocks[i], 0x40 + i, 64 + 48 * (size_t)i);
	}
	if (heap_mib > 0) {
		large_blocks = calloc((size_t)heap_mib, sizeof *large_blocks);
		for (long i = 0; i < heap_mib; i++) {
			large_blocks[i] = malloc(1 << 20);
			memset(large_blocks[i], (int)(i & 0xff) | 1, 1 << 20);
		}
	}
	dont_fork_mapping = special_mapping(MADV_DONTFORK, 0xd0);
	wipe_on_fork_mapping = special_mapping(MADV_WIPEONFORK, 0x3f);
	if (dont_fork_mapping == NULL || wipe_on_fork_mapping == NULL) {
		perror("madvise");
		return 1;
	}

	int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in address = {.sin_family = AF_INET,
				      .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t length = sizeof address;
	if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
	    listen(listener, 64) != 0 ||
	    getsockname(listener, (struct sockaddr *)&address, &length) != 0) {
		perror("listen");
		return 1;
	}
	pthread_t server;
	pthread_create(&server, NULL, server_main, &listener);
	struct rlimit two_tasks = {2, 2}; /* this thread and the server's */
	if (nproc_limit && setrlimit(RLIMIT_NPROC, &two_tasks) != 0) {
		perror("setrlimit");
		return 1;
	}

	log_pid("start");
	char temporary[4096];
	snprintf(temporary, sizeof temporary, "%s.tmp", argv[1]);
	FILE *out = fopen(temporary, "w");
	fprintf(out, "pid %d\nport %d\ndont_fork %p %d\nwipe_on_fork %p %d\n", (int)own_pid,
		(int)ntohs(address.sin_port), (void *)dont_fork_mapping, SPECIAL_BYTES,
		(void *)wipe_on_fork_mapping, SPECIAL_BYTES);
	fclose(out);
	rename(temporary, argv[1]);

	/* any process running this loop that is not the target logs itself */
	for (;;) {
		if ((pid_t)syscall(SYS_getpid) != own_pid)
			log_pid("loop");
		usleep(1000);
	}
}
