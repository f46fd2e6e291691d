/* Opening a snapshot for analysis (see analysis.h). */
#include "analysis.h"

#include <stdlib.h>
#include <string.h>

#include "analyze/c_types.h"
#include "analyze/allocators/malloc_provider.h"
#include "analyze/module_files.h"
#include "analyze/outside_heaps.h"
#include "analyze/graph/same_type.h"
#include "common/numbers.h"

/* A damaged frame makes every read of its bytes fail; the walks take such failures for odd
 * memory and go on, so the answer would silently leave out what the frame holds: that is an
 * error, or, when the user asked to go on, a warning. */
struct unseen_blocks {
	const struct heap *heap;
	uint64_t memory_bytes, blocks, block_bytes;
};

/* Adds what of [start, end) a damaged frame hid: its bytes, and the blocks found in it (a block
 * in two damaged ranges counts in each). */
static void count_unseen(void *context, uint64_t start, uint64_t end)
{
	struct unseen_blocks *unseen = context;
	unseen->memory_bytes += end - start;
	const struct heap *heap = unseen->heap;
	size_t low = 0, high = heap->count;
	while (low < high) { /* the first block ending after start */
		size_t middle = low + (high - low) / 2;
		if (heap->allocations[middle].address + heap->allocations[middle].size <= start)
			low = middle + 1;
		else
			high = middle;
	}
	for (size_t i = low; i < heap->count && heap->allocations[i].address < end; i++)
		if (heap->allocations[i].state == ALLOCATION_LIVE) {
			unseen->blocks++;
			unseen->block_bytes += heap->allocations[i].size;
		}
}

/* Blocks in memory that could not be read at capture: their contents, and what they point to,
 * are not seen; said with how much. */
static void warn_absent_blocks(struct analysis *analysis)
{
	struct unseen_blocks unseen = {.heap = &analysis->heap};
	snapshot_each_absent_range(analysis->snapshot, count_unseen, &unseen);
	if (unseen.blocks == 0)
		return;
	char memory[32], blocks[32];
	format_bytes(unseen.memory_bytes, memory, sizeof memory);
	format_bytes(unseen.block_bytes, blocks, sizeof blocks);
	warnings_add(&analysis->warnings,
		     "%llu live block%s (%s) lie%s in memory that could not be read when the "
		     "snapshot was taken (%s in all): %s contents, and what %s to, are not seen",
		     (unsigned long long)unseen.blocks, unseen.blocks == 1 ? "" : "s", blocks,
		     unseen.blocks == 1 ? "s" : "", memory, unseen.blocks == 1 ? "its" : "their",
		     unseen.blocks == 1 ? "it points" : "they point");
}

static int check_damage(struct analysis *analysis, struct hs_error *err)
{
	struct hs_error damage;
	if (snapshot_check_damage(analysis->snapshot, &damage) == 0 || analysis->damage_warned)
		return 0;
	if (analysis->damaged_frames_unreadable) {
		analysis->damage_warned = true;
		struct unseen_blocks unseen = {.heap = &analysis->heap};
		snapshot_each_damaged_range(analysis->snapshot, count_unseen, &unseen);
		char memory[32], blocks[32];
		format_bytes(unseen.memory_bytes, memory, sizeof memory);
		format_bytes(unseen.block_bytes, blocks, sizeof blocks);
		warnings_add(&analysis->warnings,
			     "%s: what it holds was treated as unreadable, so the answer leaves it "
			     "out (%llu damaged frames in all were met): %s of the process's memory, "
			     "in which %llu live blocks (%s) were found with their contents unread, "
			     "and any block whose header lay there is not counted",
			     damage.message,
			     (unsigned long long)snapshot_damaged_frames(analysis->snapshot), memory,
			     (unsigned long long)unseen.blocks, blocks);
		return 0;
	}
	return hs_error_set(err,
			    "%s; the analysis stops rather than answer without that memory "
			    "(`heapsnap info --verify %s` checks every frame)",
			    damage.message, snapshot_path(analysis->snapshot));
}

/* Memory the process wrote outside every heap walked, when it is too much to leave unsaid: at
 * least OUTSIDE_HEAPS_SAID and a tenth of all the memory the heaps and it hold. */
