/* JSON lines of the allocations (see list_lines.h). */
#include "list_lines.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "analyze/sites.h"
#include "formats/json.h"

/* Allocations a worker formats at a time: large enough that the hand-over costs nothing, small
 * enough that the blocks in flight (one a worker) stay a few MiB. */
#define BLOCK_ALLOCATIONS 32768
#define WORKERS_MAX 8

struct list_lines_run {
	const struct list_lines_input *input;
	bool several_mallocs;
	atomic_size_t next_block; /* the next block a worker takes */
	pthread_mutex_t lock;
	pthread_cond_t turn;
	size_t next_written; /* the block whose turn it is to be written */
	bool out_of_memory;
};

/* --sites, jsonl: "site": {"site", "function", "file", "line", "stack"}, null when none. */
static void site_jsonl(struct json_writer *json, const struct analysis *analysis, size_t index)
{
	uint32_t site = allocation_site(&analysis->sites, index);
	const struct site_description *description =
		site ? allocation_sites_describe(&analysis->sites, analysis->symbols, site) : NULL;
	json_key(json, "site");
	if (description == NULL) {
		json_null(json);
		return;
	}
	json_object_begin(json);
	json_key(json, "site");
	json_string(json, description->text);
	json_key(json, "function");
	json_string(json, description->function);
	json_key(json, "file");
	if (description->file[0])
		json_string(json, description->file);
	else
		json_null(json);
	json_key(json, "line");
	if (description->line)
		json_uint(json, description->line);
	else
		json_null(json);
	json_key(json, "stack");
	json_array_begin(json);
	for (size_t depth = 0; depth < HEAPSNAP_SITE_FRAMES && description->stack[depth][0]; depth++)
		json_string(json, description->stack[depth]);
	json_array_end(json);
	json_object_end(json);
}

static void json_line(const struct list_lines_run *run, struct json_writer *json, size_t i)
{
	const struct analysis *analysis = run->input->analysis;
	const struct heap *heap = &analysis->heap;
	const struct allocation *allocation = &heap->allocations[i];
	json_object_begin(json);
	json_key(json, "addr");
	json_uint(json, allocation->address);
	json_key(json, "size");
	json_uint(json, allocation->size);
	json_key(json, "state");
	json_string(json, allocation_state_name(allocation->state));
	json_key(json, "place");
	json_string(json, allocator_place_name(heap, allocation));
	const struct allocator *owner = allocator_of(heap, allocation);
	if (run->several_mallocs && owner) {
		json_key(json, "allocator");
		json_string(json, owner->name);
	}
	const char *type = analysis_type(analysis, i);
	json_key(json, "type");
	if (type)
		json_string(json, type);
	else
		json_null(json);
	const struct runtime *runtime = analysis->runtime.ops;
	size_t class = 0;
	const char *role = runtime ? runtime->block_role(analysis, i, &class) : NULL;
	if (role) {
		json_key(json, runtime->key);
		json_string(json, role);
		const struct runtime_garbage_classes *classes = runtime->garbage;
		if (class < classes->count && classes->classes[class].json_value >= 0) {
			json_key(json, classes->json_member);
			json_int(json, classes->classes[class].json_value);
		}
	}
	if (run->input->sites && allocation->state == ALLOCATION_LIVE)
		site_jsonl(json, analysis, i);
	struct path_shape path;
	if (run->input->paths && allocation->state == ALLOCATION_LIVE) {
		json_key(json, "path");
		if (path_of_allocation(run->input->paths, i, &path)) {
			json_array_begin(json);
			for (size_t e = 0; e < path.element_count; e++)
				json_string(json, path.elements[e]);
			json_array_end(json);
		} else {
			json_null(json); /* no root reaches it */
		}
	}
	json_object_end(json);
	json_finish(json);
}

static void *format_blocks(void *argument)
{
	struct list_lines_run *run = argument;
	const struct heap *heap = &run->input->analysis->heap;
	struct json_writer json;
	json_init_memory(&json);
	for (;;) {
		size_t block = atomic_fetch_add(&run->next_block, 1);
		size_t start = block * BLOCK_ALLOCATIONS;
		if (start >= heap->count)
			break;
		size_t end = start + BLOCK_ALLOCATIONS < heap->count ? start + BLOCK_ALLOCATIONS
								      : heap->count;
		for (size_t i = start; i < end; i++)
			if (run->input->state == LIST_ALL_STATES ||
			    heap->allocations[i].state == (enum allocation_state)run->input->state)
				json_line(run, &json, i);
		pthread_mutex_lock(&run->lock);
		while (run->next_written != block)
			pthread_cond_wait(&run->turn, &run->lock);
		if (json.memory.out_of_memory)
			run->out_of_memory = true;
		if (!run->out_of_memory)
			fwrite(json.memory.bytes, 1, json.memory.length, run->input->out);
		run->next_written++;
		pthread_cond_broadcast(&run->turn);
		pthread_mutex_unlock(&run->lock);
		json_memory_clear(&json);
	}
	json_free_memory(&json);
	return NULL;
}

int list_lines_write(const struct list_lines_input *input, struct hs_error *err)
{
	const struct heap_allocator *mallocs[HEAP_ALLOCATORS_MAX];
	struct list_lines_run run = {
		.input = input,
		.several_mallocs = heap_mallocs(&input->analysis->heap, mallocs,
						HEAP_ALLOCATORS_MAX) > 1,
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.turn = PTHREAD_COND_INITIALIZER,
	};
	atomic_init(&run.next_block, 0);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	size_t blocks = (input->analysis->heap.count + BLOCK_ALLOCATIONS - 1) / BLOCK_ALLOCATIONS;
	size_t workers = cores > 1 ? (size_t)cores : 1;
	if (workers > WORKERS_MAX)
		workers = WORKERS_MAX;
	if (workers > blocks)
		workers = blocks ? blocks : 1;
	if (input->sites)
		workers = 1; /* a site is described (symbols, DWARF lines) and cached on first use */
	pthread_t threads[WORKERS_MAX];
	size_t started = 0;
	/* the calling thread is one of the workers; the others run beside it while they start */
	while (started + 1 < workers &&
	       pthread_create(&threads[started], NULL, format_blocks, &run) == 0)
		started++;
	format_blocks(&run);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (run.out_of_memory)
		return hs_error_nomem(err, "formatting the allocations' lines");
	return 0;
}
