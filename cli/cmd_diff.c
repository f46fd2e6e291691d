/* `heapsnap diff` (and `heapdiff`, the same program by another name): compares two snapshots of
 * one process (or three: baseline, target, final) and reports what grew and what keeps it alive.
 * A thin front end: options, opening the snapshots, the exit status; the comparison is
 * analyze/reports/diff.c, the report cli/diff_report.c. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fnmatch.h>

#include "analyze/analysis.h"
#include "analyze/reports/diff.h"
#include "analyze/graph/paths.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "cli/diff_report.h"
#include "cli/json_schema.h"
#include "cli/pprof_export.h"
#include "formats/snapshot_file.h"

#ifndef HEAPSNAP_VERSION
#define HEAPSNAP_VERSION "unknown"
#endif

#define GATES_MAX 32

static struct cli_command_help help = {
	.program = "heapdiff",
	.name = "",
	.arguments = "BEFORE AFTER\nBASELINE TARGET FINAL",
	.about =
		"What grew between two snapshots of one process (heapsnap capture), and what keeps the\n"
		"new objects alive: the types that grew, the containers that grew, the shortest paths\n"
		"from a root to the new objects by shape, and what became unreachable (Python: garbage\n"
		"waiting for the cyclic collector; C: leaked), with its cycles. An object is the same in\n"
		"both snapshots when its address, size and type agree.\n"
		"\n"
		"With three snapshots (before a burst of load, during it, after it drained), it reports\n"
		"the objects new in TARGET that are still alive in FINAL: what the burst left behind.\n",
	.epilogue =
		"Exit status: 0 success, 1 a --fail-on-growth limit was exceeded (memory no walker reads\n"
		"counts against a limit in bytes), 2 bad usage or input, or a limit on objects that cannot\n"
		"be judged because memory no walker reads grew by 1 MiB or more.\n",
};

struct gate {
	char pattern[256];
	uint64_t limit;
	bool bytes;
};

static bool parse_gate(const char *text, struct gate *gate)
{
	const char *equals = strrchr(text, '=');
	if (equals == NULL || equals == text || (size_t)(equals - text) >= sizeof gate->pattern)
		return false;
	snprintf(gate->pattern, sizeof gate->pattern, "%.*s", (int)(equals - text), text);
	return cli_parse_size(equals + 1, &gate->limit, &gate->bytes);
}

/* The memory no walker reads may hold objects of any type, so every gate judges its growth too:
 * a gate on bytes fails when it grew past the limit; a gate on objects cannot count what it
 * cannot see, and says so (exit 2) once that memory grew by UNSEEN_JUDGED or more. Returns the
 * exit status, `status` unless that changes it. */
#define UNSEEN_JUDGED CLI_UNSEEN_SAID
static int judge_unseen(const struct analysis *before, const struct analysis *after,
			const struct gate *gates, size_t gate_count, int status)
{
	uint64_t was = before->outside_heaps.bytes, now = after->outside_heaps.bytes;
	if (now <= was)
		return status;
	uint64_t grown = now - was;
	bool cannot_judge = false;
	for (size_t g = 0; g < gate_count; g++) {
		if (gates[g].bytes && grown > gates[g].limit) {
			fprintf(stderr,
				"%s: memory no walker reads grew by %llu bytes, more than the "
				"%llu allowed for %s (--fail-on-growth): what it holds may be of any "
				"type\n",
				cli_program, (unsigned long long)grown, (unsigned long long)gates[g].limit,
				gates[g].pattern);
			status = EXIT_FINDING;
		} else if (!gates[g].bytes && grown >= UNSEEN_JUDGED) {
			cannot_judge = true;
		}
	}
	if (cannot_judge && status == EXIT_OK) {
		fprintf(stderr,
			"%s: memory no walker reads grew by %llu bytes, and what it holds "
			"cannot be counted as objects: the --fail-on-growth limits on objects cannot "
			"be judged (give a limit in bytes, 'TYPE=10MiB', to judge it)\n",
			cli_program, (unsigned long long)grown);
		status = EXIT_ERROR;
	}
	return status;
}

