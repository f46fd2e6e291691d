/* `heapsnap info FILE`: what a snapshot holds, as text for people or JSON (schema heapsnap.info/1,
 * see docs/json-schema.md) for scripts. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "analyze/module_files.h"
#include "analyze/symbols.h"
#include "common/numbers.h"
#include "common/visible_text.h"
#include "common/warnings.h"
#include "cli/cli.h"
#include "cli/json_schema.h"
#include "cli/progress.h"
#include "formats/json.h"
#include "formats/snapshot.h"
#include "formats/snapshot_notes.h"

/* How many allocations the SITES note gives a site (hook or `capture --sites`); -1 without one. */
static long long site_entries(const struct snapshot *snapshot)
{
	const struct snapshot_note *note =
		snapshot_find_note(snapshot, HEAPSNAP_NOTE_OWNER, HEAPSNAP_NOTE_SITES);
	return note ? (long long)(note->size / sizeof(struct heapsnap_site_note)) : -1;
}

/* "allocation_sites", only for a snapshot with sites (others' output stays as it was). */
static void write_sites_json(struct json_writer *json, const struct snapshot *snapshot)
{
	const struct snapshot_info *info = snapshot_info(snapshot);
	long long entries = site_entries(snapshot);
	if (entries < 0)
		return;
	bool bpf = strcmp(info->sites_source, "bpf") == 0;
	json_key(json, "allocation_sites");
	json_object_begin(json);
	json_key(json, "recorded_by");
	json_string(json, bpf ? "bpf" : "hook");
	json_key(json, "live_with_site");
	json_uint(json, (uint64_t)entries);
	if (bpf) {
		json_key(json, "allocator");
		json_string(json, info->sites_allocator);
		json_key(json, "window_s");
		json_double(json, (double)info->sites_window_ns / 1e9);
		json_key(json, "sample_bytes");
		json_uint(json, info->sites_sample_bytes);
		json_key(json, "estimates");
		json_bool(json, info->sites_sample_bytes != 0);
		json_key(json, "allocations_seen");
		json_uint(json, info->sites_allocations);
		json_key(json, "unrecorded");
		json_uint(json, info->sites_unrecorded);
		json_key(json, "map_full");
		json_uint(json, info->sites_map_full);
	}
	json_object_end(json);
}

static void print_sites(const struct snapshot *snapshot)
{
	const struct snapshot_info *info = snapshot_info(snapshot);
	long long entries = site_entries(snapshot);
	if (entries < 0)
		return;
	char live[32];
	format_count((uint64_t)entries, live, sizeof live);
	if (strcmp(info->sites_source, "bpf") != 0) {
		printf("sites     %s live allocations with their site, recorded by the hook "
		       "(HEAPSNAP_SITES=1)\n",
		       live);
		return;
	}
	char seen[32], unrecorded[32];
	format_count(info->sites_allocations, seen, sizeof seen);
	format_count(info->sites_unrecorded, unrecorded, sizeof unrecorded);
	printf("sites     %s live allocations with their site, recorded by BPF over a %.1f s window "
	       "before the capture (%s's malloc); blocks allocated before it have none\n",
	       live, (double)info->sites_window_ns / 1e9, info->sites_allocator);
	if (info->sites_sample_bytes)
		printf("          sampled: one allocation per %llu bytes on average; counts by site "
		       "are estimates\n",
		       (unsigned long long)info->sites_sample_bytes);
	printf("          %s allocator calls seen in the window, %s made in it without a site%s\n",
	       seen, unrecorded,
	       info->sites_map_full ? " (the live map was full: see --sites-max)" : "");
}

static const struct cli_command_help help = {
	.program = "heapsnap",
	.name = "info",
	.operands = 1,
	.expects = "expects one FILE",
	.arguments = "FILE",
	.about = "Show what a snapshot (or an uncompressed ELF core) holds: the process, when it was\n"
		 "captured and for how long it was paused, its threads, modules with build-ids, memory\n"
		 "regions and sizes, and where each module's names (its debug info) come from\n"
		 "here. No memory contents are printed.\n",
};

