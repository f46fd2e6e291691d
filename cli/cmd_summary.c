/* `heapsnap summary FILE`: one snapshot's heap in totals, per arena, and by type (untyped
 * allocations grouped by size), as text or JSON (schema heapsnap.summary/1); or the retaining
 * paths alone as a Graphviz digraph (DOT). */
#include <fnmatch.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analysis.h"
#include "analyze/graph/paths.h"
#include "analyze/reports/summary.h"
#include "cli/cli.h"
#include "cli/path_graph.h"
#include "cli/progress.h"
#include "cli/html_report.h"
#include "formats/json.h"

#define TOP_TYPES 20
#define TYPES_WITH_PATHS 10 /* the largest types get their retaining paths */
#define PATHS_PER_TYPE 3

static const struct cli_command_help help = {
	.program = "heapsnap",
	.name = "summary",
	.operands = 1,
	.expects = "expects one FILE",
	.arguments = "FILE",
	.about =
		"What one snapshot's heap is made of: live and free totals, each arena (with its\n"
		"fragmentation: the share of its chunk bytes that are free, the top chunk not counted),\n"
		"the live allocations grouped by type (or by size where the type is not known), the\n"
		"shortest paths from a root that keep the largest types alive, the roots, and what no\n"
		"root reaches, with the cycles among it.\n",
};

static const struct cli_choice formats[] = {{"text", FORMAT_TEXT},
					     {"json", FORMAT_JSON},
					     {"dot", FORMAT_DOT},
					     {"html", FORMAT_HTML},
					     {NULL, 0}};

struct totals {
	uint64_t live_count, live_bytes, free_count, free_bytes, top_bytes;
};

static struct totals heap_totals(const struct heap *heap)
{
	struct totals totals = {0};
	for (size_t i = 0; i < heap->arena_count; i++) {
		totals.live_count += heap->arenas[i].live_count;
		totals.live_bytes += heap->arenas[i].live_bytes;
		totals.free_count += heap->arenas[i].free_count;
		totals.free_bytes += heap->arenas[i].free_bytes;
		totals.top_bytes += heap->arenas[i].top_bytes;
	}
	return totals;
}

/* The share of the chunk bytes that are free, not counting the top chunk: free memory the
 * allocator holds between live allocations. */
static double fragmentation(uint64_t live_bytes, uint64_t free_bytes, uint64_t top_bytes)
{
	uint64_t holes = free_bytes - top_bytes;
	return live_bytes + holes ? (double)holes / (double)(live_bytes + holes) : 0;
}

/* --type PATTERN: the types whose retaining paths are shown (else the ten largest). */
static const char *paths_pattern;

static bool wants_paths(size_t rank, const char *name)
{
	return paths_pattern ? fnmatch(paths_pattern, name, 0) == 0 : rank < TYPES_WITH_PATHS;
}

/* Type group `i`'s name and, when its retaining paths are shown (wants_paths), their shapes. */
static bool shown_paths(const struct heap_summary *summary, const struct path_index *paths,
			size_t i, char name[128], struct path_shape shapes[PATHS_PER_TYPE],
			size_t *count)
{
	type_group_name(&summary->types[i], name, 128);
	if (!wants_paths(i, name))
		return false;
	*count = paths_of_type(paths, summary->types[i].type, summary->types[i].size, NULL, NULL,
			       shapes, PATHS_PER_TYPE);
	return true;
}

struct path_job {
	const struct analysis *analysis;
	bool show_values;
	struct path_index *index; /* NULL on failure, with err */
	struct hs_error err;
};

static void *build_path_index(void *argument)
{
	struct path_job *job = argument;
	job->index = path_index_build(job->analysis, job->show_values, &job->err);
	return NULL;
}

/* Counts the shapes of every group whose paths the report shows in one pass over the heap
 * (paths_prepare); when out of memory, each group is counted as it is shown. */
