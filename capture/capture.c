/* Live capture (see capture.h). The order of work is chosen for the target's sake: everything that
 * can be done while it runs (naming the output, build-ids, compression, writing) is done outside
 * the freeze; inside it we only list threads and mappings, read registers and copy memory. */
#include "capture.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "capture/capture_plan.h"
#include "capture/capture_session.h"
#include "capture/fork_clone.h"
#include "capture/fork_keeper.h"
#include "capture/freeze.h"
#include "capture/precopy.h"
#include "capture/proc.h"
#include "capture/process_memory.h"
#include "formats/core_image.h"
#include "formats/elf_build_id.h"
#include "formats/snapshot.h"
#include "formats/snapshot_file.h"
#include "formats/snapshot_notes.h"
#include "common/clock.h"

#define PF_KTHREAD 0x00200000 /* the kernel's flag of a kernel thread (/proc/PID/stat) */

#ifndef HEAPSNAP_VERSION
#define HEAPSNAP_VERSION "unknown"
#endif


/* The range lists are written out as HEAPSNAP range notes as they are. */
_Static_assert(sizeof(struct address_range) == sizeof(struct heapsnap_range_note) &&
		       offsetof(struct address_range, end) == offsetof(struct heapsnap_range_note, end),
	       "address_range and heapsnap_range_note must share their layout");
void capture_fill_host_info(struct snapshot_info *info, const char *source)
{
	snprintf(info->tool_version, sizeof info->tool_version, "%s", HEAPSNAP_VERSION);
	snprintf(info->source, sizeof info->source, "%s", source);
	struct utsname name;
	if (uname(&name) == 0)
		snprintf(info->kernel_release, sizeof info->kernel_release, "%s", name.release);
	proc_boot_id(info->boot_id, sizeof info->boot_id);
}

/* Gone, or a zombie waiting for its parent: either way it has no memory any more. */
static bool process_is_gone(pid_t pid)
{
	struct proc_stat stat;
	return proc_read_stat(pid, pid, &stat) != 0 || stat.state == 'Z' || stat.state == 'X';
}

static uint32_t segment_flags(const struct proc_mapping *mapping)
{
	return (mapping->readable ? PF_R : 0) | (mapping->writable ? PF_W : 0) |
	       (mapping->executable ? PF_X : 0);
}

static void fill_prstatus(struct elf_prstatus *status, const struct frozen_thread *thread,
			  const struct proc_stat *stat)
{
	memset(status, 0, sizeof *status);
	status->pr_info.si_signo = thread->pending_signal;
	status->pr_cursig = (short)thread->pending_signal;
	status->pr_pid = thread->tid;
	status->pr_ppid = stat->ppid;
	status->pr_pgrp = stat->pgrp;
	status->pr_sid = stat->session;
	memcpy(&status->pr_reg, &thread->registers, sizeof status->pr_reg);
	status->pr_fpvalid = thread->has_fp_registers;
}

static int add_thread_notes(struct core_image *image, const struct frozen_thread *thread,
			    const struct proc_stat *stat, struct hs_error *err)
{
	struct elf_prstatus status;
	fill_prstatus(&status, thread, stat);
	if (core_image_add_note(image, "CORE", NT_PRSTATUS, &status, sizeof status, err) != 0)
		return -1;
	if (thread->has_fp_registers &&
	    core_image_add_note(image, "CORE", NT_PRFPREG, &thread->fp_registers,
				sizeof thread->fp_registers, err) != 0)
		return -1;
	return 0;
}

