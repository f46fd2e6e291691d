/* The recorder of sites_recorder.h: the BPF skeleton (built from capture/bpf/sites.bpf.c by
 * bpftool at build time) loaded, attached with uprobes filtered to the target, its ring buffer
 * drained into (sequence number, return addresses) records, and at the capture the kernel's
 * live map joined with them by sequence number. libbpf's messages are kept, not printed: the one
 * that explains a refusal ends up in the error. */
#include "capture/sites_recorder.h"

#include <errno.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/bpf/sites_events.h"
#include "capture/proc.h"
#include "capture/sites_allocator.h"
#include "capture/sites_unwind.h"
#include "common/array_grow.h"
#include "common/clock.h"
#include "formats/core_image.h"
#include "formats/snapshot.h"
#include "sites.skel.h"

#define RING_BYTES (32u << 20)
#define HOOK_ALTERNATIVE                                                                         \
	"to record sites without BPF, start the program with heapsnap's hook: "                  \
	"LD_PRELOAD=libheapsnap.so HEAPSNAP_SITES=1 (see docs/hook.md)"

struct unwound {
	uint64_t seq;
	uint64_t pc[HEAPSNAP_SITE_FRAMES];
};

struct sites_recorder {
	pid_t pid;
	struct sites_recorder_options options;
	struct sites_bpf *skeleton;
	struct bpf_link *links[2 * SITES_MAX_ENTRIES];
	size_t link_count;
	struct ring_buffer *ring;
	struct sites_unwinder *unwinder;
	struct unwound *unwound;
	size_t unwound_count, unwound_capacity;
	size_t compact_at; /* unwound_count at which the stacks of freed allocations are dropped */
	bool out_of_memory;
	uint64_t started_ns, stopped_ns;
	bool finished;
	struct heapsnap_site_note *sites;
	struct sites_recorder_stats stats;
};

static char libbpf_last[256]; /* libbpf's last message, for an error that needs it */

static int keep_libbpf_message(enum libbpf_print_level level, const char *format, va_list args)
{
	if (level != LIBBPF_DEBUG) {
		vsnprintf(libbpf_last, sizeof libbpf_last, format, args);
		libbpf_last[strcspn(libbpf_last, "\n")] = '\0';
	}
	return 0;
}

static bool seccomp_filtered(void)
{
	char *status = NULL;
	size_t size = 0;
	if (proc_read_file("/proc/self/status", &status, &size) != 0)
		return false;
	const char *line = strstr(status, "\nSeccomp:");
	bool filtered = line && strtol(line + 9, NULL, 10) == 2;
	free(status);
	return filtered;
}

/* Why the kernel refused the BPF programs, in words a user can act on. */
static int refusal(struct hs_error *err, int errnum, const char *step)
{
	char why[256];
	if (seccomp_filtered())
		snprintf(why, sizeof why, "heapsnap runs under a seccomp filter that refuses bpf()");
	else if (errnum == EPERM || errnum == EACCES) {
		char *setting = NULL;
		size_t size = 0;
		bool disabled = proc_read_file("/proc/sys/kernel/unprivileged_bpf_disabled",
					       &setting, &size) == 0 &&
				atoi(setting) != 0;
		free(setting);
		snprintf(why, sizeof why,
			 "it needs root, or CAP_BPF and CAP_PERFMON%s",
			 geteuid() != 0 && disabled ? " (kernel.unprivileged_bpf_disabled is set)"
						    : "");
	} else if (errnum == ENOSYS)
		snprintf(why, sizeof why, "this kernel has no bpf() system call");
	else
		snprintf(why, sizeof why, "%s", libbpf_last[0] ? libbpf_last : strerror(errnum));
	return hs_error_set_code_errno(err, errnum == EPERM || errnum == EACCES
						    ? HS_ERR_PERMISSION : HS_ERR_UNSUPPORTED,
				       errnum, "the kernel refused to %s: %s; %s", step, why,
				       HOOK_ALTERNATIVE);
}

static int record_event(void *context, void *data, size_t size)
{
	struct sites_recorder *recorder = context;
	if (size < sizeof(struct sites_event))
		return 0;
	struct unwound *grown = array_grow(recorder->unwound, &recorder->unwound_capacity,
					   recorder->unwound_count, sizeof *grown, 4096);
	if (grown == NULL) {
		recorder->out_of_memory = true;
		return 0;
	}
	recorder->unwound = grown;
	struct unwound *record = &grown[recorder->unwound_count++];
	record->seq = ((const struct sites_event *)data)->seq;
	sites_unwinder_unwind(recorder->unwinder, data, record->pc);
	return 0;
}

