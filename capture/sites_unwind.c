/* The unwinder of sites_unwind.h: libdw's (elfutils) Dwfl unwinder, the one perf uses for
 * --call-graph dwarf, attached not to the live process but to callbacks that serve one event at a
 * time: its thread, its registers, and memory reads from its stack copy only (the live stack has
 * moved on since). The modules come from /proc/PID/maps with their .eh_frame/.debug_frame; where a
 * function has no CFI, libdw's x86-64 backend falls back to the frame-pointer chain.
 * libdw is loaded with dlopen, local: it exports dwarf_* functions under the names libdwarf's
 * (which the analysis links) has, and linking both would bind one's calls to the other's. The
 * few libdw calls through its own exported names that libdwarf also defines are DIE readers,
 * which the unwinder does not reach. */
#include "capture/sites_unwind.h"

#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>

#define LIBDW_SONAME "libdw.so.1"

/* libdw's functions this file calls, from dlsym. */
static struct {
	void *handle;
	__typeof__(dwfl_begin) *begin;
	__typeof__(dwfl_end) *end;
	__typeof__(dwfl_linux_proc_find_elf) *proc_find_elf;
	__typeof__(dwfl_standard_find_debuginfo) *find_debuginfo;
	__typeof__(dwfl_report_begin) *report_begin;
	__typeof__(dwfl_linux_proc_report) *proc_report;
	__typeof__(dwfl_report_end) *report_end;
	__typeof__(dwfl_errmsg) *errmsg;
	__typeof__(dwfl_attach_state) *attach_state;
	__typeof__(dwfl_thread_state_registers) *state_registers;
	__typeof__(dwfl_thread_state_register_pc) *state_register_pc;
	__typeof__(dwfl_getthread_frames) *getthread_frames;
	__typeof__(dwfl_frame_pc) *frame_pc;
} dw;

static bool load_libdw(void)
{
	if (dw.handle)
		return true;
	void *handle = dlopen(LIBDW_SONAME, RTLD_LAZY | RTLD_LOCAL);
	if (handle == NULL)
		return false;
#define RESOLVE(field, name) ((dw.field = (__typeof__(dw.field))dlsym(handle, name)) != NULL)
	bool all = RESOLVE(begin, "dwfl_begin") && RESOLVE(end, "dwfl_end") &&
		   RESOLVE(proc_find_elf, "dwfl_linux_proc_find_elf") &&
		   RESOLVE(find_debuginfo, "dwfl_standard_find_debuginfo") &&
		   RESOLVE(report_begin, "dwfl_report_begin") &&
		   RESOLVE(proc_report, "dwfl_linux_proc_report") &&
		   RESOLVE(report_end, "dwfl_report_end") && RESOLVE(errmsg, "dwfl_errmsg") &&
		   RESOLVE(attach_state, "dwfl_attach_state") &&
		   RESOLVE(state_registers, "dwfl_thread_state_registers") &&
		   RESOLVE(state_register_pc, "dwfl_thread_state_register_pc") &&
		   RESOLVE(getthread_frames, "dwfl_getthread_frames") &&
		   RESOLVE(frame_pc, "dwfl_frame_pc");
#undef RESOLVE
	if (!all) {
		dlclose(handle);
		return false;
	}
	dw.handle = handle;
	return true;
}

struct sites_unwinder {
	Dwfl *dwfl;
	pid_t pid;
	bool attached;
	const struct sites_event *event; /* the one being unwound */
	uint64_t *pc;
	int frames; /* frames seen, the allocator's own included */
};

static char *debuginfo_path; /* libdw's default search path */
static Dwfl_Callbacks module_callbacks = {.debuginfo_path = &debuginfo_path};

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_arg)
{
	(void)dwfl;
	struct sites_unwinder *unwinder = arg;
	if (*thread_arg != NULL || unwinder->event == NULL)
		return 0;
	*thread_arg = unwinder;
	return (pid_t)unwinder->event->tid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_arg)
{
	(void)dwfl;
	struct sites_unwinder *unwinder = arg;
	*thread_arg = unwinder;
	return unwinder->event != NULL && (pid_t)unwinder->event->tid == tid;
}