static int add_prpsinfo(struct core_image *image, pid_t pid, const struct proc_stat *stat,
			struct hs_error *err)
{
	struct elf_prpsinfo info;
	memset(&info, 0, sizeof info);
	static const char states[] = "RSDTZW";
	const char *found = strchr(states, stat->state);
	info.pr_state = found ? (char)(found - states) : 0;
	info.pr_sname = stat->state;
	info.pr_zomb = stat->state == 'Z';
	info.pr_nice = (char)stat->nice;
	info.pr_uid = (__pr_uid_t)proc_status_number(pid, "Uid");
	info.pr_gid = (__pr_gid_t)proc_status_number(pid, "Gid");
	info.pr_pid = pid;
	info.pr_ppid = stat->ppid;
	info.pr_pgrp = stat->pgrp;
	info.pr_sid = stat->session;
	proc_thread_name(pid, pid, info.pr_fname);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	char *text;
	size_t size;
	if (proc_read_file(path, &text, &size) == 0) {
		size_t keep = size < sizeof info.pr_psargs - 1 ? size : sizeof info.pr_psargs - 1;
		for (size_t i = 0; i < keep; i++)
			info.pr_psargs[i] = text[i] ? text[i] : ' ';
		while (keep > 0 && info.pr_psargs[keep - 1] == ' ')
			info.pr_psargs[--keep] = '\0';
		free(text);
	}
	return core_image_add_note(image, "CORE", NT_PRPSINFO, &info, sizeof info, err);
}

static int add_auxv(struct core_image *image, pid_t pid, struct hs_error *err)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/auxv", (int)pid);
	char *text;
	size_t size;
	if (proc_read_file(path, &text, &size) != 0)
		return 0; /* the process may have exited since; its memory is already copied */
	int result = core_image_add_note(image, "CORE", NT_AUXV, text, size, err);
	free(text);
	return result;
}

/* NT_FILE: count, page size, {start, end, file page} per file mapping, then their names. */
static int add_file_note(struct core_image *image, const struct proc_maps *maps,
			 struct hs_error *err)
{
	uint64_t count = 0;
	size_t names_size = 0;
	for (size_t i = 0; i < maps->count; i++)
		if (maps->mappings[i].inode != 0) {
			count++;
			names_size += strlen(maps->mappings[i].path) + 1;
		}
	size_t size = 16 + count * 24 + names_size;
	uint8_t *desc = malloc(size);
	if (desc == NULL)
		return hs_error_nomem(err, "building NT_FILE");
	uint64_t page_size = CAPTURE_PAGE_BYTES;
	memcpy(desc, &count, 8);
	memcpy(desc + 8, &page_size, 8);
	uint8_t *entry = desc + 16;
	char *name = (char *)desc + 16 + count * 24;
	for (size_t i = 0; i < maps->count; i++) {
		const struct proc_mapping *mapping = &maps->mappings[i];
		if (mapping->inode == 0)
			continue;
		uint64_t values[3] = {mapping->start, mapping->end, mapping->offset / CAPTURE_PAGE_BYTES};
		memcpy(entry, values, sizeof values);
		entry += sizeof values;
		size_t length = strlen(mapping->path) + 1;
		memcpy(name, mapping->path, length);
		name += length;
	}
	int result = core_image_add_note(image, "CORE", NT_FILE, desc, size, err);
	free(desc);
	return result;
}

/* A module is a file mapped from offset 0 whose first page is an ELF header. Its build-id comes
 * from that page when the note lies inside it, else from the file (through map_files, which still
 * works when the file was replaced or deleted). */
static int add_module_notes(struct core_image *image, pid_t pid, const struct capture_plan *plan,
			    size_t *module_count, struct hs_error *err)
{
	*module_count = 0;
	for (size_t i = 0; i < plan->count; i++) {
		const struct planned_region *region = &plan->regions[i];
		const struct proc_mapping *mapping = region->mapping;
		if (mapping->inode == 0 || mapping->offset != 0 || region->read_size < 64 ||
		    !elf_image_is_elf(region->data, region->read_size))
			continue;
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = plan->regions[j].mapping->inode == mapping->inode &&
			       plan->regions[j].mapping->offset == 0 &&
			       strcmp(plan->regions[j].mapping->path, mapping->path) == 0;
		if (seen)
			continue;
		uint8_t build_id[ELF_BUILD_ID_MAX];
		size_t size = elf_build_id_from_image(region->data, region->read_size, build_id);
		if (size == 0) {
			char path[128];
			snprintf(path, sizeof path, "/proc/%d/map_files/%llx-%llx", (int)pid,
				 (unsigned long long)mapping->start, (unsigned long long)mapping->end);
			size = elf_build_id_from_file(path, build_id);
			if (size == 0)
				size = elf_build_id_from_file(mapping->path, build_id);
		}
		if (snapshot_notes_add_module(image, mapping->start, build_id, size, mapping->path,
					      err) != 0)
			return -1;
		(*module_count)++;
	}
	return 0;
}

