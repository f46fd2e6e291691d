/* The fork method (capture_session.h): while the target is stopped, it runs one clone system
 * call (heapsnap-keeper does the ptrace steps, fork_keeper.h), so the kernel copies its page
 * tables, not its pages; the target runs again at once and the memory is read from the clone,
 * which never runs, as the snapshot is compressed. Where the clone cannot be made, take answers
 * HS_ERR_UNSUPPORTED and capture_process copies by freeze while the keeper holds the target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/capture_session.h"
#include "capture/fork_clone.h"
#include "capture/fork_keeper.h"
#include "common/clock.h"

static bool overlaps_any(const struct range_list *list, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < list->count; i++)
		if (list->ranges[i].start < end && start < list->ranges[i].end)
			return true;
	return false;
}

/* True when [start, end) lies inside the mappings (sorted by address, as /proc lists them). */
static bool covered_by_maps(const struct proc_maps *maps, uint64_t start, uint64_t end)
{
	uint64_t at = start;
	while (at < end) {
		size_t low = 0, high = maps->count;
		while (low < high) { /* the first mapping ending after `at` */
			size_t middle = low + (high - low) / 2;
			if (maps->mappings[middle].end <= at)
				low = middle + 1;
			else
				high = middle;
		}
		if (low == maps->count || maps->mappings[low].start > at)
			return false;
		at = maps->mappings[low].end;
	}
	return true;
}

/* Fork method, while frozen: copies from the target itself the regions its clone will not see as
 * they are (MADV_DONTFORK, MADV_WIPEONFORK). */
static int copy_special_regions(struct capture_plan *plan, const struct range_list *special,
				struct process_memory *memory, struct copy_buffer *buffer,
				struct range_list *absent, struct hs_error *err)
{
	if (special->count == 0)
		return 0;
	struct capture_plan part = {0};
	part.regions = calloc(plan->count, sizeof *part.regions);
	size_t *index = calloc(plan->count, sizeof *index);
	if (part.regions == NULL || index == NULL) {
		free(part.regions);
		free(index);
		return hs_error_nomem(err, "copying pid %d's memory", (int)memory->pid);
	}
	for (size_t i = 0; i < plan->count; i++) {
		const struct planned_region *region = &plan->regions[i];
		if (region->data == NULL && region->read_size > 0 &&
		    overlaps_any(special, region->start, region->end)) {
			part.regions[part.count] = *region;
			index[part.count++] = i;
		}
	}
	int result = capture_plan_copy(&part, memory, buffer, absent, err);
	for (size_t k = 0; k < part.count; k++)
		plan->regions[index[k]].data = part.regions[k].data;
	free(part.regions);
	free(index);
	return result;
}

/* Fork method, the target running again: copies the rest of the plan from the clone. Regions the
 * clone lacks, or has zeroed, that were not copied during the freeze (mapped, or marked
 * MADV_DONTFORK/MADV_WIPEONFORK, after /proc/PID/smaps was read) are recorded as absent. */
/* The clone's memory as a byte source for the write (formats/seekable.h): read through
 * /proc/PID/mem, never process_vm_readv, which pins the pages it reads, and the kernel (5.19 on)
 * unshares a copy-on-write page before pinning it: every page read would be copied in the clone,
 * twice the memory and a slower read. */
struct clone_memory_source {
	struct byte_source base;
	struct process_memory memory;
};

static int read_clone_memory(const struct byte_source *base, uint64_t at, void *out, size_t size)
{
	struct clone_memory_source *source = (struct clone_memory_source *)base;
	struct range_list unreadable = {0};
	struct hs_error ignored;
	int result = process_memory_read(&source->memory, at, out, size, &unreadable, &ignored);
	if (unreadable.count > 0)
		result = -1;
	range_list_free(&unreadable);
	return result;
}

