/* The heapdiff report in text, markdown, JSON and DOT (see diff_report.h). The rows (grown types,
 * their retaining paths, grown containers) are chosen once; one walk through the emitter
 * (cli/emit.h) writes them as text, markdown or JSON, and DOT draws their paths. */
#include "diff_report.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/emit.h"
#include "cli/html_report.h"
#include "cli/json_schema.h"
#include "cli/path_graph.h"
#include "cli/site_report.h"
#include "formats/json.h"

#define TEXT_ROWS 25	  /* grown types (and sites, cycles) shown in text and markdown */
#define PATHS_PER_TYPE 3  /* retaining path shapes per grown type */
#define PREVIEWS 3	  /* --show-values: string previews per type */
#define PREVIEW_BYTES 40

struct row {
	const struct diff_type *type;
	char name[128];
	struct path_shape *shapes; /* the top rows only */
	size_t shape_count;
	char previews[PREVIEWS][PREVIEW_BYTES];
	size_t preview_count;
};

struct container_row {
	const struct diff_container *container;
	struct path_shape path; /* how a root reaches it */
	bool has_path;
};

struct report {
	FILE *out;
	const struct heap_diff *diff;
	const struct analysis *target;
	struct path_index *paths;
	const struct diff_report_options *options;
	struct row *rows;
	size_t row_count;
	struct container_row containers[16];
	size_t container_count;
	struct cycle_shape *cycles; /* masked copies */
	size_t cycle_count;
};

static void type_name(const struct diff_type *type, char *out, size_t size)
{
	if (type->type)
		snprintf(out, size, "%s", type->type);
	else
		snprintf(out, size, "size %" PRIu64, type->size);
}

static bool grew(const struct heap_diff *diff, const struct diff_type *type)
{
	if (diff->three)
		return type->new_count > 0 || type->new_bytes > 0;
	return diff_delta_count(type) > 0 || diff_delta_bytes(type) > 0;
}

/* The bytes a row ranks by: what grew (three snapshots: what was left behind). */
static uint64_t growth_bytes(const struct heap_diff *diff, const struct diff_type *type)
{
	if (diff->three)
		return type->new_bytes;
	return diff_delta_bytes(type) > 0 ? (uint64_t)diff_delta_bytes(type) : 0;
}

static uint64_t growth_count(const struct heap_diff *diff, const struct diff_type *type)
{
	if (diff->three)
		return type->new_count;
	return diff_delta_count(type) > 0 ? (uint64_t)diff_delta_count(type) : 0;
}

bool diff_report_shows(const struct heap_diff *diff, const struct diff_type *type,
		       const struct diff_report_options *options)
{
	if (!grew(diff, type) || growth_bytes(diff, type) < options->min_bytes)
		return false;
	if (options->type_pattern) {
		char name[128];
		type_name(type, name, sizeof name);
		return fnmatch(options->type_pattern, name, 0) == 0;
	}
	return true;
}

static const struct heap_diff *sort_diff;
static bool sort_by_count;

