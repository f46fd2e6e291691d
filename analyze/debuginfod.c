/* The debuginfod client (see debuginfod.h): libdebuginfod through dlopen, the servers still worth
 * asking, the time spent waiting, and what each module got. */
#include "debuginfod.h"

#include <dlfcn.h>
#include <elfutils/debuginfod.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"

/* libdebuginfod's functions, typed by its own header */
struct library {
	void *handle;
	__typeof__(debuginfod_begin) *begin;
	__typeof__(debuginfod_end) *end;
	__typeof__(debuginfod_find_debuginfo) *find_debuginfo;
	__typeof__(debuginfod_find_executable) *find_executable;
	__typeof__(debuginfod_set_progressfn) *set_progressfn;
	__typeof__(debuginfod_get_url) *get_url;
};

#define SERVERS_MAX 16
#define ASKED_MAX 256

struct asked {
	char build_id[2 * 64 + 1];
	enum debug_fetch_kind kind;
	char *path; /* NULL: not had */
	char *url;  /* NULL: from the cache */
	const char *module; /* the snapshot's path of the module */
	int error;  /* its errno when not had */
};

struct debug_fetch {
	struct library lib;
	debuginfod_client *client;
	struct warnings *warnings;
	struct debug_fetch_observer observer;
	char *servers[SERVERS_MAX];
	size_t server_count;
	double timeout; /* seconds a request may wait for its first byte (0: no limit) */
	struct asked asked[ASKED_MAX];
	size_t asked_count;
	/* the request under way */
	const char *what, *module;
	double started;
	bool aborted;
	bool warned;
};

static bool load_library(struct library *lib)
{
	lib->handle = dlopen(DEBUGINFOD_SONAME, RTLD_LAZY | RTLD_LOCAL);
	if (lib->handle == NULL)
		return false;
#define RESOLVE(field, name) (lib->field = (__typeof__(lib->field))dlsym(lib->handle, name)) != NULL
	if (RESOLVE(begin, "debuginfod_begin") && RESOLVE(end, "debuginfod_end") &&
	    RESOLVE(find_debuginfo, "debuginfod_find_debuginfo") &&
	    RESOLVE(find_executable, "debuginfod_find_executable") &&
	    RESOLVE(set_progressfn, "debuginfod_set_progressfn") &&
	    RESOLVE(get_url, "debuginfod_get_url"))
		return true;
#undef RESOLVE
	dlclose(lib->handle); /* (an unusable library, never used) */
	lib->handle = NULL;
	return false;
}

/* What the whole run (heapdiff's analyses, in threads of their own, share it) knows of the
 * servers: those given up on, and the time failing requests cost. The lock also serialises the
 * requests: the library reads the environment that set_living_servers writes. */
static struct {
	pthread_mutex_t lock;
	char dead[SERVERS_MAX][512];
	size_t dead_count;
	char dead_why[256]; /* the first server given up on, and why */
	double lost;
	bool out_of_time;
} run = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool is_dead(const char *server)
{
	for (size_t i = 0; i < run.dead_count; i++)
		if (strcmp(run.dead[i], server) == 0)
			return true;
	return false;
}

/* The fetch whose request runs on this thread (the progress function is given only the client). */
static _Thread_local struct debug_fetch *current;

/* Called by the library about once a second while a request runs: shows a download, and gives up
 * on a request that has received nothing within the timeout, or once the run's budget is spent. */
static int progress(debuginfod_client *client, long done, long total)
{
	struct debug_fetch *fetch = current;
	if (fetch == NULL)
		return 0;
	const char *url = fetch->lib.get_url(client);
	double waited = monotonic_seconds() - fetch->started;
	if (url != NULL) { /* a server sends the file: its download goes on */
		if (fetch->observer.fetching)
			fetch->observer.fetching(fetch->observer.context, fetch->what,
						 fetch->module, url, done, total);
		return 0;
	}
	if (fetch->timeout > 0 &&
	    (waited > fetch->timeout || run.lost + waited > DEBUG_FETCH_BUDGET_SECONDS)) {
		fetch->aborted = true;
		return 1;
	}
	return 0;
}