/* heapsnap-PID-YYYYmmddTHHMMSS.snap (UTC), with -2, -3... when that name is taken. */
/* YYYYmmddTHHMMSS in UTC, computed here rather than with gmtime_r, which takes the time zone
 * lock: the hook's forked child must not wait on a lock a vanished thread may hold. */
static void utc_stamp(uint64_t when_ns, char out[32])
{
	int64_t seconds = (int64_t)(when_ns / 1000000000u);
	int64_t days = seconds / 86400, rest = seconds % 86400;
	/* civil date from days since 1970-01-01 (Howard Hinnant's algorithm) */
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t day_of_era = z - era * 146097;
	int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 -
			       day_of_era / 146096) / 365;
	int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
	int64_t month_index = (5 * day_of_year + 2) / 153;
	int64_t day = day_of_year - (153 * month_index + 2) / 5 + 1;
	int64_t month = month_index < 10 ? month_index + 3 : month_index - 9;
	int64_t year = year_of_era + era * 400 + (month <= 2);
	/* (each field reduced to its digits, so the compiler sees the text fits) */
	snprintf(out, 32, "%04u%02u%02uT%02u%02u%02u", (unsigned)year % 10000u,
		 (unsigned)month % 100u, (unsigned)day % 100u, (unsigned)(rest / 3600) % 100u,
		 (unsigned)(rest / 60 % 60) % 100u, (unsigned)(rest % 60) % 100u);
}

void capture_default_path(pid_t pid, uint64_t when_ns, const char *directory, char *out,
			  size_t out_size)
{
	char stamp[32];
	utc_stamp(when_ns, stamp);
	const char *slash = directory && directory[0] ? "/" : "";
	if (directory == NULL)
		directory = "";
	snprintf(out, out_size, "%s%sheapsnap-%d-%s.snap", directory, slash, (int)pid, stamp);
}

/* Writes the image under the name asked for, or under the first free default name (taken when the
 * file is linked in, so that writers in the same second never replace each other's). */
static int write_snapshot(const struct core_image *image, pid_t pid, uint64_t capture_start_ns,
			  const struct capture_options *options,
			  const struct seekable_options *compression, struct capture_result *result,
			  struct seekable_stats *stats, struct hs_error *err)
{
	if (options->output_path) {
		snprintf(result->path, sizeof result->path, "%s", options->output_path);
		return snapshot_file_write(image, result->path, NULL, compression, stats, err);
	}
	capture_default_path(pid, capture_start_ns, options->default_directory, result->path,
			     sizeof result->path);
	return snapshot_file_write_new(image, result->path, sizeof result->path, compression, stats,
				       err);
}

/* `pid` is the process the snapshot is of; `memory_pid` the one whose /proc files describe its
 * memory (itself, or for the hook the fork holding its copy). */
static int build_image(struct core_image *image, pid_t pid, pid_t memory_pid,
		       const struct frozen_process *frozen, const struct proc_maps *maps,
		       const struct capture_plan *plan, const struct range_list *absent,
		       struct snapshot_info *info, struct capture_result *result,
		       struct hs_error *err)
{
	struct proc_stat stat = {0};
	proc_read_stat(pid, pid, &stat);
	info->process_start_ticks = stat.start_ticks;