/* Whether the snapshots were given in the order they were taken: a swapped pair would read as
 * the reverse of what happened, so it is refused unless `forced` (then a warning says it). A file
 * given twice is said in the report's warnings: nothing can have changed. */
static bool in_order(struct analysis *const *snapshots, int files, const char *const *names,
		     char *const *paths, bool forced)
{
	bool ok = true;
	for (int i = 1; i < files && ok; i++) {
		struct stat a, b;
		const struct snapshot_info *earlier = snapshot_info(snapshots[i - 1]->snapshot);
		const struct snapshot_info *later = snapshot_info(snapshots[i]->snapshot);
		progress_end();
		if (stat(paths[i - 1], &a) == 0 && stat(paths[i], &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino) {
			warnings_add(&snapshots[files - 1]->warnings,
				     "%s and %s are one file (%s): nothing can have changed between "
				     "them",
				     names[i - 1], names[i], paths[i]);
		} else if (later->capture_start_ns < earlier->capture_start_ns) {
			fprintf(stderr,
				"%s: %s%s (%s) was captured before %s (%s)%s\n",
				cli_program, forced ? "warning: " : "", names[i], paths[i], names[i - 1], paths[i - 1],
				forced ? ": the changes are shown backwards"
				       : ": give the snapshots in the order they were taken (or --force to "
					 "compare them as given)");
			ok = forced;
		}
	}
	return ok;
}

/* A growth of the memory no walker reads is a warning of the report itself (in every format):
 * whatever grew there, no row shows it. */
static void warn_unseen_growth(const struct analysis *before, struct analysis *after,
			       const char *after_name)
{
	uint64_t was = before->outside_heaps.bytes, now = after->outside_heaps.bytes;
	if (now < was || now - was < UNSEEN_JUDGED)
		return;
	warnings_add(&after->warnings,
		     "memory no walker reads grew by %.1f MiB (%.1f MiB to %.1f MiB) up to %s: "
		     "what grew there is not in this report (an allocator or runtime heapsnap does "
		     "not walk, or the program's own pool, keeps it)",
		     (now - was) / 1048576.0, was / 1048576.0, now / 1048576.0, after_name);
}

/* How much the types matching a gate grew (new objects left, in three-snapshot mode). */
static bool gate_exceeded(const struct heap_diff *diff, const struct gate *gate, uint64_t *grown)
{
	int64_t total = 0;
	for (size_t i = 0; i < diff->type_count; i++) {
		const struct diff_type *type = &diff->types[i];
		char name[128];
		if (type->type)
			snprintf(name, sizeof name, "%s", type->type);
		else
			snprintf(name, sizeof name, "size %llu", (unsigned long long)type->size);
		if (fnmatch(gate->pattern, name, 0) != 0)
			continue;
		if (diff->three)
			total += (int64_t)(gate->bytes ? type->new_bytes : type->new_count);
		else
			total += gate->bytes ? diff_delta_bytes(type) : diff_delta_count(type);
	}
	*grown = total > 0 ? (uint64_t)total : 0;
	return total > 0 && (uint64_t)total > gate->limit;
}

static void progress(bool shown, const char *what, const char *path)
{
	if (shown)
		fprintf(stderr, "%s: %s %s\n", cli_program, what, path);
}

/* One snapshot opened (and its graph built, as far as the diff needs it) in a thread of its own:
 * the snapshots are independent until they are compared, and a machine has cores to spare. */
struct open_job {
	const char *path;
	const struct analysis_options *options;
	enum { NO_GRAPH, REACHABILITY_ONLY, FULL_GRAPH } graph;
	bool verbose;
	struct analysis *analysis;
	struct hs_error err;
	pthread_t thread;
	bool started;
};

static void *open_job_run(void *argument)
{
	struct open_job *job = argument;
	progress(job->verbose, "reading", job->path);
	job->analysis = analysis_open(job->path, job->options, &job->err);
	if (job->analysis == NULL || job->graph == NO_GRAPH)
		return NULL;
	progress(job->verbose, "building the object graph of", job->path);
	int built = job->graph == FULL_GRAPH ? analysis_build_graph(job->analysis, &job->err)
					     : analysis_build_reachability(job->analysis, &job->err);
	if (built != 0) {
		analysis_close(job->analysis);
		job->analysis = NULL;
	}
	return NULL;
}

/* (not a report's output_format: a profile of the new objects, written to -o's file) */
#define FORMAT_PPROF 64
static const struct cli_choice formats[] = {
	{"text", FORMAT_TEXT}, {"markdown", FORMAT_MARKDOWN}, {"json", FORMAT_JSON},
	{"dot", FORMAT_DOT},   {"html", FORMAT_HTML},	      {"pprof", FORMAT_PPROF},
	{NULL, 0}};
static const struct cli_choice sorts[] = {{"bytes", 0}, {"count", 1}, {NULL, 0}};
enum colour { COLOUR_AUTO, COLOUR_ALWAYS, COLOUR_NEVER };
static const struct cli_choice colours[] = {
	{"auto", COLOUR_AUTO}, {"always", COLOUR_ALWAYS}, {"never", COLOUR_NEVER}, {NULL, 0}};

/* What the options ask for. */
struct diff_command {
	struct analysis_options analysis;
	struct diff_report_options report;
	int format, by_count, top, colour;
	const char *output; /* --format pprof's file */
	struct gate gates[GATES_MAX];
	size_t gate_count;
	bool too_many_gates;
};

static bool parse_min_bytes(void *value, const char *text)
{
	return cli_parse_size(text, value, NULL);
}

static bool parse_gate_option(void *value, const char *text)
{
	struct diff_command *command = value;
	if (command->gate_count == GATES_MAX) {
		command->too_many_gates = true;
		return true; /* (said once the options are parsed) */
	}
	return parse_gate(text, &command->gates[command->gate_count]) && ++command->gate_count;
}

static void print_version(void *unused)
{
	(void)unused;
	printf("%s %s\n", cli_program, HEAPSNAP_VERSION);
}

/* Parses the options; CLI_PARSED with *first the index of the first snapshot, or the exit
 * status. */
static int parse_diff_options(struct diff_command *command, int argc, char **argv, int *first)
{
	const struct cli_option options[] = {
		CLI_CHOICE("format", "F", &command->format, formats,
			   "text (default), markdown (to paste into an issue; the retaining\n"
			   "paths drawn as a mermaid flowchart), json (schema\n"
			   HEAPSNAP_SCHEMA_DIFF "), dot (the retaining paths of the --top types\n"
			   "as a Graphviz digraph: heapdiff --format dot A B |\n"
			   "dot -Tsvg > paths.svg) or html (one self-contained page to\n"
			   "open in a browser: sortable tables, paths and cycles drawn) or\n"
			   "pprof (the new objects as a gzipped pprof heap profile, to -o OUT,\n"
			   "each stack their retaining path: go tool pprof -top OUT)"),
		CLI_STRING('o', "output", "OUT", &command->output,
			   "with --format pprof, the file to write (mode 0600, linked in place\n"
			   "once complete; never over another user's file or a snapshot read)"),
		CLI_CHOICE("sort", "bytes|count", &command->by_count, sorts,
			   "rank grown types by bytes (default) or by objects"),
		CLI_INT("top", "N", &command->top, 0, 1000,
			"show retaining paths for the N largest grown types (10)"),
		CLI_STRING(0, "type", "PATTERN", &command->report.type_pattern,
			   "only types matching a shell pattern ('__main__.*')"),
		CLI_CALLBACK("min-bytes", "SIZE", &command->report.min_bytes, parse_min_bytes,
			     "a size (4096, 64K, 10MiB)",
			     "only types that grew by at least SIZE (4096, 64K, 10M)"),
		CLI_CALLBACK("fail-on-growth", "TYPE=N", command, parse_gate_option,
			     "TYPE=COUNT or TYPE=SIZE ('__main__.Connection=100', 'struct "
			     "conn=1MiB')",
			     "exit 1 when the types matching TYPE grew by more than N\n"
			     "objects, or by more than N bytes when N has a unit\n"
			     "(Connection=100, 'struct conn=1M', '__main__.*=10MiB');\n"
			     "may be repeated"),
		CLI_FLAG(0, "show-values", &command->report.show_values,
			 "show values read from memory (dict keys, short strings);\n"
			 "masked by default, since a heap holds secrets"),
		CLI_FLAG(0, "force", &command->report.forced,
			 "compare snapshots not shown to be of one process, by type\n"
			 "only (every object counts as new or freed)"),
		CLI_CHOICE("color", "WHEN", &command->colour, colours,
			   "auto (default: on a terminal, unless NO_COLOR is set),\n"
			   "always or never"),
		{.kind = CLI_OPTION_CHOICE, .long_name = "colour", .argument = "WHEN",
		 .value = &command->colour, .choices = colours, .hidden = true},
		CLI_ANALYSIS_OPTIONS(&command->analysis),
		{.kind = CLI_OPTION_ACTION, .long_name = "version", .help = "print the version",
		 .act = print_version},
		CLI_END};
	int status = cli_parse_options(&help, options, argc, argv, first);
	if (status != CLI_PARSED)
		return status;
	if (command->too_many_gates)
		return cli_usage_error(help.name, "at most %d --fail-on-growth options", GATES_MAX);
	int files = argc - *first;
	if (files != 2 && files != 3)
		return cli_usage_error(help.name, "expects BEFORE AFTER, or BASELINE TARGET FINAL");
	if ((command->format == FORMAT_PPROF) != (command->output != NULL))
		return cli_usage_error(help.name, command->output ? "-o is for --format pprof (the "
								    "reports go to standard output)"
								  : "--format pprof writes a gzipped "
								    "file: give -o OUT.pb.gz");
	const char *no_colour = getenv("NO_COLOR");
	command->report.format = (enum output_format)command->format;
	command->report.by_count = command->by_count;
	command->report.top = (size_t)command->top;
	command->report.colour = command->report.format == FORMAT_TEXT &&
				 (command->colour == COLOUR_ALWAYS ||
				  (command->colour == COLOUR_AUTO && isatty(STDOUT_FILENO) &&
				   !(no_colour && no_colour[0])));
	return CLI_PARSED;
}

/* Opens the snapshots, the last in this thread, the others in threads of their own: AFTER
 * needs the whole graph, BEFORE what its roots reach (what was unreachable already), the first
 * two of three nothing but their objects. False (the error printed) when one fails. */
static bool open_snapshots(struct diff_command *command, char *const *paths, int files,
			   struct analysis **snapshots)
{
	bool verbose = isatty(STDERR_FILENO);
	command->analysis.observer = progress_observer();
	command->analysis.fetch_observer = progress_fetch_observer();
	progress_begin(cli_program, command->report.format != FORMAT_JSON);
	struct open_job jobs[3];
	for (int i = 0; i < files; i++)
		jobs[i] = (struct open_job){.path = paths[i],
					    .options = &command->analysis,
					    .graph = i == files - 1 ? FULL_GRAPH
						     : files == 2   ? REACHABILITY_ONLY
								    : NO_GRAPH,
					    .verbose = verbose};
	for (int i = 0; i < files - 1; i++)
		jobs[i].started = pthread_create(&jobs[i].thread, NULL, open_job_run, &jobs[i]) == 0;
	for (int i = 0; i < files; i++)
		if (i == files - 1 || !jobs[i].started)
			open_job_run(&jobs[i]);
	for (int i = 0; i < files - 1; i++)
		if (jobs[i].started)
			pthread_join(jobs[i].thread, NULL);
	for (int i = 0; i < files; i++)
		snapshots[i] = jobs[i].analysis;
	for (int i = 0; i < files; i++)
		if (snapshots[i] == NULL) {
			cli_fail(help.name, &jobs[i].err);
			return false;
		}
	return true;
}

/* Whether the snapshots can be compared object by object (*by_type_only false), or by type
 * only (--force); false when they cannot be compared at all (said on stderr). */
static bool comparable(const struct diff_command *command, struct analysis **snapshots,
		       char *const *paths, int files, const char *const *names,
		       bool *by_type_only)
{
	*by_type_only = false;
	for (int i = 1; i < files; i++) {
		char why[512];
		if (diff_same_process(snapshots[0], snapshots[i], why, sizeof why))
			continue;
		progress_end();
		if (!command->report.forced) {
			fprintf(stderr,
				"%s: %s (%s) and %s (%s) cannot be compared object by object: "
				"%s. Compare snapshots of one process, or add --force to compare "
				"them by type only\n",
				cli_program, names[0], paths[0], names[i], paths[i], why);
			return false;
		}
		fprintf(stderr, "%s: warning: %s; comparing by type only (--force)\n", cli_program, why);
		*by_type_only = true;
	}
	/* (snapshots of one process: of two, which came first says nothing) */
	return *by_type_only || in_order(snapshots, files, names, paths, command->report.forced);
}

/* The new objects (three snapshots: those left behind) as a pprof profile, by retaining path in
 * AFTER, to command->output; false when it could not be written (said on stderr). */
static bool write_diff_profile(const struct diff_command *command, const struct heap_diff *diff,
			       const struct analysis *before, const struct analysis *after,
			       const struct path_index *paths, const char *after_path)
{
	struct hs_error err;
	struct pprof_export_stats stats;
	const struct pprof_export_request request = {
		.output = command->output,
		.input = after_path,
		.program = cli_program,
		.what = diff->by_type_only ? "every object of AFTER (compared by type only, --force: "
					     "none is matched with BEFORE's)"
			: diff->three	   ? "objects new in TARGET and left in FINAL"
					   : "objects new since BEFORE",
		.before = before,
		.analysis = after,
		.paths = paths,
		.only = diff->is_new,
		.stacks = PPROF_STACKS_PATHS};
	if (pprof_export_write(&request, &stats, &err) != 0) {
		cli_fail(help.name, &err);
		return false;
	}
	char objects[32], bytes[32];
	cli_format_count(stats.objects, objects, sizeof objects);
	cli_format_bytes(stats.bytes, bytes, sizeof bytes);
	printf("%s: pprof heap profile of the new objects, %llu samples, %s objects, %s\n",
	       command->output, (unsigned long long)stats.samples, objects, bytes);
	return true;
}

/* The exit status the gates give: EXIT_FINDING when one was exceeded (each said on stderr). */
static int judge_gates(const struct diff_command *command, const struct heap_diff *diff,
		       const struct analysis *before, const struct analysis *after)
{
	int status = EXIT_OK;
	for (size_t g = 0; g < command->gate_count; g++) {
		const struct gate *gate = &command->gates[g];
		uint64_t grown;
		if (!gate_exceeded(diff, gate, &grown))
			continue;
		fprintf(stderr, "%s: %s grew by %llu %s, more than the %llu allowed "
				"(--fail-on-growth)\n",
			cli_program, gate->pattern, (unsigned long long)grown, gate->bytes ? "bytes" : "objects",
			(unsigned long long)gate->limit);
		status = EXIT_FINDING;
	}
	if (command->gate_count)
		status = judge_unseen(before, after, command->gates, command->gate_count, status);
	return status;
}

/* Each snapshot's warnings on stderr, after its role; one given in the same words by several
 * snapshots (a module left unnamed in each) once, after all their roles ("before, after"). */
static void print_warnings(struct analysis *const *snapshots, int files,
			   const char *const *roles)
{
	for (int i = 0; i < files; i++) {
		const struct warnings *warnings = &snapshots[i]->warnings;
		for (size_t k = 0; k < warnings->count; k++) {
			const char *text = warnings->items[k];
			bool earlier = false;
			char who[64];
			snprintf(who, sizeof who, "%s", roles[i]);
			for (int j = 0; j < files; j++)
				for (size_t m = 0; j != i && m < snapshots[j]->warnings.count; m++) {
					if (strcmp(snapshots[j]->warnings.items[m], text) != 0)
						continue;
					earlier |= j < i;
					size_t used = strlen(who);
					if (j > i)
						snprintf(who + used, sizeof who - used, ", %s",
							 roles[j]);
					break;
				}
			if (!earlier)
				cli_print_warning(who, text);
		}
		if (warnings->dropped)
			fprintf(stderr, "%s %s: warning: %zu more warnings not shown\n", cli_program,
				roles[i], warnings->dropped);
	}
}

int cmd_diff(int argc, char **argv)
{
	/* `heapdiff` (cli_program, set by main) or `heapsnap diff`: messages name it as it was run */
	if (strcmp(cli_program, "heapdiff") != 0)
		cli_program = "heapsnap diff";
	help.program = cli_program;
	struct diff_command command = {.format = FORMAT_TEXT, .top = 10, .colour = COLOUR_AUTO};
	int first;
	int status = parse_diff_options(&command, argc, argv, &first);
	if (status != CLI_PARSED)
		return status;
	int files = argc - first;
	char *const *paths = argv + first;
	struct analysis *snapshots[3] = {NULL, NULL, NULL};
	struct path_index *paths_index = NULL;
	struct heap_diff diff;
	bool have_diff = false, by_type_only;
	struct hs_error err;
	status = EXIT_ERROR;
	for (int i = 0; command.output && i < files; i++)
		if (safe_file_check(command.output, paths[i], &err) != 0)
			return cli_fail(help.name, &err);
	static const char *const names[2][3] = {{"BEFORE", "AFTER", NULL},
						{"BASELINE", "TARGET", "FINAL"}};
	static const char *const roles[2][3] = {{"before", "after", ""},
						{"baseline", "target", "final"}};
	if (!open_snapshots(&command, paths, files, snapshots) ||
	    !comparable(&command, snapshots, paths, files, names[files == 3], &by_type_only))
		goto done;
	struct analysis *before = snapshots[0], *after = snapshots[files - 1];
	struct analysis *target = files == 3 ? snapshots[1] : NULL;
	paths_index = path_index_build(&after->graph, &after->heap, &after->types,
				       after->same_type_dominated, command.report.show_values, &err);
	if (paths_index && after->sites.recorded) /* (the paths then say where theirs were made) */
		path_index_set_sites(paths_index, after->sites.site);
	if (paths_index == NULL ||
	    heap_diff_build(before, target, after, by_type_only, &diff, &err) != 0) {
		cli_fail(help.name, &err);
		goto done;
	}
	have_diff = true;
	warn_unseen_growth(before, after, names[files == 3][files - 1]);
	command.report.forced = command.report.forced && by_type_only;
	progress_end();
	if (command.format == FORMAT_PPROF) {
		if (!write_diff_profile(&command, &diff, before, after, paths_index, paths[files - 1]))
			goto done;
	} else if (diff_report_write(stdout, &diff, target, paths_index, &command.report) != 0) {
		fprintf(stderr, "%s: out of memory or unable to write the report\n", cli_program);
		goto done;
	}
	fflush(stdout);
	timings_mark(&after->timings, "path index, diff, report");
	print_warnings(snapshots, files, roles[files == 3]);
	for (int i = 0; i < files; i++)
		cli_print_timings(roles[files == 3][i], paths[i], &snapshots[i]->timings);
	status = judge_gates(&command, &diff, before, after);
done:
	if (have_diff)
		heap_diff_free(&diff);
	path_index_free(paths_index);
	for (int i = 0; i < 3; i++)
		analysis_close(snapshots[i]);
	return status;
}