/* The servers named, read as the library reads them; false when none is. Under run.lock (the
 * environment). */
static bool read_servers(struct debug_fetch *fetch, const char *urls)
{
	if (urls == NULL)
		urls = getenv(DEBUGINFOD_URLS_ENV_VAR);
	char *copy = urls ? strdup(urls) : NULL;
	for (char *save = NULL, *url = copy ? strtok_r(copy, " ", &save) : NULL;
	     url != NULL && fetch->server_count < SERVERS_MAX; url = strtok_r(NULL, " ", &save))
		if ((fetch->servers[fetch->server_count] = strdup(url)) != NULL)
			fetch->server_count++;
	free(copy);
	return fetch->server_count > 0;
}

struct debug_fetch *debug_fetch_new(const struct debug_fetch_options *options,
				    struct warnings *warnings)
{
	if (options->disabled)
		return NULL;
	struct debug_fetch *fetch = calloc(1, sizeof *fetch);
	if (fetch == NULL)
		return NULL;
	pthread_mutex_lock(&run.lock);
	if (!read_servers(fetch, options->urls)) {
		pthread_mutex_unlock(&run.lock);
		debug_fetch_free(fetch);
		return NULL;
	}
	if (!load_library(&fetch->lib)) {
		warnings_add(warnings,
			     "debug info is not fetched from the debuginfod servers named (%.200s%s): "
			     "%s is not installed (apt-get install libdebuginfod1), so modules "
			     "without local debug info are left unnamed",
			     fetch->servers[0], fetch->server_count > 1 ? " and others" : "",
			     DEBUGINFOD_SONAME);
		pthread_mutex_unlock(&run.lock);
		debug_fetch_free(fetch);
		return NULL;
	}
	/* the library reads its settings from the environment at each request */
	char seconds[16];
	snprintf(seconds, sizeof seconds, "%d", DEBUG_FETCH_DEFAULT_TIMEOUT);
	setenv(DEBUGINFOD_TIMEOUT_ENV_VAR, seconds, 0);
	const char *timeout = getenv(DEBUGINFOD_TIMEOUT_ENV_VAR);
	fetch->timeout = timeout ? atof(timeout) : DEBUG_FETCH_DEFAULT_TIMEOUT;
	fetch->client = fetch->lib.begin();
	pthread_mutex_unlock(&run.lock);
	if (fetch->client == NULL) {
		debug_fetch_free(fetch);
		return NULL;
	}
	fetch->lib.set_progressfn(fetch->client, progress);
	fetch->warnings = warnings;
	fetch->observer = options->observer;
	return fetch;
}

void debug_fetch_free(struct debug_fetch *fetch)
{
	if (fetch == NULL)
		return;
	if (fetch->client)
		fetch->lib.end(fetch->client);
	/* the library stays loaded (as gdb keeps it): libcurl's global state, made once, would
	   be unmapped under its users' feet, and a second analysis (heapdiff's) reuses it */
	for (size_t i = 0; i < fetch->server_count; i++)
		free(fetch->servers[i]);
	for (size_t i = 0; i < fetch->asked_count; i++) {
		free(fetch->asked[i].path);
		free(fetch->asked[i].url);
	}
	free(fetch);
}

/* The library's cache directory, as it chooses it (debuginfod_find_debuginfo(3)). */
static void cache_dir(char *out, size_t size)
{
	const char *set = getenv(DEBUGINFOD_CACHE_PATH_ENV_VAR);
	const char *home = getenv("HOME") ? getenv("HOME") : "/";
	const char *xdg = getenv("XDG_CACHE_HOME");
	struct stat st;
	if (set && set[0])
		snprintf(out, size, "%s", set);
	else if (snprintf(out, size, "%s/.debuginfod_client_cache", home) > 0 && stat(out, &st) == 0)
		return;
	else if (xdg && xdg[0])
		snprintf(out, size, "%s/debuginfod_client", xdg);
	else
		snprintf(out, size, "%s/.cache/debuginfod_client", home);
}