/* Words of the stack copy; anything else unreadable, as perf's unwinder. */
static bool memory_read(Dwfl *dwfl, Dwarf_Addr address, Dwarf_Word *result, void *arg)
{
	(void)dwfl;
	const struct sites_event *event = ((struct sites_unwinder *)arg)->event;
	uint64_t sp = event->regs[7];
	if (address < sp || address - sp > event->stack_size ||
	    event->stack_size - (address - sp) < sizeof *result)
		return false;
	memcpy(result, event->stack + (address - sp), sizeof *result);
	return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
	const struct sites_event *event = ((struct sites_unwinder *)thread_arg)->event;
	Dwarf_Word registers[SITES_DWARF_REGISTERS];
	for (int i = 0; i < SITES_DWARF_REGISTERS; i++)
		registers[i] = event->regs[i];
	if (!dw.state_registers(thread, 0, SITES_DWARF_REGISTERS, registers))
		return false;
	dw.state_register_pc(thread, event->ip);
	return true;
}

static void detach(Dwfl *dwfl, void *arg)
{
	(void)dwfl;
	(void)arg;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
	.next_thread = next_thread,
	.get_thread = get_thread,
	.memory_read = memory_read,
	.set_initial_registers = set_initial_registers,
	.detach = detach,
};

static bool report_modules(struct sites_unwinder *unwinder)
{
	dw.report_begin(unwinder->dwfl);
	int reported = dw.proc_report(unwinder->dwfl, unwinder->pid);
	return dw.report_end(unwinder->dwfl, NULL, NULL) == 0 && reported == 0;
}

struct sites_unwinder *sites_unwinder_open(pid_t pid, struct hs_error *err)
{
	struct sites_unwinder *unwinder = calloc(1, sizeof *unwinder);
	if (unwinder == NULL) {
		hs_error_nomem(err, "starting the unwinder");
		return NULL;
	}
	unwinder->pid = pid;
	if (!load_libdw()) {
		hs_error_set_code(err, HS_ERR_UNSUPPORTED,
				  "cannot load %s (elfutils' libdw, Debian package libdw1), which "
				  "unwinds the recorded stacks: %s",
				  LIBDW_SONAME, dlerror());
		free(unwinder);
		return NULL;
	}
	module_callbacks.find_elf = dw.proc_find_elf;
	module_callbacks.find_debuginfo = dw.find_debuginfo;
	unwinder->dwfl = dw.begin(&module_callbacks);
	if (unwinder->dwfl == NULL || !report_modules(unwinder)) {
		hs_error_set_code(err, HS_ERR_UNSUPPORTED,
				  "cannot read the modules of pid %d for unwinding its stacks "
				  "(libdw: %s)",
				  (int)pid, dw.errmsg(-1));
		sites_unwinder_close(unwinder);
		return NULL;
	}
	return unwinder;
}

static int keep_frame(Dwfl_Frame *frame, void *arg)
{
	struct sites_unwinder *unwinder = arg;
	Dwarf_Addr pc;
	if (!dw.frame_pc(frame, &pc, NULL))
		return DWARF_CB_ABORT;
	int index = unwinder->frames++ - 1; /* frame 0: the allocator's entry */
	if (index >= 0)
		unwinder->pc[index] = pc;
	return index + 1 >= HEAPSNAP_SITE_FRAMES ? DWARF_CB_ABORT : DWARF_CB_OK;
}

int sites_unwinder_unwind(struct sites_unwinder *unwinder, const struct sites_event *event,
			  uint64_t pc[HEAPSNAP_SITE_FRAMES])
{
	memset(pc, 0, HEAPSNAP_SITE_FRAMES * sizeof *pc);
	if (event->stack_size == 0)
		return 0;
	/* attached at the first event: libdw asks for a thread's registers as it attaches */
	unwinder->event = event;
	if (!unwinder->attached) {
		unwinder->attached =
			dw.attach_state(unwinder->dwfl, NULL, unwinder->pid, &thread_callbacks,
					  unwinder);
		if (!unwinder->attached) {
			unwinder->event = NULL;
			return 0;
		}
	}
	unwinder->pc = pc;
	unwinder->frames = 0;
	/* the end of the frames it could follow is an error to libdw; the frames stand */
	dw.getthread_frames(unwinder->dwfl, (pid_t)event->tid, keep_frame, unwinder);
	unwinder->event = NULL;
	return unwinder->frames > 0 ? unwinder->frames - 1 : 0;
}

void sites_unwinder_close(struct sites_unwinder *unwinder)
{
	if (unwinder == NULL)
		return;
	if (unwinder->dwfl)
		dw.end(unwinder->dwfl);
	free(unwinder);
}