static int compare_rows(const void *left, const void *right)
{
	const struct row *a = left, *b = right;
	uint64_t ka = sort_by_count ? growth_count(sort_diff, a->type) : growth_bytes(sort_diff, a->type);
	uint64_t kb = sort_by_count ? growth_count(sort_diff, b->type) : growth_bytes(sort_diff, b->type);
	if (ka != kb)
		return ka > kb ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* --show-values: the first strings among the new objects of a str row. */
static void find_previews(struct report *report, struct row *row)
{
	const struct analysis *after = report->diff->after;
	if (!report->options->show_values || row->type->type == NULL ||
	    strcmp(row->type->type, "str") != 0 || !runtime_has_objects(after))
		return;
	for (size_t i = 0; i < after->heap.count && row->preview_count < PREVIEWS; i++) {
		if (!report->diff->is_new[i] || analysis_type(after, i) != row->type->type)
			continue;
		if (after->runtime.ops->string_text(after, i, row->previews[row->preview_count],
						PREVIEW_BYTES))
			row->preview_count++;
	}
}

static bool report_prepare(struct report *report)
{
	const struct heap_diff *diff = report->diff;
	const struct diff_report_options *options = report->options;
	report->rows = calloc(diff->type_count + 1, sizeof *report->rows);
	if (report->rows == NULL)
		return false;
	for (size_t i = 0; i < diff->type_count; i++) {
		if (!diff_report_shows(diff, &diff->types[i], options))
			continue;
		struct row *row = &report->rows[report->row_count++];
		row->type = &diff->types[i];
		type_name(row->type, row->name, sizeof row->name);
	}
	sort_diff = diff;
	sort_by_count = options->by_count;
	if (report->row_count)
		qsort(report->rows, report->row_count, sizeof *report->rows, compare_rows);
	/* the shown rows' paths, counted in one pass over the heap */
	size_t shown = report->row_count < options->top ? report->row_count : options->top;
	const char **types = calloc(shown + 1, sizeof *types);
	uint64_t *sizes = calloc(shown + 1, sizeof *sizes);
	for (size_t i = 0; types && sizes && i < shown; i++) {
		types[i] = report->rows[i].type->type;
		sizes[i] = report->rows[i].type->size;
	}
	if (types && sizes)
		paths_prepare(report->paths, types, sizes, shown, diff->is_new,
			      diff->new_same_type_dominated);
	free(types);
	free(sizes);
	for (size_t i = 0; i < shown; i++) {
		struct row *row = &report->rows[i];
		find_previews(report, row);
		if (row->type->new_count == 0)
			continue;
		row->shapes = calloc(PATHS_PER_TYPE, sizeof *row->shapes);
		if (row->shapes == NULL)
			return false;
		/* (masked as the path index was asked, shapes differing only by values merged) */
		row->shape_count = paths_of_type(report->paths, row->type->type, row->type->size,
						 diff->is_new, diff->new_same_type_dominated,
						 row->shapes, PATHS_PER_TYPE);
	}
	for (size_t i = 0; i < diff->container_count && i < 16; i++) {
		struct container_row *row = &report->containers[report->container_count++];
		row->container = &diff->containers[i];
		row->has_path = path_of_allocation(report->paths, row->container->allocation, &row->path);
	}
	report->cycles = calloc(diff->cycle_count + 1, sizeof *report->cycles);
	if (report->cycles == NULL)
		return false;
	for (size_t i = 0; i < diff->cycle_count; i++) {
		report->cycles[i] = diff->cycles[i];
		if (!options->show_values)
			path_mask_values(diff->cycles[i].text, report->cycles[i].text,
					 sizeof report->cycles[i].text);
	}
	report->cycle_count = diff->cycle_count;
	return true;
}

static void report_free(struct report *report)
{
	for (size_t i = 0; i < report->row_count; i++)
		free(report->rows[i].shapes);
	free(report->rows);
	free(report->cycles);
}

/* ---- shared wording ---- */

static void signed_count(int64_t value, char *out, size_t size)
{
	char digits[28];
	cli_format_count((uint64_t)(value < 0 ? -value : value), digits, sizeof digits);
	snprintf(out, size, "%s%s", value < 0 ? "-" : value > 0 ? "+" : "", digits);
}

static void signed_bytes(int64_t value, char *out, size_t size)
{
	char bytes[28];
	cli_format_bytes((uint64_t)(value < 0 ? -value : value), bytes, sizeof bytes);
	snprintf(out, size, "%s%s", value < 0 ? "-" : value > 0 ? "+" : "", bytes);
}

static void format_duration(uint64_t ns, char *out, size_t size)
{
	uint64_t seconds = ns / 1000000000u;
	if (seconds < 60)
		snprintf(out, size, "%.1fs", (double)ns / 1e9);
	else if (seconds >= 3600)
		snprintf(out, size, "%" PRIu64 "h%02" PRIu64 "m", seconds / 3600, seconds / 60 % 60);
	else
		snprintf(out, size, "%" PRIu64 "m%02" PRIu64 "s", seconds / 60, seconds % 60);
}

/* "CPython 3.11.7, glibc 2.36" (or "jemalloc 5.3.0") */
static void runtimes(const struct analysis *analysis, char *out, size_t size)
{
	size_t used = 0;
	out[0] = '\0';
	const struct runtime *runtime = analysis->runtime.ops;
	const char *runtime_version = runtime ? runtime->version(analysis) : NULL;
	if (runtime_version)
		used += (size_t)snprintf(out, size, "%s %s", runtime->name, runtime_version);
	const struct heap_allocator *mallocs[HEAP_ALLOCATORS_MAX];
	size_t malloc_count = heap_mallocs(&analysis->heap, mallocs, HEAP_ALLOCATORS_MAX);
	for (size_t i = 0; i < malloc_count && used < size; i++)
		if (mallocs[i]->version[0])
			used += (size_t)snprintf(out + used, size - used, "%s%s %s", used ? ", " : "",
						 mallocs[i]->allocator->version_name,
						 mallocs[i]->version);
	if (used == 0)
		snprintf(out, size, "runtime versions unknown");
}

/* The build-id of the snapshot's executable, "" when unknown. */
static void exe_build_id(const struct analysis *analysis, char *out)
{
	const struct snapshot_info *info = snapshot_info(analysis->snapshot);
	size_t count;
	const struct snapshot_module *modules = snapshot_modules(analysis->snapshot, &count);
	out[0] = '\0';
	for (size_t i = 0; i < count; i++)
		if (strcmp(modules[i].path, info->exe) == 0) {
			cli_format_build_id(&modules[i], out);
			return;
		}
}

struct snapshot_line {
	const char *label;
	const struct analysis *analysis;
	uint64_t objects, bytes; /* 0 for the middle one of three: not summed */
	bool totals;
};

/* How the memory no walker reads changed, in words ("" when there is none). */
static void unseen_change(const struct report *report, char *out, size_t size)
{
	cli_format_unseen(&report->diff->before->outside_heaps, &report->diff->after->outside_heaps,
			  out, size);
}

static bool unseen_grew(const struct report *report)
{
	return report->diff->after->outside_heaps.bytes >=
	       report->diff->before->outside_heaps.bytes + CLI_UNSEEN_SAID;
}

/* Whether warning `i` of analysis `a` was given in the same words by an earlier one (a module
 * left unnamed in both snapshots): the report says it once. */
static bool repeated_warning(const struct analysis *const *analyses, size_t a, size_t i)
{
	const char *text = analyses[a]->warnings.items[i];
	for (size_t earlier = 0; earlier < a; earlier++)
		for (size_t k = 0; analyses[earlier] && k < analyses[earlier]->warnings.count; k++)
			if (strcmp(analyses[earlier]->warnings.items[k], text) == 0)
				return true;
	return false;
}

static size_t warning_count(const struct report *report)
{
	const struct analysis *analyses[3] = {report->diff->before, report->target,
					      report->diff->after};
	size_t count = 0;
	for (size_t a = 0; a < 3; a++)
		for (size_t i = 0; analyses[a] && i < analyses[a]->warnings.count; i++)
			count += !repeated_warning(analyses, a, i);
	return count;
}

static size_t snapshot_lines(const struct report *report, struct snapshot_line *lines)
{
	const struct heap_diff *diff = report->diff;
	size_t count = 0;
	lines[count++] = (struct snapshot_line){diff->three ? "baseline" : "before", diff->before,
						diff->objects_before, diff->bytes_before, true};
	if (report->target)
		lines[count++] = (struct snapshot_line){"target", report->target, 0, 0, false};
	lines[count++] = (struct snapshot_line){diff->three ? "final" : "after", diff->after,
						diff->objects_after, diff->bytes_after, true};
	return count;
}

/* The cells of a grown type's row: new, freed, delta, bytes delta, count after (three
 * snapshots: left, new in the burst, bytes left, count final); returns how many. */
static size_t row_cells(const struct heap_diff *diff, const struct diff_type *type,
			char cells[5][32])
{
	if (diff->three) {
		cli_format_count(type->new_count, cells[0], 32);
		cli_format_count(type->burst_count, cells[1], 32);
		cli_format_bytes(type->new_bytes, cells[2], 32);
		cli_format_count(type->count_after, cells[3], 32);
		return 4;
	}
	cli_format_count(type->new_count, cells[0], 32);
	cli_format_count(type->freed_count, cells[1], 32);
	signed_count(diff_delta_count(type), cells[2], 32);
	signed_bytes(diff_delta_bytes(type), cells[3], 32);
	cli_format_count(type->count_after, cells[4], 32);
	return 5;
}

/* The last line's change since the first snapshot: "+1.01 MiB", "+7,000", "5m00s". */
struct change {
	char bytes[32], count[32], duration[32];
};

static void describe_change(const struct heap_diff *diff, uint64_t last_ns, struct change *out)
{
	uint64_t first_ns = snapshot_info(diff->before->snapshot)->capture_start_ns;
	signed_bytes((int64_t)(diff->bytes_after - diff->bytes_before), out->bytes,
		     sizeof out->bytes);
	signed_count((int64_t)(diff->objects_after - diff->objects_before), out->count,
		     sizeof out->count);
	/* (snapshots compared out of order, with --force: the interval is negative, never wrapped) */
	if (last_ns >= first_ns) {
		format_duration(last_ns - first_ns, out->duration, sizeof out->duration);
	} else {
		out->duration[0] = '-';
		format_duration(first_ns - last_ns, out->duration + 1, sizeof out->duration - 1);
	}
}

static const char *unreachable_title(const struct heap_diff *diff, char *out, size_t size)
{
	const struct analysis *after = diff->after;
	if (!runtime_has_objects(after))
		return "leaked: no pointer to them remains, nothing can free them";
	snprintf(out, size, "%s objects among them are garbage waiting for %s",
		 after->runtime.ops->language, after->runtime.ops->collector);
	return out;
}

static const char *new_word(const struct heap_diff *diff)
{
	return diff->three ? "left behind" : "new";
}

/* The retaining paths of the rows whose paths the report shows (the --top ones), as one graph:
 * what the markdown draws in mermaid and --format dot writes. NULL when out of memory. */
static struct path_graph *paths_graph(const struct report *report)
{
	struct path_graph *graph = path_graph_new();
	for (size_t i = 0; graph && i < report->row_count && i < report->options->top; i++)
		for (size_t k = 0; k < report->rows[i].shape_count; k++)
			if (path_graph_add(graph, &report->rows[i].shapes[k]) < 0) {
				path_graph_free(graph);
				return NULL;
			}
	return graph;
}

/* ---- the walk: one sequence of calls for text, markdown and JSON (emit.h) ----
 *
 * The three formats are read differently, so they do not say the same things in the same
 * places: JSON is the whole contract (every grown type, each snapshot's details up front),
 * text and markdown are read by people (the first rows, the details in a footer). Each section
 * below is one run of calls; the calls only one back end renders say where they part. */

/* A retaining path shape as the human formats list it (markdown: in a code block), with where
 * its objects were made when `sites` (AFTER, recording them) is given. */
static void shape_lines(struct emitter *e, const struct path_shape *shape, uint64_t of_count,
			const char *indent, const struct analysis *sites)
{
	char count[32], bytes[32];
	cli_format_count(shape->count, count, sizeof count);
	cli_format_bytes(shape->retained, bytes, sizeof bytes);
	emit_human(e, "%s[%s] %s (%.0f%%), %s retained:\n%s    ", indent, shape->signature, count,
		   of_count ? 100.0 * (double)shape->count / (double)of_count : 0.0, bytes, indent);
	for (size_t k = 0; k < shape->element_count; k++)
		emit_human(e, "%s%s", k ? " -> " : "", shape->elements[k]);
	emit_human(e, "\n");
	if (sites) {
		char deeper[32];
		snprintf(deeper, sizeof deeper, "%s    ", indent);
		site_lines_path(e, shape, sites, deeper);
	}
}

/* AFTER when a row's new objects have their sites counted (the paths then name them). */
static const struct analysis *row_sites(const struct report *report, const struct row *row)
{
	return row->type->new_sites.counted ? report->diff->after : NULL;
}

static void walk_header(struct emitter *e, const struct report *report)
{
	const struct heap_diff *diff = report->diff;
	emit_string(e, "schema", HEAPSNAP_SCHEMA_DIFF);
	emit_string(e, "tool_version", HEAPSNAP_VERSION);
	emit_string(e, "mode", diff->three ? "three" : "two");
	emit_bool(e, "forced", report->options->forced);
	if (emit_is(e, EMIT_JSON))
		return;
	const struct snapshot_info *info = snapshot_info(diff->after->snapshot);
	char versions[96], process[4200];
	runtimes(diff->after, versions, sizeof versions);
	cli_process_name(info, false, process, sizeof process);
	emit_text(e, "%sheapdiff: pid %d ", emit_paint(e, EMIT_BOLD), info->pid);
	emit_markdown(e, "### heapdiff: pid %d ", info->pid);
	emit_code(e, process);
	emit_human(e, " (%s)", versions);
	emit_text(e, "%s\n", emit_paint(e, EMIT_RESET));
	emit_markdown(e, "\n\n");
}

/* A snapshot's member in JSON: where it came from, and what its analysis could not read. */
static void snapshot_json(struct emitter *e, const char *key, const struct snapshot_line *line)
{
	if (!emit_is(e, EMIT_JSON))
		return;
	const struct analysis *analysis = line->analysis;
	const struct snapshot_info *info = snapshot_info(analysis->snapshot);
	char when[64], build_id[160];
	cli_format_time(info->capture_start_ns, when, sizeof when, true);
	exe_build_id(analysis, build_id);
	emit_object_begin(e, key);
	emit_string(e, "file", snapshot_path(analysis->snapshot));
	emit_int(e, "pid", info->pid);
	emit_string(e, "captured_at", when);
	emit_string(e, "exe", info->exe);
	char program[4200]; /* as the header names it */
	cli_process_name(info, false, program, sizeof program);
	emit_string(e, "program", program);
	emit_string(e, "build_id", build_id);
	emit_object_begin(e, "runtimes");
	cli_json_runtime_versions(e, analysis);
	emit_object_end(e);
	cli_json_damage(e, &analysis->heap.damage);
	cli_json_unseen(e, &analysis->outside_heaps);
	const struct runtime *runtime = analysis->runtime.ops;
	if (runtime && runtime->has_objects(analysis)) {
		char damaged[64];
		snprintf(damaged, sizeof damaged, "%s_damaged", runtime->key);
		struct runtime_field fields[RUNTIME_FIELDS_MAX];
		size_t count = runtime->damage_fields(analysis, fields, RUNTIME_FIELDS_MAX);
		cli_json_runtime_fields(e, damaged, fields, count);
	}
	if (line->totals) {
		emit_uint(e, "live_objects", line->objects);
		emit_uint(e, "live_bytes", line->bytes);
	}
	emit_object_end(e);
}

/* A snapshot's line in text, its row in markdown; the last one says what changed since the
 * first. */
static void snapshot_human(struct emitter *e, const struct heap_diff *diff,
			   const struct snapshot_line *line, bool last)
{
	if (emit_is(e, EMIT_JSON))
		return;
	const struct snapshot_info *info = snapshot_info(line->analysis->snapshot);
	char when[64], bytes[32] = "", count[32] = "";
	cli_format_time(info->capture_start_ns, when, sizeof when, false);
	emit_text(e, "  %-8s %s", line->label, when);
	if (line->totals) {
		cli_format_bytes(line->bytes, bytes, sizeof bytes);
		cli_format_count(line->objects, count, sizeof count);
		emit_text(e, "  heap %s  %s objects", bytes, count);
	}
	emit_table_row(e, (const char *[]){line->label, when, bytes, count});
	if (last) {
		struct change change;
		char in[40];
		describe_change(diff, info->capture_start_ns, &change);
		snprintf(in, sizeof in, "in %s", change.duration);
		emit_text(e, "  (%s, %s objects in %s)", change.bytes, change.count, change.duration);
		emit_table_row(e, (const char *[]){"change", in, change.bytes, change.count});
	}
	emit_text(e, "\n");
}

/* The snapshots: text a line each, markdown a table, JSON a member each ("before" and "after"
 * always, the contract; "target" between them for three). */
static void walk_snapshots(struct emitter *e, const struct report *report)
{
	static const struct emit_column columns[] = {
		{.title = "snapshot"}, {.title = "captured"}, {.title = "heap", .width = 1},
		{.title = "objects", .width = 1}};
	struct snapshot_line lines[3];
	size_t count = snapshot_lines(report, lines);
	emit_table_begin(e, EMIT_ONLY(EMIT_MARKDOWN), columns, 4);
	for (size_t i = 0; i < count; i++) {
		snapshot_json(e, i == 0 ? "before" : i + 1 == count ? "after" : "target", &lines[i]);
		snapshot_human(e, report->diff, &lines[i], i + 1 == count);
	}
}

/* The memory no walker reads, BEFORE (BASELINE) to AFTER (FINAL): a growth no row shows. People
 * are told only when it is worth saying (cli_format_unseen); JSON gives every byte. */
static void walk_unseen(struct emitter *e, const struct report *report)
{
	const struct outside_heaps *before = &report->diff->before->outside_heaps;
	const struct outside_heaps *after = &report->diff->after->outside_heaps;
	emit_object_begin(e, "unseen");
	emit_uint(e, "before", before->bytes);
	emit_uint(e, "after", after->bytes);
	emit_int(e, "delta", (int64_t)(after->bytes - before->bytes));
	emit_object_end(e);
	char unseen[160];
	unseen_change(report, unseen, sizeof unseen);
	if (!unseen[0] || emit_is(e, EMIT_JSON))
		return;
	emit_text(e, "  memory no walker reads: %s%s%s\n", emit_paint(e, EMIT_BOLD), unseen,
		  emit_paint(e, EMIT_RESET));
	emit_markdown(e, "\n**Memory no walker reads:** %s; what it holds is not in this report.\n",
		      unseen);
}

/* The warnings' text near the top, in markdown only: a pasted report travels without the
 * stderr the text's readers see them on. (JSON lists them at its end, walk_warnings.) */
static void walk_markdown_warnings(struct emitter *e, const struct report *report)
{
	if (!emit_is(e, EMIT_MARKDOWN))
		return;
	const struct analysis *analyses[3] = {report->diff->before, report->target,
					      report->diff->after};
	size_t warnings = warning_count(report);
	if (warnings)
		emit_markdown(e, "\n> **%zu warning%s:**\n", warnings, warnings == 1 ? "" : "s");
	for (size_t a = 0; a < 3; a++)
		for (size_t i = 0; analyses[a] && i < analyses[a]->warnings.count; i++) {
			if (repeated_warning(analyses, a, i))
				continue;
			emit_markdown(e, "> - ");
			emit_code(e, analyses[a]->warnings.items[i]);
			emit_markdown(e, "\n");
		}
}

/* A damaged heap or runtime, said near the top for people (JSON: each snapshot's heap_damage
 * and *_damaged). */
static void walk_damage(struct emitter *e, const struct report *report)
{
	if (emit_is(e, EMIT_JSON))
		return;
	struct snapshot_line lines[3];
	size_t count = snapshot_lines(report, lines);
	for (size_t i = 0; i < count; i++) {
		char damage[512];
		if (lines[i].analysis->heap.damage.spots) {
			cli_format_damage(&lines[i].analysis->heap.damage, damage, sizeof damage);
			emit_text(e, "  %-8s heap damaged: %s (see the warnings)\n", lines[i].label,
				  damage);
			emit_markdown(e, "\n> **%s's heap is damaged:** %s (see the warnings).\n",
				      lines[i].label, damage);
		}
		const struct runtime *runtime = lines[i].analysis->runtime.ops;
		if (runtime && runtime->damage_words(lines[i].analysis, damage, sizeof damage)) {
			emit_text(e, "  %-8s damaged: %s (see the warnings)\n", lines[i].label,
				  damage);
			emit_markdown(e, "\n> **Damaged %s objects in %s:** %s (see the warnings).\n",
				      runtime->language, lines[i].label, damage);
		}
	}
}

/* A grown type in JSON: every count the contract has, its retaining paths (the first --top
 * types) and, with --show-values, its strings. */
static void grown_json(struct emitter *e, const struct report *report, size_t i)
{
	if (!emit_is(e, EMIT_JSON))
		return;
	const struct row *row = &report->rows[i];
	const struct diff_type *type = row->type;
	emit_object_begin(e, NULL);
	emit_string(e, "type", row->name);
	emit_uint(e, "new", type->new_count);
	emit_uint(e, "new_bytes", type->new_bytes);
	emit_uint(e, "freed", type->freed_count);
	emit_uint(e, "freed_bytes", type->freed_bytes);
	emit_uint(e, "surviving", type->count_after - type->new_count);
	emit_int(e, "delta_count", diff_delta_count(type));
	emit_int(e, "delta_bytes", diff_delta_bytes(type));
	emit_uint(e, "count_before", type->count_before);
	emit_uint(e, "count_after", type->count_after);
	emit_uint(e, "bytes_after", type->bytes_after);
	emit_uint(e, "new_retained_bytes", type->new_retained);
	if (report->diff->three)
		emit_uint(e, "new_in_target", type->burst_count);
	site_json_group(e, &type->new_sites, "new", "new_bytes");
	if (i < report->options->top)
		cli_json_retainers(e, row->shapes, row->shape_count, report->diff->after);
	if (row->preview_count) {
		emit_array_begin(e, "values");
		for (size_t k = 0; k < row->preview_count; k++)
			emit_string(e, NULL, row->previews[k]);
		emit_array_end(e);
	}
	emit_object_end(e);
}

/* The grown types: people get the first TEXT_ROWS as a table, JSON every one with all its
 * counts. */
static void walk_grown(struct emitter *e, const struct report *report)
{
	static const struct emit_column two[] = {
		{.title = "new", .width = 10, .gap = "  "},
		{.title = "freed", .width = 10, .gap = " "},
		{.title = "delta", .width = 10, .gap = " ", .colour = EMIT_RED},
		{.title = "bytes Δ", .width = 11, .gap = " "},
		{.title = "count after", .width = 12, .gap = " "},
		{.title = "type", .gap = "  ", .code = true}};
	static const struct emit_column three[] = {
		{.title = "left", .width = 10, .gap = "  "},
		{.title = "new in burst", .width = 12, .gap = " "},
		{.title = "bytes", .width = 10, .gap = " "},
		{.title = "count final", .width = 12, .gap = " "},
		{.title = "type", .gap = "  ", .code = true}};
	const struct heap_diff *diff = report->diff;
	const struct diff_report_options *options = report->options;
	emit_heading(e,
		     diff->three ? "Left behind (objects new in TARGET and still allocated in FINAL), by "
				   "bytes:"
		     : options->by_count
			     ? "Grown types (objects new in AFTER and still allocated), by count:"
			     : "Grown types (objects new in AFTER and still allocated), by bytes:",
		     diff->three ? "Left behind: objects new in TARGET and still allocated in FINAL"
				 : "Grown types: objects new in AFTER and still allocated");
	const char *asked = options->type_pattern ? " of the types asked for" : "";
	const char *unseen = unseen_grew(report) ? " in the memory walked (memory no walker reads "
						   "grew: see above)"
						 : "";
	if (report->row_count == 0) {
		emit_text(e, "  none%s%s\n", asked, unseen);
		emit_markdown(e, "None%s%s.\n", asked, unseen);
	} else {
		emit_table_begin(e, EMIT_HUMAN, diff->three ? three : two, diff->three ? 5 : 6);
	}
	emit_array_begin(e, "grown");
	for (size_t i = 0; i < report->row_count; i++) {
		if (i < TEXT_ROWS && !emit_is(e, EMIT_JSON)) {
			char c[5][32];
			size_t cells = row_cells(diff, report->rows[i].type, c);
			const char *row[6] = {c[0], c[1], c[2], c[3], c[4]};
			row[cells] = report->rows[i].name;
			emit_table_row(e, row);
		}
		grown_json(e, report, i);
	}
	emit_array_end(e);
	if (report->row_count > TEXT_ROWS) {
		emit_text(e, "  (%zu more; --type PATTERN or --format json shows them)\n",
			  report->row_count - TEXT_ROWS);
		emit_markdown(e, "\n%zu more grown types not shown.\n", report->row_count - TEXT_ROWS);
	}
}

/* Where the new objects of the --top grown types were made, when AFTER records sites: a type
 * and its main sites, a line each, in text and (in a code block) markdown; JSON has them in
 * "grown". */
static void walk_type_sites(struct emitter *e, const struct report *report)
{
	bool any = false;
	for (size_t i = 0; i < report->row_count && i < report->options->top; i++)
		any = any || report->rows[i].type->new_sites.counted;
	if (!any || emit_is(e, EMIT_JSON))
		return;
	char title[128], text_title[160];
	snprintf(title, sizeof title, "Where the %s objects were allocated", new_word(report->diff));
	snprintf(text_title, sizeof text_title, "%s (innermost frame first):", title);
	emit_heading(e, text_title, title);
	site_lines_sampling(e, &report->diff->after->sites, emit_is(e, EMIT_TEXT) ? "  " : "");
	emit_markdown(e, "%s```\n", report->diff->after->sites.sample_bytes ? "\n" : "");
	for (size_t i = 0; i < report->row_count && i < report->options->top; i++) {
		const struct row *row = &report->rows[i];
		if (!row->type->new_sites.counted)
			continue;
		char count[32], lead[200];
		cli_format_count(row->type->new_count, count, sizeof count);
		snprintf(lead, sizeof lead, "%s %s %s", count, new_word(report->diff), row->name);
		site_lines_group(e, emit_is(e, EMIT_TEXT) ? "  " : "", lead, &row->type->new_sites,
				 emit_is(e, EMIT_TEXT) ? "    " : "  ");
	}
	emit_markdown(e, "```\n");
}

/* The path from a root to the container, the container itself left out. */
static void container_holder(const struct container_row *row, char *out, size_t size)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t k = 0; row->has_path && k + 1 < row->path.element_count; k++)
		used += (size_t)snprintf(out + used, used < size ? size - used : 0, "%s%s",
					 k ? " -> " : "", row->path.elements[k]);
}