static void prepare_paths(struct path_index *paths, const struct heap_summary *summary)
{
	const char **types = calloc(summary->type_count + 1, sizeof *types);
	uint64_t *sizes = calloc(summary->type_count + 1, sizeof *sizes);
	size_t count = 0;
	for (size_t i = 0; types && sizes && i < summary->type_count; i++) {
		char name[128];
		type_group_name(&summary->types[i], name, sizeof name);
		if (!wants_paths(i, name))
			continue;
		types[count] = summary->types[i].type;
		sizes[count++] = summary->types[i].size;
	}
	if (types && sizes)
		paths_prepare(paths, types, sizes, count, NULL, NULL);
	free(types);
	free(sizes);
}

/* The retaining paths the text shows (wants_paths), as a Graphviz digraph; false when out of
 * memory. */
static bool print_dot(const struct analysis *analysis, const struct heap_summary *summary,
		      const struct path_index *paths)
{
	struct path_graph *graph = path_graph_new();
	for (size_t i = 0; graph && i < summary->type_count; i++) {
		char name[128];
		struct path_shape shapes[PATHS_PER_TYPE];
		size_t count;
		if (!shown_paths(summary, paths, i, name, shapes, &count))
			continue;
		for (size_t k = 0; k < count && graph; k++)
			if (path_graph_add(graph, &shapes[k]) < 0) {
				path_graph_free(graph);
				graph = NULL;
			}
	}
	if (graph == NULL)
		return false;
	printf("// heapsnap summary %s: pid %d, what keeps the objects of %s alive\n"
	       "// (edges: how many of them take the step; render: dot -Tsvg -o paths.svg)\n",
	       HEAPSNAP_VERSION, snapshot_info(analysis->snapshot)->pid,
	       paths_pattern ? "the types asked for" : "the largest types");
	cli_dot_caveats(stdout, NULL, analysis);
	path_graph_write(stdout, graph, PATH_GRAPH_DOT, "heapsnap_summary");
	path_graph_free(graph);
	return true;
}

static void print_paths_json(struct json_writer *json, const struct path_index *paths,
			     const struct type_group *group)
{
	struct path_shape shapes[PATHS_PER_TYPE];
	size_t count = paths_of_type(paths, group->type, group->size, NULL, NULL, shapes, PATHS_PER_TYPE);
	cli_json_retainers(json, shapes, count);
}

static void print_groups_json(struct json_writer *json, const struct type_group *groups,
			      size_t count, bool retained, const struct path_index *paths)
{
	json_array_begin(json);
	for (size_t i = 0; i < count; i++) {
		char name[128];
		type_group_name(&groups[i], name, sizeof name);
		json_object_begin(json);
		json_key(json, "type");
		json_string(json, name);
		json_key(json, "count");
		json_uint(json, groups[i].count);
		json_key(json, "bytes");
		json_uint(json, groups[i].bytes);
		if (retained) {
			json_key(json, "retained_bytes");
			json_uint(json, groups[i].retained);
		}
		if (paths && wants_paths(i, name))
			print_paths_json(json, paths, &groups[i]);
		json_object_end(json);
	}
	json_array_end(json);
}