#define OUTSIDE_HEAPS_SAID (16ull << 20)
static void warn_outside_heaps(struct analysis *analysis)
{
	outside_heaps_measure(analysis->space, &analysis->heap, &analysis->outside_heaps);
	const struct outside_heaps outside = analysis->outside_heaps;
	if (outside.bytes < OUTSIDE_HEAPS_SAID ||
	    outside.bytes * 10 < outside.heap_bytes + outside.bytes)
		return;
	warnings_add(&analysis->warnings,
		     "%.1f MiB of anonymous memory the process wrote to lies outside every heap "
		     "walked, against %.1f MiB in them (%.1f MiB of it in the mapping at 0x%llx): "
		     "an allocator or runtime heapsnap does not know, or the program itself, keeps "
		     "it, and what it holds is missing from this report",
		     outside.bytes / 1048576.0, outside.heap_bytes / 1048576.0,
		     outside.largest_bytes / 1048576.0, (unsigned long long)outside.largest_start);
}

/* Sites recorded from outside (`capture --sites`) cover only the window before the capture, and
 * perhaps only a sample of it: what they leave out is said wherever sites are shown. */
static void warn_window_sites(struct analysis *analysis)
{
	const struct snapshot_info *info = snapshot_info(analysis->snapshot);
	if (strcmp(info->sites_source, "bpf") != 0)
		return;
	size_t live = 0;
	for (size_t i = 0; i < analysis->heap.count; i++)
		live += analysis->heap.allocations[i].state == ALLOCATION_LIVE;
	size_t recorded = analysis->sites.recorded < live ? analysis->sites.recorded : live;
	char with[32], without[32];
	format_count(recorded, with, sizeof with);
	format_count(live - recorded, without, sizeof without);
	warnings_add(&analysis->warnings,
		     "allocation sites were recorded by BPF only during the %.1f s window before the "
		     "capture: %s live allocations have one, %s have none (made before the window%s)",
		     (double)info->sites_window_ns / 1e9, with, without,
		     info->sites_unrecorded ? ", or in it but not recorded: see heapsnap info" : "");
	if (info->sites_sample_bytes)
		warnings_add(&analysis->warnings,
			     "allocation sites were sampled, one allocation per %llu bytes on average: "
			     "counts by site are those of the sample, not of every allocation; "
			     "estimates, not totals",
			     (unsigned long long)info->sites_sample_bytes);
}

/* The snapshot, its address space, its modules' symbols, and the runtime the process runs. */
static int open_snapshot(struct analysis *analysis, const char *path,
			 const struct analysis_options *options, struct hs_error *err)
{
	analysis->snapshot = snapshot_open(path, 0, err);
	if (analysis->snapshot == NULL)
		return -1;
	analysis->space = address_space_new(analysis->snapshot, &analysis->warnings, err);
	if (analysis->space == NULL)
		return -1;
	module_files_init(&analysis->module_files, analysis->snapshot, options->sysroot);
	address_space_set_module_files(analysis->space, &analysis->module_files);
	analysis->symbols = symbols_new(analysis->snapshot, options->debug_dir,
					&analysis->module_files, &analysis->warnings);
	if (analysis->symbols == NULL)
		return hs_error_nomem(err, "opening %s", path);
	symbols_use_debuginfod(analysis->symbols,
			       &(struct debug_fetch_options){options->debuginfod_urls,
							     options->no_debuginfod,
							     options->fetch_observer});
	for (size_t i = 0; known_runtimes[i] && analysis->runtime.ops == NULL; i++)
		if (known_runtimes[i]->detect(analysis, options, &analysis->runtime.state))
			analysis->runtime.ops = known_runtimes[i];
	analysis->c_types_reading = c_types_read_start(analysis->symbols);
	symbols_warn_unfetched(analysis->symbols); /* (every module is loaded now) */
	timings_mark(&analysis->timings, "open, symbols");
	return 0;
}

/* The malloc the process calls, walked, and those it keeps beside it (found in `provider`);
 * an error when there is none heapsnap can walk, since the heap would look empty. */
