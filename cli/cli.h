/* Helpers shared by the command front ends: option values, sizes for people, output formats. The
 * front ends are the only code that prints errors or decides exit codes. */
#ifndef HEAPSNAP_CLI_H
#define HEAPSNAP_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"
#include "cli/options.h"
#include "formats/snapshot.h"

enum { EXIT_OK = 0, EXIT_FINDING = 1, EXIT_ERROR = 2 };

enum output_format {
	FORMAT_TEXT,
	FORMAT_JSON,
	FORMAT_MARKDOWN,
	FORMAT_DOT,
	FORMAT_HTML,
	FORMAT_OPENMETRICS,
};
#define FORMAT_BIT(format) (1u << (format))

/* The program's name in messages: "heapsnap" (the default) or "heapdiff". */
extern const char *cli_program;

/* Prints "heapsnap COMMAND: MESSAGE" ("heapdiff: MESSAGE" for an empty command) to stderr and
 * returns EXIT_ERROR. */
int cli_fail(const char *command, const struct hs_error *err);
/* Prints a usage error with a pointer to --help and returns EXIT_ERROR. */
int cli_usage_error(const char *command, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/* "4096", "64K", "10MiB", "1G": bytes; false on junk. *has_unit (when not NULL) says whether a
 * unit was given. */
bool cli_parse_size(const char *text, uint64_t *out, bool *has_unit);

/* Parses a whole decimal integer in [min, max]; false on junk. */
bool cli_parse_int(const char *text, long long min, long long max, long long *out);

/* The --level and --threads options of the commands that write snapshots, for their option
 * tables (options.h). */
#define CLI_COMPRESSION_OPTIONS(o)                                                            \
	CLI_INT("level", "N", &(o)->level, 1, 19, "zstd level, 1 (fast, default) to 19 (small)"), \
	CLI_INT("threads", "N", &(o)->threads, 1, 256,                                        \
		"compression threads (default: one per CPU)")

/* --timings: print how long each step of the analysis took */
extern bool cli_timings;
/* The options of the commands that analyse a snapshot, into struct analysis_options `o`. */
#define CLI_ANALYSIS_OPTIONS(o)                                                               \
	CLI_STRING(0, "debug-dir", "DIR", &(o)->debug_dir,                                    \
		   "where separate debug files are (default /usr/lib/debug)"),                \
	CLI_STRING(0, "sysroot", "DIR", &(o)->sysroot,                                        \
		   "where the process's files are: the root of the container it\n"            \
		   "ran in, or its image unpacked (while it runs, heapsnap also\n"            \
		   "looks under /proc/PID/root)"),                                            \
	CLI_STRING(0, "debuginfod", "URLS", &(o)->debuginfod_urls,                            \
		   "the debuginfod servers asked for the debug info (or files)\n"           \
		   "missing here, by build-id (default $DEBUGINFOD_URLS)"),                  \
	CLI_FLAG(0, "no-debuginfod", &(o)->no_debuginfod,                                     \
		 "ask no debuginfod server"),                                                 \
	CLI_FLAG(0, "no-debuginfo", &(o)->no_debuginfo,                                       \
		 "find the allocator's structures without debug info, by their\n"             \
		 "shape, even where debug info exists"),                                      \
	CLI_FLAG(0, "timings", &cli_timings,                                                  \
		 "print how long each step of the analysis took (on stderr)"),                \
	CLI_FLAG(0, "damaged-frames-unreadable", &(o)->damaged_frames_unreadable,             \
		 "go on past a damaged zstd frame of the snapshot, its memory\n"              \
		 "unreadable (a warning says which), instead of stopping")
struct analysis_options;
/* --show-values of the commands that show paths, into bool `v` */
#define CLI_SHOW_VALUES(v)                                                                    \
	CLI_FLAG(0, "show-values", (v),                                                       \
		 "show the values read from memory that paths can name (dict keys);\n"        \
		 "masked by default: a heap holds secrets, and a report is shared")
/* How much of the object graph a command needs before it reports. */
enum cli_graph { CLI_NO_GRAPH, CLI_REACHABILITY, CLI_WHOLE_GRAPH };
/* The start every analysing command shares: the progress line (shown when `progress` and on a
 * terminal; the command ends it), FILE opened and analysed, the graph built as asked. On failure
 * the error is printed and NULL returned (the command exits with EXIT_ERROR). */
struct analysis;
struct analysis *cli_open_analysis(const char *command, const char *file,
				   struct analysis_options *options, bool progress,
				   enum cli_graph graph);
/* The end they share: the analysis's warnings and (with --timings) its timings printed, the
 * analysis closed; returns `status`. */
int cli_close_analysis(const char *command, const char *file, struct analysis *analysis,
		       int status);
/* With --timings, prints each step's time on stderr: "heapsnap summary: FILE: 1.20 s graph". */
struct timings;
void cli_print_timings(const char *command, const char *file, const struct timings *timings);
/* Prints an analysis's warnings on stderr, "heapsnap COMMAND: warning: ...". */
struct warnings;
/* The process as its user knows it: "redis-server (/usr/bin/redis-check-rdb)" when it was
 * started by another name than its executable's (a symlink), else the executable; `full`: the
 * executable's whole path, else its last component. */
void cli_process_name(const struct snapshot_info *info, bool full, char *out, size_t size);
/* One warning on stderr, after "heapsnap COMMAND: " (the report on stdout flushed first). */
void cli_print_warning(const char *command, const char *text);
void cli_print_warnings(const char *command, const struct warnings *warnings);

/* "12,345" */
void cli_format_count(uint64_t count, char *out, size_t out_size);

/* "1.5 GiB", "312 KiB", "17 B" */
void cli_format_bytes(uint64_t bytes, char *out, size_t out_size);

/* "2026-11-24 10:00:01 UTC", or ISO 8601 ("2026-11-24T10:00:01Z"); "unknown" (ISO: "") for 0. */
void cli_format_time(uint64_t ns, char *out, size_t out_size, bool iso);
/* A module's build-id in hex ("" when unknown); out holds 2 * 64 + 1 bytes. */
struct snapshot_module;
void cli_format_build_id(const struct snapshot_module *module, char *out);

/* Restarts the program once with glibc's malloc tuned for the analysis (its heap only, never
 * given back, one arena; see cli.c); returns when it is already set or cannot be. */
void cli_prepare_memory(char **argv);

/* The JSON fragments the reports share, written through the report's emitter (cli/emit.h): in
 * JSON only, as every emit_* of the document's structure. */
struct emitter;
/* A cycle's shape ("A.x -> B.y -> A") as a JSON list of its steps under `key` (NULL: an array's
 * element), as the JSON contract has it. */
void cli_json_steps(struct emitter *e, const char *key, const char *text);

/* What a heap walker found corrupt, in words ("1 corrupt spot at 0x55d0c0a01230, 12.0 MiB not
 * walked"), or "" when nothing was. */
struct heap_damage;
void cli_format_damage(const struct heap_damage *damage, char *out, size_t out_size);
/* "heap_damage": {"corrupt_spots", "first_address", "bytes_not_walked"} */
void cli_json_damage(struct emitter *e, const struct heap_damage *damage);

/* Memory the process wrote that no walker reads (analysis.h's outside_heaps), in words: one
 * snapshot's ("12.0 MiB, 11.5 MiB of it in the mapping at 0x7f..."), or, with `before`, how it
 * changed ("82.9 MiB -> 165 MiB (+82.5 MiB)"). "" when neither it nor its change reaches
 * CLI_UNSEEN_SAID (a few pages of a loader's or a library's own are no missing heap; the JSON
 * gives every byte). */
#define CLI_UNSEEN_SAID (1ull << 20)
struct outside_heaps;
void cli_format_unseen(const struct outside_heaps *before, const struct outside_heaps *after,
		       char *out, size_t out_size);
/* DOT comments saying what a picture of `after` (compared with `before`, when not NULL) cannot
 * show: the memory no walker reads, and how many warnings the analyses gave. */
struct analysis;
void cli_dot_caveats(FILE *out, const struct analysis *before, const struct analysis *after);
/* "unseen": {"bytes", "largest_mapping", "largest_bytes"} */
void cli_json_unseen(struct emitter *e, const struct outside_heaps *outside);

/* The runtime's garbage by class, under its key: "python_garbage_by_generation": [{"generation",
 * "objects", "bytes"}] (nothing when no runtime runs). */
struct garbage_counts;
void cli_json_garbage(struct emitter *e, const struct garbage_counts *garbage);
/* "cycles": [{"shape": [...], "count", "objects", "bytes", "signature"}] */
struct cycle_shape;
void cli_json_cycles(struct emitter *e, const struct cycle_shape *cycles, size_t count);

/* "sites": [{"site", "function", "file", "line", "stack", COUNT_KEY, BYTES_KEY}] */
struct site_groups;
void cli_json_sites(struct emitter *e, const struct site_groups *groups, const char *count_key,
		    const char *bytes_key);

/* "retainers": [{"path": [...], "count", "retained_bytes", "signature"}], each with its sites
 * when the index that made them was given `analysis`'s (site_report.h: site_json_path) */
struct path_shape;
void cli_json_retainers(struct emitter *e, const struct path_shape *shapes, size_t count,
			const struct analysis *analysis);

int cmd_capture(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_diff(int argc, char **argv); /* also the `heapdiff` program */
int cmd_watch(int argc, char **argv);

/* Each runtime heapsnap knows under its key, with its version or null: the "runtimes" object's
 * members after the malloc's. */
void cli_json_runtime_versions(struct emitter *e, const struct analysis *analysis);
/* A runtime's section, as it describes it (runtime.h's struct runtime_field), under `key`. */
struct runtime_field;
void cli_json_runtime_fields(struct emitter *e, const char *key,
			     const struct runtime_field *fields, size_t count);

#endif