static void print_json(FILE *out, const struct analysis *analysis,
		       const struct heap_summary *summary, const struct path_index *paths)
{
	const struct snapshot_info *info = snapshot_info(analysis->snapshot);
	const struct heap *heap = &analysis->heap;
	struct totals totals = heap_totals(heap);
	struct json_writer json;
	json_init(&json, out);
	json_object_begin(&json);
	json_key(&json, "schema");
	json_string(&json, "heapsnap.summary/1");
	json_key(&json, "pid");
	json_int(&json, info->pid);
	json_key(&json, "exe");
	json_string(&json, info->exe);
	json_key(&json, "program");
	json_string(&json, info->program);
	json_key(&json, "runtimes");
	json_object_begin(&json);
	const struct heap_allocator *malloc_walked = heap_malloc(heap);
	cli_json_runtime_versions(&json, analysis);
	json_object_end(&json);
	if (analysis->runtime)
		analysis->runtime->summary_json(analysis, &json);
	json_key(&json, "heap");
	json_object_begin(&json);
	json_key(&json, "allocator");
	json_string(&json, malloc_walked->allocator->name);
	json_key(&json, "found_with");
	json_string(&json, malloc_walked->method);
	const struct heap_allocator *mallocs[HEAP_ALLOCATORS_MAX];
	size_t malloc_count = heap_mallocs(heap, mallocs, HEAP_ALLOCATORS_MAX);
	if (malloc_count > 1) {
		json_key(&json, "beside"); /* the other mallocs walked */
		json_array_begin(&json);
		for (size_t i = 1; i < malloc_count; i++) {
			json_object_begin(&json);
			json_key(&json, "allocator");
			json_string(&json, mallocs[i]->allocator->name);
			json_key(&json, "version");
			if (mallocs[i]->version[0])
				json_string(&json, mallocs[i]->version);
			else
				json_null(&json);
			json_key(&json, "found_with");
			json_string(&json, mallocs[i]->method);
			json_object_end(&json);
		}
		json_array_end(&json);
	}
	json_key(&json, "live_count");
	json_uint(&json, totals.live_count);
	json_key(&json, "live_bytes");
	json_uint(&json, totals.live_bytes);
	json_key(&json, "free_count");
	json_uint(&json, totals.free_count);
	json_key(&json, "free_bytes");
	json_uint(&json, totals.free_bytes);
	json_key(&json, "top_bytes");
	json_uint(&json, totals.top_bytes);
	json_key(&json, "fragmentation");
	json_double(&json, fragmentation(totals.live_bytes, totals.free_bytes, totals.top_bytes));
	cli_json_damage(&json, &heap->damage);
	cli_json_unseen(&json, &analysis->outside_heaps);
	json_key(&json, "arenas");
	json_array_begin(&json);
	for (size_t i = 0; i < heap->arena_count; i++) {
		const struct heap_arena *arena = &heap->arenas[i];
		json_object_begin(&json);
		const struct allocator *owner = allocator_of_arena(heap, arena);
		json_key(&json, "allocator");
		if (owner)
			json_string(&json, owner->name);
		else
			json_null(&json);
		json_key(&json, "kind");
		json_string(&json, arena->kind);
		json_key(&json, "address");
		json_uint(&json, arena->address);
		json_key(&json, "system_bytes");
		json_uint(&json, arena->system_bytes);
		json_key(&json, "live_count");
		json_uint(&json, arena->live_count);
		json_key(&json, "live_bytes");
		json_uint(&json, arena->live_bytes);
		json_key(&json, "free_count");
		json_uint(&json, arena->free_count);
		json_key(&json, "free_bytes");
		json_uint(&json, arena->free_bytes);
		json_key(&json, "fragmentation");
		json_double(&json, fragmentation(arena->live_bytes, arena->free_bytes, arena->top_bytes));
		json_object_end(&json);
	}
	json_array_end(&json);
	json_object_end(&json);
	json_key(&json, "types");
	print_groups_json(&json, summary->types, summary->type_count, true, paths);
	json_key(&json, "roots");
	json_array_begin(&json);
	for (size_t i = 0; i < summary->root_count; i++) {
		json_object_begin(&json);
		json_key(&json, "root");
		json_string(&json, summary->roots[i].name);
		json_key(&json, "retained_bytes");
		json_uint(&json, summary->roots[i].retained);
		json_key(&json, "holds_bytes");
		json_uint(&json, summary->roots[i].holds);
		json_key(&json, "holds_exact");
		json_bool(&json, summary->roots[i].holds_exact);
		json_key(&json, "objects");
		json_uint(&json, summary->roots[i].objects);
		json_object_end(&json);
	}
	json_array_end(&json);
	json_key(&json, "reachable_bytes");
	json_uint(&json, summary->reachable_bytes);
	json_key(&json, "shared");
	json_object_begin(&json);
	json_key(&json, "bytes");
	json_uint(&json, summary->shared_bytes);
	json_key(&json, "groups");
	json_array_begin(&json);
	for (size_t g = 0; g < summary->shared_count; g++) {
		const struct root_holding_group *group = &summary->shared[g];
		json_object_begin(&json);
		json_key(&json, "roots");
		json_array_begin(&json);
		for (uint32_t k = 0; k < group->member_count; k++)
			json_string(&json, summary->roots[group->members[k]].name);
		json_array_end(&json);
		json_key(&json, "more_roots");
		json_bool(&json, group->more);
		json_key(&json, "bytes");
		json_uint(&json, group->bytes);
		json_object_end(&json);
	}
	json_array_end(&json);
	json_object_end(&json);
	json_key(&json, "unreachable");
	json_object_begin(&json);
	json_key(&json, "count");
	json_uint(&json, summary->unreachable_objects);
	json_key(&json, "bytes");
	json_uint(&json, summary->unreachable_bytes);
	json_key(&json, "by_type");
	print_groups_json(&json, summary->unreachable, summary->unreachable_count, false, NULL);
	if (runtime_has_objects(analysis))
		cli_json_garbage(&json, summary->garbage_objects, summary->garbage_bytes);
	cli_json_cycles(&json, summary->cycles, summary->cycle_count);
	json_object_end(&json);
	if (analysis->sites.recorded)
		cli_json_sites(&json, &summary->untyped_sites, "count", "bytes");
	json_key(&json, "warnings");
	json_array_begin(&json);
	for (size_t i = 0; i < analysis->warnings.count; i++)
		json_string(&json, analysis->warnings.items[i]);
	json_array_end(&json);
	json_object_end(&json);
	json_finish(&json);
}