/* The containers that lived through and grew: a sentence each in text, a table row in markdown,
 * an object in JSON (whose array is there even when empty: the contract). */
static void walk_containers(struct emitter *e, const struct report *report)
{
	static const struct emit_column columns[] = {{.title = "container", .code = true},
						     {.title = "type", .code = true},
						     {.title = "items before", .width = 1},
						     {.title = "items after", .width = 1}};
	if (report->container_count) {
		emit_heading(e, "Containers that lived through and grew (a registry nobody prunes?):",
			     "Containers that lived through and grew");
		emit_table_begin(e, EMIT_ONLY(EMIT_MARKDOWN), columns, 4);
	}
	emit_array_begin(e, "grown_containers");
	for (size_t i = 0; i < report->container_count; i++) {
		const struct container_row *row = &report->containers[i];
		const struct diff_container *container = row->container;
		char before[32], after[32], delta[32], held[512];
		cli_format_count(container->length_before, before, sizeof before);
		cli_format_count(container->length_after, after, sizeof after);
		signed_count((int64_t)(container->length_after - container->length_before), delta,
			     sizeof delta);
		container_holder(row, held, sizeof held);
		const char *where = row->has_path ? held : "(no root reaches it)";
		/* (text writes the whole path; the markdown cell is bounded) */
		emit_text(e, "  %s %s", container->type ? container->type : "?",
			  row->has_path ? "" : "(no root reaches it)");
		for (size_t k = 0; row->has_path && k + 1 < row->path.element_count; k++)
			emit_text(e, "%s%s", k ? " -> " : "", row->path.elements[k]);
		emit_text(e, " grew from %s to %s items (%s)\n", before, after, delta);
		emit_table_row(e, (const char *[]){where, container->type ? container->type : "?",
						   before, after});
		emit_object_begin(e, NULL);
		emit_string(e, "type", container->type ? container->type : "");
		if (row->has_path) {
			emit_array_begin(e, "path");
			for (size_t k = 0; k < row->path.element_count; k++)
				emit_string(e, NULL, row->path.elements[k]);
			emit_array_end(e);
		} else {
			emit_null(e, "path");
		}
		emit_uint(e, "items_before", container->length_before);
		emit_uint(e, "items_after", container->length_after);
		emit_object_end(e);
	}
	emit_array_end(e);
}

