/* Helpers shared by the command front ends: option values, sizes for people, output formats. The
 * front ends are the only code that prints errors or decides exit codes. */
#ifndef HEAPSNAP_CLI_H
#define HEAPSNAP_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"

enum { EXIT_OK = 0, EXIT_FINDING = 1, EXIT_ERROR = 2 };

enum output_format { FORMAT_TEXT, FORMAT_JSON, FORMAT_MARKDOWN };

/* Prints "heapsnap COMMAND: MESSAGE" to stderr and returns EXIT_ERROR. */
int cli_fail(const char *command, const struct hs_error *err);
/* Prints a usage error with a pointer to --help and returns EXIT_ERROR. */
int cli_usage_error(const char *command, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/* Parses a whole decimal integer in [min, max]; false on junk. */
bool cli_parse_int(const char *text, long long min, long long max, long long *out);
bool cli_parse_format(const char *text, bool allow_markdown, enum output_format *out);

/* The --level and --threads options of the commands that write snapshots. */
#define CLI_COMPRESSION_OPTIONS                                                               \
	{"level", required_argument, NULL, 'l'}, { "threads", required_argument, NULL, 't' }
struct seekable_options;
/* Handles option 'l' or 't'; returns false (after printing the usage error) on a bad value. */
bool cli_compression_option(const char *command, int option, const char *value,
			    struct seekable_options *options);

/* "1.5 GiB", "312 KiB", "17 B" */
void cli_format_bytes(uint64_t bytes, char *out, size_t out_size);

int cmd_capture(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_info(int argc, char **argv);

#endif
