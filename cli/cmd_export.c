/* `heapsnap export FILE --format devtools`: the snapshot's object graph as a Chrome DevTools
 * heap snapshot (devtools_export.h), to browse in DevTools' Memory panel or analyse with memlab;
 * `--format pprof`: its live heap as a pprof heap profile (pprof_export.h), for `go tool pprof`,
 * Pyroscope and Parca. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analyze/analysis.h"
#include "cli/cli.h"
#include "cli/devtools_export.h"
#include "cli/pprof_export.h"
#include "cli/progress.h"
#include "formats/snapshot_file.h"

static const struct cli_command_help help = {
	.program = "heapsnap",
	.name = "export",
	.operands = 1,
	.expects = "expects one FILE",
	.arguments = "FILE",
	.about =
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
		"--format pprof writes the live heap as a gzipped pprof heap profile (-o required),\n"
		"for `go tool pprof`, Pyroscope or Parca: sample types inuse_objects and inuse_space;\n"
		"each sample's stack is the retaining path's shape from a root (outermost) to the\n"
		"type (the leaf), as `heapsnap summary` prints it, so a flame graph shows what holds\n"
		"the heap; objects no root reaches sit under \"(unreachable)\". --pprof-stacks sites\n"
		"makes the stacks the allocation sites instead (snapshots the hook took with\n"
		"HEAPSNAP_SITES=1). What the summary would warn about (memory no walker reads, the\n"
		"analysis's warnings) goes into the profile's comments (go tool pprof -comments) and\n"
		"on stderr.\n",
};

enum export_format { EXPORT_DEVTOOLS, EXPORT_PPROF };
static const struct cli_choice formats[] = {
	{"devtools", EXPORT_DEVTOOLS}, {"pprof", EXPORT_PPROF}, {NULL, 0}};
static const struct cli_choice stack_kinds[] = {
	{"paths", PPROF_STACKS_PATHS}, {"sites", PPROF_STACKS_SITES}, {NULL, 0}};

/* The export into a file descriptor: what safe_file_write hands it. */
struct export_job {
	struct analysis *analysis;
	bool show_values;
	struct devtools_export_stats stats;
};

static int write_export(int fd, const char *path, void *context, struct hs_error *err)
{
	struct export_job *job = context;
	int copy = dup(fd);
	FILE *out = copy >= 0 ? fdopen(copy, "w") : NULL;
	if (out == NULL) {
		if (copy >= 0)
			close(copy);
		return hs_error_set_errno(err, errno, "cannot write %s", path);
	}
	bool failed = devtools_export_write(out, job->analysis, job->show_values, &job->stats,
					    err) != 0;
	bool write_error = fflush(out) != 0 || ferror(out);
	int errnum = errno;
	if (fclose(out) != 0 && !write_error) {
		write_error = true;
		errnum = errno;
	}
	if (write_error && !failed)
		return hs_error_set_errno(err, errnum, "writing %s", path);
	return failed || write_error ? -1 : 0;
}

/* `--format pprof`: the profile of the live heap by retaining path (or by site), written to
 * `output`; the exit status. */
static int export_pprof(struct analysis *analysis, const char *file, const char *output,
			enum pprof_stacks stacks, bool show_values)
{
	struct hs_error err;
	if (stacks == PPROF_STACKS_SITES && analysis->sites.recorded == 0) {
		hs_error_set(&err, "%s records no allocation sites (take it with the hook and "
				   "HEAPSNAP_SITES=1, see docs/hook.md), so --pprof-stacks sites has "
				   "nothing to show: use --pprof-stacks paths",
			     file);
		cli_close_analysis("export", file, analysis, EXIT_ERROR);
		return cli_fail("export", &err);
	}
	struct path_index *paths = NULL;
	if (stacks == PPROF_STACKS_PATHS) {
		paths = path_index_build(&analysis->graph, &analysis->heap, &analysis->types, NULL,
					 show_values, &err);
		if (paths == NULL) {
			cli_close_analysis("export", file, analysis, EXIT_ERROR);
			return cli_fail("export", &err);
		}
		timings_mark(&analysis->timings, "path index");
	}
	struct pprof_export_stats stats;
	const struct pprof_export_request request = {.output = output,
						     .input = file,
						     .program = "heapsnap export",
						     .what = "live heap",
						     .analysis = analysis,
						     .paths = paths,
						     .stacks = stacks};
	int result = pprof_export_write(&request, &stats, &err);
	path_index_free(paths);
	if (result != 0) {
		cli_close_analysis("export", file, analysis, EXIT_ERROR);
		return cli_fail("export", &err);
	}
	timings_mark(&analysis->timings, "export");
	char objects[32], bytes[32];
	cli_format_count(stats.objects, objects, sizeof objects);
	cli_format_bytes(stats.bytes, bytes, sizeof bytes);
	printf("%s: pprof heap profile, %llu samples, %s objects, %s (go tool pprof -top %s)\n",
	       output, (unsigned long long)stats.samples, objects, bytes, output);
	return cli_close_analysis("export", file, analysis, EXIT_OK);
}