/* The new untyped allocations by site: people see the sites there are; JSON has the array
 * whenever AFTER records sites, empty or not. */
static void walk_sites(struct emitter *e, const struct report *report)
{
	static const struct emit_column columns[] = {
		{.title = "count", .width = 10, .gap = "  "},
		{.title = "bytes", .width = 10, .gap = " "},
		{.title = "site", .gap = "  ", .code = true}};
	const struct heap_diff *diff = report->diff;
	const struct site_groups *sites = &diff->new_untyped_sites;
	bool json = emit_is(e, EMIT_JSON);
	if (json && diff->after->sites.recorded) {
		cli_json_sites(e, sites, "new", "new_bytes");
		site_json_sampling(e, &diff->after->sites);
	}
	if (sites->count == 0 || json)
		return;
	char text_title[200], markdown_title[160];
	snprintf(markdown_title, sizeof markdown_title,
		 "Untyped %s allocations by the site that made them", new_word(diff));
	snprintf(text_title, sizeof text_title, "%s (recorded by %s):", markdown_title,
		 diff->after->sites.recorder);
	emit_heading(e, text_title, markdown_title);
	site_lines_sampling(e, &diff->after->sites, emit_is(e, EMIT_TEXT) ? "  " : "");
	emit_table_begin(e, EMIT_HUMAN, columns, 3);
	for (size_t i = 0; i < sites->count && i < TEXT_ROWS; i++) {
		char count[32], bytes[32];
		cli_format_count(sites->groups[i].count, count, sizeof count);
		cli_format_bytes(sites->groups[i].bytes, bytes, sizeof bytes);
		emit_table_row(e, (const char *[]){count, bytes,
						   sites->groups[i].description
							   ? sites->groups[i].description->chain
							   : "?"});
	}
}

