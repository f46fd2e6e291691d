/* The progress line (see progress.h): a thread wakes four times a second; past two seconds it
 * rewrites the line with the time so far and the last step an analysis finished. */
#include "progress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "common/clock.h"
#include "common/numbers.h"

#define PROGRESS_AFTER_SECONDS 2.0 /* HEAPSNAP_PROGRESS_AFTER=SECONDS changes it (the tests) */

static struct {
	const char *command;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t stop;
	bool running, stopping, shown;
	double started, after;
	_Atomic(const char *) last_step;
} progress = {.lock = PTHREAD_MUTEX_INITIALIZER, .stop = PTHREAD_COND_INITIALIZER};

static void step_done(void *context, const char *name)
{
	(void)context;
	atomic_store(&progress.last_step, name);
}

struct timings_observer progress_observer(void)
{
	return (struct timings_observer){step_done, NULL};
}

static void fetching(void *context, const char *what, const char *module, const char *url,
		     long done, long total)
{
	(void)context;
	static double last;
	bool terminal = isatty(STDERR_FILENO);
	double now = monotonic_seconds();
	if ((!terminal && getenv("DEBUGINFOD_PROGRESS") == NULL) || now - last < 0.5)
		return;
	last = now;
	const char *name = strrchr(module, '/');
	char so_far[32], all[32] = "";
	format_bytes((uint64_t)(done > 0 ? done : 0), so_far, sizeof so_far);
	if (total > 0) {
		strcpy(all, " of ");
		format_bytes((uint64_t)total, all + 4, sizeof all - 4);
	}
	pthread_mutex_lock(&progress.lock);
	fprintf(stderr, "%s%s: debuginfod: fetching the %s of %s from %s: %s%s%s",
		terminal ? "\r\033[K" : "", progress.command ? progress.command : "heapsnap", what,
		name ? name + 1 : module, url, so_far, all, terminal ? "" : "\n");
	fflush(stderr);
	progress.shown |= terminal;
	pthread_mutex_unlock(&progress.lock);
}

struct debug_fetch_observer progress_fetch_observer(void)
{
	return (struct debug_fetch_observer){fetching, NULL};
}

static void *show(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&progress.lock);
	while (!progress.stopping) {
		struct timespec wake = realtime_deadline(250 * 1000 * 1000);
		pthread_cond_timedwait(&progress.stop, &progress.lock, &wake);
		double elapsed = monotonic_seconds() - progress.started;
		if (progress.stopping || elapsed < progress.after)
			continue;
		const char *step = atomic_load(&progress.last_step);
		/* \r and erase-line: the line is rewritten in place */
		fprintf(stderr, "\r\033[K%s: %.0f s, %s%s", progress.command, elapsed,
			step ? step : "opening the snapshot", step ? " done" : "");
		fflush(stderr);
		progress.shown = true;
	}
	pthread_mutex_unlock(&progress.lock);
	return NULL;
}

void progress_begin(const char *command, bool wanted)
{
	progress.command = command; /* (a download's progress names it too) */
	if (!wanted || progress.running || !isatty(STDERR_FILENO))
		return;
	progress.started = monotonic_seconds();
	const char *after = getenv("HEAPSNAP_PROGRESS_AFTER");
	progress.after = after ? atof(after) : PROGRESS_AFTER_SECONDS;
	progress.stopping = false;
	progress.running = pthread_create(&progress.thread, NULL, show, NULL) == 0;
}

void progress_end(void)
{
	if (!progress.running)
		return;
	pthread_mutex_lock(&progress.lock);
	progress.stopping = true;
	pthread_cond_signal(&progress.stop);
	pthread_mutex_unlock(&progress.lock);
	pthread_join(progress.thread, NULL);
	progress.running = false;
	if (progress.shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}