static int walk_mallocs(struct analysis *analysis, const char *path,
			const struct analysis_options *options, struct malloc_provider *provider,
			struct hs_error *err)
{
	if (!malloc_provider_find(analysis->symbols, provider)) {
		char what[1024];
		malloc_provider_identify(analysis->symbols, what, sizeof what);
		return hs_error_set(
			err,
			"%s: no malloc heapsnap knows is in the process (no libc.so is mapped, "
			"no module links glibc's malloc, no other allocator was recognised)%s%s: "
			"there is no heap it can walk",
			path, what[0] ? "; " : "", what);
	}
	if (provider->allocator == NULL)
		return hs_error_set(err,
				    "%s: the process allocates with %s (%s), which heapsnap cannot "
				    "walk yet: its heap would look empty, so there is no answer to give",
				    path, provider->name, provider->module_path);
	struct allocator_input input = {.space = analysis->space,
					.symbols = analysis->symbols,
					.module = provider->module,
					.linked_statically = provider->linked_statically,
					.no_debuginfo = options->no_debuginfo};
	if (provider->allocator->walk(&input, &analysis->heap, &analysis->warnings, err) != 0)
		return -1;
	timings_mark(&analysis->timings, provider->allocator->step);
	for (size_t i = 0; i < provider->walk_beside_count; i++) {
		const struct beside_malloc *beside = &provider->walk_beside[i];
		struct allocator_input beside_input = input;
		beside_input.module = beside->module;
		beside_input.linked_statically = beside->linked_statically;
		if (beside->allocator->in_use && !beside->allocator->in_use(&beside_input))
			continue;
		if (beside->allocator->walk(&beside_input, &analysis->heap, &analysis->warnings,
					    err) != 0)
			return -1;
		timings_mark(&analysis->timings, beside->allocator->step);
	}
	for (size_t i = 0; i < provider->beside_count; i++)
		warnings_add(&analysis->warnings,
			     "%s (%s) keeps a heap of its own beside %s, which heapsnap does not "
			     "walk: what it holds is missing from this report",
			     provider->beside[i].name, provider->beside[i].module_path,
			     provider->allocator->name);
	return 0;
}

/* The blocks named: C++ objects by their vtables, the runtime's objects, then C types from the
 * modules' variables along pointers. */
static int name_blocks(struct analysis *analysis, const struct malloc_provider *provider,
		       struct hs_error *err)
{
	const struct runtime *runtime = analysis->runtime.ops;
	/* an allocator in a library of its own may be C++ or need the C++ runtime (jemalloc's
	   and tcmalloc's operator new): that makes no C++ objects of the program's (not so an
	   executable with an allocator linked in, which is the program) */
	struct module_symbols *allocator_modules[1];
	size_t allocator_module_count = 0;
	if (provider->module != NULL && provider->module_path != NULL &&
	    strstr(provider->module_path, ".so") != NULL)
		allocator_modules[allocator_module_count++] = provider->module;
	/* blocks' first words a walker left unread are read only for what needs them: a C++
	 * object's vtable pointer, a runtime's object headers */
	bool name_cxx_objects = symbols_may_name_cxx_objects(analysis->symbols, allocator_modules,
							     allocator_module_count);
	if (analysis->heap.first_words_unread && (runtime != NULL || name_cxx_objects))
		heap_read_first_words(&analysis->heap, analysis->space);
	if (types_assign(&analysis->types, &analysis->heap, analysis->symbols, name_cxx_objects,
			 err) != 0)
		return -1;
	timings_mark(&analysis->timings, "C++ types");
	if (runtime) {
		if (runtime->find_objects(analysis, err) != 0)
			return -1;
		timings_mark(&analysis->timings, runtime->objects_step);
	}
	struct c_types_reading *reading = analysis->c_types_reading;
	analysis->c_types_reading = NULL; /* (used up, even on failure) */
	if (reading) /* (its time overlaps the walk's: said beside the steps) */
		timings_aside(&analysis->timings, "DWARF: the modules' variables and types, read beside",
			      c_types_read_seconds(reading));
	if (c_types_propagate(&analysis->types, &analysis->heap, analysis->space, analysis->symbols,
			      reading, runtime && runtime->has_objects(analysis),
			      &analysis->warnings, err) != 0)
		return -1;
	timings_mark(&analysis->timings, "C types");
	return 0;
}

struct analysis *analysis_open(const char *path, const struct analysis_options *options,
			       struct hs_error *err)
{
	struct analysis *analysis = calloc(1, sizeof *analysis);
	if (analysis == NULL) {
		hs_error_nomem(err, "opening %s", path);
		return NULL;
	}
	struct timings *timings = &analysis->timings;
	timings_start(timings);
	timings->observer = options->observer;
	analysis->damaged_frames_unreadable = options->damaged_frames_unreadable;
	struct malloc_provider provider;
	if (open_snapshot(analysis, path, options, err) != 0 ||
	    walk_mallocs(analysis, path, options, &provider, err) != 0)
		goto fail;
	const struct runtime *runtime = analysis->runtime.ops;
	if (runtime && runtime->walk_heap) {
		if (runtime->walk_heap(analysis, options, err) != 0)
			goto fail;
		timings_mark(timings, runtime->heap_step);
	}
	warn_outside_heaps(analysis);
	warn_absent_blocks(analysis);
	timings_mark(timings, "memory outside the heaps");
	if (name_blocks(analysis, &provider, err) != 0)
		goto fail;
	if (allocation_sites_load(&analysis->sites, analysis->snapshot, &analysis->heap, err) != 0)
		goto fail;
	warn_window_sites(analysis);
	timings_mark(timings, "allocation sites");
	if (check_damage(analysis, err) != 0)
		goto fail;
	return analysis;
fail:
	analysis_close(analysis);
	return NULL;
}

