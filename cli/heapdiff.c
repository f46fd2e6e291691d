/* The `heapdiff` program: compares two snapshots of one process (or three: baseline, target,
 * final) and reports what grew and what keeps it alive. A thin front end: options, opening the
 * snapshots, the exit status; the comparison is analyze/diff.c, the report cli/diff_report.c. */
#include <getopt.h>
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

#ifndef HEAPSNAP_VERSION
#define HEAPSNAP_VERSION "unknown"
#endif

#define GATES_MAX 32

static const char usage[] =
	"usage: heapdiff [OPTIONS] BEFORE AFTER\n"
	"       heapdiff [OPTIONS] BASELINE TARGET FINAL\n"
	"\n"
	"What grew between two snapshots of one process (heapsnap capture), and what keeps the\n"
	"new objects alive: the types that grew, the containers that grew, the shortest paths\n"
	"from a root to the new objects by shape, and what became unreachable (Python: garbage\n"
	"waiting for the cyclic collector; C: leaked), with its cycles. An object is the same in\n"
	"both snapshots when its address, size and type agree.\n"
	"\n"
	"With three snapshots (before a burst of load, during it, after it drained), it reports\n"
	"the objects new in TARGET that are still alive in FINAL: what the burst left behind.\n"
	"\n"
	"  --format F         text (default), markdown (to paste into an issue; the retaining\n"
	"                     paths drawn as a mermaid flowchart), json (schema\n"
	"                     heapsnap.diff/1), dot (the retaining paths of the --top types\n"
	"                     as a Graphviz digraph: heapdiff --format dot A B |\n"
	"                     dot -Tsvg > paths.svg) or html (one self-contained page to\n"
	"                     open in a browser: sortable tables, paths and cycles drawn)\n"
	"  --sort bytes|count rank grown types by bytes (default) or by objects\n"
	"  --top N            show retaining paths for the N largest grown types (10)\n"
	"  --type PATTERN     only types matching a shell pattern ('__main__.*')\n"
	"  --min-bytes SIZE   only types that grew by at least SIZE (4096, 64K, 10M)\n"
	"  --fail-on-growth TYPE=N\n"
	"                     exit 1 when the types matching TYPE grew by more than N\n"
	"                     objects, or by more than N bytes when N has a unit\n"
	"                     (Connection=100, 'struct conn=1M', '__main__.*=10MiB');\n"
	"                     may be repeated\n"
	"  --show-values      show values read from memory (dict keys, short strings);\n"
	"                     masked by default, since a heap holds secrets\n"
	"  --force            compare snapshots not shown to be of one process, by type\n"
	"                     only (every object counts as new or freed)\n"
	"  --color WHEN       auto (default: on a terminal, unless NO_COLOR is set),\n"
	"                     always or never\n" CLI_ANALYSIS_USAGE
	"  --version          print the version\n"
	"\n"
	"Exit status: 0 success, 1 a --fail-on-growth limit was exceeded (memory no walker reads\n"
	"counts against a limit in bytes), 2 bad usage or input, or a limit on objects that cannot\n"
	"be judged because memory no walker reads grew by 1 MiB or more.\n";

struct gate {
	char pattern[256];
	uint64_t limit;
	bool bytes;
};

/* "4096", "64K", "10MiB", "1G": bytes; false on junk. *has_unit says whether a unit was given. */
static bool parse_size(const char *text, uint64_t *out, bool *has_unit)
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

