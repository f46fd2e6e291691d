/* The `heapsnap` program: a thin front end that dispatches to one function per command, in the
 * manner of git's builtin/ directory. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "formats/snapshot_file.h"

#ifndef HEAPSNAP_VERSION
#define HEAPSNAP_VERSION "unknown"
#endif

static const char usage[] =
	"usage: heapsnap COMMAND [ARGS]\n"
	"\n"
	"Find what makes a process's memory grow, from outside it.\n"
	"\n"
	"commands:\n"
	"  capture PID [-o FILE]   copy a live process's heap state into a snapshot\n"
	"  import CORE [-o FILE]   turn an ELF core file (gcore, kernel) into a snapshot\n"
	"  info FILE               what a snapshot holds: process, threads, modules, regions\n"
	"  list FILE               one line per heap allocation: address, size, live or free\n"
	"  summary FILE            the heap in totals, per arena, by type and size\n"
	"  export FILE             the object graph as a Chrome DevTools heap snapshot\n"
	"\n"
	"`heapsnap COMMAND --help` describes each command; `heapsnap --version` prints the version.\n"
	"Exit status: 0 success, 2 bad usage or input (the message says what and where).\n";

/* A signal that ends heapsnap must not leave a half-written snapshot behind. Capture defers these
 * signals while the target is frozen, so they only arrive once it runs again. */
static void on_fatal_signal(int signal_number)
{
	snapshot_file_abandon();
	signal(signal_number, SIG_DFL);
	raise(signal_number);
}

int main(int argc, char **argv)
{
	static const int fatal[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
		struct sigaction action = {.sa_handler = on_fatal_signal};
		sigemptyset(&action.sa_mask);
		sigaction(fatal[i], &action, NULL);
	}
	/* past a file-size limit, write() must fail with EFBIG (and the temporary file be removed)
	 * rather than the process being killed with the file left behind */
	signal(SIGXFSZ, SIG_IGN);
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_ERROR;
	}
	const char *command = argv[1];
	if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
	    strcmp(command, "help") == 0) {
		fputs(usage, stdout);
		return EXIT_OK;
	}
	if (strcmp(command, "--version") == 0) {
		printf("heapsnap %s\n", HEAPSNAP_VERSION);
		return EXIT_OK;
	}
	if (strcmp(command, "capture") == 0)
		return cmd_capture(argc - 1, argv + 1);
	if (strcmp(command, "import") == 0)
		return cmd_import(argc - 1, argv + 1);
	if (strcmp(command, "info") == 0)
		return cmd_info(argc - 1, argv + 1);
	if (strcmp(command, "list") == 0 || strcmp(command, "summary") == 0 ||
	    strcmp(command, "export") == 0)
		cli_prepare_memory(argv);
	if (strcmp(command, "list") == 0)
		return cmd_list(argc - 1, argv + 1);
	if (strcmp(command, "summary") == 0)
		return cmd_summary(argc - 1, argv + 1);
	if (strcmp(command, "export") == 0)
		return cmd_export(argc - 1, argv + 1);
	fprintf(stderr, "heapsnap: unknown command '%s'\n\n%s", command, usage);
	return EXIT_ERROR;
}