void analysis_close(struct analysis *analysis)
{
	if (analysis == NULL)
		return;
	c_types_read_free(analysis->c_types_reading);
	if (analysis->has_graph)
		graph_free(&analysis->graph);
	free(analysis->same_type_dominated);
	if (analysis->runtime.ops)
		analysis->runtime.ops->free(analysis->runtime.state);
	allocation_sites_free(&analysis->sites);
	types_free(&analysis->types);
	heap_free(&analysis->heap);
	symbols_free(analysis->symbols);
	address_space_free(analysis->space);
	snapshot_close(analysis->snapshot);
	warnings_free(&analysis->warnings);
	free(analysis);
}

static int build_graph(struct analysis *analysis, bool dominators, struct hs_error *err)
{
	if (analysis->has_graph && (analysis->graph.idom || !dominators))
		return 0;
	if (analysis->has_graph) {
		graph_free(&analysis->graph);
		analysis->has_graph = false;
	}
	free(analysis->same_type_dominated);
	analysis->same_type_dominated = NULL;
	timings_mark(&analysis->timings, "(the front end)");
	/* each runtime's model of its objects' references */
	const struct runtime *runtimes[ANALYSIS_RUNTIMES_MAX];
	size_t runtime_count = analysis_runtimes(analysis, runtimes, ANALYSIS_RUNTIMES_MAX);
	struct graph_model models[ANALYSIS_RUNTIMES_MAX] = {0};
	void *model_states[ANALYSIS_RUNTIMES_MAX] = {0};
	const struct runtime *model_runtimes[ANALYSIS_RUNTIMES_MAX] = {0};
	size_t model_count = 0;
	int built = 0;
	for (size_t i = 0; i < runtime_count && built == 0; i++) {
		built = runtimes[i]->graph_model(analysis, &models[model_count],
						 &model_states[model_count], err);
		if (built == 0 && model_states[model_count] != NULL)
			model_runtimes[model_count++] = runtimes[i];
	}
	timings_mark(&analysis->timings, "graph: runtime's model");
	if (built == 0)
		built = graph_build(&analysis->graph, analysis->space, analysis->symbols,
				    &analysis->heap, &analysis->types, models, model_count,
				    &analysis->warnings, err);
	for (size_t m = 0; m < model_count; m++)
		model_runtimes[m]->graph_model_free(model_states[m]);
	if (built != 0 || check_damage(analysis, err) != 0)
		return -1;
	timings_mark(&analysis->timings, "graph: edges");
	if (graph_analyse(&analysis->graph, dominators, err) != 0)
		return -1;
	if (dominators &&
	    (analysis->same_type_dominated = graph_mark_same_type_dominated(
		 &analysis->graph, &analysis->heap, &analysis->types, NULL)) == NULL)
		return hs_error_nomem(err, "analysing the object graph");
	timings_mark(&analysis->timings, dominators ? "graph: dominators" : "graph: reachable");
	analysis->has_graph = true;
	return 0;
}

size_t analysis_runtimes(const struct analysis *analysis, const struct runtime **runtimes,
			 size_t max)
{
	size_t count = 0;
	if (analysis->runtime.ops && count < max)
		runtimes[count++] = analysis->runtime.ops;
	return count;
}

int analysis_build_graph(struct analysis *analysis, struct hs_error *err)
{
	return build_graph(analysis, true, err);
}

int analysis_build_reachability(struct analysis *analysis, struct hs_error *err)
{
	return build_graph(analysis, false, err);
}

const char *analysis_type(const struct analysis *analysis, size_t index)
{
	return types_name(&analysis->types, index);
}

const char *allocation_state_name(enum allocation_state state)
{
	return state == ALLOCATION_LIVE ? "live" : "free";
}

bool runtime_has_objects(const struct analysis *analysis)
{
	return analysis->runtime.ops && analysis->runtime.ops->object_count(analysis) > 0;
}
