/* A server-like C target for the object graph's tests: every connection is a struct conn with a
 * handler and a buffer, kept on the global list all_conns. With --lose, it also builds connections
 * it then loses every pointer to (a true leak in C). It records, with write(2) only:
 *     conns N              connections on the list
 *     retained BYTES       usable bytes of their conn, handler and buffer blocks
 *     lost N BYTES         blocks it lost, and their usable bytes
 * It also keeps a chain for paths: registry -> struct registry -> items (an array of 10 struct
 * item) -> each item's struct detail.
 * then "done", and waits. */
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONNS 500
#define LOST 120

struct conn;
struct handler {
	void (*on_data)(struct conn *);
	struct conn *owner;
	long calls;
};

struct conn {
	int fd;
	long cookie; /* an integer; with --lose it holds a lost block's address by chance */
	struct conn *next;
	struct handler *handler;
	char *buf;
	size_t buf_size;
};

struct conn *all_conns;
static long conn_count;

/* a chain for paths: global -> struct -> array of structs -> struct */
struct detail {
	long value;
};
struct item {
	int key;
	struct detail *detail;
	char *raw; /* the same detail seen as bytes: a conflict the struct type must win */
};
struct registry {
	int count;
	struct item *items;
};
struct registry *registry;
#define ITEMS 10

static void on_data(struct conn *conn) { conn->handler->calls++; }

/* Builds one connection; returns its usable bytes through *bytes. */
__attribute__((noinline)) static struct conn *new_conn(int fd, size_t *bytes)
{
	struct conn *conn = calloc(1, sizeof *conn);
	conn->fd = fd;
	conn->handler = calloc(1, sizeof *conn->handler);
	conn->handler->on_data = on_data;
	conn->handler->owner = conn;
	conn->buf_size = 200 + (size_t)(fd % 7) * 16;
	conn->buf = malloc(conn->buf_size);
	memset(conn->buf, 0, conn->buf_size);
	*bytes += malloc_usable_size(conn) + malloc_usable_size(conn->handler) +
		  malloc_usable_size(conn->buf);
	return conn;
}

/* (in a function of its own, so that no pointer into it lingers in main's registers) */
__attribute__((noinline)) static void build_registry(void)
{
	registry = calloc(1, sizeof *registry);
	registry->count = ITEMS;
	registry->items = calloc(ITEMS, sizeof *registry->items);
	for (int i = 0; i < ITEMS; i++) {
		registry->items[i].key = i;
		registry->items[i].detail = calloc(1, sizeof(struct detail));
		registry->items[i].raw = (char *)registry->items[i].detail;
	}
}

__attribute__((noinline)) static size_t accept_all(void)
{
	size_t bytes = 0;
	for (int fd = 0; fd < CONNS; fd++) {
		struct conn *conn = new_conn(fd, &bytes);
		conn->next = all_conns;
		all_conns = conn;
		conn_count++;
	}
	return bytes;
}

/* Builds a list of connections and drops it: after this returns, nothing points at them. */
__attribute__((noinline)) static size_t leak_some(void)
{
	size_t bytes = 0;
	struct conn *lost = NULL;
	for (int fd = 0; fd < LOST; fd++) {
		struct conn *conn = new_conn(1000 + fd, &bytes);
		conn->next = lost;
		lost = conn;
	}
	/* an integer that happens to equal a lost block's address: a conservative scan would take
	 * it for a reference, precise edges from DWARF must not */
	all_conns->cookie = (long)(uintptr_t)lost;
	__asm__ volatile("" : : "r"(lost) : "memory");
	return bytes;
}

/* Overwrites the stack below the caller, where dead frames still hold old pointers. */
__attribute__((noinline)) static void scrub_stack(void)
{
	char area[256 << 10];
	explicit_bzero(area, sizeof area); /* a plain memset of a dead array may be optimised away */
	__asm__ volatile("" : : "r"(area) : "memory");
}

static void say(int fd, const char *format, long a, long b)
{
	char line[96];
	int length = snprintf(line, sizeof line, format, a, b);
	if (write(fd, line, (size_t)length) != length)
		_exit(3);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int lose = argc > 2 && strcmp(argv[2], "--lose") == 0;
	char temporary[4096];
	snprintf(temporary, sizeof temporary, "%s.tmp", argv[1]);
	int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return 1;
	build_registry();
	size_t retained = accept_all();
	size_t lost = lose ? leak_some() : 0;
	scrub_stack();
	say(fd, "conns %ld\n", conn_count, 0);
	say(fd, "retained %ld\n", (long)retained, 0);
	say(fd, "lost %ld %ld\n", lose ? LOST * 3 : 0, (long)lost);
	say(fd, "done\n", 0, 0);
	close(fd);
	scrub_stack();
	rename(temporary, argv[1]);
	for (;;)
		pause();
}
