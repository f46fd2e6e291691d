/* The Prometheus metrics of one snapshot (openmetrics.h): the families in a fixed order, each
 * with its HELP and TYPE lines and its samples together, as the text format requires. */
#include "cli/openmetrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analysis.h"
#include "analyze/reports/summary.h"
#include "analyze/reports/trend.h"
#include "common/fnv.h"

/* The length of the valid UTF-8 sequence at `at` (1 to 4), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *at)
{
	size_t length = at[0] < 0x80 ? 1 : (at[0] & 0xe0) == 0xc0 ? 2 : (at[0] & 0xf0) == 0xe0 ? 3
					  : (at[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (length == 2 && at[0] < 0xc2)
		return 0; /* overlong */
	for (size_t i = 1; i < length; i++)
		if ((at[i] & 0xc0) != 0x80)
			return 0;
	return length;
}

void openmetrics_label_value(const char *text, char *out)
{
	/* room for a cut name's "~" and hash */
	enum { HASH_TAIL = 9, KEPT_MAX = OPENMETRICS_LABEL_MAX - HASH_TAIL };
	const unsigned char *at = (const unsigned char *)text;
	size_t length = 0;
	bool changed = false;
	while (*at && length < OPENMETRICS_LABEL_MAX) {
		size_t sequence = utf8_sequence(at);
		if (sequence == 0 || (sequence == 1 && (*at < 0x20 || *at == 0x7f))) {
			out[length++] = '?';
			changed = true;
			at++;
			continue;
		}
		if (length + sequence > OPENMETRICS_LABEL_MAX)
			break;
		memcpy(out + length, at, sequence);
		length += sequence;
		at += sequence;
	}
	changed = changed || *at != '\0';
	if (changed) {
		/* cut back to a character's start, then the hash of the whole original */
		if (length > KEPT_MAX)
			length = KEPT_MAX;
		while (length > 0 && ((unsigned char)out[length] & 0xc0) == 0x80)
			length--;
		snprintf(out + length, OPENMETRICS_LABEL_MAX + 1 - length, "~%08" PRIx32,
			 (uint32_t)fnv1a_text(0xcbf29ce484222325ull, text));
		return;
	}
	out[length] = '\0';
}

/* The label value, escaped as the text format asks (backslash, double quote, newline). */
static void write_label(FILE *out, const char *name, const char *value)
{
	char bounded[OPENMETRICS_LABEL_MAX + 1];
	openmetrics_label_value(value, bounded);
	fprintf(out, "%s=\"", name);
	for (const char *c = bounded; *c; c++) {
		if (*c == '\\' || *c == '"')
			fputc('\\', out);
		fputc(*c, out);
	}
	fputc('"', out);
}

