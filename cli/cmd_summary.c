/* `heapsnap summary FILE`: one snapshot's heap in totals, per arena, and by type (untyped
 * allocations grouped by size), as text or JSON (schema heapsnap.summary/1), both written by one
 * walk through the emitter (cli/emit.h), or as HTML embedding that JSON; or the retaining paths
 * alone as a Graphviz digraph (DOT). */
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
#include "cli/emit.h"
#include "cli/html_report.h"
#include "cli/json_schema.h"
#include "cli/openmetrics.h"
#include "cli/path_graph.h"
#include "cli/progress.h"
#include "cli/site_report.h"

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
		"root reaches, with the cycles among it.\n"
		"\n"
		"--format openmetrics writes Prometheus metrics (docs/watch.md#metrics): per type, the\n"
		"largest 20 by bytes, the rest summed as type=\"(other)\".\n",
};

static const struct cli_choice formats[] = {{"text", FORMAT_TEXT},
					     {"json", FORMAT_JSON},
					     {"dot", FORMAT_DOT},
					     {"html", FORMAT_HTML},
					     {"openmetrics", FORMAT_OPENMETRICS},
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
	const struct analysis *analysis = job->analysis;
	job->index = path_index_build(&analysis->graph, &analysis->heap, &analysis->types,
				      analysis->same_type_dominated, job->show_values, &job->err);
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

/* ---- the walk: one sequence of calls for text and JSON (cli/emit.h) ----
 *
 * JSON is the contract and has every row; text is read by people and has the first TOP_TYPES of
 * each list. Where they say things in different places, the calls only one back end renders say
 * so. */

/* The process: text a line and the mallocs walked, JSON its identity and versions. */
static void walk_process(struct emitter *e, const struct analysis *analysis)
{
	const struct snapshot_info *info = snapshot_info(analysis->snapshot);
	const struct heap *heap = &analysis->heap;
	bool json = emit_is(e, EMIT_JSON);
	emit_string(e, "schema", HEAPSNAP_SCHEMA_SUMMARY);
	emit_int(e, "pid", info->pid);
	emit_string(e, "exe", info->exe);
	emit_string(e, "program", info->program);
	emit_object_begin(e, "runtimes");
	if (json)
		cli_json_runtime_versions(e, analysis);
	emit_object_end(e);
	const struct runtime *runtime = analysis->runtime.ops;
	if (json && runtime) {
		struct runtime_field fields[RUNTIME_FIELDS_MAX];
		size_t count = runtime->summary_fields(analysis, fields, RUNTIME_FIELDS_MAX);
		if (count)
			cli_json_runtime_fields(e, runtime->key, fields, count);
	}
	if (json)
		return;
	char process[4200];
	cli_process_name(info, true, process, sizeof process);
	emit_text(e, "pid %d  %s\n", info->pid, process);
	/* (JSON names the mallocs in "heap", after the runtime's section) */
	const struct heap_allocator *mallocs[HEAP_ALLOCATORS_MAX];
	size_t malloc_count = heap_mallocs(heap, mallocs, HEAP_ALLOCATORS_MAX);
	for (size_t i = 0; i < malloc_count; i++)
		emit_text(e, "%s %s%s, structures found with %s\n", mallocs[i]->allocator->name,
			  mallocs[i]->version[0] ? mallocs[i]->version : "(version unknown)",
			  i ? " beside it" : "", mallocs[i]->method);
	char line[8192];
	if (runtime && runtime->describe(analysis, line, sizeof line)) {
		emit_text(e, "%s\n", line);
		if (runtime->damage_words(analysis, line, sizeof line))
			emit_text(e, "  damaged: %s (see the warnings)\n", line);
	}
}

/* JSON: the malloc walked and those beside it (text said them under the process line). */
static void mallocs_json(struct emitter *e, const struct heap *heap)
{
	if (!emit_is(e, EMIT_JSON))
		return;
	const struct heap_allocator *malloc_walked = heap_malloc(heap);
	emit_string(e, "allocator", malloc_walked->allocator->name);
	emit_string(e, "found_with", malloc_walked->method);
	const struct heap_allocator *mallocs[HEAP_ALLOCATORS_MAX];
	size_t malloc_count = heap_mallocs(heap, mallocs, HEAP_ALLOCATORS_MAX);
	if (malloc_count <= 1)
		return;
	emit_array_begin(e, "beside"); /* the other mallocs walked */
	for (size_t i = 1; i < malloc_count; i++) {
		emit_object_begin(e, NULL);
		emit_string(e, "allocator", mallocs[i]->allocator->name);
		emit_string_or_null(e, "version", mallocs[i]->version[0] ? mallocs[i]->version : NULL);
		emit_string(e, "found_with", mallocs[i]->method);
		emit_object_end(e);
	}
	emit_array_end(e);
}

/* An arena's kind, with its malloc's name before it when the process has several. */
static void arena_kind(const struct heap *heap, const struct heap_arena *arena,
		       bool several_mallocs, char *out, size_t size)
{
	const struct allocator *owner = allocator_of_arena(heap, arena);
	if (several_mallocs && owner && owner->walk)
		snprintf(out, size, "%s %s", owner->version_name, arena->kind);
	else
		snprintf(out, size, "%s", arena->kind);
}

/* An arena: its row of the text's table, its object in JSON. */
static void arena_row(struct emitter *e, const struct heap *heap, const struct heap_arena *arena,
		      bool several_mallocs)
{
	double frag = fragmentation(arena->live_bytes, arena->free_bytes, arena->top_bytes);
	if (!emit_is(e, EMIT_JSON)) {
		char kind[sizeof arena->kind + 32], address[24], system[32], count[32], bytes[32],
			count2[32], bytes2[32], percent[16];
		arena_kind(heap, arena, several_mallocs, kind, sizeof kind);
		snprintf(address, sizeof address, "0x%llx", (unsigned long long)arena->address);
		cli_format_bytes(arena->system_bytes, system, sizeof system);
		cli_format_count(arena->live_count, count, sizeof count);
		cli_format_bytes(arena->live_bytes, bytes, sizeof bytes);
		cli_format_count(arena->free_count, count2, sizeof count2);
		cli_format_bytes(arena->free_bytes, bytes2, sizeof bytes2);
		snprintf(percent, sizeof percent, "%.1f%%", 100 * frag);
		emit_table_row(e, (const char *[]){kind, address, system, count, bytes, count2,
						   bytes2, percent});
	}
	const struct allocator *owner = allocator_of_arena(heap, arena);
	emit_object_begin(e, NULL);
	emit_string_or_null(e, "allocator", owner ? owner->name : NULL);
	emit_string(e, "kind", arena->kind);
	emit_uint(e, "address", arena->address);
	emit_uint(e, "system_bytes", arena->system_bytes);
	emit_uint(e, "live_count", arena->live_count);
	emit_uint(e, "live_bytes", arena->live_bytes);
	emit_uint(e, "free_count", arena->free_count);
	emit_uint(e, "free_bytes", arena->free_bytes);
	emit_double(e, "fragmentation", frag);
	emit_object_end(e);
}

/* The arenas: a table in text, whose kind column fits the longest kind (with several mallocs
 * each arena says whose it is). */
static void walk_arenas(struct emitter *e, const struct heap *heap)
{
	const struct heap_allocator *mallocs[HEAP_ALLOCATORS_MAX];
	bool several = heap_mallocs(heap, mallocs, HEAP_ALLOCATORS_MAX) > 1;
	int kind_width = 8;
	for (size_t i = 0; i < heap->arena_count; i++) {
		char kind[sizeof heap->arenas[i].kind + 32];
		arena_kind(heap, &heap->arenas[i], several, kind, sizeof kind);
		if ((int)strlen(kind) > kind_width)
			kind_width = (int)strlen(kind);
	}
	const struct emit_column columns[] = {
		{.title = "kind", .width = -kind_width, .gap = "  "},
		{.title = "address", .width = -16, .gap = " "},
		{.title = "system", .width = 10, .gap = " "},
		{.title = "live", .width = 12, .gap = " "},
		{.title = "bytes", .width = 10, .gap = " "},
		{.title = "free", .width = 12, .gap = " "},
		{.title = "bytes", .width = 10, .gap = " "},
		{.title = "frag", .width = 6, .gap = " "}};
	emit_heading(e, "arenas:", "arenas");
	emit_table_begin(e, EMIT_ONLY(EMIT_TEXT), columns, 8);
	emit_array_begin(e, "arenas");
	for (size_t i = 0; i < heap->arena_count; i++)
		arena_row(e, heap, &heap->arenas[i], several);
	emit_array_end(e);
	emit_table_columns(e, 0, NULL, 0); /* (the columns are this function's) */
}

/* The heap's totals, damage, unseen memory and arenas. */
static void walk_heap(struct emitter *e, const struct analysis *analysis)
{
	const struct heap *heap = &analysis->heap;
	struct totals totals = heap_totals(heap);
	double frag = fragmentation(totals.live_bytes, totals.free_bytes, totals.top_bytes);
	bool json = emit_is(e, EMIT_JSON);
	emit_object_begin(e, "heap");
	mallocs_json(e, heap);
	emit_kv_count(e, "live_count", totals.live_count, "  live  %12s allocations");
	emit_kv_bytes(e, "live_bytes", totals.live_bytes, "  %10s\n");
	emit_kv_count(e, "free_count", totals.free_count, "  free  %12s chunks");
	emit_kv_bytes(e, "free_bytes", totals.free_bytes, "       %10s");
	emit_uint(e, "top_bytes", totals.top_bytes);
	emit_double(e, "fragmentation", frag);
	emit_text(e, "  (fragmentation %.1f%%)\n", 100 * frag);
	if (json) {
		cli_json_damage(e, &heap->damage);
		cli_json_unseen(e, &analysis->outside_heaps);
	} else {
		char damage[128], line[8192];
		if (heap->damage.spots) {
			cli_format_damage(&heap->damage, damage, sizeof damage);
			emit_text(e, "  damaged: %s (see the warnings)\n", damage);
		}
		cli_format_unseen(NULL, &analysis->outside_heaps, line, sizeof line);
		if (line[0])
			emit_text(e, "  memory no walker reads: %s\n", line);
	}
	walk_arenas(e, heap);
	emit_object_end(e);
}

/* Type groups: JSON every one (with `retained`, its retained bytes; with `paths`, the retaining
 * paths of those whose paths are shown), text a row each for the first TOP_TYPES, in the table
 * the caller began. */
static void walk_groups(struct emitter *e, const char *key, const struct type_group *groups,
			size_t count, bool retained, const struct path_index *paths,
			const struct analysis *analysis)
{
	bool json = emit_is(e, EMIT_JSON);
	emit_array_begin(e, key);
	for (size_t i = 0; i < count; i++) {
		char name[128], number[32], bytes[32], held[32];
		type_group_name(&groups[i], name, sizeof name);
		if (!json && i < TOP_TYPES) {
			cli_format_count(groups[i].count, number, sizeof number);
			cli_format_bytes(groups[i].bytes, bytes, sizeof bytes);
			cli_format_bytes(groups[i].retained, held, sizeof held);
			emit_table_row(e, retained ? (const char *[]){number, bytes, held, name}
						   : (const char *[]){number, bytes, name});
		}
		emit_object_begin(e, NULL);
		emit_string(e, "type", name);
		emit_uint(e, "count", groups[i].count);
		emit_uint(e, "bytes", groups[i].bytes);
		if (retained)
			emit_uint(e, "retained_bytes", groups[i].retained);
		site_json_group(e, &groups[i].sites, "count", "bytes");
		if (json && paths && wants_paths(i, name)) {
			struct path_shape shapes[PATHS_PER_TYPE];
			size_t shown = paths_of_type(paths, groups[i].type, groups[i].size, NULL, NULL,
						     shapes, PATHS_PER_TYPE);
			cli_json_retainers(e, shapes, shown, groups[i].sites.counted ? analysis : NULL);
		}
		emit_object_end(e);
	}
	emit_array_end(e);
}

static void walk_types(struct emitter *e, const struct analysis *analysis,
		       const struct heap_summary *summary, const struct path_index *paths)
{
	static const struct emit_column columns[] = {{.title = "count", .width = 12, .gap = "  "},
						     {.title = "bytes", .width = 10, .gap = " "},
						     {.title = "retained", .width = 10, .gap = " "},
						     {.title = "type", .gap = "  "}};
	char title[64];
	snprintf(title, sizeof title, "live allocations by type, top %d by bytes:", TOP_TYPES);
	emit_heading(e, title, title);
	emit_table_begin(e, EMIT_ONLY(EMIT_TEXT), columns, 4);
	walk_groups(e, "types", summary->types, summary->type_count, true, paths, analysis);
	if (summary->type_count > TOP_TYPES)
		emit_text(e, "  (%zu more types and sizes)\n", summary->type_count - TOP_TYPES);
}

/* Text: where the objects of the first TOP_TYPES types were made, when the snapshot records
 * sites (JSON has them in "types"). */
static void type_sites_text(struct emitter *e, const struct analysis *analysis,
			    const struct heap_summary *summary)
{
	bool any = false;
	for (size_t i = 0; i < summary->type_count && i < TOP_TYPES; i++)
		any = any || summary->types[i].sites.counted;
	if (!any || !emit_is(e, EMIT_TEXT))
		return;
	emit_heading(e, "where they were allocated (innermost frame first):", "");
	site_lines_sampling(e, &analysis->sites, "  ");
	for (size_t i = 0; i < summary->type_count && i < TOP_TYPES; i++) {
		if (!summary->types[i].sites.counted)
			continue;
		char name[128], count[32], lead[200];
		type_group_name(&summary->types[i], name, sizeof name);
		cli_format_count(summary->types[i].count, count, sizeof count);
		snprintf(lead, sizeof lead, "%s %s", count, name);
		site_lines_group(e, "  ", lead, &summary->types[i].sites, "    ");
	}
}

/* Text: the retaining paths of the types whose paths are shown (JSON has them in "types"). */
static void paths_text(struct emitter *e, const struct analysis *analysis,
		       const struct heap_summary *summary, const struct path_index *paths)
{
	if (!emit_is(e, EMIT_TEXT))
		return;
	emit_heading(e, "what keeps them alive (shortest paths from a root, by shape):", "");
	for (size_t i = 0; i < summary->type_count; i++) {
		char name[128], count[32], bytes[32];
		struct path_shape shapes[PATHS_PER_TYPE];
		size_t shown;
		if (!shown_paths(summary, paths, i, name, shapes, &shown))
			continue;
		emit_text(e, "  %s\n", name);
		for (size_t k = 0; k < shown; k++) {
			cli_format_count(shapes[k].count, count, sizeof count);
			cli_format_bytes(shapes[k].retained, bytes, sizeof bytes);
			emit_text(e, "    [%s] %s objects, %s retained:", shapes[k].signature, count,
				  bytes);
			for (size_t s = 0; s < shapes[k].element_count; s++)
				emit_text(e, "%s%s", s ? " -> " : " ", shapes[k].elements[s]);
			emit_text(e, "\n");
			site_lines_path(e, &shapes[k],
					summary->types[i].sites.counted ? analysis : NULL, "      ");
		}
	}
}

/* The roots: text the first TOP_TYPES that hold anything (">": at least that much), JSON all. */
static void walk_roots(struct emitter *e, const struct heap_summary *summary)
{
	static const struct emit_column columns[] = {{.title = "held", .width = 10, .gap = "  "},
						     {.title = "retained", .width = 9, .gap = "  "},
						     {.title = "root", .gap = "  "}};
	char title[128];
	snprintf(title, sizeof title,
		 "roots, top %d by bytes held (reachable from the root; retained: freed with it "
		 "alone):",
		 TOP_TYPES);
	emit_heading(e, title, title);
	emit_table_begin(e, EMIT_ONLY(EMIT_TEXT), columns, 3);
	emit_array_begin(e, "roots");
	for (size_t i = 0, listing = 1; i < summary->root_count; i++) {
		const struct root_group *root = &summary->roots[i];
		listing = listing && i < TOP_TYPES && root->holds != 0;
		if (listing && !emit_is(e, EMIT_JSON)) {
			char held[32], marked[40], bytes[32];
			cli_format_bytes(root->holds, held, sizeof held);
			snprintf(marked, sizeof marked, "%s%9s", root->holds_exact ? " " : ">", held);
			cli_format_bytes(root->retained, bytes, sizeof bytes);
			emit_table_row(e, (const char *[]){marked, bytes, root->name});
		}
		emit_object_begin(e, NULL);
		emit_string(e, "root", root->name);
		emit_uint(e, "retained_bytes", root->retained);
		emit_uint(e, "holds_bytes", root->holds);
		emit_bool(e, "holds_exact", root->holds_exact);
		emit_uint(e, "objects", root->objects);
		emit_object_end(e);
	}
	emit_array_end(e);
	emit_uint(e, "reachable_bytes", summary->reachable_bytes);
}

/* Memory several roots hold together: JSON always, text when there is some. */
static void walk_shared(struct emitter *e, const struct heap_summary *summary)
{
	emit_object_begin(e, "shared");
	if (summary->shared_count || emit_is(e, EMIT_JSON))
		emit_kv_bytes(e, "bytes", summary->shared_bytes,
			      "\nheld jointly by several roots (retained by none of them alone): %s\n");
	emit_array_begin(e, "groups");
	for (size_t g = 0; g < summary->shared_count; g++) {
		const struct root_holding_group *group = &summary->shared[g];
		if (g < TOP_TYPES && !emit_is(e, EMIT_JSON)) {
			char bytes[32];
			cli_format_bytes(group->bytes, bytes, sizeof bytes);
			emit_text(e, "  %10s  held by %s%u roots: ", bytes,
				  group->more ? "more than " : "", group->member_count);
			for (uint32_t k = 0; k < group->member_count; k++)
				emit_text(e, "%s%s", k ? ", " : "",
					  summary->roots[group->members[k]].name);
			emit_text(e, "%s\n", group->more ? ", ..." : "");
		}
		emit_object_begin(e, NULL);
		emit_array_begin(e, "roots");
		for (uint32_t k = 0; k < group->member_count && emit_is(e, EMIT_JSON); k++)
			emit_string(e, NULL, summary->roots[group->members[k]].name);
		emit_array_end(e);
		emit_bool(e, "more_roots", group->more);
		emit_uint(e, "bytes", group->bytes);
		emit_object_end(e);
	}
	emit_array_end(e);
	emit_object_end(e);
}

/* Text: the classes the runtime's collector sorts the garbage into, every one. */
static void garbage_text(struct emitter *e, const struct analysis *analysis,
			 const struct heap_summary *summary)
{
	const struct runtime_garbage_classes *classes = summary->garbage.classes;
	emit_text(e, "\n%s %s:\n", analysis->runtime.ops->language, classes->text_heading);
	for (size_t c = 0; c < classes->count; c++) {
		char count[32], bytes[32];
		cli_format_count(summary->garbage.objects[c], count, sizeof count);
		cli_format_bytes(summary->garbage.bytes[c], bytes, sizeof bytes);
		emit_text(e, "  %-14s %12s objects %10s\n", classes->classes[c].name, count, bytes);
	}
}

/* What no root reaches: its totals (in text, what it is: garbage or leaked), by type, by the
 * collector's generation, and the cycles among it. */
static void walk_unreachable(struct emitter *e, const struct analysis *analysis,
			     const struct heap_summary *summary)
{
	static const struct emit_column columns[] = {
		{.width = 12, .gap = "  "}, {.width = 10, .gap = " "}, {.gap = "  "}};
	bool objects = runtime_has_objects(analysis);
	bool json = emit_is(e, EMIT_JSON);
	if (objects)
		emit_text(e,
			  "\nunreachable from every root (%s objects: garbage %s has not freed yet; "
			  "other blocks: leaked): ",
			  analysis->runtime.ops->language, analysis->runtime.ops->collector);
	else
		emit_text(e, "\nunreachable from every root (leaked: nothing can free them): ");
	emit_object_begin(e, "unreachable");
	emit_kv_count(e, "count", summary->unreachable_objects,
		      objects ? "%s objects, " : "%s allocations, ");
	emit_kv_bytes(e, "bytes", summary->unreachable_bytes, "%s\n");
	emit_table_columns(e, EMIT_ONLY(EMIT_TEXT), columns, 3);
	walk_groups(e, "by_type", summary->unreachable, summary->unreachable_count, false, NULL,
		    analysis);
	if (objects && json)
		cli_json_garbage(e, &summary->garbage);
	else if (objects)
		garbage_text(e, analysis, summary);
	if (json)
		cli_json_cycles(e, summary->cycles, summary->cycle_count);
	if (summary->cycle_count)
		emit_text(e, "\ncycles among them, by shape:\n");
	for (size_t i = 0; i < summary->cycle_count && i < TOP_TYPES && !json; i++) {
		const struct cycle_shape *cycle = &summary->cycles[i];
		char count[32], bytes[32];
		cli_format_count(cycle->count, count, sizeof count);
		cli_format_bytes(cycle->bytes, bytes, sizeof bytes);
		emit_text(e, "  [%s] %s cycles, %s: %s\n", cycle->signature, count, bytes, cycle->text);
	}
	emit_object_end(e);
}

/* Untyped allocations by site: JSON whenever the snapshot records sites, text when there are
 * some. */
static void walk_sites(struct emitter *e, const struct analysis *analysis,
		       const struct heap_summary *summary)
{
	static const struct emit_column columns[] = {
		{.width = 12, .gap = "  "}, {.width = 10, .gap = " "}, {.gap = "  "}};
	bool json = emit_is(e, EMIT_JSON);
	if (json) {
		if (analysis->sites.recorded) {
			cli_json_sites(e, &summary->untyped_sites, "count", "bytes");
			site_json_sampling(e, &analysis->sites);
		}
		return;
	}
	if (summary->untyped_sites.count)
		emit_text(e,
			  "\nuntyped allocations by the site that made them (recorded by %s), "
			  "top %d by bytes:\n",
			  analysis->sites.recorder, TOP_TYPES);
	if (summary->untyped_sites.count)
		site_lines_sampling(e, &analysis->sites, "  ");
	emit_table_columns(e, EMIT_ONLY(EMIT_TEXT), columns, 3);
	for (size_t i = 0; i < summary->untyped_sites.count && i < TOP_TYPES; i++) {
		const struct site_group *group = &summary->untyped_sites.groups[i];
		char count[32], bytes[32];
		cli_format_count(group->count, count, sizeof count);
		cli_format_bytes(group->bytes, bytes, sizeof bytes);
		emit_table_row(e, (const char *[]){count, bytes,
						   group->description ? group->description->chain
								      : "?"});
	}
}

/* The warnings: JSON lists them, text says how many (they are on stderr). */
static void walk_warnings(struct emitter *e, const struct warnings *warnings)
{
	emit_array_begin(e, "warnings");
	for (size_t i = 0; i < warnings->count && emit_is(e, EMIT_JSON); i++)
		emit_string(e, NULL, warnings->items[i]);
	emit_array_end(e);
	if (warnings->count)
		emit_text(e, "\n%zu warning%s (on stderr)\n", warnings->count,
			  warnings->count == 1 ? "" : "s");
}

/* The summary in the emitter's format (text or JSON), one walk. */
static void summary_report(struct emitter *e, const struct analysis *analysis,
			   const struct heap_summary *summary, const struct path_index *paths)
{
	emit_begin(e);
	walk_process(e, analysis);
	walk_heap(e, analysis);
	walk_types(e, analysis, summary, paths);
	type_sites_text(e, analysis, summary);
	paths_text(e, analysis, summary, paths);
	walk_roots(e, summary);
	walk_shared(e, summary);
	walk_unreachable(e, analysis, summary);
	walk_sites(e, analysis, summary);
	walk_warnings(e, &analysis->warnings);
	emit_end(e);
}

struct summary_parts {
	const struct analysis *analysis;
	const struct heap_summary *summary;
	const struct path_index *paths;
};

static void print_json_to(FILE *out, void *context)
{
	const struct summary_parts *parts = context;
	struct emitter e;
	emitter_init(&e, out, EMIT_JSON, false);
	summary_report(&e, parts->analysis, parts->summary, parts->paths);
}

/* The HTML page carries the JSON document (html_report.c). */
static int print_html(const struct analysis *analysis, const struct heap_summary *summary,
		      const struct path_index *paths)
{
	struct summary_parts parts = {analysis, summary, paths};
	if (html_report_write(stdout, HTML_REPORT_SUMMARY, analysis->sites.recorded != 0,
			      print_json_to, &parts) == 0)
		return EXIT_OK;
	fprintf(stderr, "heapsnap summary: out of memory or unable to write the report\n");
	return EXIT_ERROR;
}

/* The metrics need no retaining paths: only the summary's types. */
static int print_openmetrics(const char *file, struct analysis *analysis)
{
	struct hs_error err;
	struct heap_summary summary;
	if (heap_summary_build(analysis, &summary, &err) != 0) {
		analysis_close(analysis);
		return cli_fail("summary", &err);
	}
	progress_end();
	const struct openmetrics_options options = {.top_types = OPENMETRICS_TOP_TYPES,
						   .retained = true};
	int status = EXIT_OK;
	if (openmetrics_write(stdout, analysis, &summary, &options, &err) != 0)
		status = cli_fail("summary", &err);
	heap_summary_free(&summary);
	return cli_close_analysis("summary", file, analysis, status);
}

int cmd_summary(int argc, char **argv)
{
	struct analysis_options analysis_options = {0};
	int format = FORMAT_TEXT;
	bool show_values = false;
	const struct cli_option options[] = {
		CLI_CHOICE("format", "F", &format, formats,
			   "text (default), json (schema " HEAPSNAP_SCHEMA_SUMMARY "), dot (the\n"
			   "retaining paths as a Graphviz digraph, for dot -Tsvg), html\n"
			   "(one self-contained page to open in a browser) or openmetrics\n"
			   "(Prometheus metrics, for node_exporter's textfile collector)"),
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
	if (format == FORMAT_OPENMETRICS)
		return print_openmetrics(argv[first], analysis);
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
	if (analysis->sites.recorded) /* (the paths then say where their objects were made) */
		path_index_set_sites(paths, analysis->sites.site);
	prepare_paths(paths, &summary);
	progress_end();
	status = EXIT_OK;
	if (format == FORMAT_JSON || format == FORMAT_TEXT) {
		struct emitter e;
		emitter_init(&e, stdout, format == FORMAT_JSON ? EMIT_JSON : EMIT_TEXT, false);
		summary_report(&e, analysis, &summary, paths);
	} else if (format == FORMAT_HTML) {
		status = print_html(analysis, &summary, paths);
	} else if (format == FORMAT_DOT && !print_dot(analysis, &summary, paths)) {
		fprintf(stderr, "heapsnap summary: out of memory writing the report\n");
		status = EXIT_ERROR;
	}
	timings_mark(&analysis->timings, "report");
	path_index_free(paths);
	heap_summary_free(&summary);
	return cli_close_analysis("summary", argv[first], analysis, status);
}
