/* Reading what /proc says about a process: its mappings, status fields, small files, and the
 * boot it runs in. The one reader of these files: live capture, and the analysis when it asks
 * whether the process a snapshot was taken of still runs. Nothing here stops or changes the
 * process. */
#ifndef HEAPSNAP_PROC_H
#define HEAPSNAP_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

struct proc_mapping {
	uint64_t start, end;
	bool readable, writable, executable, shared;
	uint64_t offset; /* file offset of start */
	uint64_t inode;	 /* 0 for anonymous memory */
	char *path;	 /* "" for anonymous, "[heap]", "/usr/lib/...", "/x (deleted)" */
};

struct proc_maps {
	struct proc_mapping *mappings;
	size_t count;
};

int proc_read_maps(pid_t pid, struct proc_maps *maps, struct hs_error *err);
void proc_maps_free(struct proc_maps *maps);

/* Parses one line of /proc/PID/maps, which also starts each mapping's block in
 * /proc/PID/smaps: false when the line is not one. mapping->path is left NULL; *name points at
 * the line's path ("" for anonymous memory). */
bool proc_parse_mapping(const char *line, struct proc_mapping *mapping, const char **name);

/* Reads /proc/PID/smaps and calls visit(context, mapping, flags, err) with each mapping's VmFlags
 * ("rd wr mr mw me ac dc"; mapping->path NULL), until one fails; fails when the file cannot be
 * read or a visit fails. */
int proc_read_smaps_flags(pid_t pid,
			  int (*visit)(void *context, const struct proc_mapping *mapping,
				       const char *flags, struct hs_error *err),
			  void *context, struct hs_error *err);

/* Whether VmFlags `flags` hold the two-letter flag `flag` ("dc"). */
bool proc_has_vmflag(const char *flags, const char *flag);

/* Reads a whole /proc file (sizes of /proc files are not known in advance). NUL-terminates the
 * buffer (not counted in *size). Returns -1 with errno set on failure. */
int proc_read_file(const char *path, char **contents, size_t *size);

/* The first number of a "Key:\tvalue" line of /proc/PID/status (for Uid: and Gid:, the real id),
 * or -1 when absent. */
long long proc_status_number(pid_t pid, const char *key);

/* A hexadecimal "Key:\tvalue" line of /proc/PID/status (CapEff:, SigBlk:), /proc/self/status
 * for pid 0; false when absent. */
bool proc_status_mask(pid_t pid, const char *key, uint64_t *mask);

/* Fields of /proc/PID/stat after the command name; field numbers as in proc(5). */
struct proc_stat {
	char state;
	int ppid, pgrp, session;
	unsigned long flags; /* the kernel's PF_* flags (PF_KTHREAD: a kernel thread) */
	long nice;
	unsigned long long start_ticks;
};
int proc_read_stat(pid_t pid, pid_t tid, struct proc_stat *stat);

/* The thread's name from /proc/PID/task/TID/comm, without the newline. */
void proc_thread_name(pid_t pid, pid_t tid, char name[16]);

/* This boot's id (/proc/sys/kernel/random/boot_id), without the newline; "" when unknown. */
void proc_boot_id(char *id, size_t size);

#endif