/* Text: under each of the --top types, its path shapes and (--show-values) its strings. */
static void paths_text(struct emitter *e, const struct report *report)
{
	bool any = false;
	for (size_t i = 0; i < report->row_count && i < report->options->top; i++)
		any = any || report->rows[i].shape_count || report->rows[i].preview_count;
	if (!any)
		return;
	char title[128];
	snprintf(title, sizeof title,
		 "What keeps the %s objects alive (shortest paths from a root, by shape):",
		 new_word(report->diff));
	emit_heading(e, title, title);
	for (size_t i = 0, shown = 0; i < report->row_count && i < report->options->top; i++) {
		const struct row *row = &report->rows[i];
		if (row->shape_count == 0 && row->preview_count == 0)
			continue;
		char count[32], bytes[32];
		cli_format_count(row->type->new_count, count, sizeof count);
		cli_format_bytes(row->type->new_retained, bytes, sizeof bytes);
		emit_text(e, "  #%zu  %s %s %s, %s retained", ++shown, count, new_word(report->diff),
			  row->name, bytes);
		if (row->type->new_unreachable) {
			cli_format_count(row->type->new_unreachable, count, sizeof count);
			emit_text(e, "; %s of them unreachable (below)", count);
		}
		emit_text(e, "\n");
		for (size_t k = 0; k < row->shape_count; k++)
			shape_lines(e, &row->shapes[k], row->type->new_count, "        ",
				    row_sites(report, row));
		for (size_t k = 0; k < row->preview_count; k++)
			emit_text(e, "        value: \"%s\"\n", row->previews[k]);
	}
}

