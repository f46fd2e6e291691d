/* /proc parsing for capture (see proc.h). */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/array_grow.h"

int proc_read_file(const char *path, char **contents, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t capacity = 4096, used = 0;
	char *buffer = malloc(capacity);
	while (buffer != NULL) {
		char *grown = array_grow(buffer, &capacity, used + 1, 1, 4096); /* (and a NUL) */
		if (grown == NULL) {
			free(buffer);
			buffer = NULL;
			errno = ENOMEM;
			break;
		}
		buffer = grown;
		ssize_t got = read(fd, buffer + used, capacity - used - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int saved = errno;
			free(buffer);
			buffer = NULL;
			errno = saved;
			break;
		}
		if (got == 0)
			break;
		used += (size_t)got;
	}
	int saved = errno;
	close(fd);
	if (buffer == NULL) {
		errno = saved ? saved : ENOMEM;
		return -1;
	}
	buffer[used] = '\0';
	*contents = buffer;
	*size = used;
	return 0;
}

void proc_maps_free(struct proc_maps *maps)
{
	for (size_t i = 0; i < maps->count; i++)
		free(maps->mappings[i].path);
	free(maps->mappings);
	maps->mappings = NULL;
	maps->count = 0;
}

bool proc_parse_mapping(const char *line, struct proc_mapping *mapping, const char **name)
{
	uint64_t start, end, offset, inode;
	char perms[8];
	unsigned major, minor;
	int consumed = 0;
	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %" SCNu64 "%n", &start, &end,
		   perms, &offset, &major, &minor, &inode, &consumed) != 7)
		return false;
	*mapping = (struct proc_mapping){
		.start = start, .end = end, .readable = perms[0] == 'r',
		.writable = perms[1] == 'w', .executable = perms[2] == 'x',
		.shared = perms[3] == 's', .offset = offset, .inode = inode, .path = NULL};
	*name = line + consumed;
	while (**name == ' ')
		(*name)++;
	return true;
}

int proc_read_maps(pid_t pid, struct proc_maps *maps, struct hs_error *err)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	char *text;
	size_t size;
	if (proc_read_file(path, &text, &size) != 0)
		return hs_error_set_errno(err, errno, "cannot read %s", path);
	size_t capacity = 64;
	maps->count = 0;
	maps->mappings = malloc(capacity * sizeof *maps->mappings);
	if (maps->mappings == NULL) {
		free(text);
		return hs_error_nomem(err, "reading %s", path);
	}
	for (char *line = text; *line;) {
		char *newline = strchr(line, '\n');
		if (newline)
			*newline = '\0';
		struct proc_mapping mapping;
		const char *name;
		if (proc_parse_mapping(line, &mapping, &name)) {
			void *grown = array_grow(maps->mappings, &capacity, maps->count,
						 sizeof *maps->mappings, 64);
			if (grown != NULL) {
				maps->mappings = grown;
				mapping.path = strdup(name);
			}
			if (mapping.path == NULL) {
				free(text);
				proc_maps_free(maps);
				return hs_error_nomem(err, "reading %s", path);
			}
			maps->mappings[maps->count++] = mapping;
		}
		if (newline == NULL)
			break;
		line = newline + 1;
	}
	free(text);
	return 0;
}

int proc_read_smaps_flags(pid_t pid,
			  int (*visit)(void *context, const struct proc_mapping *mapping,
				       const char *flags, struct hs_error *err),
			  void *context, struct hs_error *err)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
	char *text;
	size_t size;
	if (proc_read_file(path, &text, &size) != 0)
		return hs_error_set_errno(err, errno, "cannot read %s", path);
	struct proc_mapping mapping = {0};
	int result = 0;
	for (char *line = text; line && *line && result == 0;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "VmFlags:", 8) == 0) {
			if (mapping.end > mapping.start)
				result = visit(context, &mapping, line + 8, err);
		} else {
			/* a mapping's line starts its block; "Key: value" lines follow it */
			struct proc_mapping parsed;
			const char *name;
			if (proc_parse_mapping(line, &parsed, &name))
				mapping = parsed;
		}
		line = next;
	}
	free(text);
	return result;
}

bool proc_has_vmflag(const char *flags, const char *flag)
{
	for (const char *at = flags; (at = strstr(at, flag)) != NULL; at += 2)
		if ((at == flags || at[-1] == ' ') && (at[2] == ' ' || at[2] == '\n' || at[2] == '\0'))
			return true;
	return false;
}

/* The text after "key:" on its line of a /proc status file read into *text (which the caller
 * frees), or NULL when the file cannot be read or has no such line. */
static const char *status_value(const char *path, const char *key, char **text)
{
	size_t size;
	if (proc_read_file(path, text, &size) != 0) {
		*text = NULL;
		return NULL;
	}
	size_t key_length = strlen(key);
	for (char *line = *text; line && *line;) {
		if (strncmp(line, key, key_length) == 0 && line[key_length] == ':')
			return line + key_length + 1;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return NULL;
}

long long proc_status_number(pid_t pid, const char *key)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	char *text;
	const char *value = status_value(path, key, &text);
	long long number = value ? strtoll(value, NULL, 10) : -1;
	free(text);
	return number;
}

bool proc_status_mask(pid_t pid, const char *key, uint64_t *mask)
{
	char path[64];
	if (pid == 0)
		snprintf(path, sizeof path, "/proc/self/status");
	else
		snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	char *text;
	const char *value = status_value(path, key, &text);
	if (value)
		*mask = strtoull(value, NULL, 16);
	free(text);
	return value != NULL;
}

int proc_read_stat(pid_t pid, pid_t tid, struct proc_stat *stat)
{
	char path[96];
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	char *text;
	size_t size;
	if (proc_read_file(path, &text, &size) != 0)
		return -1;
	/* the command name may hold spaces and parentheses: the fields start after the last ')' */
	char *after = strrchr(text, ')');
	int result = -1;
	if (after) {
		unsigned long long fields[20];
		char state;
		int read = sscanf(after + 1,
				  " %c %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
				  "%llu %llu %llu %llu %llu %llu %llu",
				  &state, &fields[0], &fields[1], &fields[2], &fields[3], &fields[4],
				  &fields[5], &fields[6], &fields[7], &fields[8], &fields[9],
				  &fields[10], &fields[11], &fields[12], &fields[13], &fields[14],
				  &fields[15], &fields[16], &fields[17], &fields[18]);
		if (read == 20) {
			/* fields[k] is proc(5) field k+4: ppid=4, pgrp=5, session=6, nice=19,
			 * starttime=22 */
			stat->state = state;
			stat->ppid = (int)fields[0];
			stat->pgrp = (int)fields[1];
			stat->session = (int)fields[2];
			stat->flags = (unsigned long)fields[5];
			stat->nice = (long)(long long)fields[15];
			stat->start_ticks = fields[18];
			result = 0;
		}
	}
	free(text);
	return result;
}

void proc_thread_name(pid_t pid, pid_t tid, char name[16])
{
	char path[96];
	snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	memset(name, 0, 16);
	char *text;
	size_t size;
	if (proc_read_file(path, &text, &size) != 0)
		return;
	char *newline = strchr(text, '\n');
	if (newline)
		*newline = '\0';
	strncpy(name, text, 15);
	free(text);
}

void proc_boot_id(char *id, size_t size)
{
	id[0] = '\0';
	char *text;
	size_t length;
	if (proc_read_file("/proc/sys/kernel/random/boot_id", &text, &length) != 0)
		return;
	char *newline = strchr(text, '\n');
	if (newline)
		*newline = '\0';
	snprintf(id, size, "%s", text);
	free(text);
}
