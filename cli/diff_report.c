/* The heapdiff report in text, markdown, JSON and DOT (see diff_report.h). The rows (grown types, their
 * retaining paths, grown containers) are chosen once; each format only renders them. */
#include "diff_report.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/path_graph.h"
#include "cli/html_report.h"
#include "formats/json.h"

#define TEXT_ROWS 25	  /* grown types shown in text and markdown */
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
		if (after->runtime->string_text(after, i, row->previews[row->preview_count],
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
	const struct runtime *runtime = analysis->runtime;
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

static size_t warning_count(const struct report *report)
{
	const struct analysis *analyses[3] = {report->diff->before, report->target,
					      report->diff->after};
	size_t count = 0;
	for (size_t a = 0; a < 3; a++)
		count += analyses[a] ? analyses[a]->warnings.count : 0;
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
		 after->runtime->language, after->runtime->collector);
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

/* ---- text ---- */

static const char *paint(const struct report *report, const char *code)
{
	return report->options->colour ? code : "";
}
#define BOLD "\033[1m"
#define RED "\033[31m"
#define RESET "\033[0m"

static void text_shape(const struct report *report, const struct path_shape *shape,
		       uint64_t of_count, const char *indent)
{
	FILE *out = report->out;
	char count[32], bytes[32];
	cli_format_count(shape->count, count, sizeof count);
	cli_format_bytes(shape->retained, bytes, sizeof bytes);
	fprintf(out, "%s[%s] %s (%.0f%%), %s retained:\n%s    ", indent, shape->signature, count,
		of_count ? 100.0 * (double)shape->count / (double)of_count : 0.0, bytes, indent);
	for (size_t e = 0; e < shape->element_count; e++)
		fprintf(out, "%s%s", e ? " -> " : "", shape->elements[e]);
	fprintf(out, "\n");
}

static void text_footer(const struct report *report, bool markdown)
{
	FILE *out = report->out;
	struct snapshot_line lines[3];
	size_t count = snapshot_lines(report, lines);
	char when[64], build_id[160], versions[96];
	fprintf(out, markdown ? "\n---\n<sub>heapdiff %s" : "\n-- heapdiff %s\n", HEAPSNAP_VERSION);
	for (size_t i = 0; i < count; i++) {
		const struct snapshot_info *info = snapshot_info(lines[i].analysis->snapshot);
		cli_format_time(info->capture_start_ns, when, sizeof when, false);
		exe_build_id(lines[i].analysis, build_id);
		runtimes(lines[i].analysis, versions, sizeof versions);
		fprintf(out,
			markdown ? "<br>\n%s `%s`: pid %d, captured %s, exe `%s`, build-id %s, %s"
				 : "   %-8s %s: pid %d, captured %s, exe %s, build-id %s, %s\n",
			lines[i].label, snapshot_path(lines[i].analysis->snapshot), info->pid, when,
			info->exe[0] ? info->exe : "unknown", build_id[0] ? build_id : "unknown",
			versions);
	}
	if (report->options->forced)
		fprintf(out, markdown ? "<br>\ncompared with --force, by type only"
				      : "   compared with --force: not shown to be one process, by type "
					"only\n");
	if (markdown)
		fprintf(out, "</sub>\n");
}

static void write_text(struct report *report)
{
	FILE *out = report->out;
	const struct heap_diff *diff = report->diff;
	const struct analysis *after = diff->after;
	const struct snapshot_info *info = snapshot_info(after->snapshot);
	char versions[96], when[64], count[32], bytes[32], extra[96];
	runtimes(after, versions, sizeof versions);
	char process[4200];
	cli_process_name(info, false, process, sizeof process);
	fprintf(out, "%sheapdiff: pid %d %s (%s)%s\n", paint(report, BOLD), info->pid, process,
		versions, paint(report, RESET));
	struct snapshot_line lines[3];
	size_t line_count = snapshot_lines(report, lines);
	for (size_t i = 0; i < line_count; i++) {
		const struct snapshot_info *line_info = snapshot_info(lines[i].analysis->snapshot);
		cli_format_time(line_info->capture_start_ns, when, sizeof when, false);
		fprintf(out, "  %-8s %s", lines[i].label, when);
		if (lines[i].totals) {
			cli_format_bytes(lines[i].bytes, bytes, sizeof bytes);
			cli_format_count(lines[i].objects, count, sizeof count);
			fprintf(out, "  heap %s  %s objects", bytes, count);
		}
		if (i + 1 == line_count) {
			struct change change;
			describe_change(diff, line_info->capture_start_ns, &change);
			fprintf(out, "  (%s, %s objects in %s)", change.bytes, change.count,
				change.duration);
		}
		fprintf(out, "\n");
	}
	char unseen[160];
	unseen_change(report, unseen, sizeof unseen);
	if (unseen[0])
		fprintf(out, "  memory no walker reads: %s%s%s\n", paint(report, BOLD), unseen,
			paint(report, RESET));
	for (size_t i = 0; i < line_count; i++) {
		char damage[512];
		if (lines[i].analysis->heap.damage.spots) {
			cli_format_damage(&lines[i].analysis->heap.damage, damage, sizeof damage);
			fprintf(out, "  %-8s heap damaged: %s (see the warnings)\n", lines[i].label,
				damage);
		}
		const struct runtime *runtime = lines[i].analysis->runtime;
		if (runtime && runtime->damage_words(lines[i].analysis, damage, sizeof damage))
			fprintf(out, "  %-8s damaged: %s (see the warnings)\n", lines[i].label,
				damage);
	}

	fprintf(out, "\n%s%s%s\n", paint(report, BOLD),
		diff->three ? "Left behind (objects new in TARGET and still allocated in FINAL), by "
			      "bytes:"
		: report->options->by_count
			? "Grown types (objects new in AFTER and still allocated), by count:"
			: "Grown types (objects new in AFTER and still allocated), by bytes:",
		paint(report, RESET));
	if (report->row_count == 0)
		fprintf(out, "  none%s%s\n",
			report->options->type_pattern ? " of the types asked for" : "",
			unseen_grew(report) ? " in the memory walked (memory no walker reads grew: see "
					      "above)"
					    : "");
	else if (diff->three)
		fprintf(out, "  %10s %12s %10s %12s  %s\n", "left", "new in burst", "bytes",
			"count final", "type");
	else
		fprintf(out, "  %10s %10s %10s %11s %12s  %s\n", "new", "freed", "delta", "bytes Δ",
			"count after", "type");
	for (size_t i = 0; i < report->row_count && i < TEXT_ROWS; i++) {
		char c[5][32];
		if (row_cells(diff, report->rows[i].type, c) == 4)
			fprintf(out, "  %10s %12s %10s %12s  %s\n", c[0], c[1], c[2], c[3],
				report->rows[i].name);
		else
			fprintf(out, "  %10s %10s %s%10s%s %11s %12s  %s\n", c[0], c[1],
				paint(report, RED), c[2], paint(report, RESET), c[3], c[4],
				report->rows[i].name);
	}
	if (report->row_count > TEXT_ROWS)
		fprintf(out, "  (%zu more; --type PATTERN or --format json shows them)\n",
			report->row_count - TEXT_ROWS);

	if (report->container_count) {
		fprintf(out, "\n%sContainers that lived through and grew (a registry nobody prunes?):%s\n",
			paint(report, BOLD), paint(report, RESET));
		for (size_t i = 0; i < report->container_count; i++) {
			const struct container_row *row = &report->containers[i];
			char before[32], after_count[32], delta[32];
			cli_format_count(row->container->length_before, before, sizeof before);
			cli_format_count(row->container->length_after, after_count, sizeof after_count);
			signed_count((int64_t)(row->container->length_after -
					       row->container->length_before),
				     delta, sizeof delta);
			fprintf(out, "  %s ", row->container->type ? row->container->type : "?");
			if (!row->has_path)
				fprintf(out, "(no root reaches it)");
			for (size_t e = 0; row->has_path && e + 1 < row->path.element_count; e++)
				fprintf(out, "%s%s", e ? " -> " : "", row->path.elements[e]);
			fprintf(out, " grew from %s to %s items (%s)\n", before, after_count, delta);
		}
	}

	const struct site_groups *sites = &diff->new_untyped_sites;
	if (sites->count)
		fprintf(out, "\n%sUntyped %s allocations by the site that made them (recorded by the "
			     "hook):%s\n  %10s %10s  %s\n",
			paint(report, BOLD), new_word(diff), paint(report, RESET), "count", "bytes",
			"site");
	for (size_t i = 0; i < sites->count && i < TEXT_ROWS; i++) {
		cli_format_count(sites->groups[i].count, count, sizeof count);
		cli_format_bytes(sites->groups[i].bytes, bytes, sizeof bytes);
		fprintf(out, "  %10s %10s  %s\n", count, bytes,
			sites->groups[i].description ? sites->groups[i].description->chain : "?");
	}

	bool any_paths = false;
	for (size_t i = 0; i < report->row_count && i < report->options->top; i++)
		any_paths = any_paths || report->rows[i].shape_count || report->rows[i].preview_count;
	if (any_paths)
		fprintf(out, "\n%sWhat keeps the %s objects alive (shortest paths from a root, by "
			     "shape):%s\n",
			paint(report, BOLD), new_word(diff), paint(report, RESET));
	for (size_t i = 0, shown = 0; i < report->row_count && i < report->options->top; i++) {
		const struct row *row = &report->rows[i];
		if (row->shape_count == 0 && row->preview_count == 0)
			continue;
		cli_format_count(row->type->new_count, count, sizeof count);
		cli_format_bytes(row->type->new_retained, bytes, sizeof bytes);
		fprintf(out, "  #%zu  %s %s %s, %s retained", ++shown, count, new_word(diff),
			row->name, bytes);
		if (row->type->new_unreachable) {
			char lost[32];
			cli_format_count(row->type->new_unreachable, lost, sizeof lost);
			fprintf(out, "; %s of them unreachable (below)", lost);
		}
		fprintf(out, "\n");
		for (size_t k = 0; k < row->shape_count; k++)
			text_shape(report, &row->shapes[k], row->type->new_count, "        ");
		for (size_t k = 0; k < row->preview_count; k++)
			fprintf(out, "        value: \"%s\"\n", row->previews[k]);
	}

	cli_format_count(diff->unreachable_objects, count, sizeof count);
	cli_format_bytes(diff->unreachable_bytes, bytes, sizeof bytes);
	uint64_t cycles = 0;
	for (size_t i = 0; i < report->cycle_count; i++)
		cycles += report->cycles[i].count;
	char cycle_count[32];
	cli_format_count(cycles, cycle_count, sizeof cycle_count);
	snprintf(extra, sizeof extra, ", in %s cycles", cycle_count);
	fprintf(out, "\n%sUnreachable from every root, %s: %s objects, %s%s%s\n", paint(report, BOLD),
		new_word(diff), count, bytes, cycles ? extra : "", paint(report, RESET));
	char title[256];
	if (diff->unreachable_objects)
		fprintf(out, "  (%s)\n", unreachable_title(diff, title, sizeof title));
	if (runtime_has_objects(after) && diff->unreachable_objects) {
		static const char *const generations[] = {"generation 0", "generation 1",
							  "generation 2", "untracked"};
		fprintf(out, "  in the collector's");
		for (size_t g = 0, first = 1; g < 4; g++) {
			if (diff->garbage_objects[g] == 0)
				continue;
			cli_format_count(diff->garbage_objects[g], count, sizeof count);
			fprintf(out, "%s %s: %s", first ? "" : ",", generations[g], count);
			first = 0;
		}
		fprintf(out, "\n");
	}
	for (size_t i = 0; i < report->cycle_count && i < TEXT_ROWS; i++) {
		const struct cycle_shape *cycle = &report->cycles[i];
		cli_format_count(cycle->count, count, sizeof count);
		cli_format_bytes(cycle->bytes, bytes, sizeof bytes);
		fprintf(out, "  [%s] %s cycles, %s: %s\n", cycle->signature, count, bytes, cycle->text);
	}
	for (size_t i = 0; i < diff->unreachable_count && i < TEXT_ROWS; i++) {
		char name[128];
		type_group_name(&diff->unreachable[i], name, sizeof name);
		if (report->options->type_pattern && fnmatch(report->options->type_pattern, name, 0))
			continue;
		cli_format_count(diff->unreachable[i].count, count, sizeof count);
		cli_format_bytes(diff->unreachable[i].bytes, bytes, sizeof bytes);
		fprintf(out, "  %12s %10s  %s\n", count, bytes, name);
	}
	size_t warnings = warning_count(report);
	if (warnings)
		fprintf(out, "\n%zu warning%s (on stderr)\n", warnings, warnings == 1 ? "" : "s");
	text_footer(report, false);
}

/* ---- markdown ---- */

/* A table cell: text in backticks, with what would end the cell or the code escaped. */
static void markdown_code(FILE *out, const char *text)
{
	fputc('`', out);
	for (; *text; text++) {
		if (*text == '|')
			fputs("\\|", out);
		else if (*text == '`')
			fputc('\'', out);
		else if (*text == '\n')
			fputc(' ', out);
		else
			fputc(*text, out);
	}
	fputc('`', out);
}

static bool write_markdown(struct report *report)
{
	FILE *out = report->out;
	const struct heap_diff *diff = report->diff;
	const struct analysis *after = diff->after;
	const struct snapshot_info *info = snapshot_info(after->snapshot);
	char versions[96], when[64], count[32], bytes[32];
	runtimes(after, versions, sizeof versions);
	fprintf(out, "### heapdiff: pid %d ", info->pid);
	char process[4200];
	cli_process_name(info, false, process, sizeof process);
	markdown_code(out, process);
	fprintf(out, " (%s)\n\n", versions);
	fprintf(out, "| snapshot | captured | heap | objects |\n|---|---|---:|---:|\n");
	struct snapshot_line lines[3];
	size_t line_count = snapshot_lines(report, lines);
	for (size_t i = 0; i < line_count; i++) {
		const struct snapshot_info *line_info = snapshot_info(lines[i].analysis->snapshot);
		cli_format_time(line_info->capture_start_ns, when, sizeof when, false);
		if (!lines[i].totals) {
			fprintf(out, "| %s | %s | | |\n", lines[i].label, when);
			continue;
		}
		cli_format_bytes(lines[i].bytes, bytes, sizeof bytes);
		cli_format_count(lines[i].objects, count, sizeof count);
		fprintf(out, "| %s | %s | %s | %s |\n", lines[i].label, when, bytes, count);
		if (i + 1 == line_count) {
			struct change change;
			describe_change(diff, line_info->capture_start_ns, &change);
			fprintf(out, "| change | in %s | %s | %s |\n", change.duration, change.bytes,
				change.count);
		}
	}
	char unseen[160];
	unseen_change(report, unseen, sizeof unseen);
	if (unseen[0])
		fprintf(out, "\n**Memory no walker reads:** %s; what it holds is not in this "
			     "report.\n", unseen);
	const struct analysis *analyses[3] = {diff->before, report->target, diff->after};
	size_t warnings = warning_count(report);
	if (warnings)
		fprintf(out, "\n> **%zu warning%s:**\n", warnings, warnings == 1 ? "" : "s");
	for (size_t a = 0; a < 3; a++)
		for (size_t i = 0; analyses[a] && i < analyses[a]->warnings.count; i++) {
			fprintf(out, "> - ");
			markdown_code(out, analyses[a]->warnings.items[i]);
			fprintf(out, "\n");
		}
	for (size_t i = 0; i < line_count; i++) {
		char damage[512];
		if (lines[i].analysis->heap.damage.spots) {
			cli_format_damage(&lines[i].analysis->heap.damage, damage, sizeof damage);
			fprintf(out, "\n> **%s's heap is damaged:** %s (see the warnings).\n",
				lines[i].label, damage);
		}
		const struct runtime *runtime = lines[i].analysis->runtime;
		if (runtime && runtime->damage_words(lines[i].analysis, damage, sizeof damage))
			fprintf(out, "\n> **Damaged %s objects in %s:** %s (see the warnings).\n",
				runtime->language, lines[i].label, damage);
	}

	fprintf(out, "\n#### %s\n\n",
		diff->three ? "Left behind: objects new in TARGET and still allocated in FINAL"
			    : "Grown types: objects new in AFTER and still allocated");
	if (report->row_count == 0) {
		fprintf(out, "None%s%s.\n",
			report->options->type_pattern ? " of the types asked for" : "",
			unseen_grew(report) ? " in the memory walked (memory no walker reads grew: see "
					      "above)"
					    : "");
	} else if (diff->three) {
		fprintf(out, "| left | new in burst | bytes | count final | type |\n"
			     "|---:|---:|---:|---:|---|\n");
	} else {
		fprintf(out, "| new | freed | delta | bytes Δ | count after | type |\n"
			     "|---:|---:|---:|---:|---:|---|\n");
	}
	for (size_t i = 0; i < report->row_count && i < TEXT_ROWS; i++) {
		char c[5][32];
		size_t cells = row_cells(diff, report->rows[i].type, c);
		for (size_t k = 0; k < cells; k++)
			fprintf(out, "| %s ", c[k]);
		fprintf(out, "| ");
		markdown_code(out, report->rows[i].name);
		fprintf(out, " |\n");
	}
	if (report->row_count > TEXT_ROWS)
		fprintf(out, "\n%zu more grown types not shown.\n", report->row_count - TEXT_ROWS);

	if (report->container_count) {
		fprintf(out, "\n#### Containers that lived through and grew\n\n"
			     "| container | type | items before | items after |\n|---|---|---:|---:|\n");
		for (size_t i = 0; i < report->container_count; i++) {
			const struct container_row *row = &report->containers[i];
			char before[32], after_count[32], held[512] = "";
			size_t used = 0;
			for (size_t e = 0; row->has_path && e + 1 < row->path.element_count; e++)
				used += (size_t)snprintf(held + used, used < sizeof held ? sizeof held - used : 0,
							 "%s%s", e ? " -> " : "", row->path.elements[e]);
			cli_format_count(row->container->length_before, before, sizeof before);
			cli_format_count(row->container->length_after, after_count, sizeof after_count);
			fprintf(out, "| ");
			markdown_code(out, row->has_path ? held : "(no root reaches it)");
			fprintf(out, " | ");
			markdown_code(out, row->container->type ? row->container->type : "?");
			fprintf(out, " | %s | %s |\n", before, after_count);
		}
	}

	const struct site_groups *sites = &diff->new_untyped_sites;
	if (sites->count)
		fprintf(out, "\n#### Untyped %s allocations by the site that made them\n\n"
			     "| count | bytes | site |\n|---:|---:|---|\n",
			new_word(diff));
	for (size_t i = 0; i < sites->count && i < TEXT_ROWS; i++) {
		cli_format_count(sites->groups[i].count, count, sizeof count);
		cli_format_bytes(sites->groups[i].bytes, bytes, sizeof bytes);
		fprintf(out, "| %s | %s | ", count, bytes);
		markdown_code(out, sites->groups[i].description ? sites->groups[i].description->chain
								 : "?");
		fprintf(out, " |\n");
	}

	bool any_paths = false;
	for (size_t i = 0; i < report->row_count && i < report->options->top; i++)
		any_paths = any_paths || report->rows[i].shape_count;
	if (any_paths) {
		fprintf(out, "\n#### What keeps the %s objects alive\n\n"
			     "| # | objects | type | retained | held by | signature |\n"
			     "|---:|---:|---|---:|---|---|\n",
			new_word(diff));
		for (size_t i = 0, shown = 0; i < report->row_count && i < report->options->top; i++) {
			const struct row *row = &report->rows[i];
			if (row->shape_count == 0)
				continue;
			const struct path_shape *shape = &row->shapes[0];
			cli_format_count(shape->count, count, sizeof count);
			cli_format_bytes(shape->retained, bytes, sizeof bytes);
			fprintf(out, "| %zu | %s | ", ++shown, count);
			markdown_code(out, row->name);
			fprintf(out, " | %s | ", bytes);
			markdown_code(out, shape->elements[0]);
			fprintf(out, " | `%s` |\n", shape->signature);
		}
		struct path_graph *graph = paths_graph(report);
		if (graph == NULL)
			return false;
		/* the shape at a glance: GitHub draws it where the report is pasted */
		fprintf(out, "\nFrom the roots to the types; on each step, how many of the %s objects "
			     "take it:\n\n```mermaid\n",
			new_word(diff));
		path_graph_write(out, graph, PATH_GRAPH_MERMAID, NULL);
		fprintf(out, "```\n");
		path_graph_free(graph);
		fprintf(out, "\n<details><summary>Retaining paths, by shape</summary>\n\n```\n");
		for (size_t i = 0, shown = 0; i < report->row_count && i < report->options->top; i++) {
			const struct row *row = &report->rows[i];
			if (row->shape_count == 0)
				continue;
			cli_format_count(row->type->new_count, count, sizeof count);
			cli_format_bytes(row->type->new_retained, bytes, sizeof bytes);
			fprintf(out, "#%zu  %s %s %s, %s retained\n", ++shown, count, new_word(diff),
				row->name, bytes);
			for (size_t k = 0; k < row->shape_count; k++)
				text_shape(report, &row->shapes[k], row->type->new_count, "    ");
		}
		fprintf(out, "```\n\n</details>\n");
	}

	cli_format_count(diff->unreachable_objects, count, sizeof count);
	cli_format_bytes(diff->unreachable_bytes, bytes, sizeof bytes);
	fprintf(out, "\n#### Unreachable from every root, %s\n\n%s objects, %s%s\n", new_word(diff),
		count, bytes, diff->unreachable_objects ? "" : ".");
	char title[256];
	if (diff->unreachable_objects)
		fprintf(out, "(%s.)\n", unreachable_title(diff, title, sizeof title));
	if (report->cycle_count) {
		fprintf(out, "\n| cycles | bytes | shape | signature |\n|---:|---:|---|---|\n");
		for (size_t i = 0; i < report->cycle_count && i < TEXT_ROWS; i++) {
			const struct cycle_shape *cycle = &report->cycles[i];
			cli_format_count(cycle->count, count, sizeof count);
			cli_format_bytes(cycle->bytes, bytes, sizeof bytes);
			fprintf(out, "| %s | %s | ", count, bytes);
			markdown_code(out, cycle->text);
			fprintf(out, " | `%s` |\n", cycle->signature);
		}
	}
	text_footer(report, true);
	return true;
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

/* ---- JSON ---- */

static void json_path(struct json_writer *json, const struct path_shape *shape)
{
	json_array_begin(json);
	for (size_t e = 0; e < shape->element_count; e++)
		json_string(json, shape->elements[e]);
	json_array_end(json);
}

static void json_snapshot(struct json_writer *json, const struct analysis *analysis,
			  const struct snapshot_line *line)
{
	const struct snapshot_info *info = snapshot_info(analysis->snapshot);
	char when[64], build_id[160];
	cli_format_time(info->capture_start_ns, when, sizeof when, true);
	exe_build_id(analysis, build_id);
	json_object_begin(json);
	json_key(json, "file");
	json_string(json, snapshot_path(analysis->snapshot));
	json_key(json, "pid");
	json_int(json, info->pid);
	json_key(json, "captured_at");
	json_string(json, when);
	json_key(json, "exe");
	json_string(json, info->exe);
	char program[4200]; /* as the header names it */
	cli_process_name(info, false, program, sizeof program);
	json_key(json, "program");
	json_string(json, program);
	json_key(json, "build_id");
	json_string(json, build_id);
	json_key(json, "runtimes");
	json_object_begin(json);
	cli_json_runtime_versions(json, analysis);
	json_object_end(json);
	cli_json_damage(json, &analysis->heap.damage);
	cli_json_unseen(json, &analysis->outside_heaps);
	if (analysis->runtime && analysis->runtime->has_objects(analysis)) {
		char key[64];
		snprintf(key, sizeof key, "%s_damaged", analysis->runtime->key);
		json_key(json, key);
		analysis->runtime->damage_json(analysis, json);
	}
	if (line->totals) {
		json_key(json, "live_objects");
		json_uint(json, line->objects);
		json_key(json, "live_bytes");
		json_uint(json, line->bytes);
	}
	json_object_end(json);
}

static void write_json(struct report *report)
{
	const struct heap_diff *diff = report->diff;
	struct json_writer json;
	json_init(&json, report->out);
	json_object_begin(&json);
	json_key(&json, "schema");
	json_string(&json, "heapsnap.diff/1");
	json_key(&json, "tool_version");
	json_string(&json, HEAPSNAP_VERSION);
	json_key(&json, "mode");
	json_string(&json, diff->three ? "three" : "two");
	json_key(&json, "forced");
	json_bool(&json, report->options->forced);
	struct snapshot_line lines[3];
	size_t line_count = snapshot_lines(report, lines);
	for (size_t i = 0; i < line_count; i++) {
		/* "before" and "after" always (the contract); "target" between them for three */
		json_key(&json, i == 0 ? "before" : i + 1 == line_count ? "after" : "target");
		json_snapshot(&json, lines[i].analysis, &lines[i]);
	}
	/* the memory no walker reads, BEFORE (BASELINE) to AFTER (FINAL): a growth no row shows */
	json_key(&json, "unseen");
	json_object_begin(&json);
	json_key(&json, "before");
	json_uint(&json, diff->before->outside_heaps.bytes);
	json_key(&json, "after");
	json_uint(&json, diff->after->outside_heaps.bytes);
	json_key(&json, "delta");
	json_int(&json, (int64_t)(diff->after->outside_heaps.bytes - diff->before->outside_heaps.bytes));
	json_object_end(&json);
	json_key(&json, "grown");
	json_array_begin(&json);
	for (size_t i = 0; i < report->row_count; i++) {
		const struct row *row = &report->rows[i];
		const struct diff_type *type = row->type;
		json_object_begin(&json);
		json_key(&json, "type");
		json_string(&json, row->name);
		json_key(&json, "new");
		json_uint(&json, type->new_count);
		json_key(&json, "new_bytes");
		json_uint(&json, type->new_bytes);
		json_key(&json, "freed");
		json_uint(&json, type->freed_count);
		json_key(&json, "freed_bytes");
		json_uint(&json, type->freed_bytes);
		json_key(&json, "surviving");
		json_uint(&json, type->count_after - type->new_count);
		json_key(&json, "delta_count");
		json_int(&json, diff_delta_count(type));
		json_key(&json, "delta_bytes");
		json_int(&json, diff_delta_bytes(type));
		json_key(&json, "count_before");
		json_uint(&json, type->count_before);
		json_key(&json, "count_after");
		json_uint(&json, type->count_after);
		json_key(&json, "bytes_after");
		json_uint(&json, type->bytes_after);
		json_key(&json, "new_retained_bytes");
		json_uint(&json, type->new_retained);
		if (diff->three) {
			json_key(&json, "new_in_target");
			json_uint(&json, type->burst_count);
		}
		if (i < report->options->top) {
			cli_json_retainers(&json, row->shapes, row->shape_count);
		}
		if (row->preview_count) {
			json_key(&json, "values");
			json_array_begin(&json);
			for (size_t k = 0; k < row->preview_count; k++)
				json_string(&json, row->previews[k]);
			json_array_end(&json);
		}
		json_object_end(&json);
	}
	json_array_end(&json);
	json_key(&json, "grown_containers");
	json_array_begin(&json);
	for (size_t i = 0; i < report->container_count; i++) {
		const struct container_row *row = &report->containers[i];
		json_object_begin(&json);
		json_key(&json, "type");
		json_string(&json, row->container->type ? row->container->type : "");
		json_key(&json, "path");
		if (row->has_path)
			json_path(&json, &row->path);
		else
			json_null(&json);
		json_key(&json, "items_before");
		json_uint(&json, row->container->length_before);
		json_key(&json, "items_after");
		json_uint(&json, row->container->length_after);
		json_object_end(&json);
	}
	json_array_end(&json);
	if (diff->after->sites.recorded)
		cli_json_sites(&json, &diff->new_untyped_sites, "new", "new_bytes");
	json_key(&json, "unreachable");
	json_object_begin(&json);
	json_key(&json, "new_count");
	json_uint(&json, diff->unreachable_objects);
	json_key(&json, "new_bytes");
	json_uint(&json, diff->unreachable_bytes);
	json_key(&json, "by_type");
	json_array_begin(&json);
	for (size_t i = 0; i < diff->unreachable_count; i++) {
		char name[128];
		type_group_name(&diff->unreachable[i], name, sizeof name);
		if (report->options->type_pattern && fnmatch(report->options->type_pattern, name, 0))
			continue;
		json_object_begin(&json);
		json_key(&json, "type");
		json_string(&json, name);
		json_key(&json, "count");
		json_uint(&json, diff->unreachable[i].count);
		json_key(&json, "bytes");
		json_uint(&json, diff->unreachable[i].bytes);
		json_object_end(&json);
	}
	json_array_end(&json);
	if (runtime_has_objects(diff->after))
		cli_json_garbage(&json, diff->garbage_objects, diff->garbage_bytes);
	cli_json_cycles(&json, report->cycles, report->cycle_count);
	json_object_end(&json);
	json_key(&json, "warnings");
	json_array_begin(&json);
	const struct analysis *analyses[3] = {diff->before, report->target, diff->after};
	for (size_t a = 0; a < 3; a++)
		for (size_t i = 0; analyses[a] && i < analyses[a]->warnings.count; i++)
			json_string(&json, analyses[a]->warnings.items[i]);
	json_array_end(&json);
	json_object_end(&json);
	json_finish(&json);
}

/* The HTML page carries the JSON document (html_report.c). */
static void write_json_to(FILE *json_out, void *context)
{
	struct report *report = context;
	FILE *out = report->out;
	report->out = json_out;
	write_json(report);
	report->out = out;
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
	if (options->format == FORMAT_JSON)
		write_json(&report);
	else if (options->format == FORMAT_HTML)
		status = html_report_write(out, HTML_REPORT_DIFF, write_json_to, &report);
	else if (options->format == FORMAT_MARKDOWN)
		written = write_markdown(&report);
	else if (options->format == FORMAT_DOT)
		written = write_dot(&report);
	else
		write_text(&report);
	report_free(&report);
	return written ? status : -1;
}
