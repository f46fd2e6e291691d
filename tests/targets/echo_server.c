/* A multi-threaded TCP echo server for the tests that capture a server under load: a thread per
 * connection, each packet copied into a block of its own (malloc) that the connection keeps in a
 * history of its last packets, so that the heap changes all the time, then written back. It
 * handles EINTR everywhere, as a server must (a ptrace stop interrupts some blocking calls).
 *
 *     echo_server PORT_FILE [BALLAST_MIB]
 *
 * It listens on 127.0.0.1 (a free port, written to PORT_FILE through a rename, so a reader never
 * sees half a number). BALLAST_MIB MiB of heap filled with pseudo-random bytes make its captures
 * take a while to write. It counts the SIGRTMIN signals it receives and, on SIGUSR1, writes the
 * count to PORT_FILE.signals. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HISTORY 16

static atomic_long rt_signals; /* handled on any thread, at once */
static volatile sig_atomic_t report_asked;
static char *ballast;

static void on_rt_signal(int signal_number)
{
	(void)signal_number;
	atomic_fetch_add(&rt_signals, 1);
}

static void on_report(int signal_number)
{
	(void)signal_number;
	report_asked = 1;
}

static int write_all(int fd, const char *data, size_t size)
{
	while (size > 0) {
		ssize_t done = write(fd, data, size);
		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0)
			return -1;
		data += done;
		size -= (size_t)done;
	}
	return 0;
}

static void *serve(void *argument)
{
	int fd = (int)(intptr_t)argument;
	char *history[HISTORY] = {0};
	size_t packets = 0;
	char buffer[16384];
	for (;;) {
		ssize_t got = read(fd, buffer, sizeof buffer);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		char *copy = malloc((size_t)got);
		if (copy == NULL)
			break;
		memcpy(copy, buffer, (size_t)got);
		free(history[packets % HISTORY]);
		history[packets++ % HISTORY] = copy;
		if (write_all(fd, copy, (size_t)got) != 0)
			break;
	}
	for (int i = 0; i < HISTORY; i++)
		free(history[i]);
	close(fd);
	return NULL;
}

static void write_file(const char *name, const char *suffix, long value)
{
	char final[4096], temporary[4200];
	snprintf(final, sizeof final, "%s%s", name, suffix);
	snprintf(temporary, sizeof temporary, "%s.tmp", final);
	FILE *f = fopen(temporary, "w");
	if (f == NULL)
		exit(1);
	fprintf(f, "%ld\n", value);
	fclose(f);
	rename(temporary, final);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	size_t ballast_bytes = argc > 2 ? (size_t)atol(argv[2]) << 20 : 0;
	if (ballast_bytes) {
		ballast = malloc(ballast_bytes);
		uint64_t state = 88172645463325252u;
		for (size_t i = 0; i + 8 <= ballast_bytes; i += 8) {
			state ^= state << 13, state ^= state >> 7, state ^= state << 17;
			memcpy(ballast + i, &state, 8);
		}
	}
	struct sigaction action = {.sa_handler = on_rt_signal};
	sigemptyset(&action.sa_mask);
	action.sa_flags = SA_RESTART;
	sigaction(SIGRTMIN, &action, NULL);
	/* not restarted: accept returns EINTR in the main thread, the only one that takes it */
	action.sa_handler = on_report;
	action.sa_flags = 0;
	sigaction(SIGUSR1, &action, NULL);
	sigset_t report_only;
	sigemptyset(&report_only);
	sigaddset(&report_only, SIGUSR1);
	signal(SIGPIPE, SIG_IGN);

	int listener = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t length = sizeof address;
	if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
	    listen(listener, 1024) != 0 ||
	    getsockname(listener, (struct sockaddr *)&address, &length) != 0)
		return 1;
	write_file(argv[1], "", ntohs(address.sin_port));

	pthread_attr_t attributes;
	pthread_attr_init(&attributes);
	pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attributes, 256 << 10);
	for (;;) {
		int fd = accept(listener, NULL, NULL);
		if (report_asked) {
			report_asked = 0;
			write_file(argv[1], ".signals", atomic_load(&rt_signals));
		}
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
				continue;
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		pthread_t thread;
		pthread_sigmask(SIG_BLOCK, &report_only, NULL);
		if (pthread_create(&thread, &attributes, serve, (void *)(intptr_t)fd) != 0)
			close(fd);
		pthread_sigmask(SIG_UNBLOCK, &report_only, NULL);
	}
}