struct summary_parts {
	const struct analysis *analysis;
	const struct heap_summary *summary;
	const struct path_index *paths;
};

static void print_json_to(FILE *out, void *context)
{
	const struct summary_parts *parts = context;
	print_json(out, parts->analysis, parts->summary, parts->paths);
}

/* The HTML page carries the JSON document (html_report.c). */
static int print_html(const struct analysis *analysis, const struct heap_summary *summary,
		      const struct path_index *paths)
{
	struct summary_parts parts = {analysis, summary, paths};
	if (html_report_write(stdout, HTML_REPORT_SUMMARY, print_json_to, &parts) == 0)
		return EXIT_OK;
	fprintf(stderr, "heapsnap summary: out of memory or unable to write the report\n");
	return EXIT_ERROR;
}

/* An arena's kind, with its malloc's name before it when the process has several. */
static void arena_kind(const struct heap *heap, const struct heap_arena *arena, bool several_mallocs,
		       char *out, size_t size)
{
	const struct allocator *owner = allocator_of_arena(heap, arena);
	if (several_mallocs && owner && owner->walk)
		snprintf(out, size, "%s %s", owner->version_name, arena->kind);
	else
		snprintf(out, size, "%s", arena->kind);
}

static void print_text(const struct analysis *analysis, const struct heap_summary *summary,
		       const struct path_index *paths)
{
	const struct type_group *groups = summary->types;
	size_t group_count = summary->type_count;
	const struct snapshot_info *info = snapshot_info(analysis->snapshot);
	const struct heap *heap = &analysis->heap;
	struct totals totals = heap_totals(heap);
	char count[32], bytes[32], system[32], count2[32], bytes2[32];
	char process[4200];
	cli_process_name(info, true, process, sizeof process);
	printf("pid %d  %s\n", info->pid, process);
	const struct heap_allocator *mallocs[HEAP_ALLOCATORS_MAX];
	size_t malloc_count = heap_mallocs(heap, mallocs, HEAP_ALLOCATORS_MAX);
	for (size_t i = 0; i < malloc_count; i++)
		printf("%s %s%s, structures found with %s\n", mallocs[i]->allocator->name,
		       mallocs[i]->version[0] ? mallocs[i]->version : "(version unknown)",
		       i ? " beside it" : "", mallocs[i]->method);
	const struct runtime *runtime = analysis->runtime;
	char line[8192];
	if (runtime && runtime->describe(analysis, line, sizeof line)) {
		printf("%s\n", line);
		if (runtime->damage_words(analysis, line, sizeof line))
			printf("  damaged: %s (see the warnings)\n", line);
	}
	cli_format_count(totals.live_count, count, sizeof count);
	cli_format_bytes(totals.live_bytes, bytes, sizeof bytes);
	printf("  live  %12s allocations  %10s\n", count, bytes);
	cli_format_count(totals.free_count, count, sizeof count);
	cli_format_bytes(totals.free_bytes, bytes, sizeof bytes);
	printf("  free  %12s chunks       %10s  (fragmentation %.1f%%)\n", count, bytes,
	       100 * fragmentation(totals.live_bytes, totals.free_bytes, totals.top_bytes));
	if (heap->damage.spots) {
		char damage[128];
		cli_format_damage(&heap->damage, damage, sizeof damage);
		printf("  damaged: %s (see the warnings)\n", damage);
	}
	cli_format_unseen(NULL, &analysis->outside_heaps, line, sizeof line);
	if (line[0])
		printf("  memory no walker reads: %s\n", line);
	printf("\narenas:\n");
	/* with several mallocs each arena says whose it is; the column fits the longest */
	int kind_width = 8;
	for (size_t i = 0; i < heap->arena_count; i++) {
		char kind[sizeof heap->arenas[i].kind + 32];
		arena_kind(heap, &heap->arenas[i], malloc_count > 1, kind, sizeof kind);
		if ((int)strlen(kind) > kind_width)
			kind_width = (int)strlen(kind);
	}
	printf("  %-*s %-16s %10s %12s %10s %12s %10s %6s\n", kind_width, "kind", "address", "system",
	       "live", "bytes", "free", "bytes", "frag");
	for (size_t i = 0; i < heap->arena_count; i++) {
		const struct heap_arena *arena = &heap->arenas[i];
		cli_format_bytes(arena->system_bytes, system, sizeof system);
		cli_format_count(arena->live_count, count, sizeof count);
		cli_format_bytes(arena->live_bytes, bytes, sizeof bytes);
		cli_format_count(arena->free_count, count2, sizeof count2);
		cli_format_bytes(arena->free_bytes, bytes2, sizeof bytes2);
		char kind[sizeof arena->kind + 32];
		arena_kind(heap, arena, malloc_count > 1, kind, sizeof kind);
		printf("  %-*s 0x%-14llx %10s %12s %10s %12s %10s %5.1f%%\n", kind_width, kind,
		       (unsigned long long)arena->address, system, count, bytes, count2, bytes2,
		       100 * fragmentation(arena->live_bytes, arena->free_bytes, arena->top_bytes));
	}
	printf("\nlive allocations by type, top %d by bytes:\n", TOP_TYPES);
	printf("  %12s %10s %10s  %s\n", "count", "bytes", "retained", "type");
	for (size_t i = 0; i < group_count && i < TOP_TYPES; i++) {
		char name[128], retained[32];
		type_group_name(&groups[i], name, sizeof name);
		cli_format_count(groups[i].count, count, sizeof count);
		cli_format_bytes(groups[i].bytes, bytes, sizeof bytes);
		cli_format_bytes(groups[i].retained, retained, sizeof retained);
		printf("  %12s %10s %10s  %s\n", count, bytes, retained, name);
	}
	if (group_count > TOP_TYPES)
		printf("  (%zu more types and sizes)\n", group_count - TOP_TYPES);
	printf("\nwhat keeps them alive (shortest paths from a root, by shape):\n");
	for (size_t i = 0; i < group_count; i++) {
		char name[128];
		struct path_shape shapes[PATHS_PER_TYPE];
		size_t count_shapes;
		if (!shown_paths(summary, paths, i, name, shapes, &count_shapes))
			continue;
		printf("  %s\n", name);
		for (size_t k = 0; k < count_shapes; k++) {
			cli_format_count(shapes[k].count, count, sizeof count);
			cli_format_bytes(shapes[k].retained, bytes, sizeof bytes);
			printf("    [%s] %s objects, %s retained:", shapes[k].signature, count, bytes);
			for (size_t e = 0; e < shapes[k].element_count; e++)
				printf("%s%s", e ? " -> " : " ", shapes[k].elements[e]);
			printf("\n");
		}
	}
	printf("\nroots, top %d by bytes held (reachable from the root; retained: freed with it "
	       "alone):\n",
	       TOP_TYPES);
	printf("        held   retained  root\n");
	for (size_t i = 0; i < summary->root_count && i < TOP_TYPES; i++) {
		if (summary->roots[i].holds == 0)
			break;
		char held[32];
		cli_format_bytes(summary->roots[i].holds, held, sizeof held);
		cli_format_bytes(summary->roots[i].retained, bytes, sizeof bytes);
		printf("  %s%9s  %9s  %s\n", summary->roots[i].holds_exact ? " " : ">", held, bytes,
		       summary->roots[i].name);
	}
	if (summary->shared_count) {
		cli_format_bytes(summary->shared_bytes, bytes, sizeof bytes);
		printf("\nheld jointly by several roots (retained by none of them alone): %s\n", bytes);
		for (size_t g = 0; g < summary->shared_count && g < TOP_TYPES; g++) {
			const struct root_holding_group *group = &summary->shared[g];
			cli_format_bytes(group->bytes, bytes, sizeof bytes);
			printf("  %10s  held by %s%u roots: ", bytes, group->more ? "more than " : "",
			       group->member_count);
			for (uint32_t k = 0; k < group->member_count; k++)
				printf("%s%s", k ? ", " : "", summary->roots[group->members[k]].name);
			printf("%s\n", group->more ? ", ..." : "");
		}
	}
	cli_format_count(summary->unreachable_objects, count, sizeof count);
	cli_format_bytes(summary->unreachable_bytes, bytes, sizeof bytes);
	if (runtime_has_objects(analysis))
		printf("\nunreachable from every root (%s objects: garbage %s has not freed yet; other "
		       "blocks: leaked): %s objects, %s\n",
		       analysis->runtime->language, analysis->runtime->collector, count, bytes);
	else
		printf("\nunreachable from every root (leaked: nothing can free them): %s allocations, "
		       "%s\n",
		       count, bytes);
	for (size_t i = 0; i < summary->unreachable_count && i < TOP_TYPES; i++) {
		char name[128];
		type_group_name(&summary->unreachable[i], name, sizeof name);
		cli_format_count(summary->unreachable[i].count, count, sizeof count);
		cli_format_bytes(summary->unreachable[i].bytes, bytes, sizeof bytes);
		printf("  %12s %10s  %s\n", count, bytes, name);
	}
	if (runtime_has_objects(analysis)) {
		static const char *const generations[] = {"generation 0", "generation 1",
							  "generation 2", "untracked"};
		printf("\n%s garbage by the collector's generation it sits in:\n",
		       analysis->runtime->language);
		for (size_t g = 0; g < 4; g++) {
			cli_format_count(summary->garbage_objects[g], count, sizeof count);
			cli_format_bytes(summary->garbage_bytes[g], bytes, sizeof bytes);
			printf("  %-14s %12s objects %10s\n", generations[g], count, bytes);
		}
	}
	if (summary->cycle_count)
		printf("\ncycles among them, by shape:\n");
	for (size_t i = 0; i < summary->cycle_count && i < TOP_TYPES; i++) {
		const struct cycle_shape *cycle = &summary->cycles[i];
		cli_format_count(cycle->count, count, sizeof count);
		cli_format_bytes(cycle->bytes, bytes, sizeof bytes);
		printf("  [%s] %s cycles, %s: %s\n", cycle->signature, count, bytes, cycle->text);
	}
	if (summary->untyped_sites.count)
		printf("\nuntyped allocations by the site that made them (recorded by the hook), top "
		       "%d by bytes:\n",
		       TOP_TYPES);
	for (size_t i = 0; i < summary->untyped_sites.count && i < TOP_TYPES; i++) {
		const struct site_group *group = &summary->untyped_sites.groups[i];
		cli_format_count(group->count, count, sizeof count);
		cli_format_bytes(group->bytes, bytes, sizeof bytes);
		printf("  %12s %10s  %s\n", count, bytes,
		       group->description ? group->description->chain : "?");
	}
	if (analysis->warnings.count)
		printf("\n%zu warning%s (on stderr)\n", analysis->warnings.count,
		       analysis->warnings.count == 1 ? "" : "s");
}

