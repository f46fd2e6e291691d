/* Python threads and frames (see cpython_threads.h). */
#include "cpython_threads.h"

#include <stdio.h>
#include <string.h>

#include "analyze/runtimes/cpython/cpython_objects.h"

#define MAX_THREADS 4096
#define MAX_FRAMES 10000
#define MAX_SLOTS (1 << 16)
#define FRAME_OWNED_BY_CSTACK 3 /* 3.12+: a C entry frame, no code of its own */

struct walk {
	struct address_space *space;
	const struct cpython_info *python;
	const struct cpython_layout *layout;
	int (*visit)(void *context, const struct python_frame_value *value);
	void *context;
	struct python_frame_value value;
	char function[128];
};

static uint64_t word(struct walk *walk, uint64_t addr)
{
	uint64_t value = 0;
	if (addr == 0 || !address_space_read_u64(walk->space, addr, &value))
		return 0;
	return value;
}

static int32_t int32_at(struct walk *walk, uint64_t addr)
{
	int32_t value = -1;
	if (address_space_read(walk->space, addr, &value, sizeof value, NULL) != 0)
		return -1;
	return value;
}

/* Names the code's function into walk->function. */
static void function_name(struct walk *walk, uint64_t code)
{
	const struct cpython_layout *layout = walk->layout;
	uint64_t name = word(walk, code + (layout->code_qualname ? layout->code_qualname
								 : layout->code_name));
	if (!cpython_str_read(walk->space, layout, name, walk->function, sizeof walk->function))
		snprintf(walk->function, sizeof walk->function, "?");
	walk->value.function = walk->function;
}

/* Visits slots [0, count) at `slots`; the first `named` are named by the tuple `names`. */
static int visit_slots(struct walk *walk, uint64_t slots, int64_t count, int64_t named,
		       uint64_t names)
{
	const struct cpython_layout *layout = walk->layout;
	uint64_t name_count = word(walk, names + layout->var_size);
	for (int64_t i = 0; i < count && i < MAX_SLOTS; i++) {
		uint64_t value = word(walk, slots + (uint64_t)i * 8);
		if (value == 0)
			continue;
		char local[72];
		walk->value.local = NULL;
		if (i < named && (uint64_t)i < name_count &&
		    cpython_str_read(walk->space, layout,
				     word(walk, names + layout->tuple_items + (uint64_t)i * 8), local,
				     sizeof local))
			walk->value.local = local;
		walk->value.value = value;
		int stop = walk->visit(walk->context, &walk->value);
		if (stop)
			return stop;
	}
	return 0;
}

/* 3.8 to 3.10: frame objects, linked by f_back. */
static int walk_frame_objects(struct walk *walk, uint64_t frame)
{
	const struct cpython_layout *layout = walk->layout;
	for (int depth = 0; frame != 0 && depth < MAX_FRAMES; depth++) {
		uint64_t code = word(walk, frame + layout->frame_code);
		function_name(walk, code);
		int32_t locals = int32_at(walk, code + layout->code_nlocals);
		int stop = visit_slots(walk, frame + layout->frame_localsplus, locals, locals,
				       word(walk, code + layout->code_varnames));
		if (stop)
			return stop;
		frame = word(walk, frame + layout->frame_back);
	}
	return 0;
}

/* 3.11+: _PyInterpreterFrame records, linked by previous. The evaluation stack is read up to
 * stacktop where the frame has saved it (a frame that called another); the innermost frame's
 * is in the interpreter's registers, and only its locals are read. */
static int walk_interpreter_frames(struct walk *walk, uint64_t frame)
{
	const struct cpython_layout *layout = walk->layout;
	for (int depth = 0; frame != 0 && depth < MAX_FRAMES; depth++) {
		uint8_t owner = 0;
		address_space_read(walk->space, frame + layout->iframe_owner, &owner, 1, NULL);
		uint64_t code = word(walk, frame + layout->iframe_code);
		if (owner != FRAME_OWNED_BY_CSTACK && code != 0) {
			function_name(walk, code);
			int32_t locals = int32_at(walk, code + layout->code_nlocalsplus);
			int32_t top = int32_at(walk, frame + layout->iframe_stacktop);
			if (locals < 0 || locals > MAX_SLOTS)
				locals = 0;
			int64_t count = top >= locals && top < locals + MAX_SLOTS ? top : locals;
			int stop = visit_slots(walk, frame + layout->iframe_localsplus, count, locals,
					       word(walk, code + layout->code_localsplusnames));
			if (stop)
				return stop;
		}
		frame = word(walk, frame + layout->iframe_previous);
	}
	return 0;
}

/* The snapshot's id of the thread whose pthread_t (its TCB address, on x86-64 glibc) is `id`. */
static int tid_of_pthread(struct address_space *space, uint64_t id)
{
	size_t count;
	const struct snapshot_thread *threads =
		snapshot_threads(address_space_snapshot(space), &count);
	for (size_t i = 0; i < count; i++)
		if (threads[i].registers.fs_base == id)
			return threads[i].tid;
	return 0;
}

int cpython_threads_walk(struct address_space *space, const struct cpython_info *python,
			 int (*visit)(void *context, const struct python_frame_value *value),
			 void *context, struct python_stack_chunk *chunks, size_t max,
			 size_t *chunk_count)
{
	if (chunk_count)
		*chunk_count = 0;
	if (!python->found || !python->has_layout)
		return 0;
	struct walk walk = {.space = space, .python = python, .layout = &python->layout,
			    .visit = visit, .context = context};
	const struct cpython_layout *layout = walk.layout;
	uint64_t interpreter = word(&walk, python->runtime + layout->runtime_main_interpreter);
	uint64_t thread = word(&walk, interpreter + layout->interpreter_threads);
	for (int n = 0; thread != 0 && n < MAX_THREADS; n++) {
		walk.value.tid = layout->thread_native_id
					 ? (int)word(&walk, thread + layout->thread_native_id)
					 : tid_of_pthread(space, word(&walk, thread + layout->thread_id));
		/* the data-stack chunks, linked by their first word (previous) */
		uint64_t chunk = layout->thread_datastack
					 ? word(&walk, thread + layout->thread_datastack)
					 : 0;
		for (int k = 0; chunk != 0 && k < 1024 && chunks && *chunk_count < max; k++) {
			uint64_t size = word(&walk, chunk + layout->chunk_size);
			if (size == 0 || size > (1ull << 32))
				break;
			chunks[(*chunk_count)++] = (struct python_stack_chunk){chunk, chunk + size};
			chunk = word(&walk, chunk);
		}
		uint64_t frame = visit ? word(&walk, thread + layout->thread_frame) : 0;
		int stop = 0;
		if (frame == 0)
			stop = 0;
		else if (layout->minor <= 10)
			stop = walk_frame_objects(&walk, frame);
		else
			stop = walk_interpreter_frames(
				&walk, layout->cframe_current || layout->minor <= 12
					       ? word(&walk, frame + layout->cframe_current)
					       : frame);
		if (stop)
			return stop;
		thread = word(&walk, thread + layout->thread_next);
	}
	return 0;
}
