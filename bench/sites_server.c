/* bench/sites' target: a malloc-heavy TCP server and its load generator in one program. The server
 * answers each request (a line) after parsing it into TOKENS small blocks (16 to 256 bytes),
 * freed again, and keeping one block of 64 to 1024 bytes per request in a ring of KEPT (the
 * oldest freed): a request costs about 2 * TOKENS + 2 allocator calls. The client sends requests
 * one after the other for SECONDS and prints how many were answered.
 *
 *     sites_server serve PORT_FILE
 *     sites_server load PORT SECONDS */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TOKENS 32
#define KEPT 10000

static void *kept[KEPT];

__attribute__((noinline)) static unsigned handle(const char *request, unsigned state)
{
	void *tokens[TOKENS];
	for (int i = 0; i < TOKENS; i++) {
		state = state * 1103515245u + 12345u;
		size_t size = 16 + (state >> 16) % 241;
		tokens[i] = malloc(size);
		memcpy(tokens[i], request, size < 8 ? size : 8);
	}
	for (int i = 0; i < TOKENS; i++)
		free(tokens[i]);
	size_t slot = state % KEPT;
	free(kept[slot]);
	kept[slot] = malloc(64 + (state >> 8) % 961);
	return state;
}

static int serve(const char *port_file)
{
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in address = {.sin_family = AF_INET,
				      .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t size = sizeof address;
	if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
	    listen(listener, 16) != 0 ||
	    getsockname(listener, (struct sockaddr *)&address, &size) != 0)
		return 2;
	FILE *out = fopen(port_file, "w");
	if (out == NULL)
		return 2;
	fprintf(out, "%d\n", ntohs(address.sin_port));
	fclose(out);
	unsigned state = 1;
	for (;;) {
		int fd = accept(listener, NULL, NULL);
		if (fd < 0)
			return 2;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		char request[64];
		while (read(fd, request, sizeof request) > 0) {
			state = handle(request, state);
			if (write(fd, "ok\n", 3) != 3)
				break;
		}
		close(fd);
	}
}

static int load(int port, double seconds)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				      .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0)
		return 2;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	long answered = 0;
	char reply[16];
	do {
		if (write(fd, "GET /item/42\n", 13) != 13 || read(fd, reply, sizeof reply) <= 0)
			return 2;
		answered++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 <
		 seconds);
	printf("%ld\n", answered);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2]);
	if (argc == 4 && strcmp(argv[1], "load") == 0)
		return load(atoi(argv[2]), atof(argv[3]));
	fprintf(stderr, "usage: sites_server serve PORT_FILE | load PORT SECONDS\n");
	return 2;
}