	/* the kernel's order, which gdb relies on: the first thread (the leader, which gdb shows as
	 * current), the process-wide notes, then the other threads */
	const struct frozen_thread **order = calloc(frozen->count + 1, sizeof *order);
	struct heapsnap_thread_note *names = calloc(frozen->count + 1, sizeof *names);
	struct range_list zero = {0};
	if (order == NULL || names == NULL) {
		free(order);
		free(names);
		return hs_error_nomem(err, "building the snapshot");
	}
	size_t thread_count = 0;
	for (int leader_pass = 1; leader_pass >= 0; leader_pass--)
		for (size_t i = 0; i < frozen->count; i++) {
			const struct frozen_thread *thread = &frozen->threads[i];
			if (thread->stopped && thread->has_registers &&
			    (thread->tid == pid) == (leader_pass == 1))
				order[thread_count++] = thread;
		}
	/* a process has a thread; none readable means it died between its freeze and here */
	int failed = thread_count == 0
			     ? hs_error_set_code(err, HS_ERR_GONE,
						 "pid %d exited during capture (no thread's "
						 "registers could be read); no snapshot written",
						 (int)pid)
			     : 0;
	for (size_t i = 0; i < thread_count && !failed; i++) {
		failed = add_thread_notes(image, order[i], &stat, err);
		if (!failed && i == 0)
			failed = add_prpsinfo(image, pid, &stat, err) ||
				 add_auxv(image, memory_pid, err) || add_file_note(image, maps, err);
		names[i].tid = (uint32_t)order[i]->tid;
		memcpy(names[i].name, order[i]->name, sizeof order[i]->name);
	}
	free(order);
	for (size_t i = 0; i < plan->count && !failed; i++)
		if (plan->regions[i].untouched &&
		    range_list_add(&zero, plan->regions[i].start, plan->regions[i].end) != 0)
			failed = hs_error_nomem(err, "building the snapshot");
	failed = failed || snapshot_notes_add_info(image, info, err) ||
		 snapshot_notes_add_layout(image, err) ||
		 snapshot_notes_add_threads(image, names, thread_count, err) ||
		 add_module_notes(image, memory_pid, plan, &result->modules, err) ||
		 snapshot_notes_add_ranges(image, HEAPSNAP_NOTE_ABSENT,
					   (const struct heapsnap_range_note *)absent->ranges,
					   absent->count, err) ||
		 snapshot_notes_add_ranges(image, HEAPSNAP_NOTE_ZERO,
					   (const struct heapsnap_range_note *)zero.ranges,
					   zero.count, err);
	free(names);
	range_list_free(&zero);
	if (failed)
		return -1;
	result->threads = thread_count;

	for (size_t i = 0; i < plan->count; i++) {
		const struct planned_region *region = &plan->regions[i];
		uint64_t stored = region->read_size;
		/* a first page kept for its ELF header is only worth keeping if it is one */
		if (region->header_page && !elf_image_is_elf(region->data, stored))
			stored = 0;
		struct core_segment segment = {.type = PT_LOAD,
					       .flags = segment_flags(region->mapping),
					       .vaddr = region->start,
					       .memsz = region->end - region->start,
					       .filesz = stored,
					       .align = CAPTURE_PAGE_BYTES,
					       .data = region->data,
					       .source = region->source};
		if (core_image_add_segment(image, &segment, err) != 0)
			return -1;
		result->memory_bytes += stored;
	}
	result->regions = plan->count;
	for (size_t i = 0; i < absent->count; i++)
		result->absent_bytes += absent->ranges[i].end - absent->ranges[i].start;
	return 0;
}

/* What no capture can take (not a process, heapsnap itself, a kernel thread, a zombie, one
 * another tracer holds, one whose maps are not ours to read), said for what it is before
 * ptrace's EPERM says less. */