static int copy_from_clone(struct capture_plan *plan, pid_t clone,
			   struct clone_memory_source *source, struct copy_buffer *buffer,
			   struct range_list *absent, struct hs_error *err)
{
	struct proc_maps clone_maps = {0};
	struct range_list wiped = {0};
	int result = -1;
	if (proc_read_maps(clone, &clone_maps, err) != 0 ||
	    fork_clone_special_mappings(clone, &wiped, err) != 0)
		goto done;
	for (size_t i = 0; i < plan->count; i++) {
		struct planned_region *region = &plan->regions[i];
		if (region->data != NULL || region->read_size == 0)
			continue;
		uint64_t read_end = region->start + region->read_size;
		if (covered_by_maps(&clone_maps, region->start, read_end) &&
		    !overlaps_any(&wiped, region->start, read_end)) {
			/* read as it is compressed, straight from the clone, which holds still
			   until the snapshot is written: no copy of the heap in heapsnap's memory
			   (a page that turns out unreadable makes the write start over, copied) */
			if (!region->header_page &&
			    !(region->mapping->inode != 0 && region->mapping->offset == 0))
				region->source = &source->base;
			continue;
		}
		region->data = copy_buffer_take(buffer, region->read_size);
		if (region->data == NULL) {
			hs_error_nomem(err, "copying the clone of pid %d", (int)clone);
			goto done;
		}
		memset(region->data, 0, region->read_size);
		if (range_list_add(absent, region->start, read_end) != 0) {
			hs_error_nomem(err, "copying the clone of pid %d", (int)clone);
			goto done;
		}
	}
	/* what may start with an ELF header (a file mapped from its start) is looked at before the
	   write, for the modules' notes: copied */
	result = capture_plan_copy(plan, &source->memory, buffer, absent, err);
done:
	range_list_free(&wiped);
	proc_maps_free(&clone_maps);
	return result;
}

struct fork_state {
	struct fork_keeper keeper;
	struct range_list special; /* mappings the clone would not see as they are */
	pid_t clone_child;
	struct clone_memory_source clone_source;
};

static struct fork_state *fork_state(const struct capture_session *session)
{
	return session->state[capture_method_fork.index];
}

/* Where the fork method is safe; the mappings its clone would not see as they are; and the
 * keeper, which does its ptrace steps, forked while heapsnap is small and has one thread. */
static int fork_prepare(struct capture_session *session, struct hs_error *err)
{
	struct fork_state *state = calloc(1, sizeof *state);
	if (state == NULL)
		return hs_error_nomem(err, "preparing the capture of pid %d", (int)session->pid);
	state->keeper = (struct fork_keeper){.command_fd = -1, .reply_fd = -1};
	state->clone_source = (struct clone_memory_source){
		.base = {read_clone_memory}, .memory = {.mem_fd = -1, .pagemap_fd = -1}};
	session->state[capture_method_fork.index] = state;
	char reason[sizeof session->result->fork_declined];
	if (fork_clone_unsafe(session->pid, reason, sizeof reason) != 0)
		return hs_error_set_code(err, HS_ERR_UNSUPPORTED, "%s", reason);
	struct hs_error fork_err;
	if (fork_clone_special_mappings(session->pid, &state->special, &fork_err) != 0 ||
	    fork_keeper_start(session->pid, &state->keeper, &fork_err) != 0)
		return hs_error_set_code(err, HS_ERR_UNSUPPORTED, "%s", fork_err.message);
	return 0;
}

static int fork_stop(struct capture_session *session, struct hs_error *err)
{
	return fork_keeper_freeze(&fork_state(session)->keeper, &session->frozen, err);
}

/* The plan (which reads the page map of every large mapping) is made from the clone once the
 * target runs, unless mappings must be copied from the target meanwhile. */
static bool fork_plans_later(const struct capture_session *session)
{
	return fork_state(session)->special.count == 0;
}