/* Where the modules' names come from on this machine: found as an analysis finds them. */
struct names {
	struct module_files files;
	struct symbols *symbols;
	struct warnings warnings;
};

/* "debuginfod URL (FILE)", "debug package FILE", "local file FILE" or "none", then
 * " + dwz FILE" for its supplementary file */
static void names_text(struct names *names, size_t index, char *out, size_t size)
{
	struct module_symbols *module = symbols_module_at(names->symbols, index);
	const char *url;
	enum debug_source source = module_symbols_debug_source(module, &url);
	const char *file = module_symbols_debug_file(module);
	if (source == DEBUG_SOURCE_DEBUGINFOD)
		snprintf(out, size, "debuginfod %s (%s)", url ? url : "cache", file);
	else if (source == DEBUG_SOURCE_NONE)
		snprintf(out, size, "none");
	else
		snprintf(out, size, "%s %s", debug_source_name(source), file);
	const char *supplementary = module_symbols_supplementary_file(module);
	size_t used = strlen(out);
	if (supplementary && used < size)
		snprintf(out + used, size - used, " + dwz %s", supplementary);
}

static const struct cli_choice formats[] = {
	{"text", FORMAT_TEXT}, {"json", FORMAT_JSON}, {NULL, 0}};



/* "modules": each one's file, build-id, base, and where its names came from. */
static void json_modules(struct json_writer *json, struct snapshot *snapshot, struct names *names)
{
	size_t count;
	const struct snapshot_module *modules = snapshot_modules(snapshot, &count);
	json_key(json, "modules");
	json_array_begin(json);
	for (size_t i = 0; i < count; i++) {
		char build_id[2 * sizeof modules[i].build_id + 1];
		cli_format_build_id(&modules[i], build_id);
		json_object_begin(json);
		json_key(json, "path");
		json_string(json, modules[i].path);
		json_key(json, "build_id");
		if (build_id[0])
			json_string(json, build_id);
		else
			json_null(json);
		json_key(json, "base");
		json_uint(json, modules[i].base);
		struct module_symbols *module = symbols_module_at(names->symbols, i);
		const char *url, *file = module_symbols_debug_file(module);
		enum debug_source source = module_symbols_debug_source(module, &url);
		json_key(json, "names_from");
		json_string(json, debug_source_name(source));
		json_key(json, "debug_file");
		if (file)
			json_string(json, file);
		else
			json_null(json);
		json_key(json, "debuginfod_url");
		if (url)
			json_string(json, url);
		else
			json_null(json);
		const char *supplementary = module_symbols_supplementary_file(module);
		json_key(json, "dwz_file");
		if (supplementary)
			json_string(json, supplementary);
		else
			json_null(json);
		json_object_end(json);
	}
	json_array_end(json);
}