/* A request given up by the progress function ends as a miss, which the library records in its
 * cache (an empty file) and then answers for ten minutes without asking: a server
 * that was slow is no server that lacks the file, so that record goes. */
/* `since`: when the request began, in seconds of the real-time clock (a file's times are). */
static void forget_false_miss(const char *build_id, enum debug_fetch_kind kind, double since)
{
	char dir[4096], path[4400];
	cache_dir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/%s/%s", dir, build_id,
		 kind == DEBUG_FETCH_DEBUGINFO ? "debuginfo" : "executable");
	struct stat st;
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 &&
	    (double)st.st_mtime >= since - 1)
		unlink(path);
}

/* DEBUGINFOD_URLS for the library: the servers still worth asking; false when none is. */
static bool set_living_servers(struct debug_fetch *fetch)
{
	char urls[4096] = "";
	size_t used = 0;
	for (size_t i = 0; i < fetch->server_count; i++)
		if (!is_dead(fetch->servers[i]) && used < sizeof urls)
			used += (size_t)snprintf(urls + used, sizeof urls - used, "%s%s",
						 used ? " " : "", fetch->servers[i]);
	if (used == 0 || used >= sizeof urls)
		return false;
	const char *now = getenv(DEBUGINFOD_URLS_ENV_VAR);
	if (now == NULL || strcmp(now, urls) != 0)
		setenv(DEBUGINFOD_URLS_ENV_VAR, urls, 1);
	return true;
}

/* A failure of the connection (refused, unreachable, timed out): the servers asked are not asked
 * again in this run. */
static bool connection_failed(int error, bool aborted)
{
	return aborted || error == ECONNREFUSED || error == ETIME || error == ETIMEDOUT ||
	       error == EHOSTUNREACH || error == ENETUNREACH || error == ECONNRESET;
}

static void give_up_servers(struct debug_fetch *fetch, int error, bool aborted)
{
	for (size_t i = 0; i < fetch->server_count; i++) {
		if (is_dead(fetch->servers[i]) || run.dead_count >= SERVERS_MAX)
			continue;
		snprintf(run.dead[run.dead_count++], sizeof run.dead[0], "%s", fetch->servers[i]);
		if (run.dead_why[0] == '\0')
			snprintf(run.dead_why, sizeof run.dead_why, "%.150s: %s", fetch->servers[i],
				 aborted ? "no answer in time" : strerror(error));
	}
}

/* One request to the living servers; fills `asked`. */
static void request(struct debug_fetch *fetch, const struct snapshot_module *module,
		    struct asked *asked)
{
	asked->error = ENOENT;
	if (run.out_of_time || !set_living_servers(fetch)) {
		asked->error = ENETUNREACH;
		return;
	}
	fetch->module = module->path;
	fetch->what = asked->kind == DEBUG_FETCH_DEBUGINFO ? "debug info" : "file";
	fetch->aborted = false;
	fetch->started = monotonic_seconds();
	double wall_started = realtime_ns() / 1e9;
	current = fetch;
	char *path = NULL;
	int fd = asked->kind == DEBUG_FETCH_DEBUGINFO
			 ? fetch->lib.find_debuginfo(fetch->client, module->build_id,
						     (int)module->build_id_size, &path)
			 : fetch->lib.find_executable(fetch->client, module->build_id,
						      (int)module->build_id_size, &path);
	current = NULL;
	double waited = monotonic_seconds() - fetch->started;
	if (fd >= 0) {
		close(fd);
		asked->path = path;
		/* the server, rather than the whole request's URL (NULL: from the cache) */
		const char *url = fetch->lib.get_url(fetch->client);
		for (size_t i = 0; url != NULL && i < fetch->server_count; i++)
			if (strncmp(url, fetch->servers[i], strlen(fetch->servers[i])) == 0)
				url = fetch->servers[i];
		asked->url = url ? strdup(url) : NULL;
		return;
	}
	free(path);
	asked->error = -fd;
	if (fetch->aborted)
		forget_false_miss(asked->build_id, asked->kind, wall_started);
	if (connection_failed(-fd, fetch->aborted)) {
		give_up_servers(fetch, -fd, fetch->aborted);
		asked->error = fetch->aborted ? ETIME : -fd;
	}
	if (asked->error != ENOENT) {
		run.lost += waited;
		run.out_of_time = fetch->timeout > 0 && run.lost >= DEBUG_FETCH_BUDGET_SECONDS;
	}
}