/* While stopped: the mappings the clone would not see, copied from the target; the clone. */
static int fork_take(struct capture_session *session, struct hs_error *err)
{
	struct fork_state *state = fork_state(session);
	if (copy_special_regions(&session->plan, &state->special, &session->memory,
				 &session->buffer, &session->absent, err) != 0)
		return -1;
	uint64_t clone_start = monotonic_ns();
	struct hs_error fork_err;
	int cloned = fork_keeper_clone(&state->keeper, &state->clone_child, &fork_err);
	session->result->phase_ns[CAPTURE_PHASE_CLONE] = monotonic_ns() - clone_start;
	if (cloned == 0)
		return 0;
	if (fork_err.code == HS_ERR_HOLD_LOST) { /* the target was let go: nothing to copy */
		*err = fork_err;
		return -1;
	}
	return hs_error_set_code(err, HS_ERR_UNSUPPORTED, "%s", fork_err.message);
}

static int fork_resume(struct capture_session *session, bool taken, struct hs_error *err)
{
	struct hs_error thaw_err;
	if (fork_keeper_thaw(&fork_state(session)->keeper, &thaw_err) != 0 && taken) {
		*err = thaw_err;
		return -1;
	}
	return 0;
}

/* The target running: its clone holds its memory as it was at the clone, read from it (the
 * plan made from the clone's page map where it was left for later). A clone made but unfit (the
 * copy was made by freeze) is killed and reaped while heapsnap compresses. */
static int fork_finish(struct capture_session *session, bool taken, struct hs_error *err)
{
	struct fork_state *state = fork_state(session);
	if (session->taker != &capture_method_fork) {
		fork_keeper_release(&state->keeper);
		return 0;
	}
	uint64_t start = monotonic_ns();
	process_memory_close(&state->clone_source.memory);
	process_memory_open(&state->clone_source.memory, state->clone_child, err);
	state->clone_source.memory.use_mem_fd = true;
	int result = !taken ? 0
		     : capture_session_plan(session, &state->clone_source.memory, err) != 0 ||
				     copy_from_clone(&session->plan, state->clone_child,
						     &state->clone_source, &session->buffer,
						     &session->absent, err) != 0
			     ? -1
			     : 0;
	session->result->phase_ns[CAPTURE_PHASE_CLONE_COPY] = monotonic_ns() - start;
	return result;
}

/* A page of the clone could not be read as it was written (a file mapping cut short under it,
 * say): copied now, the unreadable pages recorded as absent. */
static int fork_recopy(struct capture_session *session, struct hs_error *err)
{
	for (size_t i = 0; i < session->plan.count; i++)
		session->plan.regions[i].source = NULL;
	return capture_plan_copy(&session->plan, &fork_state(session)->clone_source.memory,
				 &session->buffer, &session->absent, err);
}

/* The clone, read, is killed; once the snapshot is written, its reaping is waited for (a
 * failure then is the target's, told apart: the snapshot is whole whatever it says). */
static void fork_written(struct capture_session *session, bool ok)
{
	struct fork_state *state = fork_state(session);
	struct capture_result *result = session->result;
	if (session->taker == &capture_method_fork)
		fork_keeper_release(&state->keeper);
	if (!ok)
		return;
	struct hs_error reap_err;
	uint64_t wait_start = monotonic_ns();
	if (fork_keeper_finish(&state->keeper, &result->reap_pause_ns, &reap_err) != 0)
		snprintf(result->reap_failed, sizeof result->reap_failed, "%s", reap_err.message);
	result->phase_ns[CAPTURE_PHASE_REAP] = monotonic_ns() - wait_start;
}

static void fork_free(struct capture_session *session)
{
	struct fork_state *state = fork_state(session);
	if (state == NULL)
		return;
	process_memory_close(&state->clone_source.memory);
	range_list_free(&state->special);
	fork_keeper_stop(&state->keeper);
	free(state);
	session->state[capture_method_fork.index] = NULL;
}

const struct capture_method capture_method_fork = {
	.name = "fork",
	.kind = CAPTURE_METHOD_FORK,
	.index = 0,
	.prepare = fork_prepare,
	.stop = fork_stop,
	.plans_later = fork_plans_later,
	.take = fork_take,
	.resume = fork_resume,
	.finish = fork_finish,
	.recopy = fork_recopy,
	.written = fork_written,
	.free = fork_free,
};