static struct bpf_program *program_for(struct sites_bpf *skeleton, enum sites_entry_kind kind)
{
	switch (kind) {
	case SITES_ENTRY_MALLOC:
		return skeleton->progs.malloc_enter;
	case SITES_ENTRY_CALLOC:
		return skeleton->progs.calloc_enter;
	case SITES_ENTRY_REALLOC:
		return skeleton->progs.realloc_enter;
	case SITES_ENTRY_ALIGNED:
		return skeleton->progs.aligned_enter;
	case SITES_ENTRY_POSIX_MEMALIGN:
		return skeleton->progs.posix_memalign_enter;
	case SITES_ENTRY_FREE:
		return skeleton->progs.free_enter;
	}
	return NULL;
}

/* A uprobe on each entry point, and a uretprobe on each but free. */
static int attach(struct sites_recorder *recorder, const struct sites_allocator *allocator,
		  struct hs_error *err)
{
	for (size_t i = 0; i < allocator->entry_count; i++) {
		for (int returning = 0; returning < 2; returning++) {
			enum sites_entry_kind kind = allocator->entries[i].kind;
			if (returning && kind == SITES_ENTRY_FREE)
				continue;
			LIBBPF_OPTS(bpf_uprobe_opts, options, .retprobe = returning == 1,
				    .func_name = allocator->entries[i].symbol);
			struct bpf_program *program =
				returning ? recorder->skeleton->progs.allocation_return
					  : program_for(recorder->skeleton, kind);
			struct bpf_link *link = bpf_program__attach_uprobe_opts(
				program, recorder->pid, allocator->path, 0, &options);
			if (link == NULL) {
				int errnum = errno;
				if (access("/sys/bus/event_source/devices/uprobe/type", F_OK) != 0)
					return hs_error_set_code(
						err, HS_ERR_UNSUPPORTED,
						"this kernel has no uprobes (no "
						"/sys/bus/event_source/devices/uprobe): allocation "
						"sites cannot be recorded from outside; %s",
						HOOK_ALTERNATIVE);
				char step[4400];
				snprintf(step, sizeof step, "attach a uprobe to %s in %s",
					 allocator->entries[i].symbol, allocator->path);
				return refusal(err, errnum, step);
			}
			recorder->links[recorder->link_count++] = link;
		}
	}
	return 0;
}

static int load(struct sites_recorder *recorder, struct hs_error *err)
{
	libbpf_set_print(keep_libbpf_message);
	recorder->skeleton = sites_bpf__open();
	if (recorder->skeleton == NULL)
		return refusal(err, errno, "open heapsnap's BPF programs");
	struct sites_bpf *skeleton = recorder->skeleton;
	skeleton->rodata->target_tgid = (uint32_t)recorder->pid;
	skeleton->rodata->sample_bytes = recorder->options.sample_bytes;
	if (bpf_map__set_max_entries(skeleton->maps.live, recorder->options.max_live) != 0 ||
	    bpf_map__set_max_entries(skeleton->maps.events, RING_BYTES) != 0)
		return hs_error_set(err, "cannot size heapsnap's BPF maps");
	if (sites_bpf__load(skeleton) != 0)
		return refusal(err, errno, "load heapsnap's BPF programs");
	recorder->ring = ring_buffer__new(bpf_map__fd(skeleton->maps.events), record_event,
					  recorder, NULL);
	if (recorder->ring == NULL)
		return refusal(err, errno, "map heapsnap's BPF ring buffer");
	return 0;
}

struct sites_recorder *sites_recorder_start(pid_t pid, const struct sites_recorder_options *options,
					    struct hs_error *err)
{
	struct sites_recorder *recorder = calloc(1, sizeof *recorder);
	if (recorder == NULL) {
		hs_error_nomem(err, "starting to record allocation sites");
		return NULL;
	}
	recorder->pid = pid;
	recorder->options = *options;
	if (recorder->options.max_live == 0)
		recorder->options.max_live = SITES_DEFAULT_MAX_LIVE;
	recorder->compact_at = 4 * (size_t)recorder->options.max_live;
	struct sites_allocator allocator;
#if defined(__x86_64__)
	int failed = sites_allocator_find(pid, &allocator, err);
#else /* the BPF programs read x86-64 registers */
	int failed = hs_error_set_code(err, HS_ERR_UNSUPPORTED,
				       "recording allocation sites with BPF is implemented for "
				       "x86-64 only; %s",
				       HOOK_ALTERNATIVE);
#endif
	if (!failed && strcmp(allocator.name, "unknown") == 0)
		failed = hs_error_set_code(err, HS_ERR_UNSUPPORTED,
					   "pid %d's malloc is in %s, an allocator heapsnap does not "
					   "know (neither glibc, jemalloc, tcmalloc nor mimalloc): its "
					   "blocks could not be matched with their sites",
					   (int)pid, allocator.path);
	if (!failed) {
		snprintf(recorder->stats.allocator, sizeof recorder->stats.allocator, "%s",
			 allocator.name);
		snprintf(recorder->stats.allocator_path, sizeof recorder->stats.allocator_path,
			 "%s", allocator.path);
		recorder->unwinder = sites_unwinder_open(pid, err);
		failed = recorder->unwinder == NULL || load(recorder, err) != 0 ||
			 attach(recorder, &allocator, err) != 0;
	}
	if (failed) {
		sites_recorder_free(recorder);
		return NULL;
	}
	recorder->started_ns = monotonic_ns();
	return recorder;
}

