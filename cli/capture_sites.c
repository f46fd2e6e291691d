/* The window of `heapsnap capture --sites` (see capture_sites.h): the recorder polled until the
 * duration has passed or SIGINT ends it early, a progress line on a terminal, and the lines that
 * say how much the snapshot's sites cover. */
#include "cli/capture_sites.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/numbers.h"

bool capture_sites_parse_duration(void *value, const char *text)
{
	static const struct {
		const char *suffix;
		uint64_t ns;
	} units[] = {{"", 1000000000ull},  {"s", 1000000000ull},   {"ms", 1000000ull},
		     {"m", 60000000000ull}, {"h", 3600000000000ull}};
	char *end;
	if (text == NULL || *text < '0' || *text > '9')
		return false;
	double number = strtod(text, &end);
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strcmp(end, units[i].suffix) == 0) {
			double ns = number * (double)units[i].ns;
			if (ns < 1e6 || ns > 86400e9)
				return false;
			*(uint64_t *)value = (uint64_t)ns;
			return true;
		}
	return false;
}

static volatile sig_atomic_t window_ended;

static void end_window(int signal_number)
{
	(void)signal_number;
	window_ended = 1;
}

static void show_progress(uint64_t elapsed_ns, uint64_t window_ns,
			  const struct sites_recorder_stats *stats)
{
	char allocations[32];
	format_count(stats->allocations, allocations, sizeof allocations);
	fprintf(stderr, "\rheapsnap capture: recording sites %.0f s of %.0f s, %s allocations seen   ",
		(double)elapsed_ns / 1e9, (double)window_ns / 1e9, allocations);
}

/* Polls until the window ends; -1 with `err` set when the target exited or a poll failed. */
static int run_window(struct sites_recorder *recorder, uint64_t window_ns, struct hs_error *err)
{
	struct sigaction action = {.sa_handler = end_window}, previous;
	sigemptyset(&action.sa_mask);
	window_ended = 0;
	sigaction(SIGINT, &action, &previous);
	bool terminal = isatty(STDERR_FILENO);
	uint64_t start = monotonic_ns(), shown = 0;
	int status = 0;
	while (!window_ended && status == 0) {
		uint64_t elapsed = monotonic_ns() - start;
		if (elapsed >= window_ns)
			break;
		uint64_t left_ms = (window_ns - elapsed) / 1000000 + 1;
		status = sites_recorder_poll(recorder, left_ms < 200 ? (int)left_ms : 200, err);
		if (terminal && elapsed - shown >= 1000000000ull) {
			shown = elapsed;
			show_progress(elapsed, window_ns, sites_recorder_stats(recorder));
		}
	}
	if (terminal)
		fprintf(stderr, "\r\033[K");
	sigaction(SIGINT, &previous, NULL);
	if (window_ended && status == 0)
		fprintf(stderr, "heapsnap capture: recording window ended early by the interrupt, "
				"after %.1f s; capturing\n",
			(double)(monotonic_ns() - start) / 1e9);
	return status;
}

struct sites_recorder *capture_sites_record(pid_t pid, uint64_t window_ns,
					    const struct sites_recorder_options *options)
{
	struct hs_error err;
	struct sites_recorder *recorder = sites_recorder_start(pid, options, &err);
	if (recorder == NULL) {
		cli_fail("capture", &err);
		return NULL;
	}
	const struct sites_recorder_stats *stats = sites_recorder_stats(recorder);
	fprintf(stderr,
		"heapsnap capture: recording the allocation sites of pid %d (%s's malloc in %s) for "
		"%.1f s; Ctrl-C ends the window early and still captures\n",
		(int)pid, stats->allocator, stats->allocator_path, (double)window_ns / 1e9);
	if (run_window(recorder, window_ns, &err) != 0) {
		char allocations[32];
		format_count(stats->allocations, allocations, sizeof allocations);
		if (err.code == HS_ERR_GONE)
			hs_error_set_code(&err, HS_ERR_GONE,
					  "pid %d exited during the recording window, after %.1f s "
					  "and %s allocator calls seen; no snapshot written",
					  (int)pid, (double)stats->window_ns / 1e9, allocations);
		cli_fail("capture", &err);
		sites_recorder_free(recorder);
		return NULL;
	}
	return recorder;
}

/* One warning: `count` allocations, what befell them, and what to do. */
static void warn_unrecorded(uint64_t count, const char *what, const char *value,
			    const char *advice)
{
	if (count == 0)
		return;
	char text[32];
	format_count(count, text, sizeof text);
	fprintf(stderr, "heapsnap capture: warning: %s %s%s%s\n", text, what, value, advice);
}

void capture_sites_report(struct sites_recorder *recorder, uint64_t sample_bytes,
			  uint32_t max_live)
{
	const struct sites_recorder_stats *stats = sites_recorder_stats(recorder);
	char live[32], allocations[32];
	format_count(stats->live, live, sizeof live);
	format_count(stats->allocations, allocations, sizeof allocations);
	fprintf(stderr,
		"heapsnap capture: sites: %s allocations made during the %.1f s window and live at "
		"the capture have their site (of %s allocator calls seen); blocks allocated before "
		"the window have none\n",
		live, (double)stats->window_ns / 1e9, allocations);
	if (sample_bytes)
		fprintf(stderr,
			"heapsnap capture: sites were sampled, one allocation per %llu bytes on "
			"average: counts by site are estimates\n",
			(unsigned long long)sample_bytes);
	char max[32];
	snprintf(max, sizeof max, "%u", max_live);
	warn_unrecorded(stats->map_full,
			"allocations made during the window were not recorded and have no site: the "
			"map of live allocations was full (--sites-max ",
			max, "); raise --sites-max or sample (--sites-sample)");
	warn_unrecorded(stats->no_stack,
			"allocations made during the window have no site: their stacks came faster "
			"than heapsnap could unwind them; ",
			"", "sample (--sites-sample) to record fewer");
	warn_unrecorded(stats->unwound_none,
			"live allocations made during the window have no site: their stack could not "
			"be unwound past the allocator",
			"", "");
}
