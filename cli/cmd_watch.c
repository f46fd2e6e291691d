/* `heapsnap watch PID`: captures a live process by fork on a schedule, analyses each snapshot,
 * keeps a bounded ring of them on disk, judges a trend per type (analyze/reports/trend.h) and,
 * when a type keeps growing, says so on one line, writes heapdiff's report of the first and the
 * latest snapshot and runs --exec; with --metrics, the Prometheus metrics of each capture
 * (cli/openmetrics.h). The capture, the analysis and the reports are the library's and the other
 * commands' own, called here; this file is the schedule, the ring and the verdicts. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analyze/analysis.h"
#include "analyze/graph/paths.h"
#include "analyze/reports/diff.h"
#include "analyze/reports/summary.h"
#include "analyze/reports/trend.h"
#include "capture/capture.h"
#include "cli/cli.h"
#include "cli/diff_report.h"
#include "cli/openmetrics.h"
#include "cli/watch_ring.h"
#include "formats/snapshot_file.h"

static const struct cli_command_help help = {
	.program = "heapsnap",
	.name = "watch",
	.operands = 1,
	.expects = "expects one PID",
	.arguments = "PID",
	.about =
		"Capture process PID every DURATION (by fork, as `heapsnap capture` does: the pause\n"
		"is the clone's making, printed for each capture), analyse each snapshot, and judge\n"
		"per type whether its objects or bytes keep growing: the Mann-Kendall trend test\n"
		"(one-sided, alpha 0.01, ties corrected) over the latest 32 captures, at least 4, and\n"
		"the latest value above the window's first by 10% and by 32 objects or 64 KiB; a\n"
		"cache that fills and empties again is no suspect (docs/watch.md). When a type\n"
		"becomes a leak suspect, one line on standard output names it, its growth per hour\n"
		"and its shortest retaining path; heapdiff's report of the first and the latest\n"
		"snapshot is written in DIR (heapsnap-PID-leak.md and .html) and CMD is run.\n"
		"\n"
		"DIR keeps the run's first snapshot and the latest N (--keep), the oldest others\n"
		"removed, never more than SIZE (--max-disk) in all: when even the first and the\n"
		"latest do not fit, watch says so and stops (exit 2).\n"
		"\n"
		"It stops after --for, on SIGINT or SIGTERM (a capture in flight is finished and\n"
		"kept, never left partial; its analysis is skipped), or when the process exits, and\n"
		"prints a final line: how many captures, which suspects, where the report is.\n"
		"\n"
		"DURATION: a number with a unit, ms, s, m, h or d (\"30s\", \"5m\"); seconds when none.\n",
	.epilogue = "Each snapshot is created with mode 0600: it holds the process's memory.\n"
		    "Needs ptrace permission on PID, as `heapsnap capture` does.\n"
		    "Exit status: 0 no leak suspect, 1 a leak suspect was found, 2 bad usage or an "
		    "error.\n",
};

/* What the options ask for. */
struct watch_options {
	double every, duration; /* seconds; duration 0: until stopped */
	int keep, top;
	const char *dir;
	uint64_t max_disk; /* 0: no limit */
	const char *metrics, *exec;
	bool verbose, show_values, retained;
	struct capture_options capture;
	struct analysis_options analysis;
};

