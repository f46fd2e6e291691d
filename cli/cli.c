/* Front-end helpers (see cli.h). */
#include "cli.h"

#include <getopt.h>

#include "analyze/analysis.h"
#include "common/warnings.h"
#include "formats/seekable.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(const char *command, const struct hs_error *err)
{
	fprintf(stderr, "heapsnap %s: %s\n", command, err->message);
	return EXIT_ERROR;
}

int cli_usage_error(const char *command, const char *format, ...)
{
	fprintf(stderr, "heapsnap %s: ", command);
	va_list args;
	va_start(args, format);
	vfprintf(stderr, format, args);
	va_end(args);
	fprintf(stderr, " (see `heapsnap %s --help`)\n", command);
	return EXIT_ERROR;
}

bool cli_parse_int(const char *text, long long min, long long max, long long *out)
{
	if (text == NULL || *text == '\0')
		return false;
	char *end;
	errno = 0;
	long long value = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0' || value < min || value > max)
		return false;
	*out = value;
	return true;
}

bool cli_parse_format(const char *text, bool allow_markdown, enum output_format *out)
{
	if (strcmp(text, "text") == 0)
		*out = FORMAT_TEXT;
	else if (strcmp(text, "json") == 0)
		*out = FORMAT_JSON;
	else if (allow_markdown && strcmp(text, "markdown") == 0)
		*out = FORMAT_MARKDOWN;
	else
		return false;
	return true;
}

bool cli_compression_option(const char *command, int option, const char *value,
			    struct seekable_options *options)
{
	long long number;
	if (option == 'l') {
		if (!cli_parse_int(value, 1, 19, &number)) {
			cli_usage_error(command, "--level takes 1 to 19, not '%s'", value);
			return false;
		}
		options->level = (int)number;
	} else {
		if (!cli_parse_int(value, 1, 256, &number)) {
			cli_usage_error(command, "--threads takes 1 to 256, not '%s'", value);
			return false;
		}
		options->threads = (int)number;
	}
	return true;
}

void cli_format_bytes(uint64_t bytes, char *out, size_t out_size)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	if (bytes < 1024) {
		snprintf(out, out_size, "%llu B", (unsigned long long)bytes);
		return;
	}
	double value = (double)bytes / 1024;
	size_t unit = 0;
	while (value >= 1024 && unit + 1 < sizeof units / sizeof units[0]) {
		value /= 1024;
		unit++;
	}
	snprintf(out, out_size, value < 10 ? "%.2f %s" : value < 100 ? "%.1f %s" : "%.0f %s", value,
		 units[unit]);
}

void cli_analysis_option(int option, const char *value, struct analysis_options *options)
{
	if (option == 'd')
		options->debug_dir = value;
	else
		options->no_debuginfo = true;
}

void cli_print_warnings(const char *command, const struct warnings *warnings)
{
	for (size_t i = 0; i < warnings->count; i++)
		fprintf(stderr, "heapsnap %s: warning: %s\n", command, warnings->items[i]);
	if (warnings->dropped)
		fprintf(stderr, "heapsnap %s: warning: %zu more warnings not shown\n", command,
			warnings->dropped);
}

void cli_format_count(uint64_t count, char *out, size_t out_size)
{
	char digits[32];
	int length = snprintf(digits, sizeof digits, "%llu", (unsigned long long)count);
	size_t at = 0;
	for (int i = 0; i < length && at + 2 < out_size; i++) {
		if (i > 0 && (length - i) % 3 == 0)
			out[at++] = ',';
		out[at++] = digits[i];
	}
	out[at] = '\0';
}