static void print_json(struct snapshot *snapshot, struct names *names)
{
	const struct snapshot_info *info = snapshot_info(snapshot);
	struct snapshot_totals totals;
	snapshot_totals(snapshot, &totals);
	struct json_writer json;
	json_init(&json, stdout);
	json_object_begin(&json);
	json_key(&json, "schema");
	json_string(&json, HEAPSNAP_SCHEMA_INFO);
	json_key(&json, "pid");
	json_int(&json, info->pid);
	json_key(&json, "exe");
	json_string(&json, info->exe);
	json_key(&json, "program"); /* the name it was started by (a symlink's), "" when unknown */
	json_string(&json, info->program);
	char when[40];
	cli_format_time(info->capture_start_ns, when, sizeof when, true);
	json_key(&json, "captured_at");
	if (when[0])
		json_string(&json, when);
	else
		json_null(&json);
	json_key(&json, "pause_ms");
	if (info->has_pause)
		json_double(&json, (double)info->pause_ns / 1e6);
	else
		json_null(&json);
	json_key(&json, "capture_method");
	if (info->method[0])
		json_string(&json, info->method);
	else
		json_null(&json);
	json_key(&json, "source");
	json_string(&json, info->source[0] ? info->source : "foreign core");
	json_key(&json, "format_version");
	json_uint(&json, info->format_version);
	json_key(&json, "tool_version");
	json_string(&json, info->tool_version);
	json_key(&json, "kernel_release");
	json_string(&json, info->kernel_release);
	write_sites_json(&json, snapshot);

	size_t count;
	const struct snapshot_thread *threads = snapshot_threads(snapshot, &count);
	json_key(&json, "threads");
	json_array_begin(&json);
	for (size_t i = 0; i < count; i++) {
		json_object_begin(&json);
		json_key(&json, "tid");
		json_int(&json, threads[i].tid);
		json_key(&json, "name");
		json_string(&json, threads[i].name);
		json_key(&json, "pc");
		json_uint(&json, threads[i].registers.rip);
		json_key(&json, "sp");
		json_uint(&json, threads[i].registers.rsp);
		json_object_end(&json);
	}
	json_array_end(&json);

	json_modules(&json, snapshot, names);

	json_key(&json, "regions");
	json_object_begin(&json);
	json_key(&json, "count");
	json_uint(&json, totals.regions);
	json_key(&json, "bytes_with_contents");
	json_uint(&json, totals.with_contents);
	json_key(&json, "bytes_from_files");
	json_uint(&json, totals.from_files);
	json_key(&json, "bytes_untouched");
	json_uint(&json, totals.untouched);
	json_key(&json, "bytes_unreadable");
	json_uint(&json, totals.unreadable);
	json_key(&json, "bytes_not_captured");
	json_uint(&json, totals.not_captured);
	json_object_end(&json);
	json_key(&json, "file_bytes");
	json_uint(&json, snapshot_file_size(snapshot));
	json_key(&json, "memory_bytes");
	json_uint(&json, totals.with_contents);
	json_key(&json, "core_bytes");
	json_uint(&json, snapshot_core_size(snapshot));
	json_key(&json, "compressed");
	json_bool(&json, snapshot_is_compressed(snapshot));
	json_key(&json, "compression_ratio");
	json_double(&json, (double)snapshot_core_size(snapshot) /
				   (double)(snapshot_file_size(snapshot) ? snapshot_file_size(snapshot) : 1));
	json_object_end(&json);
	json_finish(&json);
}

static void print_text(struct snapshot *snapshot, struct names *names)
{
	const struct snapshot_info *info = snapshot_info(snapshot);
	struct snapshot_totals totals;
	snapshot_totals(snapshot, &totals);
	char when[40], size[32];
	printf("snapshot  %s", snapshot_path(snapshot));
	if (info->format_version)
		printf(" (format %u, heapsnap %s, %s)\n", info->format_version, info->tool_version,
		       info->source);
	else
		printf(" (a foreign core, not written by heapsnap)\n");
	char process[4200];
	cli_process_name(info, true, process, sizeof process);
	printf("process   pid %d  %s\n", info->pid, process);
	cli_format_time(info->capture_start_ns, when, sizeof when, false);
	if (info->has_pause)
		printf("captured  %s, target paused %.1f ms%s%s%s\n", when,
		       (double)info->pause_ns / 1e6, info->method[0] ? " (by " : "", info->method,
		       info->method[0] ? ")" : "");
	else
		printf("captured  %s\n", when);
	if (info->kernel_release[0])
		printf("kernel    %s\n", info->kernel_release);
	print_sites(snapshot);

	size_t count;
	const struct snapshot_thread *threads = snapshot_threads(snapshot, &count);
	printf("threads   %zu\n", count);
	for (size_t i = 0; i < count; i++) {
		char name[80]; /* (a thread names itself: no control character passes) */
		visible_text(threads[i].name[0] ? threads[i].name : "-", name, sizeof name);
		printf("  %-8d %-16s pc 0x%-14llx sp 0x%llx\n", threads[i].tid, name,
		       (unsigned long long)threads[i].registers.rip,
		       (unsigned long long)threads[i].registers.rsp);
	}
	const struct snapshot_module *modules = snapshot_modules(snapshot, &count);
	printf("modules   %zu\n", count);
	for (size_t i = 0; i < count; i++) {
		char build_id[2 * sizeof modules[i].build_id + 1];
		cli_format_build_id(&modules[i], build_id);
		printf("  0x%-14llx %s  %s\n", (unsigned long long)modules[i].base, modules[i].path,
		       build_id[0] ? build_id : "(no build-id)");
		char from[8400];
		names_text(names, i, from, sizeof from);
		printf("    names from %s\n", from);
	}
	cli_format_bytes(totals.with_contents, size, sizeof size);
	printf("regions   %zu: %s stored", totals.regions, size);
	cli_format_bytes(totals.from_files, size, sizeof size);
	printf(", %s in mapped files", size);
	cli_format_bytes(totals.untouched, size, sizeof size);
	printf(", %s never touched", size);
	if (totals.unreadable) {
		cli_format_bytes(totals.unreadable, size, sizeof size);
		printf(", %s unreadable at capture", size);
	}
	if (totals.not_captured) {
		cli_format_bytes(totals.not_captured, size, sizeof size);
		printf(", %s not captured", size);
	}
	printf("\n");
	char core[32];
	cli_format_bytes(snapshot_file_size(snapshot), size, sizeof size);
	cli_format_bytes(snapshot_core_size(snapshot), core, sizeof core);
	if (snapshot_is_compressed(snapshot))
		printf("file      %s, a %s core compressed %.1fx\n", size, core,
		       (double)snapshot_core_size(snapshot) /
			       (double)(snapshot_file_size(snapshot) ? snapshot_file_size(snapshot) : 1));
	else
		printf("file      %s, uncompressed core (`heapsnap import` compresses it)\n", size);
}