/* Markdown: each type's main path in a table, all of them drawn in mermaid (GitHub draws it
 * where the report is pasted), and the shapes listed as the text lists them, folded. False when
 * out of memory. */
static bool paths_markdown(struct emitter *e, const struct report *report)
{
	static const struct emit_column columns[] = {
		{.title = "#", .width = 1},	   {.title = "objects", .width = 1},
		{.title = "type", .code = true},	   {.title = "retained", .width = 1},
		{.title = "held by", .code = true}, {.title = "signature", .code = true}};
	bool any = false;
	for (size_t i = 0; i < report->row_count && i < report->options->top; i++)
		any = any || report->rows[i].shape_count;
	if (!any)
		return true;
	const char *word = new_word(report->diff);
	char title[128], count[32], bytes[32], number[24];
	snprintf(title, sizeof title, "What keeps the %s objects alive", word);
	emit_heading(e, title, title);
	emit_table_begin(e, EMIT_ONLY(EMIT_MARKDOWN), columns, 6);
	for (size_t i = 0, shown = 0; i < report->row_count && i < report->options->top; i++) {
		const struct row *row = &report->rows[i];
		if (row->shape_count == 0)
			continue;
		cli_format_count(row->shapes[0].count, count, sizeof count);
		cli_format_bytes(row->shapes[0].retained, bytes, sizeof bytes);
		snprintf(number, sizeof number, "%zu", ++shown);
		emit_table_row(e, (const char *[]){number, count, row->name, bytes,
						   row->shapes[0].elements[0],
						   row->shapes[0].signature});
	}
	struct path_graph *graph = paths_graph(report);
	if (graph == NULL)
		return false;
	emit_markdown(e, "\nFrom the roots to the types; on each step, how many of the %s objects "
			 "take it:\n\n```mermaid\n",
		      word);
	path_graph_write(e->out, graph, PATH_GRAPH_MERMAID, NULL);
	path_graph_free(graph);
	emit_markdown(e, "```\n\n<details><summary>Retaining paths, by shape</summary>\n\n```\n");
	for (size_t i = 0, shown = 0; i < report->row_count && i < report->options->top; i++) {
		const struct row *row = &report->rows[i];
		if (row->shape_count == 0)
			continue;
		cli_format_count(row->type->new_count, count, sizeof count);
		cli_format_bytes(row->type->new_retained, bytes, sizeof bytes);
		emit_markdown(e, "#%zu  %s %s %s, %s retained\n", ++shown, count, word, row->name,
			      bytes);
		for (size_t k = 0; k < row->shape_count; k++)
			shape_lines(e, &row->shapes[k], row->type->new_count, "    ",
				    row_sites(report, row));
	}
	emit_markdown(e, "```\n\n</details>\n");
	return true;
}