static void write_family(FILE *out, const char *name, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* One sample: NAME{pid="..",program="..",[type=".."]} VALUE */
static void write_sample(FILE *out, const char *name, const struct analysis *analysis,
			 const char *type, double value)
{
	const struct snapshot_info *info = snapshot_info(analysis->snapshot);
	fprintf(out, "%s{pid=\"%d\",", name, info->pid);
	write_label(out, "program", info->program[0] ? info->program : info->exe);
	if (type) {
		fputc(',', out);
		write_label(out, "type", type);
	}
	fprintf(out, "} %.15g\n", value);
}

static bool is_suspect(const struct openmetrics_options *options, const char *name)
{
	for (size_t i = 0; i < options->suspect_count; i++)
		if (strcmp(options->suspects[i], name) == 0)
			return true;
	return false;
}

/* Every live allocation by type, reachable or not, by bytes (live_type_groups). */
struct live_types {
	struct type_group *groups;
	size_t count;
};

/* Whether type group `i` has series of its own. */
static bool shown(const struct live_types *types, const struct openmetrics_options *options,
		  size_t i)
{
	if (i < options->top_types)
		return true;
	char name[1024];
	type_group_name(&types->groups[i], name, sizeof name);
	return is_suspect(options, name);
}

enum type_measure { MEASURE_OBJECTS, MEASURE_BYTES, MEASURE_RETAINED };

/* One per-type family: the types shown, then "(other)" for the rest (not for retained bytes,
 * which do not add up across types: one type's objects can retain another's). */
static void write_type_family(FILE *out, const struct analysis *analysis,
			      const struct live_types *types,
			      const struct openmetrics_options *options, const char *family,
			      const char *help, enum type_measure measure)
{
	write_family(out, family, help);
	uint64_t rest = 0;
	size_t rest_count = 0;
	for (size_t i = 0; i < types->count; i++) {
		const struct type_group *group = &types->groups[i];
		uint64_t value = measure == MEASURE_OBJECTS ? group->count
				 : measure == MEASURE_BYTES ? group->bytes
							    : group->retained;
		if (!shown(types, options, i)) {
			rest += value;
			rest_count++;
			continue;
		}
		char name[1024];
		type_group_name(group, name, sizeof name);
		write_sample(out, family, analysis, name, (double)value);
	}
	if (rest_count && measure != MEASURE_RETAINED)
		write_sample(out, family, analysis, "(other)", (double)rest);
}

static void write_types(FILE *out, const struct analysis *analysis,
			const struct live_types *types, const struct openmetrics_options *options)
{
	write_type_family(out, analysis, types, options, "heapsnap_objects",
			  "Live objects (allocations) of the type, reachable or not; type=\"(other)\" "
			  "sums the types not shown.",
			  MEASURE_OBJECTS);
	write_type_family(out, analysis, types, options, "heapsnap_bytes",
			  "Bytes of the live objects of the type; type=\"(other)\" sums the types "
			  "not shown.",
			  MEASURE_BYTES);
	if (options->retained && analysis->has_graph)
		write_type_family(out, analysis, types, options, "heapsnap_retained_bytes",
				  "Bytes the objects of the type retain (dominator tree), counting "
				  "once what they retain of one another.",
				  MEASURE_RETAINED);
	if (!options->judged)
		return;
	write_family(out, "heapsnap_leak_suspect",
		     "1 when heapsnap watch judges the type a leak suspect (docs/watch.md), else 0.");
	for (size_t i = 0; i < types->count; i++) {
		if (!shown(types, options, i))
			continue;
		char name[1024];
		type_group_name(&types->groups[i], name, sizeof name);
		write_sample(out, "heapsnap_leak_suspect", analysis, name,
			     is_suspect(options, name) ? 1 : 0);
	}
}

/* The per-process families. */
static void write_process(FILE *out, const struct analysis *analysis,
			  const struct openmetrics_options *options)
{
	const struct snapshot_info *info = snapshot_info(analysis->snapshot);
	uint64_t live = 0, free_bytes = 0;
	for (size_t i = 0; i < analysis->heap.arena_count; i++) {
		live += analysis->heap.arenas[i].live_bytes;
		free_bytes += analysis->heap.arenas[i].free_bytes;
	}
	write_family(out, "heapsnap_heap_live_bytes", "Bytes of live allocations in the heaps walked.");
	write_sample(out, "heapsnap_heap_live_bytes", analysis, NULL, (double)live);
	write_family(out, "heapsnap_heap_free_bytes",
		     "Bytes of free chunks the allocators hold in the heaps walked.");
	write_sample(out, "heapsnap_heap_free_bytes", analysis, NULL, (double)free_bytes);
	write_family(out, "heapsnap_unseen_bytes",
		     "Bytes the process wrote outside every heap heapsnap walks: memory no type "
		     "counts.");
	write_sample(out, "heapsnap_unseen_bytes", analysis, NULL,
		     (double)analysis->outside_heaps.bytes);
	write_family(out, "heapsnap_analysis_warnings",
		     "Warnings the analysis gave (what it could not read); see heapsnap summary.");
	write_sample(out, "heapsnap_analysis_warnings", analysis, NULL,
		     (double)(analysis->warnings.count + analysis->warnings.dropped));
	if (info->has_pause) {
		write_family(out, "heapsnap_capture_pause_seconds",
			     "How long the capture stopped the process.");
		write_sample(out, "heapsnap_capture_pause_seconds", analysis, NULL,
			     (double)info->pause_ns / 1e9);
	}
	if (options->capture_seconds > 0) {
		write_family(out, "heapsnap_capture_duration_seconds",
			     "How long the capture took, from the first stop to the snapshot written.");
		write_sample(out, "heapsnap_capture_duration_seconds", analysis, NULL,
			     options->capture_seconds);
	}
	if (info->capture_start_ns) {
		write_family(out, "heapsnap_capture_timestamp_seconds",
			     "When the snapshot was taken (Unix time).");
		write_sample(out, "heapsnap_capture_timestamp_seconds", analysis, NULL,
			     (double)(info->capture_start_ns / 1000000) / 1e3);
	}
}

int openmetrics_write(FILE *out, const struct analysis *analysis,
		      const struct heap_summary *summary, const struct openmetrics_options *options,
		      struct hs_error *err)
{
	struct live_types types;
	if (live_type_groups(summary, &types.groups, &types.count, err) != 0)
		return -1;
	write_process(out, analysis, options);
	write_types(out, analysis, &types, options);
	fputs("# EOF\n", out);
	free(types.groups);
	if (fflush(out) != 0 || ferror(out))
		return hs_error_set_errno(err, errno ? errno : EIO, "cannot write the metrics");
	return 0;
}
