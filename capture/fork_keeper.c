/* The keeper process of a capture by fork (see fork_keeper.h): its loop, and heapsnap's side of
 * the pipe. One byte per command; each command gets one reply (a struct keeper_reply, then the
 * frozen threads after a freeze). */
#include "fork_keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/fork_clone.h"
#include "capture/inject.h"
#include "capture/proc.h"

enum keeper_command {
	KEEPER_FREEZE = 'F',
	KEEPER_CLONE = 'C',
	KEEPER_THAW = 'T',
	KEEPER_KILL_CLONE = 'K', /* no reply */
	KEEPER_FINISH = 'R',
};

struct keeper_reply {
	int status; /* 0, or -1 with `error` */
	pid_t child;
	uint64_t thread_count; /* after KEEPER_FREEZE: that many struct frozen_thread follow */
	uint64_t pause_ns;     /* after KEEPER_FINISH: the reaping stop */
	struct hs_error error;
};

static int write_all(int fd, const void *data, size_t size)
{
	const char *at = data;
	while (size > 0) {
		ssize_t written = write(fd, at, size);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			return -1;
		at += written;
		size -= (size_t)written;
	}
	return 0;
}

/* 0 when all `size` bytes came, -1 at the end of the pipe or on an error */
static int read_all(int fd, void *data, size_t size)
{
	char *at = data;
	while (size > 0) {
		ssize_t got = read(fd, at, size);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		at += got;
		size -= (size_t)got;
	}
	return 0;
}

/* ---- the keeper ---- */

struct keeper_state {
	pid_t target;
	struct frozen_process frozen;
	struct fork_clone clone;
	uint64_t syscall_address;
	struct hs_error syscall_error; /* why there is no syscall_address */
	bool have_syscall;
};

static void keeper_reply_send(int fd, const struct keeper_reply *reply)
{
	/* heapsnap gone: EPIPE (SIGPIPE is blocked); the next read of a command ends the keeper */
	write_all(fd, reply, sizeof *reply);
}

static void keeper_let_go(struct keeper_state *state)
{
	thaw_process(&state->frozen);
	uint64_t pause_ns;
	struct hs_error ignored;
	fork_clone_remove(&state->clone, &pause_ns, &ignored);
	frozen_process_free(&state->frozen);
}

static void keeper_freeze(struct keeper_state *state, int reply_fd)
{
	struct keeper_reply reply = {0};
	frozen_process_free(&state->frozen);
	reply.status = freeze_process(state->target, &state->frozen, &reply.error);
	if (reply.status == 0)
		reply.thread_count = state->frozen.count;
	keeper_reply_send(reply_fd, &reply);
	if (reply.status == 0)
		write_all(reply_fd, state->frozen.threads,
			  state->frozen.count * sizeof *state->frozen.threads);
}

static void keeper_clone(struct keeper_state *state, int reply_fd)
{
	struct keeper_reply reply = {0};
	if (!state->have_syscall) {
		reply.status = -1;
		reply.error = state->syscall_error;
	} else {
		reply.status = fork_clone_make(&state->frozen, state->syscall_address,
					       &state->clone, &reply.error);
	}
	reply.child = reply.status == 0 ? state->clone.child : 0;
	keeper_reply_send(reply_fd, &reply);
}

static _Noreturn void keeper_main(pid_t target, int command_fd, int reply_fd)
{
	/* out of heapsnap's session and process group, deaf to every signal SIGKILL aside, and
	 * spared by the OOM killer where we may ask it: it ends when heapsnap's pipe closes */
	setsid();
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	prctl(PR_SET_NAME, "heapsnap-keeper");
	int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (oom >= 0) {
		if (write(oom, "-1000", 5) < 0) { /* without CAP_SYS_RESOURCE: as it was */
		}
		close(oom);
	}
	struct keeper_state state = {.target = target};
	struct proc_maps maps = {0};
	if (proc_read_maps(target, &maps, &state.syscall_error) == 0 &&
	    inject_find_syscall(target, &maps, &state.syscall_address, &state.syscall_error) == 0)
		state.have_syscall = true;
	proc_maps_free(&maps);
	for (;;) {
		unsigned char command;
		if (read_all(command_fd, &command, 1) != 0)
			break;
		if (command == KEEPER_FREEZE) {
			keeper_freeze(&state, reply_fd);
		} else if (command == KEEPER_CLONE) {
			keeper_clone(&state, reply_fd);
		} else if (command == KEEPER_THAW) {
			thaw_process(&state.frozen);
			struct keeper_reply reply = {0};
			keeper_reply_send(reply_fd, &reply);
		} else if (command == KEEPER_KILL_CLONE) {
			struct hs_error ignored; /* fork_clone_remove says it again */
			fork_clone_kill(&state.clone, &ignored);
		} else if (command == KEEPER_FINISH) {
			thaw_process(&state.frozen);
			struct keeper_reply reply = {0};
			reply.status = fork_clone_remove(&state.clone, &reply.pause_ns, &reply.error);
			keeper_reply_send(reply_fd, &reply);
			break;
		}
	}
	keeper_let_go(&state);
	_exit(0);
}

/* ---- heapsnap's side ---- */