static int check_target(pid_t pid, struct hs_error *err)
{
	if (pid <= 0)
		return hs_error_set_code(err, HS_ERR_INVALID, "%d is not a valid pid", (int)pid);
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return explain_attach_failure(pid, ESRCH, err);
	if (pid == getpid())
		return hs_error_set_code(err, HS_ERR_INVALID,
					 "pid %d is heapsnap itself; a process cannot ptrace "
					 "itself (use the in-process hook)",
					 (int)pid);
	struct proc_stat stat;
	if (proc_read_stat(pid, pid, &stat) == 0) {
		if (stat.flags & PF_KTHREAD)
			return hs_error_set_code(err, HS_ERR_UNSUPPORTED,
						 "pid %d is a kernel thread: it has no user memory "
						 "and no heap to capture",
						 (int)pid);
		if (stat.state == 'Z')
			return hs_error_set_code(err, HS_ERR_GONE,
						 "pid %d is a zombie: it has exited and its memory "
						 "is gone; only its parent (pid %d) reaping it "
						 "remains",
						 (int)pid, stat.ppid);
	}
	long long tracer = proc_status_number(pid, "TracerPid");
	if (tracer > 0)
		return explain_attach_failure(pid, EPERM, err);
	/* /proc/PID/maps needs the same permission as ptrace: find out before planning anything */
	char maps_path[64];
	snprintf(maps_path, sizeof maps_path, "/proc/%d/maps", (int)pid);
	int probe = open(maps_path, O_RDONLY | O_CLOEXEC);
	if (probe < 0)
		return explain_attach_failure(pid, errno == ENOENT ? ESRCH : EPERM, err);
	close(probe);
	return 0;
}

/* The one fallback, from fork to freeze: the fork method's reason is kept for the message. */
static void fall_back(struct capture_session *session, const struct hs_error *why)
{
	snprintf(session->result->fork_declined, sizeof session->result->fork_declined, "%s",
		 why->message);
}

int capture_session_plan(struct capture_session *session, struct process_memory *memory,
			 struct hs_error *err)
{
	if (session->planned)
		return 0;
	if (capture_plan_make(&session->maps, memory, &session->plan, err) != 0)
		return -1;
	session->planned = true;
	return 0;
}

static void session_free(struct capture_session *session)
{
	static const struct capture_method *const methods[] = {&capture_method_fork,
							       &capture_method_freeze};
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		methods[i]->free(session);
	copy_buffer_release(&session->buffer);
	core_image_free(&session->image);
	range_list_free(&session->absent);
	capture_plan_free(&session->plan);
	proc_maps_free(&session->maps);
	frozen_process_free(&session->frozen);
	process_memory_close(&session->memory);
}

/* While the target runs: the mappings planned (for the size of the copy and the pre-copy) and
 * the method prepared; fork falls back to freeze here when it is not safe. */
static int session_prepare(struct capture_session *session, struct hs_error *err)
{
	pid_t pid = session->pid;
	if (proc_read_maps(pid, &session->maps, err) != 0 ||
	    capture_plan_make(&session->maps, &session->memory, &session->plan, err) != 0) {
		if (process_is_gone(pid))
			hs_error_set_code(err, HS_ERR_GONE,
					  "pid %d exited during capture; no snapshot written",
					  (int)pid);
		return -1;
	}
	session->stopper = session->options->method == CAPTURE_METHOD_FREEZE ? &capture_method_freeze
									    : &capture_method_fork;
	int prepared = session->stopper->prepare(session, err);
	if (prepared != 0 && err->code == HS_ERR_UNSUPPORTED && session->stopper != &capture_method_freeze) {
		fall_back(session, err);
		session->stopper = &capture_method_freeze;
		prepared = session->stopper->prepare(session, err);
	}
	session->taker = session->stopper;
	/* planned again once the target is stopped */
	proc_maps_free(&session->maps);
	capture_plan_free(&session->plan);
	return prepared;
}

/* The stop: the target stopped, its mappings read and planned (unless the method plans once it
 * runs again), its memory taken, and the target let go. False when the take failed (err says
 * why); the target runs again either way. */
