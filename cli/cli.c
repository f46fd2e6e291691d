/* Front-end helpers (see cli.h). */
#include "cli.h"
#include "progress.h"

#include "common/numbers.h"
#include "common/visible_text.h"
#include "common/prefault.h"
#include "common/timings.h"


#include "analyze/analysis.h"
#include "common/timings.h"
#include "common/warnings.h"
#include "formats/seekable.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analyze/graph/cycles.h"
#include "analyze/graph/paths.h"
#include "analyze/reports/summary.h"
#include "analyze/sites.h"
#include "cli/site_report.h"
#include "cli/emit.h"
#include "formats/snapshot.h"

const char *cli_program = "heapsnap";

/* "heapsnap summary", or "heapdiff" for a program with no commands */
static void print_prefix(const char *command)
{
	fprintf(stderr, command[0] ? "%s %s: " : "%s: ", cli_program, command);
}

int cli_fail(const char *command, const struct hs_error *err)
{
	progress_end();
	print_prefix(command);
	fprintf(stderr, "%s\n", err->message);
	return EXIT_ERROR;
}

int cli_usage_error(const char *command, const char *format, ...)
{
	print_prefix(command);
	va_list args;
	va_start(args, format);
	vfprintf(stderr, format, args);
	va_end(args);
	fprintf(stderr, command[0] ? " (see `%s %s --help`)\n" : " (see `%s --help`)\n",
		cli_program, command);
	return EXIT_ERROR;
}

bool cli_parse_int(const char *text, long long min, long long max, long long *out)
{
	if (text == NULL || *text == '\0')
		return false;
	char *end;
	errno = 0;
	long long value = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0' || value < min || value > max)
		return false;
	*out = value;
	return true;
}

bool cli_timings;

struct analysis *cli_open_analysis(const char *command, const char *file,
				   struct analysis_options *options, bool progress,
				   enum cli_graph graph)
{
	options->observer = progress_observer();
	options->fetch_observer = progress_fetch_observer();
	static char title[64]; /* (the progress line keeps it) */
	snprintf(title, sizeof title, "%s%s%s", cli_program, *command ? " " : "", command);
	progress_begin(title, progress);
	struct hs_error err;
	struct analysis *analysis = analysis_open(file, options, &err);
	if (analysis == NULL) {
		cli_fail(command, &err);
		return NULL;
	}
	int built = graph == CLI_WHOLE_GRAPH	? analysis_build_graph(analysis, &err)
		    : graph == CLI_REACHABILITY ? analysis_build_reachability(analysis, &err)
						: 0;
	if (built != 0) {
		analysis_close(analysis);
		cli_fail(command, &err);
		return NULL;
	}
	return analysis;
}

int cli_close_analysis(const char *command, const char *file, struct analysis *analysis,
		       int status)
{
	cli_print_warnings(command, &analysis->warnings);
	cli_print_timings(command, file, &analysis->timings);
	analysis_close(analysis);
	return status;
}

void cli_print_timings(const char *command, const char *file, const struct timings *timings)
{
	if (!cli_timings)
		return;
	double total = 0;
	for (size_t i = 0; i < timings->count; i++) {
		print_prefix(command);
		fprintf(stderr, "%s: %7.2f s  peak %6ld MiB  %s\n", file, timings->steps[i].seconds,
			timings->steps[i].peak_kib / 1024, timings->steps[i].name);
		total += timings->steps[i].seconds;
	}
	print_prefix(command);
	fprintf(stderr, "%s: %7.2f s  in all\n", file, total);	for (size_t i = 0; i < timings->aside_count; i++) {
		print_prefix(command);
		fprintf(stderr, "%s: (%5.2f s  %s the steps)\n", file, timings->asides[i].seconds,
			timings->asides[i].name);
	}
}

void cli_process_name(const struct snapshot_info *info, bool full, char *out, size_t size)
{
	const char *slash = strrchr(info->exe, '/');
	const char *exe = full || slash == NULL ? info->exe : slash + 1;
	const char *exe_name = slash ? slash + 1 : info->exe;
	char name[4200];
	if (info->exe[0] == '\0')
		snprintf(name, sizeof name, "%s",
			 info->program[0] ? info->program : "(executable unknown)");
	else if (info->program[0] && strncmp(info->program, exe_name, strlen(info->program)) != 0)
		/* (a versioned name's symlink, python3 for python3.11, is no other name) */
		snprintf(name, sizeof name, "%s (%s)", info->program, exe);
	else
		snprintf(name, sizeof name, "%s", exe);
	visible_text(name, out, size); /* (the process chose both: no control character passes) */
}