static bool target_gone(pid_t pid)
{
	struct proc_stat stat;
	return proc_read_stat(pid, pid, &stat) != 0 || stat.state == 'Z' || stat.state == 'X';
}

static uint64_t counter(struct sites_recorder *recorder, uint32_t which)
{
	int cpus = libbpf_num_possible_cpus();
	if (cpus <= 0)
		return 0;
	uint64_t *values = calloc((size_t)cpus, sizeof *values), total = 0;
	if (values &&
	    bpf_map_lookup_elem(bpf_map__fd(recorder->skeleton->maps.counters), &which, values) == 0)
		for (int i = 0; i < cpus; i++)
			total += values[i];
	free(values);
	return total;
}

static void read_counters(struct sites_recorder *recorder)
{
	struct sites_recorder_stats *stats = &recorder->stats;
	stats->allocations = counter(recorder, SITES_ALLOCATIONS);
	stats->sampled = counter(recorder, SITES_SAMPLED);
	stats->no_stack = counter(recorder, SITES_NO_STACK);
	stats->map_full = counter(recorder, SITES_MAP_FULL);
	uint64_t end = recorder->stopped_ns ? recorder->stopped_ns : monotonic_ns();
	stats->window_ns = end - recorder->started_ns;
}

static int compare_u64(const void *left, const void *right)
{
	uint64_t a = *(const uint64_t *)left, b = *(const uint64_t *)right;
	return (a > b) - (a < b);
}

/* Appends the sequence numbers of a map's values (`seq_of` reads one) to `seqs`. */
static void map_seqs(int fd, size_t key_size, size_t value_size, uint64_t (*seq_of)(const void *),
		     uint64_t *seqs, size_t *count, size_t capacity)
{
	uint64_t key[1], next[1], value[4]; /* (keys of 4 or 8 bytes, values up to 32) */
	for (bool first = true;
	     *count < capacity && bpf_map_get_next_key(fd, first ? NULL : key, next) == 0;
	     first = false) {
		memcpy(key, next, key_size);
		if (value_size <= sizeof value && bpf_map_lookup_elem(fd, key, value) == 0)
			seqs[(*count)++] = seq_of(value);
	}
}

static uint64_t live_seq(const void *value)
{
	return ((const struct sites_live *)value)->seq;
}

/* (struct pending of sites.bpf.c begins with its seq) */
static uint64_t pending_seq(const void *value)
{
	return *(const uint64_t *)value;
}

/* Keeps only the stacks of allocations still live in the map or still in flight: what heapsnap
 * holds stays proportional to the map (--sites-max), not to the window's length. */
static void drop_freed_stacks(struct sites_recorder *recorder)
{
	struct sites_bpf *skeleton = recorder->skeleton;
	size_t capacity = (size_t)recorder->options.max_live +
			  bpf_map__max_entries(skeleton->maps.pending_calls);
	uint64_t *seqs = malloc(capacity * sizeof *seqs);
	if (seqs == NULL)
		return;
	size_t count = 0;
	map_seqs(bpf_map__fd(skeleton->maps.live), sizeof(uint64_t), sizeof(struct sites_live),
		 live_seq, seqs, &count, capacity);
	map_seqs(bpf_map__fd(skeleton->maps.pending_calls), sizeof(uint32_t),
		 bpf_map__value_size(skeleton->maps.pending_calls), pending_seq, seqs, &count,
		 capacity);
	qsort(seqs, count, sizeof *seqs, compare_u64);
	size_t kept = 0;
	for (size_t i = 0; i < recorder->unwound_count; i++) {
		uint64_t seq = recorder->unwound[i].seq;
		if (bsearch(&seq, seqs, count, sizeof *seqs, compare_u64))
			recorder->unwound[kept++] = recorder->unwound[i];
	}
	recorder->unwound_count = kept;
	free(seqs);
}

