/* Core import (see core_import.h). The core is read through the same validating reader as
 * snapshots, then written back through the same writer, so nothing here parses ELF by hand. */
#include "core_import.h"

#include <elf.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/capture.h"
#include "formats/core_image.h"
#include "formats/elf_build_id.h"
#include "formats/snapshot.h"
#include "formats/snapshot_file.h"
#include "formats/snapshot_notes.h"

/* Module notes for a foreign core: the build-id the reader found in the core (the ELF header page
 * of each file mapped from offset 0, which the kernel and gcore store), else the one of the file on
 * disk (the core is assumed to come from this machine, as gdb assumes). Every file NT_FILE maps
 * from offset 0 is one, whether the core has segments for it or not. */
static int add_module_notes(struct core_image *image, struct snapshot *core,
			    struct import_result *result, struct hs_error *err)
{
	size_t module_count;
	const struct snapshot_module *modules = snapshot_modules(core, &module_count);
	for (size_t i = 0; i < module_count; i++) {
		uint8_t build_id[ELF_BUILD_ID_MAX];
		size_t size = modules[i].build_id_size;
		memcpy(build_id, modules[i].build_id, size);
		if (size == 0)
			size = elf_build_id_from_file(modules[i].path, build_id);
		if (access(modules[i].path, R_OK) != 0 &&
		    result->missing_files++ == 0)
			snprintf(result->missing_file, sizeof result->missing_file, "%s",
				 modules[i].path);
		if (snapshot_notes_add_module(image, modules[i].base, build_id, size, modules[i].path,
					      err) != 0)
			return -1;
		result->modules++;
	}
	return 0;
}

int import_core(const char *core_path, const char *output_path,
		const struct seekable_options *compression, struct import_result *result,
		struct hs_error *err)
{
	memset(result, 0, sizeof *result);
	struct snapshot *core = snapshot_open(core_path, 0, err);
	if (core == NULL)
		return -1;
	const uint8_t *bytes = snapshot_raw_core(core);
	if (bytes == NULL) {
		snapshot_close(core);
		return hs_error_set(err, "%s is already a heapsnap snapshot; there is nothing to "
					 "import",
				    core_path);
	}
	struct core_image image;
	core_image_init(&image);
	int status = -1;

	size_t note_count;
	const struct snapshot_note *notes = snapshot_notes(core, &note_count);
	for (size_t i = 0; i < note_count; i++)
		if (core_image_add_note(&image, notes[i].owner, notes[i].type, notes[i].desc,
					notes[i].size, err) != 0)
			goto done;
	result->notes = note_count;
	if (snapshot_find_note(core, HEAPSNAP_NOTE_OWNER, HEAPSNAP_NOTE_INFO) == NULL) {
		struct snapshot_info info = *snapshot_info(core);
		capture_fill_host_info(&info, "import");
		/* a foreign core does not say when it was taken; its file's time is the best clue */
		struct stat st;
		if (stat(core_path, &st) == 0)
			info.capture_start_ns = info.capture_end_ns =
				(uint64_t)st.st_mtim.tv_sec * 1000000000u +
				(uint64_t)st.st_mtim.tv_nsec;
		info.has_pause = false;
		if (snapshot_notes_add_info(&image, &info, err) != 0 ||
		    add_module_notes(&image, core, result, err) != 0)
			goto done;
	} else {
		snapshot_modules(core, &result->modules);
	}

	size_t segment_count;
	const struct snapshot_segment *segments = snapshot_segments(core, &segment_count);
	for (size_t i = 0; i < segment_count; i++) {
		const struct snapshot_segment *segment = &segments[i];
		if (segment->type == PT_NOTE)
			continue; /* all notes were gathered into the image's one note segment */
		/* offsets of segments we do not interpret were not checked by the reader */
		if (segment->offset > snapshot_core_size(core) ||
		    segment->filesz > snapshot_core_size(core) - segment->offset) {
			hs_error_set(err, "%s is truncated: segment %zu at address 0x%llx passes its end",
				     core_path, i, (unsigned long long)segment->vaddr);
			goto done;
		}
		struct core_segment copy = {.type = segment->type, .flags = segment->flags,
					    .vaddr = segment->vaddr, .memsz = segment->memsz,
					    .filesz = segment->filesz, .align = segment->align,
					    .data = bytes + segment->offset};
		if (core_image_add_segment(&image, &copy, err) != 0)
			goto done;
		result->segments++;
		result->memory_bytes += segment->filesz;
	}
	snapshot_threads(core, &result->threads);

	if (output_path)
		snprintf(result->path, sizeof result->path, "%s", output_path);
	else {
		char copy[4096];
		snprintf(copy, sizeof copy, "%s", core_path);
		snprintf(result->path, sizeof result->path, "%s.snap", basename(copy));
	}
	struct seekable_stats stats;
	if (snapshot_file_write(&image, result->path, core_path, compression, &stats, err) != 0)
		goto done;
	result->file_bytes = stats.output_bytes;
	status = 0;
done:
	core_image_free(&image);
	snapshot_close(core);
	return status;
}