/* What keeps the new objects alive, for people (JSON has each type's retainers in "grown").
 * The two formats show it differently: text as lists under each type, with the strings
 * --show-values read; markdown as a table and a drawing. False when out of memory. */
static bool walk_paths(struct emitter *e, const struct report *report)
{
	if (emit_is(e, EMIT_TEXT))
		paths_text(e, report);
	else if (emit_is(e, EMIT_MARKDOWN))
		return paths_markdown(e, report);
	return true;
}

/* Text: the classes the runtime's collector sorts the unreachable objects into, those with
 * any. */
static void garbage_text(struct emitter *e, const struct heap_diff *diff)
{
	const struct runtime_garbage_classes *classes = diff->garbage.classes;
	emit_text(e, "  %s", classes->text_lead);
	for (size_t c = 0, first = 1; c < classes->count; c++) {
		if (diff->garbage.objects[c] == 0)
			continue;
		char count[32];
		cli_format_count(diff->garbage.objects[c], count, sizeof count);
		emit_text(e, "%s %s: %s", first ? "" : ",", classes->classes[c].name, count);
		first = 0;
	}
	emit_text(e, "\n");
}

/* Whether an unreachable type group passes --type. */
static bool unreachable_shown(const struct report *report, size_t i, char name[128])
{
	type_group_name(&report->diff->unreachable[i], name, 128);
	return !report->options->type_pattern || fnmatch(report->options->type_pattern, name, 0) == 0;
}

/* The new objects no root reaches: the totals and the cycles among them for everyone; by type
 * in text and JSON; by the collector's generation in text and JSON (markdown keeps to the
 * totals and a table of the cycles). */
static void walk_unreachable(struct emitter *e, const struct report *report)
{
	static const struct emit_column cycle_columns[] = {{.title = "cycles", .width = 1},
							   {.title = "bytes", .width = 1},
							   {.title = "shape", .code = true},
							   {.title = "signature", .code = true}};
	static const struct emit_column type_columns[] = {
		{.width = 12, .gap = "  "}, {.width = 10, .gap = " "}, {.gap = "  "}};
	const struct heap_diff *diff = report->diff;
	uint64_t cycles = 0;
	for (size_t i = 0; i < report->cycle_count; i++)
		cycles += report->cycles[i].count;
	char count[32], bytes[32], extra[96], title[256], name[128];
	cli_format_count(cycles, count, sizeof count);
	snprintf(extra, sizeof extra, ", in %s cycles", count);
	emit_text(e, "\n%sUnreachable from every root, %s: ", emit_paint(e, EMIT_BOLD),
		  new_word(diff));
	emit_markdown(e, "\n#### Unreachable from every root, %s\n\n", new_word(diff));
	emit_object_begin(e, "unreachable");
	emit_kv_count(e, "new_count", diff->unreachable_objects, "%s objects, ");
	emit_kv_bytes(e, "new_bytes", diff->unreachable_bytes, "%s");
	emit_text(e, "%s%s\n", cycles ? extra : "", emit_paint(e, EMIT_RESET));
	emit_markdown(e, "%s\n", diff->unreachable_objects ? "" : ".");
	if (diff->unreachable_objects && !emit_is(e, EMIT_JSON)) {
		const char *what = unreachable_title(diff, title, sizeof title);
		emit_text(e, "  (%s)\n", what);
		emit_markdown(e, "(%s.)\n", what);
	}
	emit_array_begin(e, "by_type");
	for (size_t i = 0; i < diff->unreachable_count && emit_is(e, EMIT_JSON); i++) {
		if (!unreachable_shown(report, i, name))
			continue;
		emit_object_begin(e, NULL);
		emit_string(e, "type", name);
		emit_uint(e, "count", diff->unreachable[i].count);
		emit_uint(e, "bytes", diff->unreachable[i].bytes);
		emit_object_end(e);
	}
	emit_array_end(e);
	if (runtime_has_objects(diff->after)) {
		bool json = emit_is(e, EMIT_JSON);
		if (json)
			cli_json_garbage(e, &diff->garbage);
		else if (diff->unreachable_objects)
			garbage_text(e, diff);
	}
	bool json = emit_is(e, EMIT_JSON);
	if (json)
		cli_json_cycles(e, report->cycles, report->cycle_count);
	if (report->cycle_count) {
		emit_markdown(e, "\n");
		emit_table_begin(e, EMIT_ONLY(EMIT_MARKDOWN), cycle_columns, 4);
	}
	for (size_t i = 0; i < report->cycle_count && i < TEXT_ROWS && !json; i++) {
		const struct cycle_shape *cycle = &report->cycles[i];
		cli_format_count(cycle->count, count, sizeof count);
		cli_format_bytes(cycle->bytes, bytes, sizeof bytes);
		emit_text(e, "  [%s] %s cycles, %s: %s\n", cycle->signature, count, bytes, cycle->text);
		emit_table_row(e, (const char *[]){count, bytes, cycle->text, cycle->signature});
	}
	/* text lists the types after the cycles, where JSON has by_type before them: the text's
	   order is the older */
	emit_table_columns(e, EMIT_ONLY(EMIT_TEXT), type_columns, 3);
	for (size_t i = 0; i < diff->unreachable_count && i < TEXT_ROWS && !json; i++) {
		if (!unreachable_shown(report, i, name))
			continue;
		cli_format_count(diff->unreachable[i].count, count, sizeof count);
		cli_format_bytes(diff->unreachable[i].bytes, bytes, sizeof bytes);
		emit_table_row(e, (const char *[]){count, bytes, name});
	}
	emit_object_end(e);
}

