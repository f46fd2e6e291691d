/* The `heapsnap` program: a thin front end that dispatches to one function per command, from one
 * table of them (git's commands[]). Run by the name `heapdiff`, it is the diff command. */
#include <libgen.h>
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

struct command {
	const char *name;
	const char *arguments; /* in the list of commands */
	const char *about;     /* one line */
	int (*run)(int argc, char **argv);
	/* it analyses a snapshot: glibc's malloc is tuned for that first (cli_prepare_memory) */
	bool analyses;
};

static const struct command commands[] = {
	{"capture", "PID [-o FILE]", "copy a live process's heap state into a snapshot", cmd_capture,
	 false},
	{"import", "CORE [-o FILE]", "turn an ELF core file (gcore, kernel) into a snapshot",
	 cmd_import, false},
	{"info", "FILE", "what a snapshot holds: process, threads, modules, regions", cmd_info,
	 false},
	{"list", "FILE", "one line per heap allocation: address, size, live or free", cmd_list, true},
	{"summary", "FILE", "the heap in totals, per arena, by type and size", cmd_summary, true},
	{"diff", "BEFORE AFTER", "what grew between two snapshots, and what keeps it (heapdiff)",
	 cmd_diff, true},
	{"export", "FILE", "the object graph as a Chrome DevTools heap snapshot", cmd_export, true},
	{"watch", "PID --every T", "capture on a schedule, name the types that keep growing",
	 cmd_watch, true},
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void print_usage(FILE *out)
{
	fputs("usage: heapsnap COMMAND [ARGS]\n"
	      "\n"
	      "Find what makes a process's memory grow, from outside it.\n"
	      "\n"
	      "commands:\n",
	      out);
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		char left[64];
		snprintf(left, sizeof left, "%s %s", commands[i].name, commands[i].arguments);
		fprintf(out, "  %-22s  %s\n", left, commands[i].about);
	}
	fputs("\n"
	      "`heapsnap COMMAND --help` describes each command; `heapsnap --version` prints the version.\n"
	      "Exit status: 0 success, 2 bad usage or input (the message says what and where).\n",
	      out);
}

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
	char name[256];
	snprintf(name, sizeof name, "%s", argv[0] ? argv[0] : "heapsnap");
	if (strcmp(basename(name), "heapdiff") == 0) {
		cli_program = "heapdiff";
		cli_prepare_memory(argv);
		return cmd_diff(argc, argv);
	}
	if (argc < 2) {
		print_usage(stderr);
		return EXIT_ERROR;
	}
	const char *command = argv[1];
	if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
	    strcmp(command, "help") == 0) {
		print_usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(command, "--version") == 0) {
		printf("heapsnap %s\n", HEAPSNAP_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		if (strcmp(command, commands[i].name) != 0)
			continue;
		if (commands[i].analyses)
			cli_prepare_memory(argv);
		return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "heapsnap: unknown command '%s'\n\n", command);
	print_usage(stderr);
	return EXIT_ERROR;
}
