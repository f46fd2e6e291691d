/* `heapsnap capture PID`: option parsing and the one-line result; the work is capture_process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/capture.h"
#include "cli/capture_sites.h"
#include "cli/cli.h"

static const struct cli_command_help help = {
	.program = "heapsnap",
	.name = "capture",
	.operands = 1,
	.expects = "expects one PID",
	.arguments = "PID",
	.about =
		"Stop every thread of process PID, read their registers, take its writable memory, let it\n"
		"run again, then compress and write a snapshot: the memory exactly as it was while the\n"
		"process was stopped. The process's memory is never written to, and the process never left\n"
		"stopped: if heapsnap is killed, it is let go (by the kernel, or by heapsnap-keeper).\n"
		"\n"
		"Two methods take the memory (fork by default):\n"
		"  fork    while stopped, the process runs one `clone` system call (heapsnap sets one\n"
		"          thread's registers for it and puts them back): the kernel copies its page tables,\n"
		"          not its pages, so the pause is short (milliseconds per GiB: the time the kernel's\n"
		"          own fork() of the process takes). The clone is held stopped and never runs; the\n"
		"          process runs again at once, the memory is read from the clone as it is\n"
		"          compressed (through /proc/PID/mem, whatever HEAPSNAP_PROC_MEM says:\n"
		"          process_vm_readv would make the kernel copy every page it reads from a clone;\n"
		"          and never copied whole into heapsnap's memory, which stays small), then the\n"
		"          clone is killed and reaped (a second stop of one thread, for a `wait4`). The\n"
		"          process gets no signal and keeps no child. The ptrace work is done by a helper,\n"
		"          heapsnap-keeper, in a session of its own: if heapsnap is killed at any moment,\n"
		"          even by SIGKILL or with its process group, the keeper finishes the step it is\n"
		"          in, lets the process go and removes the clone. Costs: the pages the process\n"
		"          writes while the clone lives are copied (copy-on-write), so its memory grows by\n"
		"          at most what it writes until the snapshot is written (seconds per GiB); the\n"
		"          clone holds its open files until it dies\n"
		"          (a socket the process closes meanwhile is not shut until then).\n"
		"          Not used (freeze instead, with one line on stderr saying why) under a seccomp\n"
		"          filter, under strict overcommit (vm.overcommit_memory=2), for a stopped process,\n"
		"          or when the clone fails.\n"
		"  freeze  copy every writable page while the process is stopped, into heapsnap's memory:\n"
		"          a pause that grows with the memory, tenths of a second per GiB. It is the\n"
		"          kernel's copy (process_vm_readv, one reader a CPU), which the machine's memory\n"
		"          bandwidth bounds: bench/README.md measures it against a bare copy. Where the\n"
		"          kernel tracks written pages (soft-dirty), most of it is made beforehand while\n"
		"          the process runs (see --no-precopy), and the pause copies what changed.\n"
		"          heapsnap holds as much memory as it copies until the snapshot is written.\n"
		"\n"
		"With --sites DURATION, heapsnap first records, for DURATION, where the process allocates\n"
		"(eBPF uprobes on its malloc, free and their kin: glibc, jemalloc, tcmalloc or mimalloc),\n"
		"then captures: the blocks allocated during the window and still live carry their call\n"
		"stack (return addresses, named at analysis time), which summary and heapdiff show\n"
		"as the hook's sites. Blocks allocated before the window have no site.\n"
		"Needs root (or CAP_BPF and CAP_PERFMON); where BPF is refused heapsnap exits 2 and\n"
		"names the alternative, the hook (LD_PRELOAD=libheapsnap.so HEAPSNAP_SITES=1).\n"
		"Cost: while the window is open every malloc and free of the process traps into the\n"
		"kernel, so it runs slower; recording every allocation (the default) costs more\n"
		"still, each one's stack being copied and unwound. --sites-sample records fewer and\n"
		"costs less, but not the traps (bench/README.md measures both).\n",
	.epilogue =
		"The snapshot is created with mode 0600: it holds the process's memory, secrets included.\n"
		"Needs ptrace permission on PID: the same user (and YAMA ptrace_scope 0), or root.\n"
		"\n"
		"Environment: HEAPSNAP_PROC_MEM=1 reads memory through /proc/PID/mem instead of\n"
		"process_vm_readv (which is tried first, and given up automatically when refused).\n",
};

static const struct cli_choice methods[] = {
	{"fork", CAPTURE_METHOD_FORK}, {"freeze", CAPTURE_METHOD_FREEZE}, {NULL, 0}};

int cmd_capture(int argc, char **argv)
{
	struct capture_options capture = {0};
	uint64_t sites_window_ns = 0;
	int sites_sample = 0, sites_max = SITES_DEFAULT_MAX_LIVE;
	bool verbose = false;
	int method = CAPTURE_METHOD_DEFAULT;
	const char *proc_mem = getenv("HEAPSNAP_PROC_MEM");
	capture.use_proc_mem = proc_mem != NULL && strcmp(proc_mem, "1") == 0;
	const struct cli_option options[] = {
		CLI_STRING('o', "output", "FILE", &capture.output_path,
			   "where to write (default heapsnap-PID-YYYYmmddTHHMMSS.snap, UTC)"),
		CLI_CHOICE("method", "M", &method, methods, "fork or freeze (see above)"),
		CLI_COMPRESSION_OPTIONS(&capture.compression),
		CLI_FLAG('v', "verbose", &verbose, "print where the time went, by phase, on stderr"),
		CLI_FLAG(0, "no-precopy", &capture.no_precopy,
			 "freeze: copy everything while the process is stopped (a longer pause); the\n"
			 "pre-copy resets the process's soft-dirty page bits (kernel state used to\n"
			 "see what changed), which a tool tracking the same process with them,\n"
			 "such as CRIU, would notice. Without root the pre-copy is not available."),
		CLI_CALLBACK("sites", "DURATION", &sites_window_ns, capture_sites_parse_duration,
			     "a duration (10s, 2m, 500ms; seconds without a unit)",
			     "record allocation sites for DURATION before the capture (see\n"
			     "above); Ctrl-C ends the window early and still captures"),
		CLI_INT("sites-sample", "BYTES", &sites_sample, 0, 0x7fffffff,
			"with --sites: record one allocation per BYTES allocated, on\n"
			"average (as tcmalloc's heap profiler samples), not every one:\n"
			"the counts by site become estimates (the snapshot says so)"),
		CLI_INT("sites-max", "N", &sites_max, 1024, 0x7fffffff,
			"with --sites: at most N live allocations recorded (the kernel map's\n"
			"size, about 64 bytes each; default 262144); a warning says how\n"
			"many were not"),
		CLI_END};
	int first;
	int status = cli_parse_options(&help, options, argc, argv, &first);
	if (status != CLI_PARSED)
		return status;
	capture.method = (enum capture_method_kind)method;
	long long value;
	if (!cli_parse_int(argv[first], 1, 0x7fffffff, &value))
		return cli_usage_error("capture", "'%s' is not a process id", argv[first]);

	if (sites_window_ns == 0 && (sites_sample || sites_max != SITES_DEFAULT_MAX_LIVE))
		return cli_usage_error("capture", "--sites-sample and --sites-max go with --sites");
	struct sites_recorder *recorder = NULL;
	struct capture_hooks hooks;
	if (sites_window_ns) {
		struct sites_recorder_options recording = {.sample_bytes = (uint64_t)sites_sample,
							   .max_live = (uint32_t)sites_max};
		recorder = capture_sites_record((pid_t)value, sites_window_ns, &recording);
		if (recorder == NULL)
			return EXIT_ERROR;
		sites_recorder_capture_hooks(recorder, &hooks);
		capture.hooks = &hooks;
	}
	struct capture_result result;
	struct hs_error err;
	int failed = capture_process((pid_t)value, &capture, &result, &err);
	if (recorder && failed == 0)
		capture_sites_report(recorder, (uint64_t)sites_sample, (uint32_t)sites_max);
	sites_recorder_free(recorder);
	if (result.fork_declined[0])
		fprintf(stderr, "heapsnap capture: using the freeze method, not fork: %s\n",
			result.fork_declined);
	if (failed != 0)
		return cli_fail("capture", &err);
	char memory[32], file[32];
	cli_format_bytes(result.memory_bytes, memory, sizeof memory);
	cli_format_bytes(result.file_bytes, file, sizeof file);
	char frozen[32];
	cli_format_bytes(result.frozen_copy_bytes, frozen, sizeof frozen);
	char detail[64] = "";
	if (result.method == CAPTURE_METHOD_FORK)
		snprintf(detail, sizeof detail, ", and %.1f ms to reap the clone",
			 (double)result.reap_pause_ns / 1e6);
	printf("%s: %s of memory in %s, %zu threads, %zu regions, %zu modules, target paused "
	       "%.1f ms by %s (%s copied while paused%s%s)\n",
	       result.path, memory, file, result.threads, result.regions, result.modules,
	       (double)result.pause_ns / 1e6,
	       result.method == CAPTURE_METHOD_FORK ? "fork" : "freeze", frozen,
	       result.precopied ? ", the rest before" : "", detail);
	if (result.reap_failed[0])
		fprintf(stderr, "heapsnap capture: warning: %s (the snapshot is whole)\n",
			result.reap_failed);
	if (verbose) {
		static const char *const names[CAPTURE_PHASES] = {
			"prepare", "pre-copy", "freeze", "plan (frozen)", "copy (frozen)", "thaw",
			"compress and write (by fork: reading the clone)", "clone (frozen)",
			"plan from the clone", "wait for the clone's reaping"};
		fprintf(stderr, "heapsnap capture: time by phase:");
		for (int phase = 0; phase < CAPTURE_PHASES; phase++)
			fprintf(stderr, "%s %s %.1f ms", phase ? "," : "", names[phase],
				(double)result.phase_ns[phase] / 1e6);
		fprintf(stderr, "\n");
	}
	if (result.absent_bytes > 0) {
		char absent[32];
		cli_format_bytes(result.absent_bytes, absent, sizeof absent);
		fprintf(stderr, "heapsnap capture: warning: %s of pid %lld could not be read and is "
				"recorded as absent (see `heapsnap info`)\n",
			absent, value);
	}
	return EXIT_OK;
}