static bool parse_gate(const char *text, struct gate *gate)
{
	const char *equals = strrchr(text, '=');
	if (equals == NULL || equals == text || (size_t)(equals - text) >= sizeof gate->pattern)
		return false;
	snprintf(gate->pattern, sizeof gate->pattern, "%.*s", (int)(equals - text), text);
	return parse_size(equals + 1, &gate->limit, &gate->bytes);
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
				"heapdiff: memory no walker reads grew by %llu bytes, more than the "
				"%llu allowed for %s (--fail-on-growth): what it holds may be of any "
				"type\n",
				(unsigned long long)grown, (unsigned long long)gates[g].limit,
				gates[g].pattern);
			status = EXIT_FINDING;
		} else if (!gates[g].bytes && grown >= UNSEEN_JUDGED) {
			cannot_judge = true;
		}
	}
	if (cannot_judge && status == EXIT_OK) {
		fprintf(stderr,
			"heapdiff: memory no walker reads grew by %llu bytes, and what it holds "
			"cannot be counted as objects: the --fail-on-growth limits on objects cannot "
			"be judged (give a limit in bytes, 'TYPE=10MiB', to judge it)\n",
			(unsigned long long)grown);
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
				"heapdiff: %s%s (%s) was captured before %s (%s)%s\n",
				forced ? "warning: " : "", names[i], paths[i], names[i - 1], paths[i - 1],
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
		fprintf(stderr, "heapdiff: %s %s\n", what, path);
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

int main(int argc, char **argv)
{
	static const struct option options[] = {{"format", required_argument, NULL, 'f'},
						 {"sort", required_argument, NULL, 's'},
						 {"top", required_argument, NULL, 'n'},
						 {"type", required_argument, NULL, 't'},
						 {"min-bytes", required_argument, NULL, 'm'},
						 {"fail-on-growth", required_argument, NULL, 'g'},
						 {"show-values", no_argument, NULL, 'v'},
						 {"force", no_argument, NULL, 'F'},
						 {"color", required_argument, NULL, 'c'},
						 {"colour", required_argument, NULL, 'c'},
						 CLI_ANALYSIS_OPTIONS,
						 {"version", no_argument, NULL, 'V'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	cli_program = "heapdiff";
	struct analysis_options analysis_options = {0};
	struct diff_report_options report_options = {.format = FORMAT_TEXT, .top = 10};
	struct gate gates[GATES_MAX];
	size_t gate_count = 0;
	const char *colour = "auto";
	int option;
	while ((option = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		long long number;
		switch (option) {
		case 'f':
			if (!cli_parse_format(optarg,
					      FORMAT_BIT(FORMAT_MARKDOWN) | FORMAT_BIT(FORMAT_DOT) |
						      FORMAT_BIT(FORMAT_HTML),
					      &report_options.format))
				return cli_usage_error(
					"", "--format takes text, markdown, json, dot or html, not '%s'",
						       optarg);
			break;
		case 's':
			if (strcmp(optarg, "bytes") != 0 && strcmp(optarg, "count") != 0)
				return cli_usage_error("", "--sort takes bytes or count, not '%s'", optarg);
			report_options.by_count = strcmp(optarg, "count") == 0;
			break;
		case 'n':
			if (!cli_parse_int(optarg, 0, 1000, &number))
				return cli_usage_error("", "--top takes 0 to 1000, not '%s'", optarg);
			report_options.top = (size_t)number;
			break;
		case 't':
			report_options.type_pattern = optarg;
			break;
		case 'm':
			if (!parse_size(optarg, &report_options.min_bytes, NULL))
				return cli_usage_error("", "--min-bytes takes a size (4096, 64K, 10MiB), "
							   "not '%s'",
						       optarg);
			break;
		case 'g':
			if (gate_count == GATES_MAX)
				return cli_usage_error("", "at most %d --fail-on-growth options", GATES_MAX);
			if (!parse_gate(optarg, &gates[gate_count]))
				return cli_usage_error("", "--fail-on-growth takes TYPE=COUNT or TYPE=SIZE "
							   "('__main__.Connection=100', 'struct "
							   "conn=1MiB'), not '%s'",
						       optarg);
			gate_count++;
			break;
		case 'v':
			report_options.show_values = true;
			break;
		case 'F':
			report_options.forced = true;
			break;
		case 'c':
			if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "always") != 0 &&
			    strcmp(optarg, "never") != 0)
				return cli_usage_error("", "--color takes auto, always or never, not '%s'",
						       optarg);
			colour = optarg;
			break;
		case 'V':
			printf("heapdiff %s\n", HEAPSNAP_VERSION);
			return EXIT_OK;
		default: {
			int status = cli_common_option("", usage, option, optarg, &analysis_options);
			if (status != CLI_OPTION_TAKEN)
				return status;
		}
		}
	}
	int files = argc - optind;
	if (files != 2 && files != 3)
		return cli_usage_error("", "expects BEFORE AFTER, or BASELINE TARGET FINAL");
	const char *no_colour = getenv("NO_COLOR");
	report_options.colour = report_options.format == FORMAT_TEXT &&
				(strcmp(colour, "always") == 0 ||
				 (strcmp(colour, "auto") == 0 && isatty(STDOUT_FILENO) &&
				  !(no_colour && no_colour[0])));
	/* after the options are known to be good: the analysis sets how malloc takes memory (see cli.c) */
	cli_prepare_memory(argv);
	bool verbose = isatty(STDERR_FILENO);

	struct analysis *snapshots[3] = {NULL, NULL, NULL};
	struct path_index *paths = NULL;
	struct heap_diff diff;
	bool have_diff = false;
	struct hs_error err;
	int status = EXIT_ERROR;
	const char *names[3] = {"BEFORE", "AFTER", NULL};
	if (files == 3) {
		names[0] = "BASELINE";
		names[1] = "TARGET";
		names[2] = "FINAL";
	}
	/* the last snapshot in this thread, the others in threads of their own; AFTER needs the
	   whole graph, BEFORE what its roots reach (what was unreachable already), the first two of
	   three nothing but their objects */
	analysis_options.observer = progress_observer();
	progress_begin("heapdiff", report_options.format != FORMAT_JSON);
	struct open_job jobs[3];
	for (int i = 0; i < files; i++)
		jobs[i] = (struct open_job){
			.path = argv[optind + i],
			.options = &analysis_options,
			.graph = i == files - 1 ? FULL_GRAPH
				 : files == 2 ? REACHABILITY_ONLY
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
			cli_fail("", &jobs[i].err);
			goto done;
		}
	struct analysis *before = snapshots[0], *after = snapshots[files - 1];
	struct analysis *target = files == 3 ? snapshots[1] : NULL;
	bool by_type_only = false;
	for (int i = 1; i < files; i++) {
		char why[512];
		if (diff_same_process(snapshots[0], snapshots[i], why, sizeof why))
			continue;
		progress_end();
		if (!report_options.forced) {
			fprintf(stderr,
				"heapdiff: %s (%s) and %s (%s) cannot be compared object by object: "
				"%s. Compare snapshots of one process, or add --force to compare "
				"them by type only\n",
				names[0], argv[optind], names[i], argv[optind + i], why);
			goto done;
		}
		fprintf(stderr, "heapdiff: warning: %s; comparing by type only (--force)\n", why);
		by_type_only = true;
	}
	/* (snapshots of one process: of two, which came first says nothing) */
	if (!by_type_only && !in_order(snapshots, files, names, argv + optind, report_options.forced))
		goto done;
	paths = path_index_build(after, report_options.show_values, &err);
	if (paths == NULL ||
	    heap_diff_build(before, target, after, by_type_only, &diff, &err) != 0) {
		cli_fail("", &err);
		goto done;
	}
	have_diff = true;
	warn_unseen_growth(before, after, names[files - 1]);
	report_options.forced = report_options.forced && by_type_only;
	progress_end();
	if (diff_report_write(stdout, &diff, target, paths, &report_options) != 0) {
		fprintf(stderr, "heapdiff: out of memory or unable to write the report\n");
		goto done;
	}
	fflush(stdout);
	static const char *const roles[2][3] = {{"before", "after", ""},
						{"baseline", "target", "final"}};
	timings_mark(&after->timings, "path index, diff, report");
	for (int i = 0; i < files; i++)
		cli_print_warnings(roles[files == 3][i], &snapshots[i]->warnings);
	for (int i = 0; i < files; i++)
		cli_print_timings(roles[files == 3][i], argv[optind + i], &snapshots[i]->timings);
	status = EXIT_OK;
	for (size_t g = 0; g < gate_count; g++) {
		uint64_t grown;
		if (!gate_exceeded(&diff, &gates[g], &grown))
			continue;
		fprintf(stderr, "heapdiff: %s grew by %llu %s, more than the %llu allowed "
				"(--fail-on-growth)\n",
			gates[g].pattern, (unsigned long long)grown, gates[g].bytes ? "bytes" : "objects",
			(unsigned long long)gates[g].limit);
		status = EXIT_FINDING;
	}
	if (gate_count)
		status = judge_unseen(before, after, gates, gate_count, status);
done:
	if (have_diff)
		heap_diff_free(&diff);
	path_index_free(paths);
	for (int i = 0; i < 3; i++)
		analysis_close(snapshots[i]);
	return status;
}
