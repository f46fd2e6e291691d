/* A TCP server for `capture --sites` (tests/e2e/test_sites_bpf.py), built with -O2
 * -fomit-frame-pointer: its allocating functions are not inlined, so the source is the ground
 * truth of each block's stack. Each connection accept_loop takes is handled by serve_client,
 * which makes a session (session_new: a 96-byte block) with a buffer (buffer_new, called from
 * session_new: 640 bytes), and reads the request into a scratch block (read_request: 200 bytes,
 * freed at once). Sessions of odd-numbered connections are closed (both blocks freed); even
 * ones are kept, in untyped (void *) tables so that no type names them. Before serving, it
 * makes 50 startup blocks (startup_block: 96 bytes) that no window sees made. It records, with
 * write(2) only:
 *     site FUNCTION LINE       where FUNCTION calls the allocator
 *     caller FUNCTION LINE     where its caller calls FUNCTION
 *     port N                   once listening on 127.0.0.1:N
 *     served N                 after every 100th connection
 *
 *     sites_server RECORD_FILE */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SESSIONS 4096

void *sessions[MAX_SESSIONS], *buffers[MAX_SESSIONS], *startup[50];
static int record_fd;

static void record(const char *format, const char *function, int number)
{
	char text[96];
	snprintf(text, sizeof text, format, function, number);
	if (write(record_fd, text, strlen(text)) < 0)
		_exit(3);
}

__attribute__((noinline)) static void *startup_block(void)
{
	return malloc(96);
}

__attribute__((noinline)) static void *buffer_new(void)
{
	void *buffer = malloc(640); enum { LINE = __LINE__ };
	static int said;
	if (!said++)
		record("site %s %d\n", "buffer_new", LINE);
	return buffer;
}

__attribute__((noinline)) static void *session_new(int index)
{
	void *session = calloc(1, 96); enum { LINE = __LINE__ };
	buffers[index] = buffer_new(); enum { BUFFER_LINE = __LINE__ };
	static int said;
	if (!said++) {
		record("site %s %d\n", "session_new", LINE);
		record("caller %s %d\n", "buffer_new", BUFFER_LINE);
	}
	return session;
}

__attribute__((noinline)) static void read_request(int fd)
{
	char *scratch = malloc(200);
	if (scratch == NULL || read(fd, scratch, 200) < 0)
		_exit(4);
	free(scratch);
}

__attribute__((noinline)) static void serve_client(int fd, int index)
{
	read_request(fd);
	sessions[index] = session_new(index); enum { LINE = __LINE__ };
	static int said;
	if (!said++)
		record("caller %s %d\n", "session_new", LINE);
	if (index % 2) { /* closed: nothing of it stays */
		free(buffers[index]);
		free(sessions[index]);
		buffers[index] = sessions[index] = NULL;
	}
	if (write(fd, "ok\n", 3) < 0)
		_exit(5);
}

__attribute__((noinline)) static void accept_loop(int listener)
{
	for (int index = 0;; index++) {
		int fd = accept(listener, NULL, NULL);
		if (fd < 0)
			_exit(6);
		serve_client(fd, index % MAX_SESSIONS); enum { LINE = __LINE__ };
		if (index == 0)
			record("caller %s %d\n", "serve_client", LINE);
		close(fd);
		if ((index + 1) % 100 == 0)
			record("%sserved %d\n", "", index + 1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	record_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	if (record_fd < 0)
		return 2;
	for (int i = 0; i < 50; i++)
		startup[i] = startup_block();
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in address = {.sin_family = AF_INET,
				      .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t size = sizeof address;
	if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
	    listen(listener, 128) != 0 ||
	    getsockname(listener, (struct sockaddr *)&address, &size) != 0)
		return 2;
	record("%sport %d\n", "", ntohs(address.sin_port));
	accept_loop(listener);
	return 0;
}