char *debug_fetch_file(struct debug_fetch *fetch, const struct snapshot_module *module,
		       enum debug_fetch_kind kind, const char **url)
{
	if (url)
		*url = NULL;
	if (fetch == NULL || module->build_id_size == 0)
		return NULL;
	char build_id[2 * 64 + 1];
	for (size_t i = 0; i < module->build_id_size && i < 64; i++)
		snprintf(build_id + 2 * i, 3, "%02x", module->build_id[i]);
	pthread_mutex_lock(&run.lock);
	struct asked *asked = NULL;
	for (size_t i = 0; i < fetch->asked_count && asked == NULL; i++)
		if (fetch->asked[i].kind == kind && strcmp(fetch->asked[i].build_id, build_id) == 0)
			asked = &fetch->asked[i];
	if (asked == NULL && fetch->asked_count < ASKED_MAX) {
		asked = &fetch->asked[fetch->asked_count++];
		snprintf(asked->build_id, sizeof asked->build_id, "%s", build_id);
		asked->kind = kind;
		asked->module = module->path;
		request(fetch, module, asked);
	}
	char *path = asked && asked->path ? strdup(asked->path) : NULL;
	if (url && asked)
		*url = asked->url;
	pthread_mutex_unlock(&run.lock);
	return path;
}

bool debug_fetch_was_fetched(const struct debug_fetch *fetch, const char *path, const char **url)
{
	bool found = false;
	pthread_mutex_lock(&run.lock);
	for (size_t i = 0; fetch != NULL && i < fetch->asked_count && !found; i++)
		if (fetch->asked[i].path && strcmp(fetch->asked[i].path, path) == 0) {
			if (url)
				*url = fetch->asked[i].url;
			found = true;
		}
	pthread_mutex_unlock(&run.lock);
	return found;
}

static void warn_unfetched(struct debug_fetch *fetch);

void debug_fetch_warn(struct debug_fetch *fetch)
{
	if (fetch == NULL || fetch->warned)
		return;
	fetch->warned = true;
	pthread_mutex_lock(&run.lock); /* (run.dead_why) */
	warn_unfetched(fetch);
	pthread_mutex_unlock(&run.lock);
}

static void warn_unfetched(struct debug_fetch *fetch)
{
	char modules[600] = "";
	size_t used = 0, count = 0;
	bool failed = false;
	for (size_t i = 0; i < fetch->asked_count; i++) {
		const struct asked *asked = &fetch->asked[i];
		if (asked->kind != DEBUG_FETCH_DEBUGINFO || asked->path != NULL)
			continue;
		failed |= asked->error != ENOENT;
		if (count++ < 8 && used < sizeof modules)
			used += (size_t)snprintf(modules + used, sizeof modules - used, "%s%s",
						 used ? ", " : "", asked->module);
	}
	if (count == 0)
		return;
	char more[32] = "";
	if (count > 8)
		snprintf(more, sizeof more, " and %zu more", count - 8);
	char why[400];
	snprintf(why, sizeof why, "%s%s%s",
		 run.dead_why[0] ? run.dead_why : "not on the servers",
		 run.dead_why[0] ? "; not asked again in this run" : "",
		 run.out_of_time ? "; the time allowed for failing requests ran out" : "");
	warnings_add(fetch->warnings,
		     "debuginfod gave no debug info for %zu module%s, left unnamed (their types "
		     "and globals): %s%s (%s): %s",
		     count, count == 1 ? "" : "s", modules, more, why,
		     failed ? "check that the servers in --debuginfod or DEBUGINFOD_URLS are up and "
			      "reachable, or install the modules' debug packages (--debug-dir DIR "
			      "for a directory of debug files)"
			    : "install the modules' debug packages, or point --debug-dir at their "
			      "debug files");
}