int sites_recorder_poll(struct sites_recorder *recorder, int timeout_ms, struct hs_error *err)
{
	int polled = ring_buffer__poll(recorder->ring, timeout_ms);
	if (recorder->unwound_count >= recorder->compact_at) {
		drop_freed_stacks(recorder);
		size_t floor = recorder->compact_at;
		recorder->compact_at = 2 * recorder->unwound_count > floor ? 2 * recorder->unwound_count
									 : floor;
	}
	read_counters(recorder);
	if (target_gone(recorder->pid))
		return hs_error_set_code(err, HS_ERR_GONE,
					 "pid %d exited during the recording window", (int)recorder->pid);
	if (recorder->out_of_memory)
		return hs_error_nomem(err, "keeping the stacks of pid %d's allocations",
				      (int)recorder->pid);
	if (polled < 0 && polled != -EINTR)
		return hs_error_set_errno(err, -polled, "reading heapsnap's BPF ring buffer");
	return 0;
}

static int by_seq(const void *left, const void *right)
{
	const struct unwound *a = left, *b = right;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

static int by_address(const void *left, const void *right)
{
	const struct heapsnap_site_note *a = left, *b = right;
	return (a->address > b->address) - (a->address < b->address);
}

/* The live map joined with the unwound stacks: every live allocation with a site. */
static int collect(struct sites_recorder *recorder, struct hs_error *err)
{
	ring_buffer__consume(recorder->ring);
	read_counters(recorder);
	qsort(recorder->unwound, recorder->unwound_count, sizeof *recorder->unwound, by_seq);
	int fd = bpf_map__fd(recorder->skeleton->maps.live);
	size_t capacity = 0;
	uint64_t key, next;
	bool first = true;
	while (bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
		first = false;
		key = next;
		struct sites_live value;
		if (bpf_map_lookup_elem(fd, &key, &value) != 0)
			continue;
		struct unwound wanted = {.seq = value.seq};
		const struct unwound *found =
			bsearch(&wanted, recorder->unwound, recorder->unwound_count,
				sizeof wanted, by_seq);
		if (found == NULL || found->pc[0] == 0) {
			recorder->stats.unwound_none++;
			continue;
		}
		struct heapsnap_site_note *grown = array_grow(recorder->sites, &capacity,
							      recorder->stats.live, sizeof *grown,
							      4096);
		if (grown == NULL)
			return hs_error_nomem(err, "collecting allocation sites");
		recorder->sites = grown;
		grown[recorder->stats.live].address = key;
		memcpy(grown[recorder->stats.live].pc, found->pc, sizeof found->pc);
		recorder->stats.live++;
	}
	qsort(recorder->sites, recorder->stats.live, sizeof *recorder->sites, by_address);
	recorder->finished = true;
	return 0;
}

/* capture_hooks.stopped: the target's threads are all stopped; the map stays as it is now. */
static void stop_recording(void *arg)
{
	struct sites_recorder *recorder = arg;
	recorder->skeleton->bss->stopped = 1;
	recorder->stopped_ns = monotonic_ns();
}

/* capture_hooks.add_notes: the SITES note, and what the window was in the info note. */
static int add_site_notes(void *arg, struct snapshot_info *info, struct core_image *image,
			  struct hs_error *err)
{
	struct sites_recorder *recorder = arg;
	if (!recorder->finished && collect(recorder, err) != 0)
		return -1;
	const struct sites_recorder_stats *stats = &recorder->stats;
	snprintf(info->sites_source, sizeof info->sites_source, "bpf");
	snprintf(info->sites_allocator, sizeof info->sites_allocator, "%s", stats->allocator);
	info->sites_window_ns = stats->window_ns;
	info->sites_sample_bytes = recorder->options.sample_bytes;
	info->sites_allocations = stats->allocations;
	info->sites_unrecorded = stats->no_stack + stats->map_full + stats->unwound_none;
	info->sites_map_full = stats->map_full;
	static const struct heapsnap_site_note none; /* an empty note: recorded, none live */
	return snapshot_notes_add_sites(image, recorder->sites ? recorder->sites : &none,
					stats->live, err);
}

void sites_recorder_capture_hooks(struct sites_recorder *recorder, struct capture_hooks *hooks)
{
	hooks->arg = recorder;
	hooks->stopped = stop_recording;
	hooks->add_notes = add_site_notes;
}

const struct sites_recorder_stats *sites_recorder_stats(struct sites_recorder *recorder)
{
	return &recorder->stats;
}

void sites_recorder_free(struct sites_recorder *recorder)
{
	if (recorder == NULL)
		return;
	for (size_t i = 0; i < recorder->link_count; i++)
		bpf_link__destroy(recorder->links[i]);
	ring_buffer__free(recorder->ring);
	sites_bpf__destroy(recorder->skeleton);
	sites_unwinder_close(recorder->unwinder);
	free(recorder->unwound);
	free(recorder->sites);
	free(recorder);
}