/* "500ms", "30s", "5m", "2h", "1d", "1.5" (seconds): seconds, or a negative value on junk. */
static double parse_duration(const char *text)
{
	static const struct {
		const char *unit;
		double seconds;
	} units[] = {{"", 1}, {"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
	char *end;
	if (text == NULL || *text < '0' || *text > '9')
		return -1;
	double value = strtod(text, &end);
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strcmp(end, units[i].unit) == 0 && isfinite(value))
			return value * units[i].seconds;
	return -1;
}

static bool parse_duration_option(void *value, const char *text)
{
	double seconds = parse_duration(text);
	*(double *)value = seconds;
	return seconds > 0;
}

static bool parse_size_option(void *value, const char *text)
{
	return cli_parse_size(text, value, NULL) && *(uint64_t *)value > 0;
}

/* SIGINT or SIGTERM asked to stop: the loop ends after the capture in flight. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int signal_number)
{
	stop_signal = signal_number;
}

static void catch_stop_signals(void)
{
	static const int stops[] = {SIGINT, SIGTERM};
	for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
		struct sigaction action = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};
		sigemptyset(&action.sa_mask);
		sigaction(stops[i], &action, NULL);
	}
}

static double monotonic_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Sleeps until `deadline` (monotonic seconds), waking at once on a stop signal. */
static void sleep_until(double deadline)
{
	while (!stop_signal) {
		double left = deadline - monotonic_seconds();
		if (left <= 0)
			return;
		if (left > 0.2)
			left = 0.2; /* a signal that lands between the check and the sleep waits this */
		struct timespec pause = {(time_t)left, (long)((left - floor(left)) * 1e9)};
		nanosleep(&pause, NULL);
	}
}

/* Whether PID still runs (not gone, not a zombie waiting for its parent). */
static bool target_alive(pid_t pid)
{
	char path[64], stat[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return false;
	size_t length = fread(stat, 1, sizeof stat - 1, file);
	fclose(file);
	stat[length] = '\0';
	const char *state = strrchr(stat, ')'); /* after the command name, which may hold ")" */
	return state && state[1] == ' ' && state[2] != 'Z' && state[2] != 'X';
}

/* What the watcher itself spent on one capture and its analysis (-v): CPU seconds (its own and
 * its reaped helpers') and its peak resident memory, the peak reset before each capture. */
struct watch_cost {
	double cpu_seconds;
	uint64_t peak_bytes;
};

static double cpu_seconds_so_far(void)
{
	struct rusage self, children;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &children);
	return (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + children.ru_utime.tv_sec +
			children.ru_stime.tv_sec) +
	       (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + children.ru_utime.tv_usec +
			children.ru_stime.tv_usec) /
		       1e6;
}

/* Writing 5 to clear_refs resets the peak resident size (VmHWM) the kernel reports. */
static void reset_peak_memory(void)
{
	FILE *file = fopen("/proc/self/clear_refs", "w");
	if (file) {
		fputs("5", file);
		fclose(file);
	}
}

static uint64_t peak_memory(void)
{
	FILE *file = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long kib = 0;
	while (file && fgets(line, sizeof line, file))
		if (sscanf(line, "VmHWM: %llu kB", &kib) == 1)
			break;
	if (file)
		fclose(file);
	return (uint64_t)kib * 1024;
}

/* A file written through the safe write path by a function that writes a stream. */
struct stream_job {
	int (*write)(FILE *out, void *context, struct hs_error *err); /* -1 with err set */
	void *context;
};

static int write_stream(int fd, const char *path, void *context, struct hs_error *err)
{
	const struct stream_job *job = context;
	int copy = dup(fd);
	FILE *out = copy >= 0 ? fdopen(copy, "w") : NULL;
	if (out == NULL) {
		int errnum = errno;
		if (copy >= 0)
			close(copy);
		return hs_error_set_errno(err, errnum, "cannot write %s", path);
	}
	if (job->write(out, job->context, err) != 0) {
		fclose(out);
		return -1;
	}
	if (fclose(out) != 0)
		return hs_error_set_errno(err, errno, "cannot write %s", path);
	return 0;
}

static int write_file(const char *path, int (*write)(FILE *out, void *context, struct hs_error *err),
		      void *context, struct hs_error *err)
{
	struct stream_job job = {write, context};
	return safe_file_write(path, NULL, write_stream, &job, err);
}

/* The state of a run. */
struct watch_run {
	const struct watch_options *options;
	pid_t pid;
	struct watch_ring ring;
	struct trends trends;
	char **announced; /* the suspects said so far, in the order they were */
	size_t announced_count;
	const char **current; /* the suspects of the latest capture's verdict */
	size_t current_count;
	uint64_t first_capture_ns, first_unseen;
	bool unseen_said;
	size_t warnings_said;
	uint64_t captures;
	char report[4300]; /* the markdown report's path once written */
	bool failed;
};

/* One capture's analysis. */
struct watch_capture {
	struct capture_result result;
	struct watch_cost cost;
	struct analysis *analysis;
	struct heap_summary summary;
	bool has_summary;
	struct path_index *paths; /* made when a suspect's path is asked for */
};

static void watch_capture_free(struct watch_capture *capture)
{
	path_index_free(capture->paths);
	if (capture->has_summary)
		heap_summary_free(&capture->summary);
	analysis_close(capture->analysis);
}

/* Opens the snapshot just taken and summarises its types. The object graph (roots, dominators)
 * costs a third of the analysis and only the metrics' retained bytes (--retained), a new
 * suspect's path and the report need it: it is built for them alone (ensure_graph). */
static int ensure_graph(struct watch_capture *capture, struct hs_error *err)
{
	return capture->analysis->has_graph ? 0 : analysis_build_graph(capture->analysis, err);
}

static int analyse_capture(struct watch_run *run, struct watch_capture *capture,
			   struct hs_error *err)
{
	struct analysis_options options = run->options->analysis;
	capture->analysis = analysis_open(capture->result.path, &options, err);
	if (capture->analysis == NULL ||
	    (run->options->retained && ensure_graph(capture, err) != 0) ||
	    heap_summary_build(capture->analysis, &capture->summary, err) != 0)
		return -1;
	capture->has_summary = true;
	return 0;
}

static bool was_announced(const struct watch_run *run, const char *name)
{
	for (size_t i = 0; i < run->announced_count; i++)
		if (strcmp(run->announced[i], name) == 0)
			return true;
	return false;
}

/* The shortest retaining path of the type, by shape, the one holding the most of its objects:
 * "module __main__._CONNECTIONS -> list[*] -> __main__.Connection"; "no root reaches them"
 * when none does. */
static int top_path(struct watch_run *run, struct watch_capture *capture, const char *name,
		    char *out, size_t out_size, struct hs_error *err)
{
	const struct analysis *analysis = capture->analysis;
	if (ensure_graph(capture, err) != 0)
		return -1;
	if (capture->paths == NULL)
		capture->paths = path_index_build(&analysis->graph, &analysis->heap,
						  &analysis->types, analysis->same_type_dominated,
						  run->options->show_values, err);
	if (capture->paths == NULL)
		return -1;
	snprintf(out, out_size, "no root reaches them");
	for (size_t i = 0; i < capture->summary.type_count; i++) {
		const struct type_group *group = &capture->summary.types[i];
		char group_name[1024];
		type_group_name(group, group_name, sizeof group_name);
		struct path_shape shape;
		if (strcmp(group_name, name) != 0 ||
		    paths_of_type(capture->paths, group->type, group->size, NULL, NULL, &shape, 1) == 0)
			continue;
		size_t used = 0;
		out[0] = '\0';
		for (size_t s = 0; s < shape.element_count && used < out_size; s++)
			used += (size_t)snprintf(out + used, out_size - used, "%s%s", s ? " -> " : "",
						 shape.elements[s]);
		break;
	}
	return 0;
}

/* The suspect's line on standard output. */
static void print_suspect(const char *name, const struct trend_verdict *verdict, const char *path)
{
	char objects_rate[32], bytes_rate[32], first[32], last[32];
	cli_format_count((uint64_t)fabs(verdict->objects_per_hour), objects_rate,
			 sizeof objects_rate);
	cli_format_bytes((uint64_t)fabs(verdict->bytes_per_hour), bytes_rate, sizeof bytes_rate);
	cli_format_count((uint64_t)verdict->objects_first, first, sizeof first);
	cli_format_count((uint64_t)verdict->objects_last, last, sizeof last);
	printf("leak suspect: %s: %s%s objects/hour, %s%s/hour (%s -> %s objects over %zu "
	       "captures, Mann-Kendall p %.2g); held by: %s\n",
	       name, verdict->objects_per_hour < 0 ? "-" : "+", objects_rate,
	       verdict->bytes_per_hour < 0 ? "-" : "+", bytes_rate, first, last, verdict->points,
	       fmin(verdict->objects.p_increasing, verdict->bytes.p_increasing), path);
	fflush(stdout);
}

/* Judges every type after a capture: run->current gets the suspects, and the new ones are
 * announced. *announced_new says whether there was one. */
static int judge_types(struct watch_run *run, struct watch_capture *capture, bool *announced_new,
		       struct hs_error *err)
{
	*announced_new = false;
	free(run->current);
	run->current = NULL;
	run->current_count = 0;
	for (size_t i = 0; i < run->trends.type_count; i++) {
		struct trend_verdict verdict;
		trend_judge(&run->trends, i, &verdict);
		if (!verdict.suspect)
			continue;
		const char *name = run->trends.types[i].name;
		const char **current = realloc(run->current, (run->current_count + 1) * sizeof *current);
		if (current == NULL)
			return hs_error_nomem(err, "the list of leak suspects");
		run->current = current;
		run->current[run->current_count++] = name;
		if (was_announced(run, name))
			continue;
		char path[PATH_ELEMENTS_MAX * 132];
		char **announced = realloc(run->announced, (run->announced_count + 1) * sizeof *announced);
		if (announced == NULL || (announced[run->announced_count] = strdup(name)) == NULL) {
			if (announced)
				run->announced = announced;
			return hs_error_nomem(err, "the list of leak suspects");
		}
		run->announced = announced;
		run->announced_count++;
		if (top_path(run, capture, name, path, sizeof path, err) != 0)
			return -1;
		print_suspect(name, &verdict, path);
		*announced_new = true;
	}
	return 0;
}

/* heapdiff's report of the first snapshot and the latest, in one format. */
struct report_job {
	const struct heap_diff *diff;
	struct path_index *paths;
	struct diff_report_options options;
};

static int write_report(FILE *out, void *context, struct hs_error *err)
{
	struct report_job *job = context;
	if (diff_report_write(out, job->diff, NULL, job->paths, &job->options) != 0)
		return hs_error_set_errno(err, errno ? errno : ENOMEM,
					  "out of memory or unable to write the report");
	return 0;
}

/* Writes heapsnap-PID-leak.md and .html in DIR: heapdiff's report of the run's first snapshot
 * and the latest (`capture`, whose path index is made if not yet). */
static int write_reports(struct watch_run *run, struct watch_capture *capture,
			 struct hs_error *err)
{
	const struct analysis *after = capture->analysis;
	if (ensure_graph(capture, err) != 0)
		return -1;
	if (capture->paths == NULL &&
	    (capture->paths = path_index_build(&after->graph, &after->heap, &after->types,
					       after->same_type_dominated,
					       run->options->show_values, err)) == NULL)
		return -1;
	struct analysis_options options = run->options->analysis;
	struct analysis *before = analysis_open(watch_ring_first(&run->ring), &options, err);
	if (before == NULL || analysis_build_reachability(before, err) != 0) {
		analysis_close(before);
		return -1;
	}
	struct heap_diff diff;
	int built = heap_diff_build(before, NULL, after, false, &diff, err);
	int failed = built;
	static const struct {
		const char *extension;
		enum output_format format;
	} formats[] = {{"md", FORMAT_MARKDOWN}, {"html", FORMAT_HTML}};
	for (size_t i = 0; !failed && i < sizeof formats / sizeof formats[0]; i++) {
		char path[4200];
		snprintf(path, sizeof path, "%s/heapsnap-%d-leak.%s", run->options->dir, (int)run->pid,
			 formats[i].extension);
		struct report_job job = {&diff, capture->paths,
					 {.format = formats[i].format,
					  .top = 10,
					  .show_values = run->options->show_values}};
		failed = write_file(path, write_report, &job, err);
		if (i == 0 && !failed)
			snprintf(run->report, sizeof run->report, "%s", path);
	}
	if (built == 0)
		heap_diff_free(&diff);
	analysis_close(before);
	return failed;
}

/* --exec CMD: run by /bin/sh with the report's path as its last argument ($1 of CMD "$@"),
 * waited for; its failure is said, not fatal. */
static void run_exec(const struct watch_run *run)
{
	size_t length = strlen(run->options->exec) + 8;
	char *script = malloc(length);
	if (script == NULL)
		return;
	snprintf(script, length, "%s \"$@\"", run->options->exec);
	fflush(NULL);
	pid_t child = fork();
	if (child == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		execl("/bin/sh", "sh", "-c", script, "sh", run->report, (char *)NULL);
		_exit(127);
	}
	free(script);
	int status = 0;
	while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (child < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "heapsnap watch: warning: --exec '%s' %s\n", run->options->exec,
			child < 0 ? "could not be started" : "failed");
}

/* The metrics of the latest capture, with the current verdicts. */
struct metrics_job {
	const struct watch_run *run;
	const struct watch_capture *capture;
};

static int write_metrics(FILE *out, void *context, struct hs_error *err)
{
	const struct metrics_job *job = context;
	const struct capture_result *result = &job->capture->result;
	uint64_t capture_ns = 0;
	for (int phase = 0; phase < CAPTURE_PHASES; phase++)
		capture_ns += result->phase_ns[phase];
	struct openmetrics_options options = {.top_types = (size_t)job->run->options->top,
					      .retained = job->run->options->retained,
					      .suspects = job->run->current,
					      .suspect_count = job->run->current_count,
					      .judged = true,
					      .capture_seconds = (double)capture_ns / 1e9};
	/* readable by all, unlike every other file heapsnap writes: the collector reading it
	   (node_exporter) runs as a user of its own, and it holds counts and type names, none of
	   the process's memory */
	if (fchmod(fileno(out), 0644) != 0)
		return hs_error_set_errno(err, errno, "cannot make the metrics file readable");
	return openmetrics_write(out, job->capture->analysis, &job->capture->summary, &options, err);
}

/* Says, once, that memory no walker reads grew by CLI_UNSEEN_SAID or more since the first
 * capture: a leak there is counted by no type, and no verdict can name it. */
static void say_unseen_growth(struct watch_run *run, const struct analysis *analysis)
{
	uint64_t unseen = analysis->outside_heaps.bytes;
	if (run->captures == 1)
		run->first_unseen = unseen;
	if (run->unseen_said || unseen < run->first_unseen + CLI_UNSEEN_SAID)
		return;
	char first[32], now[32];
	cli_format_bytes(run->first_unseen, first, sizeof first);
	cli_format_bytes(unseen, now, sizeof now);
	fprintf(stderr,
		"heapsnap watch: warning: memory no heap walker reads grew from %s to %s since the "
		"first capture: growth there is counted by no type, and no verdict can name it "
		"(heapsnap info and summary say where it is)\n",
		first, now);
	run->unseen_said = true;
}

/* The line each capture prints on stderr (and, with -v, what it cost the watcher). */
static void print_capture(const struct watch_run *run, const struct watch_capture *capture)
{
	const struct capture_result *result = &capture->result;
	char memory[32], live[32];
	cli_format_bytes(result->memory_bytes, memory, sizeof memory);
	uint64_t live_bytes = 0;
	for (size_t i = 0; capture->analysis && i < capture->analysis->heap.arena_count; i++)
		live_bytes += capture->analysis->heap.arenas[i].live_bytes;
	cli_format_bytes(live_bytes, live, sizeof live);
	fprintf(stderr,
		"heapsnap watch: capture %llu: %s: %s of memory, %s live in the heap, target "
		"paused %.1f ms by %s, %zu leak suspect%s\n",
		(unsigned long long)run->captures, result->path, memory,
		capture->analysis ? live : "(not analysed)", (double)result->pause_ns / 1e6,
		result->method == CAPTURE_METHOD_FORK ? "fork" : "freeze", run->current_count,
		run->current_count == 1 ? "" : "s");
	if (run->options->verbose) {
		char peak[32];
		cli_format_bytes(capture->cost.peak_bytes, peak, sizeof peak);
		fprintf(stderr,
			"heapsnap watch: capture %llu cost the watcher %.3f s of CPU, %s of memory "
			"at its peak (capture, analysis, verdicts, files)\n",
			(unsigned long long)run->captures, capture->cost.cpu_seconds, peak);
	}
}

/* The analysis of a capture and what follows it: trends, verdicts, reports, metrics. */
static int after_capture(struct watch_run *run, struct watch_capture *capture,
			 struct hs_error *err)
{
	if (analyse_capture(run, capture, err) != 0)
		return -1;
	const struct snapshot_info *info = snapshot_info(capture->analysis->snapshot);
	if (run->captures == 1)
		run->first_capture_ns = info->capture_start_ns;
	double hours = (double)(info->capture_start_ns - run->first_capture_ns) / 3.6e12;
	bool announced_new;
	if (trends_add(&run->trends, hours, &capture->summary, err) != 0 ||
	    judge_types(run, capture, &announced_new, err) != 0)
		return -1;
	if (capture->analysis->warnings.count != run->warnings_said) {
		cli_print_warnings("watch", &capture->analysis->warnings);
		run->warnings_said = capture->analysis->warnings.count;
	}
	say_unseen_growth(run, capture->analysis);
	if (announced_new) {
		if (write_reports(run, capture, err) != 0)
			return -1;
		printf("leak report: %s (and .html)\n", run->report);
		fflush(stdout);
		if (run->options->exec)
			run_exec(run);
	}
	struct metrics_job metrics = {run, capture};
	if (run->options->metrics &&
	    write_file(run->options->metrics, write_metrics, &metrics, err) != 0)
		return -1;
	return 0;
}

enum step { STEP_DONE, STEP_TARGET_GONE, STEP_FAILED };

/* One capture, kept in the ring, then (unless a stop was asked meanwhile) analysed. */
static enum step watch_once(struct watch_run *run, struct hs_error *err)
{
	struct watch_capture capture = {0};
	double cpu_before = cpu_seconds_so_far();
	reset_peak_memory();
	struct capture_options options = run->options->capture;
	options.default_directory = run->options->dir;
	options.method = CAPTURE_METHOD_FORK;
	if (capture_process(run->pid, &options, &capture.result, err) != 0)
		return target_alive(run->pid) ? STEP_FAILED : STEP_TARGET_GONE;
	run->captures++;
	if (capture.result.fork_declined[0])
		fprintf(stderr, "heapsnap watch: using the freeze method, not fork: %s\n",
			capture.result.fork_declined);
	if (capture.result.reap_failed[0])
		fprintf(stderr, "heapsnap watch: warning: %s (the snapshot is whole)\n",
			capture.result.reap_failed);
	enum step step = STEP_DONE;
	if (watch_ring_add(&run->ring, capture.result.path, capture.result.file_bytes, err) != 0 ||
	    (!stop_signal && after_capture(run, &capture, err) != 0))
		step = STEP_FAILED;
	capture.cost.cpu_seconds = cpu_seconds_so_far() - cpu_before;
	capture.cost.peak_bytes = peak_memory();
	if (step == STEP_DONE)
		print_capture(run, &capture);
	watch_capture_free(&capture);
	return step;
}

/* Parses the options; CLI_PARSED with *first the PID's index, or the exit status. */
static int parse_watch_options(struct watch_options *options, int argc, char **argv, int *first)
{
	const struct cli_option table[] = {
		CLI_CALLBACK("every", "DURATION", &options->every, parse_duration_option,
			     "a duration (30s, 5m, 1h)",
			     "capture every DURATION (required), counted from the start of\n"
			     "one capture to the next's"),
		CLI_CALLBACK("for", "DURATION", &options->duration, parse_duration_option,
			     "a duration (30s, 5m, 1h)", "stop after DURATION (default: until stopped)"),
		CLI_INT("keep", "N", &options->keep, 1, 100000,
			"keep the first snapshot and the latest N (default 4)"),
		CLI_STRING(0, "dir", "DIR", &options->dir,
			   "where the snapshots and the reports go (default: the working\n"
			   "directory; it must exist)"),
		CLI_CALLBACK("max-disk", "SIZE", &options->max_disk, parse_size_option,
			     "a size (500MiB, 10G)",
			     "never keep more than SIZE of snapshots (500MiB, 10G; default:\n"
			     "no limit but --keep)"),
		CLI_STRING(0, "metrics", "FILE", &options->metrics,
			   "write the Prometheus metrics of each capture to FILE, replaced\n"
			   "whole each time (name it *.prom in node_exporter's textfile\n"
			   "collector directory; docs/watch.md#metrics)"),
		CLI_FLAG(0, "retained", &options->retained,
			 "with --metrics, also heapsnap_retained_bytes per type: builds the\n"
			 "object graph at every capture, which costs the watcher more CPU\n"
			 "than one `heapsnap summary` of the heap (docs/watch.md#cost)"),
		CLI_INT("top", "N", &options->top, 1, 100000,
			"types with series of their own in the metrics, by bytes\n"
			"(default 20; the rest summed as type=\"(other)\"; suspects always)"),
		CLI_STRING(0, "exec", "CMD", &options->exec,
			   "when a type becomes a leak suspect, run CMD (by /bin/sh) with the\n"
			   "markdown report's path as its last argument, and wait for it"),
		CLI_FLAG('v', "verbose", &options->verbose,
			 "print the watcher's own CPU seconds and peak memory per capture"),
		CLI_SHOW_VALUES(&options->show_values),
		CLI_COMPRESSION_OPTIONS(&options->capture.compression),
		CLI_ANALYSIS_OPTIONS(&options->analysis),
		CLI_END};
	int status = cli_parse_options(&help, table, argc, argv, first);
	if (status != CLI_PARSED)
		return status;
	if (options->every <= 0)
		return cli_usage_error("watch", "--every DURATION is required (30s, 5m)");
	if (options->retained && !options->metrics)
		return cli_usage_error("watch", "--retained is for the metrics: give --metrics FILE");
	struct stat directory;
	if (stat(options->dir, &directory) != 0 || !S_ISDIR(directory.st_mode))
		return cli_usage_error("watch", "--dir %s is not a directory: create it first",
				       options->dir);
	return CLI_PARSED;
}

/* The final lines on standard output: why it stopped, how many captures, which suspects. */
static void print_final(const struct watch_run *run, const char *why, double seconds)
{
	printf("heapsnap watch: %s: %llu capture%s in %.0f s, %zu snapshot%s kept in %s",
	       why, (unsigned long long)run->captures, run->captures == 1 ? "" : "s", seconds,
	       run->ring.count, run->ring.count == 1 ? "" : "s", run->options->dir);
	if (run->ring.removed)
		printf(" (%zu older removed)", run->ring.removed);
	if (run->announced_count == 0) {
		printf("; no leak suspect%s\n",
		       run->captures < TREND_MIN_POINTS ? " (too few captures to judge)" : "");
		return;
	}
	printf("; leak suspect%s:", run->announced_count == 1 ? "" : "s");
	for (size_t i = 0; i < run->announced_count; i++)
		printf("%s %s", i ? "," : "", run->announced[i]);
	printf("; report %s\n", run->report);
}

static void watch_run_free(struct watch_run *run)
{
	for (size_t i = 0; i < run->announced_count; i++)
		free(run->announced[i]);
	free(run->announced);
	free(run->current);
	trends_free(&run->trends);
	watch_ring_free(&run->ring);
}

/* The schedule: a capture every --every until --for, a stop signal, the target's exit or an
 * error; returns why it stopped. */
static const char *watch_loop(struct watch_run *run, double started, struct hs_error *err)
{
	const struct watch_options *options = run->options;
	for (;;) {
		if (!target_alive(run->pid))
			return "the process exited";
		double tick = monotonic_seconds();
		enum step step = watch_once(run, err);
		if (step == STEP_TARGET_GONE)
			return "the process exited";
		if (step == STEP_FAILED) {
			run->failed = true;
			return "stopped on an error";
		}
		double next = tick + options->every;
		if (options->duration > 0 && next > started + options->duration)
			next = started + options->duration;
		if (!stop_signal)
			sleep_until(next);
		if (stop_signal)
			return stop_signal == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM";
		if (options->duration > 0 && monotonic_seconds() >= started + options->duration)
			return "--for elapsed";
	}
}

int cmd_watch(int argc, char **argv)
{
	struct watch_options options = {.keep = 4, .top = OPENMETRICS_TOP_TYPES, .dir = "."};
	const char *proc_mem = getenv("HEAPSNAP_PROC_MEM");
	options.capture.use_proc_mem = proc_mem != NULL && strcmp(proc_mem, "1") == 0;
	int first;
	int status = parse_watch_options(&options, argc, argv, &first);
	if (status != CLI_PARSED)
		return status;
	long long value;
	if (!cli_parse_int(argv[first], 1, 0x7fffffff, &value))
		return cli_usage_error("watch", "'%s' is not a process id", argv[first]);
	struct hs_error err;
	struct watch_run run = {.options = &options, .pid = (pid_t)value};
	trends_init(&run.trends);
	if (watch_ring_init(&run.ring, (size_t)options.keep, options.max_disk, &err) != 0)
		return cli_fail("watch", &err);
	if (!target_alive(run.pid)) {
		watch_run_free(&run);
		hs_error_set(&err, "no process %lld is running", value);
		return cli_fail("watch", &err);
	}
	catch_stop_signals();
	double started = monotonic_seconds();
	const char *why = watch_loop(&run, started, &err);
	if (run.failed)
		cli_fail("watch", &err);
	print_final(&run, why, monotonic_seconds() - started);
	status = run.failed ? EXIT_ERROR : run.announced_count ? EXIT_FINDING : EXIT_OK;
	watch_run_free(&run);
	return status;
}
