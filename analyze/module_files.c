/* Finding the files of a snapshot's modules on this machine (see module_files.h). */
#include "module_files.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze/debuginfod.h"
#include "capture/proc.h"
#include "common/open_file.h"
#include "formats/elf_build_id.h"

/* Whether process `pid` is still the one the snapshot was taken of: same boot, same start (as
 * capture read them). */
static bool still_running(const struct snapshot_info *info)
{
	if (info->pid <= 0 || info->process_start_ticks == 0 || info->boot_id[0] == '\0')
		return false;
	char boot_id[sizeof info->boot_id];
	proc_boot_id(boot_id, sizeof boot_id);
	if (strcmp(boot_id, info->boot_id) != 0)
		return false;
	struct proc_stat stat;
	return proc_read_stat(info->pid, info->pid, &stat) == 0 &&
	       stat.start_ticks == info->process_start_ticks;
}

void module_files_init(struct module_files *files, const struct snapshot *snapshot,
		       const char *sysroot)
{
	memset(files, 0, sizeof *files);
	files->sysroot = sysroot && sysroot[0] ? sysroot : NULL;
	const struct snapshot_info *info = snapshot_info(snapshot);
	files->pid = info->pid;
	if (still_running(info))
		snprintf(files->live_root, sizeof files->live_root, "/proc/%d/root", info->pid);
}

/* Appends to `why`, as far as it has room. */
__attribute__((format(printf, 3, 4))) static void say(char *why, size_t why_size,
						       const char *format, ...)
{
	size_t used = strnlen(why, why_size);
	if (used + 1 >= why_size)
		return;
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(why + used, why_size - used, format, arguments);
	va_end(arguments);
}

/* The module's file of the recorded build-id from the debuginfod servers, when they have it. */
static int open_fetched(const struct module_files *files, const struct snapshot_module *module,
			char **used_path, char *why, size_t why_size)
{
	if (files->fetch == NULL || module->build_id_size == 0)
		return -1;
	char *path = debug_fetch_file(files->fetch, module, DEBUG_FETCH_EXECUTABLE, NULL);
	int fd = path ? open_regular_file(path) : -1;
	uint8_t build_id[ELF_BUILD_ID_MAX];
	if (fd >= 0 && (elf_build_id_from_fd(fd, build_id) != module->build_id_size ||
			memcmp(build_id, module->build_id, module->build_id_size) != 0)) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		say(why, why_size, "%sdebuginfod: not had", why[0] ? "; " : "");
		free(path);
		return -1;
	}
	*used_path = path;
	return fd;
}

int module_files_open(const struct module_files *files, const struct snapshot_module *module,
		      char **used_path, char *why, size_t why_size)
{
	*used_path = NULL;
	if (why_size)
		why[0] = '\0';
	/* a file the process had deleted may be back under its name (the build-id says whether
	   it is the same) */
	static const char deleted[] = " (deleted)";
	size_t length = strlen(module->path);
	if (length > sizeof deleted - 1 &&
	    strcmp(module->path + length - (sizeof deleted - 1), deleted) == 0)
		length -= sizeof deleted - 1;
	const char *roots[] = {files->sysroot, "", files->live_root[0] ? files->live_root : NULL};
	const char *names[] = {"under --sysroot", "here", "under the running process's root"};

	for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
		if (roots[i] == NULL)
			continue;
		char path[4096];
		if ((size_t)snprintf(path, sizeof path, "%s%.*s", roots[i], (int)length,
				     module->path) >= sizeof path)
			continue;
		int fd = open_regular_file(path);
		if (fd < 0) {
			say(why, why_size, "%s%s: %s", why[0] ? "; " : "", names[i],
			    open_regular_file_reason(errno));
			continue;
		}
		if (module->build_id_size != 0) {
			uint8_t build_id[ELF_BUILD_ID_MAX];
			size_t size = elf_build_id_from_fd(fd, build_id);
			if (size != module->build_id_size ||
			    memcmp(build_id, module->build_id, size) != 0) {
				close(fd);
				say(why, why_size, "%s%s: another file (its build-id differs)",
				    why[0] ? "; " : "", names[i]);
				continue;
			}
		}
		*used_path = strdup(path);
		if (*used_path == NULL) {
			close(fd);
			return -1;
		}
		return fd;
	}
	return open_fetched(files, module, used_path, why, why_size);
}

bool module_files_hint(struct module_files *files, char *out, size_t size)
{
	if (files->hinted || files->sysroot != NULL)
		return false;
	files->hinted = true;
	snprintf(out, size,
		 "if the process ran in a container or under another root, point heapsnap at its "
		 "files with --sysroot DIR (the container's root: /proc/%d/root while it runs, or "
		 "its image unpacked) and at their debug files with --debug-dir DIR",
		 files->pid);
	return true;
}

size_t module_files_debug_dirs(const struct module_files *files, const char *debug_dir,
			       char dirs[][4096], size_t max)
{
	size_t count = 0;
	const char *roots[] = {files->sysroot, files->live_root[0] ? files->live_root : NULL};
	if (count < max)
		snprintf(dirs[count++], 4096, "%s", debug_dir ? debug_dir : "/usr/lib/debug");
	for (size_t i = 0; i < sizeof roots / sizeof roots[0] && count < max; i++)
		if (roots[i] != NULL)
			snprintf(dirs[count++], 4096, "%s/usr/lib/debug", roots[i]);
	return count;
}
