/* `heapsnap import CORE`: option parsing and the one-line result; the work is import_core. */
#include <stdio.h>

#include "capture/core_import.h"
#include "cli/cli.h"

static const struct cli_command_help help = {
	.program = "heapsnap",
	.name = "import",
	.operands = 1,
	.expects = "expects one CORE file",
	.arguments = "CORE",
	.about = "Turn an uncompressed 64-bit x86-64 ELF core file (from gcore, the kernel, or\n"
		 "`coredumpctl dump`) into a snapshot. Every segment and note of the core is kept.\n",
	.epilogue =
		"Build-ids of modules come from the core when it holds their ELF headers, otherwise from\n"
		"the files on this machine: import a core where it was made. What the core leaves out\n"
		"of mapped files (gcore: their code and read-only data; the kernel: all but the first\n"
		"page) the analysis reads from the files, checked by build-id.\n",
};

int cmd_import(int argc, char **argv)
{
	const char *output = NULL;
	struct seekable_options compression = {0};
	const struct cli_option options[] = {
		CLI_STRING('o', "output", "FILE", &output,
			   "where to write (default: CORE's file name + .snap, here)"),
		CLI_COMPRESSION_OPTIONS(&compression), CLI_END};
	int first;
	int status = cli_parse_options(&help, options, argc, argv, &first);
	if (status != CLI_PARSED)
		return status;
	struct import_result result;
	struct hs_error err;
	if (import_core(argv[first], output, &compression, &result, &err) != 0)
		return cli_fail("import", &err);
	char memory[32], file[32];
	cli_format_bytes(result.memory_bytes, memory, sizeof memory);
	cli_format_bytes(result.file_bytes, file, sizeof file);
	printf("%s: %s of memory in %s, %zu threads, %zu segments, %zu notes, %zu modules\n",
	       result.path, memory, file, result.threads, result.segments, result.notes,
	       result.modules);
	if (result.missing_files == 1)
		fprintf(stderr,
			"heapsnap import: warning: a mapped file is not on this machine (%s): what the "
			"core lacks of it (code, read-only data) cannot be read; analyse where the "
			"process ran\n",
			result.missing_file);
	else if (result.missing_files > 1)
		fprintf(stderr,
			"heapsnap import: warning: %zu mapped files are not on this machine (%s, ...): "
			"what the core lacks of them (code, read-only data) cannot be read; analyse "
			"where the process ran\n",
			result.missing_files, result.missing_file);
	return EXIT_OK;
}
