/* `heapsnap import CORE`: option parsing and the one-line result; the work is import_core. */
#include <getopt.h>
#include <stdio.h>

#include "capture/core_import.h"
#include "cli/cli.h"

static const char usage[] =
	"usage: heapsnap import CORE [-o FILE] [--level N] [--threads N]\n"
	"\n"
	"Turn an uncompressed 64-bit x86-64 ELF core file (from gcore, the kernel, or\n"
	"`coredumpctl dump`) into a snapshot. Every segment and note of the core is kept.\n"
	"\n"
	"  -o, --output FILE  where to write (default: CORE's file name + .snap, here)\n"
	"  --level N          zstd level, 1 (fast, default) to 19 (small)\n"
	"  --threads N        compression threads (default: one per CPU)\n"
	"\n"
	"Build-ids of modules come from the core when it holds their ELF headers, otherwise from\n"
	"the files on this machine: import a core where it was made. What the core leaves out\n"
	"of mapped files (gcore: their code and read-only data; the kernel: all but the first\n"
	"page) the analysis reads from the files, checked by build-id.\n";

int cmd_import(int argc, char **argv)
{
	static const struct option options[] = {{"output", required_argument, NULL, 'o'},
						 CLI_COMPRESSION_OPTIONS,
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	const char *output = NULL;
	struct seekable_options compression = {0};
	int option;
	optind = 1;
	while ((option = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
		switch (option) {
		case 'o':
			output = optarg;
			break;
		case 'l':
		case 't':
			if (!cli_compression_option("import", option, optarg, &compression))
				return EXIT_ERROR;
			break;
		default: {
			int status = cli_common_option("import", usage, option, optarg, NULL);
			if (status != CLI_OPTION_TAKEN)
				return status;
		}
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("import", "expects one CORE file");
	struct import_result result;
	struct hs_error err;
	if (import_core(argv[optind], output, &compression, &result, &err) != 0)
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