static bool session_take(struct capture_session *session, struct hs_error *err)
{
	const struct capture_method *method = session->stopper;
	session->read_before_freeze = session->memory.bytes_read;
	session->frozen_at = monotonic_ns();
	bool taken = proc_read_maps(session->pid, &session->maps, err) == 0 &&
		     (method->plans_later(session) ||
		      capture_session_plan(session, &session->memory, err) == 0);
	session->planned_at = monotonic_ns();
	if (taken && method->take(session, err) != 0) {
		taken = false;
		if (err->code == HS_ERR_UNSUPPORTED && method != &capture_method_freeze) {
			/* the stopper holds the target still: copied by freeze */
			fall_back(session, err);
			session->taker = &capture_method_freeze;
			taken = session->taker->take(session, err) == 0;
		}
	}
	session->copied_at = monotonic_ns();
	taken = method->resume(session, taken, err) == 0 && taken;
	session->pause_end = monotonic_ns();
	session->info.capture_end_ns = realtime_ns();
	if (method->finish && method->finish(session, taken, err) != 0)
		taken = false;
	return taken;
}

static int add_hook_notes(struct capture_session *session, struct hs_error *err)
{
	const struct capture_hooks *hooks = session->options->hooks;
	return hooks && hooks->add_notes
		       ? hooks->add_notes(hooks->arg, &session->info, &session->image, err)
		       : 0;
}

/* The snapshot built and written; a byte source that fails during the write (HS_ERR_FAULT) has
 * its memory copied, and the write starts over. */
static int session_write(struct capture_session *session, struct hs_error *err)
{
	pid_t pid = session->pid;
	struct capture_result *result = session->result;
	if (add_hook_notes(session, err) != 0 ||
	    build_image(&session->image, pid, pid, &session->frozen, &session->maps, &session->plan,
			&session->absent, &session->info, result, err) != 0)
		return -1;
	struct seekable_stats stats = {0};
	uint64_t write_start = monotonic_ns();
	const struct capture_options *options = session->options;
	int written = write_snapshot(&session->image, pid, session->info.capture_start_ns, options,
				     &options->compression, result, &stats, err);
	if (written != 0 && err->code == HS_ERR_FAULT && session->taker->recopy) {
		core_image_free(&session->image);
		core_image_init(&session->image);
		result->memory_bytes = result->absent_bytes = 0;
		written = session->taker->recopy(session, err) != 0 ||
			  add_hook_notes(session, err) != 0 ||
			  build_image(&session->image, pid, pid, &session->frozen, &session->maps,
				      &session->plan, &session->absent, &session->info, result,
				      err) != 0 ||
			  write_snapshot(&session->image, pid, session->info.capture_start_ns,
					 options, &options->compression, result, &stats, err) != 0;
	}
	if (session->stopper->written)
		session->stopper->written(session, written == 0);
	if (written != 0)
		return -1;
	result->phase_ns[CAPTURE_PHASE_WRITE] = monotonic_ns() - write_start;
	result->file_bytes = stats.output_bytes;
	return 0;
}

int capture_process(pid_t pid, const struct capture_options *options, struct capture_result *result,
		    struct hs_error *err)
{
	memset(result, 0, sizeof *result);
	if (check_target(pid, err) != 0)
		return -1;
	struct capture_session session = {.pid = pid, .options = options, .result = result};
	capture_fill_host_info(&session.info, "ptrace");
	session.info.pid = pid;
	char link[64];
	snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
	ssize_t length = readlink(link, session.info.exe, sizeof session.info.exe - 1);
	if (length > 0)
		session.info.exe[length] = '\0';
	process_memory_open(&session.memory, pid, err);
	session.memory.use_mem_fd = options->use_proc_mem;
	core_image_init(&session.image);
	int status = -1;
	if (session_prepare(&session, err) != 0)
		goto done;