void cli_print_warning(const char *command, const char *text)
{
	progress_end();
	fflush(stdout); /* a report and its warnings sent to one file stay in order */
	print_prefix(command);
	fprintf(stderr, "warning: %s\n", text);
}

void cli_print_warnings(const char *command, const struct warnings *warnings)
{
	for (size_t i = 0; i < warnings->count; i++)
		cli_print_warning(command, warnings->items[i]);
	progress_end();
	if (warnings->dropped) {
		print_prefix(command);
		fprintf(stderr, "warning: %zu more warnings not shown\n", warnings->dropped);
	}
}

void cli_format_count(uint64_t count, char *out, size_t out_size)
{
	format_count(count, out, out_size);
}

void cli_format_bytes(uint64_t bytes, char *out, size_t out_size)
{
	format_bytes(bytes, out, out_size);
}

void cli_format_time(uint64_t ns, char *out, size_t out_size, bool iso)
{
	if (ns == 0) {
		snprintf(out, out_size, iso ? "" : "unknown");
		return;
	}
	time_t seconds = (time_t)(ns / 1000000000u);
	struct tm utc;
	gmtime_r(&seconds, &utc);
	strftime(out, out_size, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S UTC", &utc);
}

void cli_format_build_id(const struct snapshot_module *module, char *out)
{
	out[0] = '\0';
	for (size_t i = 0; i < module->build_id_size; i++)
		sprintf(out + 2 * i, "%02x", module->build_id[i]);
}

/* The analysis keeps arrays of hundreds of MiB (one entry per allocation of the heap), and
 * memory the kernel hands out for the first time is slow: it zeroes every page, and under a
 * hypervisor the host may have to fault it in too (3 to 4 s per GiB was measured on the VMs here,
 * 50 times the cost of writing it again). So the analysis asks for memory as seldom as it can:
 * - from malloc's heap only, never given back (no mmap for large blocks, no trimming), so that
 *   what one step frees the next reuses instead of faulting in new pages; bench/python_summary
 *   measured 29-36 s without that, 17-18 s with it;
 * - one arena for every thread: the threads that work beside the analysis (the path index, the
 *   DWARF reading) then reuse what it freed, where arenas of their own would add to the peak
 *   (a summary of a 1 GiB CPython heap: 1.81 GiB with them, 1.68 GiB without);
 * - small pages, not huge ones: these VMs zero a huge page at several times the cost per byte
 *   (a summary of a 10 M-block heap spent 1.2 to 1.9 s in the kernel with huge pages, 0.3 to
 *   0.4 s without, and its wall time fell 5 to 10%; on the CPython heap, 2.6 to 4.6 s in the
 *   kernel became 0.8 s).
 * The few arrays that grow large as they fill are mapped apart (big_array.h). And what must be
 * new is faulted in ahead by a helper thread, on the other core (prefault.h). The tunables are
 * read at start-up, so the analysis commands restart themselves once with them set; without
 * /proc, or when the user set GLIBC_TUNABLES, they just go on. */
void cli_prepare_memory(char **argv)
{
	if (getenv("GLIBC_TUNABLES") == NULL) {
		if (setenv("GLIBC_TUNABLES",
			   "glibc.malloc.mmap_max=0:glibc.malloc.arena_max=1:"
			   "glibc.malloc.trim_threshold=4611686018427387904:"
			   "glibc.malloc.top_pad=33554432",
			   1) == 0)
			execv("/proc/self/exe", argv);
		unsetenv("GLIBC_TUNABLES");
	}
	/* malloc takes 32 MiB more than it needs each time it grows its heap: the prefault helper
	   faults that in while the analysis works through what it has */
	if (prefault_start() == 0)
		atexit(prefault_stop);
}

void cli_json_steps(struct emitter *e, const char *key, const char *text)
{
	emit_array_begin(e, key);
	char step[512];
	while (*text) {
		const char *arrow = strstr(text, " -> ");
		size_t length = arrow ? (size_t)(arrow - text) : strlen(text);
		snprintf(step, sizeof step, "%.*s", (int)length, text);
		emit_string(e, NULL, step);
		text += length + (arrow ? 4 : 0);
	}
	emit_array_end(e);
}

void cli_format_damage(const struct heap_damage *damage, char *out, size_t out_size)
{
	char bytes[32];
	cli_format_bytes(damage->bytes_not_walked, bytes, sizeof bytes);
	if (damage->spots == 0)
		snprintf(out, out_size, "%s", "");
	else if (damage->spots == 1)
		snprintf(out, out_size, "1 corrupt spot at 0x%llx, %s not walked",
			 (unsigned long long)damage->first_address, bytes);
	else
		snprintf(out, out_size, "%llu corrupt spots, the first at 0x%llx, %s not walked",
			 (unsigned long long)damage->spots, (unsigned long long)damage->first_address,
			 bytes);
}

void cli_json_damage(struct emitter *e, const struct heap_damage *damage)
{
	emit_object_begin(e, "heap_damage");
	emit_uint(e, "corrupt_spots", damage->spots);
	if (damage->spots)
		emit_uint(e, "first_address", damage->first_address);
	else
		emit_null(e, "first_address");
	emit_uint(e, "bytes_not_walked", damage->bytes_not_walked);
	emit_object_end(e);
}

void cli_format_unseen(const struct outside_heaps *before, const struct outside_heaps *after,
		       char *out, size_t out_size)
{
	char now[32], then[32], change[32];
	out[0] = '\0';
	uint64_t was = before ? before->bytes : 0, is = after->bytes;
	if (is < CLI_UNSEEN_SAID && was < CLI_UNSEEN_SAID &&
	    (is > was ? is - was : was - is) < CLI_UNSEEN_SAID)
		return;
	cli_format_bytes(after->bytes, now, sizeof now);
	if (before == NULL) {
		cli_format_bytes(after->largest_bytes, then, sizeof then);
		snprintf(out, out_size, "%s, %s of it in the mapping at 0x%llx", now, then,
			 (unsigned long long)after->largest_start);
		return;
	}
	cli_format_bytes(before->bytes, then, sizeof then);
	cli_format_bytes(after->bytes > before->bytes ? after->bytes - before->bytes
						      : before->bytes - after->bytes,
			 change, sizeof change);
	snprintf(out, out_size, "%s -> %s (%s%s)", then, now,
		 after->bytes >= before->bytes ? "+" : "-", change);
}

void cli_dot_caveats(FILE *out, const struct analysis *before, const struct analysis *after)
{
	char unseen[160];
	cli_format_unseen(before ? &before->outside_heaps : NULL, &after->outside_heaps, unseen,
			  sizeof unseen);
	if (unseen[0])
		fprintf(out, "// memory no walker reads: %s\n", unseen);
	size_t warnings = after->warnings.count + (before ? before->warnings.count : 0);
	if (warnings)
		fprintf(out, "// %zu warning%s: not drawn here (on stderr, and in --format json)\n",
			warnings, warnings == 1 ? "" : "s");
}

void cli_json_unseen(struct emitter *e, const struct outside_heaps *outside)
{
	emit_object_begin(e, "unseen");
	emit_uint(e, "bytes", outside->bytes);
	if (outside->bytes)
		emit_uint(e, "largest_mapping", outside->largest_start);
	else
		emit_null(e, "largest_mapping");
	emit_uint(e, "largest_bytes", outside->largest_bytes);
	emit_object_end(e);
}

void cli_json_garbage(struct emitter *e, const struct garbage_counts *garbage)
{
	const struct runtime_garbage_classes *classes = garbage->classes;
	if (classes == NULL)
		return;
	emit_array_begin(e, classes->json_key);
	for (size_t c = 0; c < classes->count; c++) {
		emit_object_begin(e, NULL);
		if (classes->classes[c].json_value >= 0)
			emit_uint(e, classes->json_member, (uint64_t)classes->classes[c].json_value);
		else
			emit_null(e, classes->json_member);
		emit_uint(e, "objects", garbage->objects[c]);
		emit_uint(e, "bytes", garbage->bytes[c]);
		emit_object_end(e);
	}
	emit_array_end(e);
}

void cli_json_cycles(struct emitter *e, const struct cycle_shape *cycles, size_t count)
{
	emit_array_begin(e, "cycles");
	for (size_t i = 0; i < count; i++) {
		emit_object_begin(e, NULL);
		cli_json_steps(e, "shape", cycles[i].text);
		emit_uint(e, "count", cycles[i].count);
		emit_uint(e, "objects", cycles[i].objects);
		emit_uint(e, "bytes", cycles[i].bytes);
		emit_string(e, "signature", cycles[i].signature);
		emit_object_end(e);
	}
	emit_array_end(e);
}

void cli_json_sites(struct emitter *e, const struct site_groups *groups, const char *count_key,
		    const char *bytes_key)
{
	emit_array_begin(e, "sites");
	for (size_t i = 0; i < groups->count; i++) {
		const struct site_group *group = &groups->groups[i];
		emit_object_begin(e, NULL);
		site_json_members(e, group->description);
		emit_uint(e, count_key, group->count);
		emit_uint(e, bytes_key, group->bytes);
		emit_object_end(e);
	}
	emit_array_end(e);
}

void cli_json_retainers(struct emitter *e, const struct path_shape *shapes, size_t count,
			const struct analysis *analysis)
{
	emit_array_begin(e, "retainers");
	for (size_t i = 0; i < count; i++) {
		emit_object_begin(e, NULL);
		emit_array_begin(e, "path");
		for (size_t k = 0; k < shapes[i].element_count; k++)
			emit_string(e, NULL, shapes[i].elements[k]);
		emit_array_end(e);
		emit_uint(e, "count", shapes[i].count);
		emit_uint(e, "retained_bytes", shapes[i].retained);
		emit_string(e, "signature", shapes[i].signature);
		site_json_path(e, &shapes[i], analysis);
		emit_object_end(e);
	}
	emit_array_end(e);
}


void cli_json_runtime_versions(struct emitter *e, const struct analysis *analysis)
{
	const struct heap_allocator *mallocs[HEAP_ALLOCATORS_MAX];
	size_t malloc_count = heap_mallocs(&analysis->heap, mallocs, HEAP_ALLOCATORS_MAX);
	for (size_t i = 0; i < malloc_count; i++)
		emit_string_or_null(e, mallocs[i]->allocator->version_name,
				    mallocs[i]->version[0] ? mallocs[i]->version : NULL);
	for (size_t i = 0; known_runtimes[i]; i++)
		emit_string_or_null(e, known_runtimes[i]->key, known_runtimes[i]->version(analysis));
}

void cli_json_runtime_fields(struct emitter *e, const char *key,
			     const struct runtime_field *fields, size_t count)
{
	emit_object_begin(e, key);
	for (size_t i = 0; i < count; i++) {
		const struct runtime_field *field = &fields[i];
		if (field->kind == RUNTIME_FIELD_STRING)
			emit_string(e, field->key, field->string);
		else if (field->kind == RUNTIME_FIELD_UINT)
			emit_uint(e, field->key, field->number);
		else if (field->kind == RUNTIME_FIELD_OBJECT)
			emit_object_begin(e, field->key);
		else
			emit_object_end(e);
	}
	emit_object_end(e);
}

bool cli_parse_size(const char *text, uint64_t *out, bool *has_unit)
{
	char *end;
	if (text == NULL || *text < '0' || *text > '9')
		return false;
	unsigned long long value = strtoull(text, &end, 10);
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {{"", 0},	 {"B", 0},   {"K", 10},	  {"KB", 10}, {"KiB", 10},
		     {"M", 20},	 {"MB", 20}, {"MiB", 20}, {"G", 30},  {"GB", 30},
		     {"GiB", 30}, {"T", 40},  {"TB", 40},  {"TiB", 40}};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (units[i].shift && value > (UINT64_MAX >> units[i].shift))
			return false;
		*out = (uint64_t)value << units[i].shift;
		if (has_unit)
			*has_unit = *end != '\0';
		return true;
	}
	return false;
}