/* `--format devtools`: the whole graph as a DevTools heap snapshot, to `output` or (NULL)
 * standard output; the exit status. */
static int export_devtools(struct analysis *analysis, const char *file, const char *output,
			   bool show_values)
{
	struct hs_error err;
	struct export_job job = {.analysis = analysis, .show_values = show_values};
	int written;
	if (output) {
		written = safe_file_write(output, file, write_export, &job, &err);
	} else {
		written = devtools_export_write(stdout, analysis, show_values, &job.stats, &err);
		if (written == 0 && (fflush(stdout) != 0 || ferror(stdout)))
			written = hs_error_set_errno(&err, errno, "writing to standard output");
	}
	if (written != 0) {
		analysis_close(analysis);
		return cli_fail("export", &err);
	}
	const struct devtools_export_stats stats = job.stats;
	timings_mark(&analysis->timings, "export");
	if (stats.oversized)
		fprintf(stderr,
			"heapsnap export: warning: %llu allocations of 4 GiB or more have their self "
			"size cut to 4 GiB - 1 B (the format's sizes are 32-bit)\n",
			(unsigned long long)stats.oversized);
	if (output) {
		char nodes[32], edges[32], unreachable[32];
		cli_format_count(stats.nodes, nodes, sizeof nodes);
		cli_format_count(stats.edges, edges, sizeof edges);
		cli_format_count(stats.unreachable, unreachable, sizeof unreachable);
		printf("%s: %s nodes, %s edges, %s of them allocations no root reaches (under "
		       "\"(unreachable)\")\n",
		       output, nodes, edges, unreachable);
		if (stats.id_collisions)
			printf("  %llu objects have another id than their hash gives (it was taken): "
			       "DevTools' Comparison may not match them with another export's\n",
			       (unsigned long long)stats.id_collisions);
	}
	return cli_close_analysis("export", file, analysis, EXIT_OK);
}

int cmd_export(int argc, char **argv)
{
	struct analysis_options analysis_options = {0};
	const char *output = NULL; /* NULL: standard output */
	bool show_values = false;
	int format = EXPORT_DEVTOOLS, stacks = PPROF_STACKS_PATHS;
	const struct cli_option options[] = {
		CLI_CHOICE("format", "devtools|pprof", &format, formats,
			   "devtools (the default: a Chrome DevTools heap snapshot) or pprof\n"
			   "(a gzipped pprof heap profile; needs -o)"),
		CLI_STRING('o', "output", "OUT", &output,
			   "write to OUT (mode 0600, linked in place once complete; never over\n"
			   "another user's file or the snapshot read); without\n"
			   "it, to standard output, which must not be a terminal"),
		CLI_CHOICE("pprof-stacks", "paths|sites", &stacks, stack_kinds,
			   "with --format pprof, what a sample's stack is: the retaining path\n"
			   "from a root to the type (paths, the default) or the allocation\n"
			   "site (sites: snapshots the hook took with HEAPSNAP_SITES=1)"),
		CLI_FLAG(0, "show-values", &show_values,
			 "keep the values read from memory that edge names (devtools) or\n"
			 "paths (pprof) can show (dict keys); masked by default: a heap\n"
			 "holds secrets, and a file is shared"),
		CLI_ANALYSIS_OPTIONS(&analysis_options), CLI_END};
	int first;
	int status = cli_parse_options(&help, options, argc, argv, &first);
	if (status != CLI_PARSED)
		return status;
	struct hs_error err;
	/* refused before the analysis, not after it: no output, a terminal, the input itself */
	if (format == EXPORT_PPROF && output == NULL)
		return cli_usage_error("export", "--format pprof writes a gzipped file: give -o "
						 "OUT.pb.gz");
	if (format != EXPORT_PPROF && stacks != PPROF_STACKS_PATHS)
		return cli_usage_error("export", "--pprof-stacks is for --format pprof");
	if (output == NULL && isatty(STDOUT_FILENO)) {
		hs_error_set(&err, "standard output is a terminal: give -o OUT.heapsnapshot, or "
				   "redirect it to a file");
		return cli_fail("export", &err);
	}
	if (output && safe_file_check(output, argv[first], &err) != 0)
		return cli_fail("export", &err);
	/* DevTools and memlab compute dominators of their own, pprof's path shapes need no
	   dominators either: what the roots reach is enough (sites need no graph at all) */
	enum cli_graph graph = format == EXPORT_PPROF && stacks == PPROF_STACKS_SITES
				       ? CLI_NO_GRAPH
				       : CLI_REACHABILITY;
	struct analysis *analysis =
		cli_open_analysis("export", argv[first], &analysis_options, true, graph);
	if (analysis == NULL)
		return EXIT_ERROR;
	progress_end();
	if (format == EXPORT_PPROF)
		return export_pprof(analysis, argv[first], output, (enum pprof_stacks)stacks,
				    show_values);
	return export_devtools(analysis, argv[first], output, show_values);
}