	/* SIGINT/SIGTERM wait until the target runs again; SIGKILL cannot, and the kernel then
	 * detaches the target for us */
	sigset_t deferred, previous;
	sigemptyset(&deferred);
	sigaddset(&deferred, SIGINT);
	sigaddset(&deferred, SIGTERM);
	sigaddset(&deferred, SIGHUP);
	sigaddset(&deferred, SIGQUIT);
	sigprocmask(SIG_BLOCK, &deferred, &previous);
	session.info.capture_start_ns = realtime_ns();
	session.pause_start = monotonic_ns();
	if (session.stopper->stop(&session, err) != 0) {
		sigprocmask(SIG_SETMASK, &previous, NULL);
		goto done;
	}
	if (options->hooks && options->hooks->stopped)
		options->hooks->stopped(options->hooks->arg);
	bool taken = session_take(&session, err);
	result->method = session.taker->kind;
	snprintf(session.info.method, sizeof session.info.method, "%s", session.taker->name);
	result->phase_ns[CAPTURE_PHASE_FREEZE] = session.frozen_at - session.pause_start;
	result->phase_ns[CAPTURE_PHASE_PLAN] = session.planned_at - session.frozen_at;
	result->phase_ns[CAPTURE_PHASE_COPY] = session.copied_at - session.planned_at;
	result->phase_ns[CAPTURE_PHASE_THAW] = session.pause_end - session.copied_at;
	sigprocmask(SIG_SETMASK, &previous, NULL);
	result->frozen_copy_bytes = session.memory.bytes_read - session.read_before_freeze;
	/* a target killed while frozen may still have been copied whole, but what follows (its
	 * auxiliary vector, its status) is gone: refuse rather than write a snapshot with holes */
	if (!taken || process_is_gone(pid)) {
		if (process_is_gone(pid))
			hs_error_set_code(err, HS_ERR_GONE,
					  "pid %d exited during capture; no snapshot written",
					  (int)pid);
		goto done;
	}
	session.info.pause_ns = session.pause_end - session.pause_start;
	session.info.has_pause = true;
	result->pause_ns = session.info.pause_ns;
	status = session_write(&session, err);
done:
	session_free(&session);
	return status;
}

int capture_forked_self(const struct forked_self *self, const struct capture_options *options,
			struct capture_result *result, struct hs_error *err)
{
	memset(result, 0, sizeof *result);
	pid_t memory_pid = getpid();
	struct snapshot_info info = {0};
	capture_fill_host_info(&info, "hook");
	info.pid = self->pid;
	ssize_t length = readlink("/proc/self/exe", info.exe, sizeof info.exe - 1);
	if (length > 0)
		info.exe[length] = '\0';
	info.capture_start_ns = self->capture_start_ns;
	info.capture_end_ns = self->capture_start_ns + self->pause_ns;
	info.pause_ns = self->pause_ns;
	info.has_pause = true;
	result->pause_ns = self->pause_ns;

	struct process_memory memory;
	process_memory_open(&memory, memory_pid, err);
	struct proc_maps maps = {0};
	struct capture_plan plan = {0};
	struct range_list absent = {0};
	struct core_image image;
	core_image_init(&image);
	int status = -1;
	if (proc_read_maps(memory_pid, &maps, err) != 0)
		goto done;
	/* the hook's own memory in the fork (made after it) is not the process's */
	size_t kept = 0;
	for (size_t i = 0; i < maps.count; i++) {
		bool excluded = false;
		for (size_t k = 0; k < self->exclude_count && !excluded; k++)
			excluded = maps.mappings[i].start < self->exclude[k].end &&
				   self->exclude[k].start < maps.mappings[i].end;
		if (excluded)
			free(maps.mappings[i].path);
		else
			maps.mappings[kept++] = maps.mappings[i];
	}
	maps.count = kept;
	if (capture_plan_make(&maps, &memory, &plan, err) != 0 ||
	    capture_plan_in_place(&plan, &memory, &absent, err) != 0 ||
	    build_image(&image, self->pid, memory_pid, self->threads, &maps, &plan, &absent, &info,
			result, err) != 0 ||
	    (self->sites && snapshot_notes_add_sites(&image, self->sites, self->site_count, err) != 0))
		goto done;
	struct seekable_options compression = options->compression;
	compression.in_caller = true;
	struct seekable_stats stats;
	if (write_snapshot(&image, self->pid, info.capture_start_ns, options, &compression, result,
			   &stats, err) != 0)
		goto done;
	result->file_bytes = stats.output_bytes;
	status = 0;
done:
	core_image_free(&image);
	range_list_free(&absent);
	capture_plan_free(&plan);
	proc_maps_free(&maps);
	process_memory_close(&memory);
	return status;
}
