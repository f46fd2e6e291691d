/* `heapsnap export FILE --format devtools`: the snapshot's object graph as a Chrome DevTools
 * heap snapshot (devtools_export.h), to browse in DevTools' Memory panel or analyse with memlab. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analyze/analysis.h"
#include "cli/cli.h"
#include "cli/devtools_export.h"
#include "cli/progress.h"

static const char usage[] =
	"usage: heapsnap export FILE --format devtools [-o OUT.heapsnapshot] [--show-values]\n"
	"\n"
	"The snapshot's whole object graph as a Chrome DevTools heap snapshot, to load in\n"
	"DevTools' Memory panel (Summary, Comparison of two exports, Containment, Retainers)\n"
	"or analyse with memlab: `memlab find-leaks --baseline A --target B --final C\n"
	"--trace-all-objects` (memlab's own leak detectors look for a browser's leaks only).\n"
	"Each live allocation is a node named by its type (\"(part of TYPE)\" for a block that\n"
	"belongs to an object: a list's items, a dict's table; \"size 64\" when untyped), its\n"
	"usable size as self size, and an id hashed from its address, type and size: an object\n"
	"keeps its id from one snapshot of its process to the next. Each root is a node named\n"
	"as `heapsnap summary` names it; what no root reaches hangs from \"(unreachable)\".\n"
	"Python attributes and the members of C structs (where debug info gives their layout)\n"
	"are property edges, items element edges, other pointers elements numbered by their\n"
	"offset in bytes. The JSON is written as the graph is walked, never held in memory.\n"
	"\n"
	"  --format devtools  the format (the only one so far, and the default)\n"
	"  -o, --output OUT   write to OUT (mode 0600, replaced only once complete); without\n"
	"                     it, to standard output, which must not be a terminal\n"
	"  --show-values      keep the values read from memory that edge names can show (dict\n"
	"                     keys); masked by default: a heap holds secrets, and a file is shared\n" CLI_ANALYSIS_USAGE;

/* Where the export goes: OUT through a temporary file beside it, renamed once complete, so a
 * failed export leaves no half file under the name asked for; or standard output. */
struct destination {
	const char *path; /* NULL: standard output */
	char temporary[4096];
	FILE *file;
};

static int destination_open(struct destination *destination, struct hs_error *err)
{
	if (destination->path == NULL) {
		if (isatty(STDOUT_FILENO))
			return hs_error_set(err, "standard output is a terminal: give -o "
						 "OUT.heapsnapshot, or redirect it to a file");
		destination->file = stdout;
		return 0;
	}
	if (snprintf(destination->temporary, sizeof destination->temporary, "%s.XXXXXX",
		     destination->path) >= (int)sizeof destination->temporary)
		return hs_error_set(err, "%s: the name is too long", destination->path);
	int fd = mkstemp(destination->temporary);
	if (fd < 0)
		return hs_error_set_errno(err, errno, "%s: cannot create a file beside it",
					  destination->path);
	destination->file = fdopen(fd, "w");
	if (destination->file == NULL) {
		close(fd);
		unlink(destination->temporary);
		return hs_error_set_errno(err, errno, "%s", destination->path);
	}
	return 0;
}

/* Flushes and, for a file, renames it into place (or removes it when `failed`). */
static int destination_close(struct destination *destination, bool failed,
			     struct hs_error *err)
{
	const char *name = destination->path ? destination->path : "standard output";
	bool write_error = fflush(destination->file) != 0 || ferror(destination->file);
	int errnum = errno;
	if (destination->path == NULL) {
		if (write_error && !failed)
			return hs_error_set_errno(err, errnum, "writing to %s", name);
		return failed ? -1 : 0;
	}
	if (fclose(destination->file) != 0 && !write_error) {
		write_error = true;
		errnum = errno;
	}
	if (!failed && !write_error && rename(destination->temporary, destination->path) != 0) {
		write_error = true;
		errnum = errno;
	}
	if (failed || write_error)
		unlink(destination->temporary);
	if (write_error && !failed)
		return hs_error_set_errno(err, errnum, "writing %s", name);
	return failed || write_error ? -1 : 0;
}

int cmd_export(int argc, char **argv)
{
	static const struct option options[] = {{"format", required_argument, NULL, 'f'},
						 {"output", required_argument, NULL, 'o'},
						 {"show-values", no_argument, NULL, 'v'},
						 CLI_ANALYSIS_OPTIONS,
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	struct analysis_options analysis_options = {0};
	struct destination destination = {0};
	bool show_values = false;
	int option;
	optind = 1;
	while ((option = getopt_long(argc, argv, "ho:", options, NULL)) != -1) {
		switch (option) {
		case 'f':
			if (strcmp(optarg, "devtools") != 0)
				return cli_usage_error("export", "--format takes devtools, not '%s'",
						       optarg);
			break;
		case 'o':
			destination.path = optarg;
			break;
		case 'v':
			show_values = true;
			break;
		default: {
			int status = cli_common_option("export", usage, option, optarg, &analysis_options);
			if (status != CLI_OPTION_TAKEN)
				return status;
		}
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("export", "expects one FILE");
	struct hs_error err;
	/* the terminal refused before the analysis, not after it */
	if (destination.path == NULL && destination_open(&destination, &err) != 0)
		return cli_fail("export", &err);
	/* DevTools and memlab compute dominators of their own: what the roots reach is enough */
	struct analysis *analysis = cli_open_analysis("export", argv[optind], &analysis_options,
						      true, CLI_REACHABILITY);
	if (analysis == NULL)
		return EXIT_ERROR;
	progress_end();
	if (destination.path && destination_open(&destination, &err) != 0) {
		analysis_close(analysis);
		return cli_fail("export", &err);
	}
	struct devtools_export_stats stats;
	bool failed = devtools_export_write(destination.file, analysis, show_values, &stats,
					    &err) != 0;
	if (destination_close(&destination, failed, &err) != 0) {
		analysis_close(analysis);
		return cli_fail("export", &err);
	}
	timings_mark(&analysis->timings, "export");
	if (stats.oversized)
		fprintf(stderr,
			"heapsnap export: warning: %llu allocations of 4 GiB or more have their self "
			"size cut to 4 GiB - 1 B (the format's sizes are 32-bit)\n",
			(unsigned long long)stats.oversized);
	if (destination.path) {
		char nodes[32], edges[32], unreachable[32];
		cli_format_count(stats.nodes, nodes, sizeof nodes);
		cli_format_count(stats.edges, edges, sizeof edges);
		cli_format_count(stats.unreachable, unreachable, sizeof unreachable);
		printf("%s: %s nodes, %s edges, %s of them allocations no root reaches (under "
		       "\"(unreachable)\")\n",
		       destination.path, nodes, edges, unreachable);
		if (stats.id_collisions)
			printf("  %llu objects have another id than their hash gives (it was taken): "
			       "DevTools' Comparison may not match them with another export's\n",
			       (unsigned long long)stats.id_collisions);
	}
	return cli_close_analysis("export", argv[optind], analysis, EXIT_OK);
}