int cmd_info(int argc, char **argv)
{
	int format = FORMAT_TEXT;
	bool verify = false;
	struct { /* where the modules' files and debug files are looked for */
		const char *debug_dir, *sysroot, *debuginfod_urls;
		bool no_debuginfod;
	} where = {0};
	const struct cli_option options[] = {
		CLI_CHOICE("format", "F", &format, formats, "text (default) or json (schema " HEAPSNAP_SCHEMA_INFO ")"),
		CLI_FLAG(0, "verify", &verify, "decompress the whole file and check every frame's checksum"),
		CLI_STRING(0, "debug-dir", "DIR", &where.debug_dir,
			   "where separate debug files are (default /usr/lib/debug)"),
		CLI_STRING(0, "sysroot", "DIR", &where.sysroot,
			   "where the process's files are (its container's root)"),
		CLI_STRING(0, "debuginfod", "URLS", &where.debuginfod_urls,
			   "the debuginfod servers asked for missing debug info\n"
			   "(default $DEBUGINFOD_URLS)"),
		CLI_FLAG(0, "no-debuginfod", &where.no_debuginfod, "ask no debuginfod server"),
		CLI_END};
	int first;
	int status = cli_parse_options(&help, options, argc, argv, &first);
	if (status != CLI_PARSED)
		return status;
	struct hs_error err;
	struct snapshot *snapshot = snapshot_open(argv[first], 0, &err);
	if (snapshot == NULL)
		return cli_fail("info", &err);
	if (verify && snapshot_verify(snapshot, &err) != 0) {
		snapshot_close(snapshot);
		return cli_fail("info", &err);
	}
	struct names names = {0};
	module_files_init(&names.files, snapshot, where.sysroot);
	names.symbols = symbols_new(snapshot, where.debug_dir, &names.files, &names.warnings);
	if (names.symbols == NULL) {
		snapshot_close(snapshot);
		hs_error_nomem(&err, "reading the modules of %s", argv[first]);
		return cli_fail("info", &err);
	}
	symbols_use_debuginfod(names.symbols,
			       &(struct debug_fetch_options){where.debuginfod_urls,
							     where.no_debuginfod,
							     progress_fetch_observer()});
	for (size_t i = 0; i < symbols_module_count(names.symbols); i++)
		symbols_module_at(names.symbols, i); /* (the requests, before any output) */
	symbols_warn_unfetched(names.symbols);
	if (format == FORMAT_JSON)
		print_json(snapshot, &names);
	else
		print_text(snapshot, &names);
	cli_print_warnings("info", &names.warnings);
	symbols_free(names.symbols);
	warnings_free(&names.warnings);
	snapshot_close(snapshot);
	return EXIT_OK;
}