int fork_keeper_start(pid_t target, struct fork_keeper *keeper, struct hs_error *err)
{
	memset(keeper, 0, sizeof *keeper);
	keeper->command_fd = keeper->reply_fd = -1;
	keeper->target = target;
	int commands[2], replies[2];
	if (pipe2(commands, O_CLOEXEC) != 0)
		return hs_error_set_errno(err, errno, "cannot make a pipe for the capture of pid %d",
					  (int)target);
	if (pipe2(replies, O_CLOEXEC) != 0) {
		close(commands[0]);
		close(commands[1]);
		return hs_error_set_errno(err, errno, "cannot make a pipe for the capture of pid %d",
					  (int)target);
	}
	fflush(NULL); /* nothing buffered is written twice */
	pid_t pid = fork();
	if (pid == 0) {
		close(commands[1]);
		close(replies[0]);
		keeper_main(target, commands[0], replies[1]);
	}
	close(commands[0]);
	close(replies[1]);
	if (pid < 0) {
		close(commands[1]);
		close(replies[0]);
		return hs_error_set_errno(err, errno, "cannot start the process that holds pid %d "
						      "during a capture by fork",
					  (int)target);
	}
	keeper->pid = pid;
	keeper->command_fd = commands[1];
	keeper->reply_fd = replies[0];
	return 0;
}

/* Sends one command; false when the keeper is gone. */
static bool keeper_send(struct fork_keeper *keeper, enum keeper_command command)
{
	unsigned char byte = (unsigned char)command;
	sigset_t pipe_signal, previous;
	sigemptyset(&pipe_signal);
	sigaddset(&pipe_signal, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
	bool sent = keeper->pid > 0 && write_all(keeper->command_fd, &byte, 1) == 0;
	pthread_sigmask(SIG_SETMASK, &previous, NULL);
	return sent;
}

static int keeper_lost(const struct fork_keeper *keeper, struct hs_error *err)
{
	return hs_error_set_code(err, HS_ERR_HOLD_LOST,
				 "the process holding pid %d for the capture (heapsnap-keeper, pid "
				 "%d) ended unexpectedly",
				 (int)keeper->target, (int)keeper->pid);
}

/* Reads the reply to the last command, when `sent`; -1 with a message when the keeper is gone
 * (HS_ERR_HOLD_LOST) or failed. */
static int keeper_receive(struct fork_keeper *keeper, bool sent, struct keeper_reply *reply,
			  struct hs_error *err)
{
	memset(reply, 0, sizeof *reply);
	if (!sent || read_all(keeper->reply_fd, reply, sizeof *reply) != 0)
		return keeper_lost(keeper, err);
	if (reply->status != 0) {
		*err = reply->error;
		return -1;
	}
	return 0;
}

static int keeper_ask(struct fork_keeper *keeper, enum keeper_command command,
		      struct keeper_reply *reply, struct hs_error *err)
{
	bool sent = keeper_send(keeper, command);
	return keeper_receive(keeper, sent, reply, err);
}

int fork_keeper_freeze(struct fork_keeper *keeper, struct frozen_process *frozen,
		       struct hs_error *err)
{
	memset(frozen, 0, sizeof *frozen);
	frozen->pid = keeper->target;
	struct keeper_reply reply;
	if (keeper_ask(keeper, KEEPER_FREEZE, &reply, err) != 0)
		return -1;
	if (reply.thread_count == 0 || reply.thread_count > (1u << 22))
		return hs_error_set(err, "the process holding pid %d sent %llu threads",
				    (int)keeper->target, (unsigned long long)reply.thread_count);
	frozen->threads = calloc(reply.thread_count, sizeof *frozen->threads);
	if (frozen->threads == NULL)
		return hs_error_nomem(err, "for the %llu threads of pid %d",
				      (unsigned long long)reply.thread_count, (int)keeper->target);
	if (read_all(keeper->reply_fd, frozen->threads,
		     reply.thread_count * sizeof *frozen->threads) != 0)
		return hs_error_set_code(err, HS_ERR_HOLD_LOST,
					 "the process holding pid %d for the capture ended "
					 "unexpectedly",
					 (int)keeper->target);
	frozen->count = frozen->capacity = reply.thread_count;
	for (size_t i = 0; i < frozen->count; i++)
		frozen->threads[i].seized = false; /* the keeper's, not ours */
	return 0;
}

int fork_keeper_clone(struct fork_keeper *keeper, pid_t *child, struct hs_error *err)
{
	struct keeper_reply reply;
	*child = 0;
	if (keeper_ask(keeper, KEEPER_CLONE, &reply, err) != 0)
		return -1;
	*child = reply.child;
	return 0;
}

int fork_keeper_thaw(struct fork_keeper *keeper, struct hs_error *err)
{
	struct keeper_reply reply;
	return keeper_ask(keeper, KEEPER_THAW, &reply, err);
}

void fork_keeper_release(struct fork_keeper *keeper)
{
	if (!keeper->released)
		keeper_send(keeper, KEEPER_KILL_CLONE);
	keeper->released = true;
}

int fork_keeper_finish(struct fork_keeper *keeper, uint64_t *pause_ns, struct hs_error *err)
{
	struct keeper_reply reply;
	bool sent = keeper_send(keeper, KEEPER_FINISH);
	int result = keeper_receive(keeper, sent, &reply, err);
	*pause_ns = reply.pause_ns;
	fork_keeper_stop(keeper);
	return result;
}

void fork_keeper_stop(struct fork_keeper *keeper)
{
	if (keeper->command_fd >= 0)
		close(keeper->command_fd);
	if (keeper->reply_fd >= 0)
		close(keeper->reply_fd);
	keeper->command_fd = keeper->reply_fd = -1;
	if (keeper->pid > 0) {
		/* it lets the target go and removes the clone on its own, then exits */
		while (waitpid(keeper->pid, NULL, 0) < 0 && errno == EINTR)
			;
		keeper->pid = 0;
	}
}
