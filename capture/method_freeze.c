/* The freeze method (capture_session.h): every thread stopped with ptrace, every writable page
 * copied into heapsnap's memory while they are, then let go. Most of the copy is made beforehand,
 * while the target runs (precopy.h), so the stop only copies what changed since. */
#include <stdlib.h>

#include "capture/capture_session.h"
#include "capture/precopy.h"
#include "common/clock.h"

struct freeze_state {
	struct precopy precopy;
	bool precopied;
};

/* While the target runs: the copy buffer, sized with room to grow, and the pre-copy. */
static int freeze_prepare(struct capture_session *session, struct hs_error *err)
{
	struct freeze_state *state = calloc(1, sizeof *state);
	if (state == NULL)
		return hs_error_nomem(err, "preparing the capture of pid %d", (int)session->pid);
	session->state[capture_method_freeze.index] = state;
	struct capture_result *result = session->result;
	uint64_t expected = session->plan.read_bytes;
	uint64_t slack = expected / 8 > (16u << 20) ? expected / 8 : (16u << 20);
	uint64_t prepare_start = monotonic_ns();
	if (copy_buffer_prepare(&session->buffer, expected + slack, err) != 0)
		return -1;
	result->phase_ns[CAPTURE_PHASE_PREPARE] = monotonic_ns() - prepare_start;
	if (!session->options->no_precopy && precopy_supported()) {
		struct hs_error ignored;
		uint64_t precopy_start = monotonic_ns();
		state->precopied = precopy_run(&state->precopy, &session->maps, &session->plan,
					       &session->memory, &session->buffer, &ignored) == 0;
		result->phase_ns[CAPTURE_PHASE_PRECOPY] = monotonic_ns() - precopy_start;
		if (!state->precopied) {
			/* not fatal: the freeze copies everything instead */
			precopy_free(&state->precopy);
			session->buffer.used = 0;
		}
	}
	result->precopied = state->precopied;
	return 0;
}

static int freeze_stop(struct capture_session *session, struct hs_error *err)
{
	return freeze_process(session->pid, &session->frozen, err);
}

static bool freeze_plans_later(const struct capture_session *session)
{
	(void)session;
	return false;
}

/* The copy, while stopped: what changed since the pre-copy, or everything. Also the fork
 * method's fallback, when its clone fails while the keeper holds the target (no state then). */
static int freeze_take(struct capture_session *session, struct hs_error *err)
{
	struct freeze_state *state = session->state[capture_method_freeze.index];
	if (capture_session_plan(session, &session->memory, err) != 0)
		return -1;
	if (state && state->precopied &&
	    precopy_settle(&state->precopy, &session->plan, &session->memory, &session->absent,
			   err) != 0)
		return -1;
	if (capture_plan_copy(&session->plan, &session->memory, &session->buffer, &session->absent,
			      err) != 0)
		return -1;
	/* a thread gone from our stop means the target was killed while it was copied */
	if (session->stopper == &capture_method_freeze && !freeze_still_held(&session->frozen))
		return hs_error_set_code(err, HS_ERR_GONE,
					 "pid %d exited during capture; no snapshot written",
					 (int)session->pid);
	return 0;
}

static int freeze_resume(struct capture_session *session, bool taken, struct hs_error *err)
{
	(void)taken;
	(void)err;
	thaw_process(&session->frozen);
	return 0;
}

static void freeze_free(struct capture_session *session)
{
	struct freeze_state *state = session->state[capture_method_freeze.index];
	if (state)
		precopy_free(&state->precopy);
	free(state);
	session->state[capture_method_freeze.index] = NULL;
}

const struct capture_method capture_method_freeze = {
	.name = "freeze",
	.kind = CAPTURE_METHOD_FREEZE,
	.index = 1,
	.prepare = freeze_prepare,
	.stop = freeze_stop,
	.plans_later = freeze_plans_later,
	.take = freeze_take,
	.resume = freeze_resume,
	.free = freeze_free,
};
