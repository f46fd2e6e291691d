/* The C twin of leaky_server.py: a real TCP server whose every connection is a struct conn with a
 * struct handler pointing back to it and a 512-byte buffer, for the heap-diff tests.
 *
 *     leaky_server PORT_FILE [--variant global|lost|fixed]
 *
 * It listens on 127.0.0.1 (a free port, written to PORT_FILE) and serves one connection at a time:
 * reads until the client closes, echoing each packet back. Then, with global (the default), the
 * connection goes on the global list all_conns and stays there; with lost, every pointer to it is
 * dropped (a true leak); with fixed, it is freed. The server closes its end of the socket only
 * after that, so a client that shuts down its writing side and reads to EOF (as client.py does)
 * knows the connection's fate is settled. It never exits on its own: it runs until killed. */
#ifndef _GNU_SOURCE /* the build defines it; a hand build may not */
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_SIZE 512

struct conn;
struct handler {
	struct conn *conn;
	long packets;
};

struct conn {
	int fd;
	struct sockaddr_in peer;
	struct handler *handler;
	char *buffer;
	struct conn *next;
};

enum variant { GLOBAL, LOST, FIXED };

struct conn *all_conns;

/* On return, the caller-saved registers are zeroed too, so that no copy of a lost connection's
 * address outlives serve_one in a register (the stack is scrub_stack's job). */
#if defined(__has_attribute)
#if __has_attribute(zero_call_used_regs)
#define ZERO_REGISTERS __attribute__((zero_call_used_regs("all-gpr")))
#endif
#endif
#ifndef ZERO_REGISTERS
#define ZERO_REGISTERS
#endif

static long handle(struct handler *handler, long length)
{
	handler->packets++;
	return length;
}

static int send_all(int fd, const char *data, size_t length)
{
	while (length > 0) {
		/* MSG_NOSIGNAL: a client that goes away mid-echo must not kill the server with SIGPIPE */
		ssize_t sent = send(fd, data, length, MSG_NOSIGNAL);
		if (sent < 0 && errno == EINTR)
			continue;
		if (sent <= 0)
			return -1;
		data += sent;
		length -= (size_t)sent;
	}
	return 0;
}

/* Accepts one connection and serves it; returns its fd for the caller to close, or -1. */
__attribute__((noinline)) ZERO_REGISTERS static int serve_one(int listener, enum variant variant)
{
	struct sockaddr_in peer;
	socklen_t peer_length = sizeof peer;
	int fd;
	do
		fd = accept(listener, (struct sockaddr *)&peer, &peer_length);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			usleep(10000); /* nothing to do but wait for resources: do not spin */
		return -1;
	}

	struct conn *c = malloc(sizeof *c);
	c->fd = fd;
	c->peer = peer;
	c->next = NULL;
	c->handler = malloc(sizeof *c->handler);
	c->handler->conn = c;
	c->handler->packets = 0;
	c->buffer = malloc(BUFFER_SIZE);
	memset(c->buffer, 0, BUFFER_SIZE);

	for (;;) {
		ssize_t length = read(c->fd, c->buffer, BUFFER_SIZE);
		if (length < 0 && errno == EINTR)
			continue;
		if (length <= 0) /* EOF, or an error such as a reset: the connection is over either way */
			break;
		if (send_all(c->fd, c->buffer, (size_t)handle(c->handler, length)) < 0)
			break;
	}

	if (variant == GLOBAL) {
		c->next = all_conns;
		all_conns = c;
	} else if (variant == FIXED) {
		free(c->buffer);
		free(c->handler);
		free(c);
	}
	c = NULL;
	return fd;
}

/* Overwrites the stack below the caller, where serve_one's dead frame (and those of the functions
 * it called) still hold the last connection's address. */
__attribute__((noinline)) static void scrub_stack(void)
{
	char area[64 << 10];
	explicit_bzero(area, sizeof area); /* a plain memset of a dead array may be optimised away */
	__asm__ volatile("" : : "r"(area) : "memory");
}

static int write_port_file(const char *path, int port)
{
	char temporary[4096], text[16];
	if (snprintf(temporary, sizeof temporary, "%s.tmp", path) >= (int)sizeof temporary)
		return -1;
	int length = snprintf(text, sizeof text, "%d", port);
	int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	if (write(fd, text, (size_t)length) != length) {
		close(fd);
		return -1;
	}
	if (close(fd) < 0)
		return -1;
	/* the rename makes it appear whole: a test polling for PORT_FILE never reads half a number */
	return rename(temporary, path);
}

int main(int argc, char **argv)
{
	enum variant variant = GLOBAL;
	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: %s PORT_FILE [--variant global|lost|fixed]\n", argv[0]);
		return 2;
	}
	if (argc == 4) {
		if (strcmp(argv[2], "--variant") != 0)
			return 2;
		if (strcmp(argv[3], "global") == 0)
			variant = GLOBAL;
		else if (strcmp(argv[3], "lost") == 0)
			variant = LOST;
		else if (strcmp(argv[3], "fixed") == 0)
			variant = FIXED;
		else {
			fprintf(stderr, "unknown variant %s\n", argv[3]);
			return 2;
		}
	}

	int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0) {
		perror("socket");
		return 1;
	}
	int one = 1;
	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t address_length = sizeof address;
	if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0 ||
	    listen(listener, 64) < 0 ||
	    getsockname(listener, (struct sockaddr *)&address, &address_length) < 0) {
		perror("listen");
		return 1;
	}
	if (write_port_file(argv[1], ntohs(address.sin_port)) < 0) {
		perror(argv[1]);
		return 1;
	}

	for (;;) {
		int fd = serve_one(listener, variant);
		scrub_stack();
		if (fd >= 0)
			close(fd); /* last, after the scrub: the client's EOF means the heap is settled */
	}
}
