/* `heapsnap list FILE`: one line per allocation, as text or JSON lines. */
#include <stdio.h>
#include <string.h>

#include "analyze/analysis.h"
#include "analyze/graph/paths.h"
#include "cli/cli.h"
#include "cli/list_lines.h"
#include "cli/progress.h"

static const struct cli_command_help help = {
	.program = "heapsnap",
	.name = "list",
	.operands = 1,
	.expects = "expects one FILE",
	.arguments = "FILE",
	.about =
		"One line per heap allocation of the snapshot: the address the program got from malloc,\n"
		"its usable size (what malloc_usable_size returns), live or free, where it is (in use,\n"
		"mmapped, tcache, fastbin, bin, top, metadata, pool, pool_free), and its type when known.\n"
		"In a Python process, \"python\" says what a block is to CPython: \"tracked\" (an object\n"
		"the cyclic collector tracks), \"object\" (one it does not), \"immortal\" (3.12+), \"part\"\n"
		"(a block that belongs to an object: a list's items, a dict's keys and values), and\n"
		"\"generation\" the collector's generation (0 to 2) whose list a tracked object is in.\n",
};

static const struct cli_choice states[] = {
	{"live", ALLOCATION_LIVE}, {"free", ALLOCATION_FREE}, {"all", LIST_ALL_STATES}, {NULL, 0}};
static const struct cli_choice formats[] = {{"text", 0}, {"jsonl", 1}, {NULL, 0}};

/* Appends `text` to `out`, then spaces up to `width` characters. */
static char *put_padded(char *out, const char *text, size_t width)
{
	size_t length = strlen(text);
	memcpy(out, text, length);
	for (; length < width; length++)
		out[length] = ' ';
	return out + length;
}

/* One line of the text listing, as printf("0x%012llx %12llu  %-4s  %-8s  %s%s\n") would write
 * it, formatted by hand: printf reading its format again for each of millions of lines was a
 * third of the time `list` took to print them. `tail` ends the line ("" or, --sites, "  at
 * SITE"). */
static void list_line(uint64_t address, uint64_t size, const char *state, const char *place,
		      const char *type, const char *tail)
{
	char line[512];
	if (strlen(state) + strlen(place) + strlen(type) + strlen(tail) > sizeof line - 64) {
		printf("0x%012llx %12llu  %-4s  %-8s  %s%s\n", (unsigned long long)address,
		       (unsigned long long)size, state, place, type, tail);
		return;
	}
	static const char hex[] = "0123456789abcdef";
	char *out = line;
	*out++ = '0';
	*out++ = 'x';
	int digits = 12;
	while (digits < 16 && (address >> (4 * digits)) != 0)
		digits++;
	for (int d = digits - 1; d >= 0; d--)
		*out++ = hex[(address >> (4 * d)) & 15];
	*out++ = ' ';
	char decimal[24];
	int length = 0;
	do {
		decimal[length++] = (char)('0' + size % 10);
		size /= 10;
	} while (size != 0);
	for (int pad = length; pad < 12; pad++)
		*out++ = ' ';
	while (length > 0)
		*out++ = decimal[--length];
	*out++ = ' ';
	*out++ = ' ';
	out = put_padded(out, state, 4);
	*out++ = ' ';
	*out++ = ' ';
	out = put_padded(out, place, 8);
	*out++ = ' ';
	*out++ = ' ';
	out = put_padded(out, type, 0);
	out = put_padded(out, tail, 0);
	*out++ = '\n';
	fwrite(line, 1, (size_t)(out - line), stdout);
}

/* --sites, text: "  at conn_new (server.c:41) <- accept_loop (server.c:90)" (every frame
 * recorded: a listing is raw), or "  (no recorded site)". */
static void site_tail(const struct analysis *analysis, size_t index, char *out, size_t size)
{
	uint32_t site = allocation_site(&analysis->sites, index);
	const struct site_description *description =
		site ? allocation_sites_describe(&analysis->sites, analysis->symbols, site) : NULL;
	if (description)
		snprintf(out, size, "  at %s", description->chain);
	else
		snprintf(out, size, "  (no recorded site)");
}

int cmd_list(int argc, char **argv)
{
	struct analysis_options analysis_options = {0};
	int wanted = ALLOCATION_LIVE; /* LIST_ALL_STATES: all */
	int jsonl = 0;
	bool with_paths = false, show_values = false, with_sites = false;
	const struct cli_option options[] = {
		CLI_CHOICE("state", "S", &wanted, states, "live (default), free, or all"),
		CLI_FLAG(0, "paths", &with_paths,
			 "with jsonl, each live allocation's shortest path from a root\n"
			 "(\"path\": root first, its type last; null when no root reaches it)"),
		CLI_FLAG(0, "sites", &with_sites,
			 "each live allocation's site, when the snapshot records them\n"
			 "(text: \"at FUNCTION (FILE:LINE) <- CALLER ...\" after the type; jsonl:\n"
			 "\"site\", null when none was recorded); exit 2 when it records none"),
		CLI_SHOW_VALUES(&show_values),
		CLI_CHOICE("format", "F", &jsonl, formats,
			   "text (default) or jsonl: one JSON object per line,\n"
			   "{\"addr\", \"size\", \"state\", \"place\", \"type\", \"python\", \"generation\"},\n"
			   "and \"allocator\" when the process has several mallocs"),
		CLI_ANALYSIS_OPTIONS(&analysis_options), CLI_END};
	int first;
	int status = cli_parse_options(&help, options, argc, argv, &first);
	if (status != CLI_PARSED)
		return status;
	struct analysis *analysis =
		cli_open_analysis("list", argv[first], &analysis_options, !jsonl,
				  with_paths ? CLI_WHOLE_GRAPH : CLI_NO_GRAPH);
	if (analysis == NULL)
		return EXIT_ERROR;
	if (with_sites && analysis->sites.recorded == 0) {
		fprintf(stderr,
			"list: %s records no allocation sites: take the snapshot with the hook and "
			"HEAPSNAP_SITES=1 (docs/hook.md), or list it without --sites\n",
			argv[first]);
		analysis_close(analysis);
		return EXIT_ERROR;
	}
	struct hs_error err;
	struct path_index *paths = NULL;
	if (with_paths && (paths = path_index_build(&analysis->graph, &analysis->heap,
						    &analysis->types, analysis->same_type_dominated,
						    show_values, &err)) == NULL) {
		analysis_close(analysis);
		return cli_fail("list", &err);
	}
	progress_end();
	const struct heap *heap = &analysis->heap;
	int failed = 0;
	if (jsonl) {
		struct list_lines_input lines = {analysis, paths, wanted, with_sites, stdout};
		failed = list_lines_write(&lines, &err);
	} else {
		for (size_t i = 0; i < heap->count; i++) {
			const struct allocation *allocation = &heap->allocations[i];
			if (wanted != LIST_ALL_STATES && allocation->state != wanted)
				continue;
			const char *type = analysis_type(analysis, i);
			char tail[1100] = "";
			if (with_sites && allocation->state == ALLOCATION_LIVE)
				site_tail(analysis, i, tail, sizeof tail);
			list_line(allocation->address, allocation->size,
				  allocation_state_name(allocation->state),
				  allocator_place_name(heap, allocation), type ? type : "-", tail);
		}
	}
	timings_mark(&analysis->timings, "report");
	path_index_free(paths);
	if (failed) {
		analysis_close(analysis);
		return cli_fail("list", &err);
	}
	return cli_close_analysis("list", argv[first], analysis, EXIT_OK);
}