/* The warnings: JSON lists them, text says how many (they are on stderr); markdown gave them at
 * the top (walk_markdown_warnings). */
static void walk_warnings(struct emitter *e, const struct report *report)
{
	const struct analysis *analyses[3] = {report->diff->before, report->target,
					      report->diff->after};
	emit_array_begin(e, "warnings");
	for (size_t a = 0; a < 3 && emit_is(e, EMIT_JSON); a++)
		for (size_t i = 0; analyses[a] && i < analyses[a]->warnings.count; i++)
			if (!repeated_warning(analyses, a, i))
				emit_string(e, NULL, analyses[a]->warnings.items[i]);
	emit_array_end(e);
	size_t warnings = warning_count(report);
	if (warnings)
		emit_text(e, "\n%zu warning%s (on stderr)\n", warnings, warnings == 1 ? "" : "s");
}

/* What a maintainer needs to reproduce the report, at its end for people (JSON has it in each
 * snapshot's member): the tool's version, each snapshot and its runtimes' versions. */
static void walk_footer(struct emitter *e, const struct report *report)
{
	if (emit_is(e, EMIT_JSON))
		return;
	struct snapshot_line lines[3];
	size_t count = snapshot_lines(report, lines);
	char when[64], build_id[160], versions[96];
	emit_text(e, "\n-- heapdiff %s\n", HEAPSNAP_VERSION);
	emit_markdown(e, "\n---\n<sub>heapdiff %s", HEAPSNAP_VERSION);
	for (size_t i = 0; i < count; i++) {
		const struct snapshot_info *info = snapshot_info(lines[i].analysis->snapshot);
		const char *file = snapshot_path(lines[i].analysis->snapshot);
		cli_format_time(info->capture_start_ns, when, sizeof when, false);
		exe_build_id(lines[i].analysis, build_id);
		runtimes(lines[i].analysis, versions, sizeof versions);
		const char *exe = info->exe[0] ? info->exe : "unknown";
		const char *id = build_id[0] ? build_id : "unknown";
		emit_text(e, "   %-8s %s: pid %d, captured %s, exe %s, build-id %s, %s\n",
			  lines[i].label, file, info->pid, when, exe, id, versions);
		emit_markdown(e, "<br>\n%s `%s`: pid %d, captured %s, exe `%s`, build-id %s, %s",
			      lines[i].label, file, info->pid, when, exe, id, versions);
	}
	if (report->options->forced) {
		emit_text(e, "   compared with --force: not shown to be one process, by type only\n");
		emit_markdown(e, "<br>\ncompared with --force, by type only");
	}
	emit_markdown(e, "</sub>\n");
}

/* ---- DOT ---- */

/* The retaining paths of the --top grown types as a Graphviz digraph, a comment heading it with
 * what it shows; an empty digraph when no new object has a path. */
static bool write_dot(struct report *report)
{
	struct path_graph *graph = paths_graph(report);
	if (graph == NULL)
		return false;
	const struct snapshot_info *info = snapshot_info(report->diff->after->snapshot);
	fprintf(report->out,
		"// heapdiff %s: pid %d, what keeps the %s objects of the top %zu grown types alive\n"
		"// (edges: how many of them take the step; render: dot -Tsvg -o paths.svg)\n",
		HEAPSNAP_VERSION, info->pid, new_word(report->diff),
		report->row_count < report->options->top ? report->row_count : report->options->top);
	cli_dot_caveats(report->out, report->diff->before, report->diff->after);
	path_graph_write(report->out, graph, PATH_GRAPH_DOT, "heapdiff");
	path_graph_free(graph);
	return true;
}

/* The report in the emitter's format, one walk; false when out of memory (the markdown's
 * drawing), the report then cut short. */
static bool diff_report(struct emitter *e, const struct report *report)
{
	emit_begin(e);
	walk_header(e, report);
	walk_snapshots(e, report);
	walk_unseen(e, report);
	walk_markdown_warnings(e, report);
	walk_damage(e, report);
	walk_grown(e, report);
	walk_type_sites(e, report);
	walk_containers(e, report);
	walk_sites(e, report);
	if (!walk_paths(e, report))
		return false;
	walk_unreachable(e, report);
	walk_warnings(e, report);
	walk_footer(e, report);
	emit_end(e);
	return true;
}

/* The HTML page carries the JSON document (html_report.c). */
static void write_json_to(FILE *json_out, void *context)
{
	struct emitter e;
	emitter_init(&e, json_out, EMIT_JSON, false);
	diff_report(&e, context);
}

int diff_report_write(FILE *out, const struct heap_diff *diff, const struct analysis *target,
		       struct path_index *paths, const struct diff_report_options *options)
{
	struct report report = {.out = out, .diff = diff, .target = target, .paths = paths,
				.options = options};
	if (!report_prepare(&report)) {
		report_free(&report);
		return -1;
	}
	bool written = true;
	int status = 0;
	if (options->format == FORMAT_HTML) {
		status = html_report_write(out, HTML_REPORT_DIFF, diff->after->sites.recorded != 0,
					   write_json_to, &report);
	} else if (options->format == FORMAT_DOT) {
		written = write_dot(&report);
	} else {
		struct emitter e;
		emitter_init(&e, out,
			     options->format == FORMAT_JSON	  ? EMIT_JSON
			     : options->format == FORMAT_MARKDOWN ? EMIT_MARKDOWN
								  : EMIT_TEXT,
			     options->colour);
		written = diff_report(&e, &report);
	}
	report_free(&report);
	return written ? status : -1;
}