int cmd_summary(int argc, char **argv)
{
	struct analysis_options analysis_options = {0};
	int format = FORMAT_TEXT;
	bool show_values = false;
	const struct cli_option options[] = {
		CLI_CHOICE("format", "F", &format, formats,
			   "text (default), json (schema heapsnap.summary/1), dot (the\n"
			   "retaining paths as a Graphviz digraph, for dot -Tsvg) or html\n"
			   "(one self-contained page to open in a browser)"),
		CLI_STRING(0, "type", "PATTERN", &paths_pattern,
			   "show the retaining paths of the types matching PATTERN (a shell\n"
			   "pattern: '__main__.*'), instead of those of the ten largest"),
		CLI_SHOW_VALUES(&show_values),
		CLI_ANALYSIS_OPTIONS(&analysis_options), CLI_END};
	int first;
	int status = cli_parse_options(&help, options, argc, argv, &first);
	if (status != CLI_PARSED)
		return status;
	struct analysis *analysis = cli_open_analysis(
		"summary", argv[first], &analysis_options, format != FORMAT_JSON, CLI_WHOLE_GRAPH);
	if (analysis == NULL)
		return EXIT_ERROR;
	/* the path index is built beside the summary, on the other core: both only read the
	   analysis */
	struct path_job paths_job = {analysis, show_values, NULL, {0}};
	pthread_t paths_thread;
	bool paths_beside = pthread_create(&paths_thread, NULL, build_path_index, &paths_job) == 0;
	struct hs_error err;
	struct heap_summary summary;
	int built = heap_summary_build(analysis, &summary, &err);
	timings_mark(&analysis->timings, "types, roots, cycles");
	if (paths_beside)
		pthread_join(paths_thread, NULL);
	else
		build_path_index(&paths_job);
	timings_mark(&analysis->timings, "path index (the rest of it)");
	struct path_index *paths = paths_job.index;
	if (built != 0 || paths == NULL) {
		if (built == 0)
			heap_summary_free(&summary);
		path_index_free(paths);
		analysis_close(analysis);
		return cli_fail("summary", built != 0 ? &err : &paths_job.err);
	}
	for (size_t i = 0; i < summary.cycle_count && !show_values; i++) {
		char masked[sizeof summary.cycles[i].text];
		path_mask_values(summary.cycles[i].text, masked, sizeof masked);
		memcpy(summary.cycles[i].text, masked, sizeof masked);
	}
	prepare_paths(paths, &summary);
	progress_end();
	status = EXIT_OK;
	if (format == FORMAT_JSON)
		print_json(stdout, analysis, &summary, paths);
	else if (format == FORMAT_HTML)
		status = print_html(analysis, &summary, paths);
	else if (format == FORMAT_DOT && !print_dot(analysis, &summary, paths)) {
		fprintf(stderr, "heapsnap summary: out of memory writing the report\n");
		status = EXIT_ERROR;
	} else if (format == FORMAT_TEXT)
		print_text(analysis, &summary, paths);
	timings_mark(&analysis->timings, "report");
	path_index_free(paths);
	heap_summary_free(&summary);
	return cli_close_analysis("summary", argv[first], analysis, status);
}
