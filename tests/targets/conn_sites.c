/* A target for allocation sites by type and by path: C structs in DWARF (struct conn, struct job,
 * struct session) allocated by noinline functions at known lines, kept on typed global lists so
 * that heapsnap names them. Connections are made by conn_new, called from accept_loop; jobs by
 * job_new, called from queue_jobs (kept on job_queue) and from retry_jobs (kept on retry_queue):
 * one function, two stacks, two paths; sessions by open_sessions alone, at one site. Some
 * connections are made with __libc_calloc, which the hook does not see:
 * they have no recorded site, as if made before recording began. It records, with write(2) only:
 *     site FUNCTION LINE      where FUNCTION calls the allocator
 *     caller FUNCTION LINE    where FUNCTION calls conn_new or job_new
 * first 5 recorded connections and 200 unrecorded ones, then "phase 1", and waits for a line on
 * stdin; then 1000 connections from accept_loop, 300 jobs from queue_jobs, 100 from retry_jobs,
 * 50 sessions and 300 unrecorded connections, "phase 2", and waits until killed.
 *
 *     conn_sites RECORD_FILE */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_calloc(size_t count, size_t size); /* glibc's own: not through the hook */

struct conn {
	int fd;
	char peer[40];
	struct conn *next;
};

struct job {
	long id;
	double weight;
	struct job *next;
};

struct session {
	long user;
	struct session *next;
};

struct conn *all_conns;
struct session *sessions;
struct job *job_queue, *retry_queue;
static int record_fd;

static void record(const char *text)
{
	if (write(record_fd, text, strlen(text)) < 0)
		_exit(3);
}

static void record_line(const char *kind, const char *function, int line)
{
	char text[96];
	snprintf(text, sizeof text, "%s %s %d\n", kind, function, line);
	record(text);
}

__attribute__((noinline)) static struct conn *conn_new(int fd)
{
	struct conn *conn = calloc(1, sizeof *conn); enum { LINE = __LINE__ };
	static int said;
	if (!said++)
		record_line("site", "conn_new", LINE);
	conn->fd = fd;
	return conn;
}

__attribute__((noinline)) static struct job *job_new(long id)
{
	struct job *job = calloc(1, sizeof *job); enum { LINE = __LINE__ };
	static int said;
	if (!said++)
		record_line("site", "job_new", LINE);
	job->id = id;
	return job;
}

__attribute__((noinline)) static void accept_loop(int count)
{
	int line = 0;
	for (int i = 0; i < count; i++) {
		struct conn *conn = conn_new(i); line = __LINE__;
		conn->next = all_conns;
		all_conns = conn;
	}
	static int said;
	if (!said++)
		record_line("caller", "accept_loop", line);
}

__attribute__((noinline)) static void queue_jobs(int count)
{
	int line = 0;
	for (int i = 0; i < count; i++) {
		struct job *job = job_new(i); line = __LINE__;
		job->next = job_queue;
		job_queue = job;
	}
	record_line("caller", "queue_jobs", line);
}

__attribute__((noinline)) static void retry_jobs(int count)
{
	int line = 0;
	for (int i = 0; i < count; i++) {
		struct job *job = job_new(-i); line = __LINE__;
		job->next = retry_queue;
		retry_queue = job;
	}
	record_line("caller", "retry_jobs", line);
}

__attribute__((noinline)) static void open_sessions(int count)
{
	for (int i = 0; i < count; i++) {
		struct session *session = malloc(sizeof *session); enum { LINE = __LINE__ };
		if (i == 0)
			record_line("site", "open_sessions", LINE);
		session->user = i;
		session->next = sessions;
		sessions = session;
	}
}

/* Connections the hook never sees made. */
__attribute__((noinline)) static void unrecorded_conns(int count)
{
	for (int i = 0; i < count; i++) {
		struct conn *conn = __libc_calloc(1, sizeof *conn);
		conn->fd = -1;
		conn->next = all_conns;
		all_conns = conn;
	}
}

int main(int argc, char **argv)
{
	if (argc != 2 || (record_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		return 2;
	accept_loop(5);
	unrecorded_conns(200);
	record("phase 1\n");
	char line[16];
	if (read(STDIN_FILENO, line, sizeof line) <= 0)
		return 1;
	accept_loop(1000);
	queue_jobs(300);
	retry_jobs(100);
	open_sessions(50);
	unrecorded_conns(300);
	record("phase 2\n");
	for (;;)
		pause();
}
