/* `heapsnap import`: an ELF core from gcore, the kernel or systemd-coredump (decompressed) becomes a
 * snapshot. Every segment and every note is kept as it was; heapsnap's own notes are added (module
 * build-ids, capture time) unless the core already has them (a decompressed snapshot). */
#ifndef HEAPSNAP_CORE_IMPORT_H
#define HEAPSNAP_CORE_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "formats/seekable.h"

struct import_result {
	char path[4096];
	uint64_t memory_bytes;
	uint64_t file_bytes;
	size_t threads, segments, notes, modules;
	/* mapped files neither in the core nor on this machine: what the core lacks of them (their
	   code, their read-only data) the analysis cannot read */
	size_t missing_files;
	char missing_file[4096]; /* the first of them */
};

/* output_path NULL: CORE's name with .snap appended, in the working directory. */
int import_core(const char *core_path, const char *output_path,
		const struct seekable_options *compression, struct import_result *result,
		struct hs_error *err);

#endif
