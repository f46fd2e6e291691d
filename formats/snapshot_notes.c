/* Encoding the HEAPSNAP notes (see snapshot_notes.h and docs/snapshot-format.md). */
#include "snapshot_notes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fnv.h"
#include "formats/core_image.h"
#include "formats/snapshot.h"

/* Values run to the end of their line, so a newline inside one (a path may hold any byte but NUL)
 * is stored as '?'. */
static void one_line(const char *value, char *out, size_t out_size)
{
	snprintf(out, out_size, "%s", value);
	for (char *at = out; *at; at++)
		if (*at == '\n')
			*at = '?';
}

int snapshot_notes_add_info(struct core_image *image, const struct snapshot_info *info,
			    struct hs_error *err)
{
	char exe[sizeof info->exe];
	one_line(info->exe, exe, sizeof exe);
	char text[8192];
	int length = snprintf(text, sizeof text,
			      "format_version=%u\ntool_version=%s\nsource=%s\npid=%d\nexe=%s\n"
			      "capture_start_ns=%" PRIu64 "\ncapture_end_ns=%" PRIu64 "\n"
			      "kernel_release=%s\nboot_id=%s\nprocess_start_ticks=%" PRIu64 "\n",
			      HEAPSNAP_FORMAT_VERSION, info->tool_version, info->source, info->pid,
			      exe, info->capture_start_ns, info->capture_end_ns,
			      info->kernel_release, info->boot_id, info->process_start_ticks);
	/* an imported core has no pause to report: the key is left out rather than set to 0 */
	if (length >= 0 && (size_t)length < sizeof text && info->has_pause)
		length += snprintf(text + length, sizeof text - (size_t)length,
				   "pause_ns=%" PRIu64 "\n", info->pause_ns);
	if (length >= 0 && (size_t)length < sizeof text && info->method[0])
		length += snprintf(text + length, sizeof text - (size_t)length, "method=%s\n",
				   info->method);
	if (length >= 0 && (size_t)length < sizeof text && info->sites_source[0])
		length += snprintf(text + length, sizeof text - (size_t)length,
				   "sites_source=%s\nsites_allocator=%s\nsites_window_ns=%" PRIu64
				   "\nsites_sample_bytes=%" PRIu64 "\nsites_allocations=%" PRIu64
				   "\nsites_unrecorded=%" PRIu64 "\nsites_map_full=%" PRIu64 "\n",
				   info->sites_source, info->sites_allocator, info->sites_window_ns,
				   info->sites_sample_bytes, info->sites_allocations,
				   info->sites_unrecorded, info->sites_map_full);
	if (length < 0 || (size_t)length >= sizeof text)
		return hs_error_set(err, "snapshot info note too long");
	return core_image_add_note(image, HEAPSNAP_NOTE_OWNER, HEAPSNAP_NOTE_INFO, text,
				   (size_t)length, err);
}

int snapshot_notes_add_module(struct core_image *image, uint64_t base, const uint8_t *build_id,
			      size_t build_id_size, const char *path, struct hs_error *err)
{
	struct heapsnap_module_note header = {.base = base,
					      .build_id_size = (uint32_t)build_id_size,
					      .path_size = (uint32_t)strlen(path) + 1};
	size_t size = sizeof header + build_id_size + header.path_size;
	uint8_t *desc = malloc(size);
	if (desc == NULL)
		return hs_error_nomem(err, "adding a module note");
	memcpy(desc, &header, sizeof header);
	if (build_id_size) /* (a module without one passes no bytes, perhaps NULL) */
		memcpy(desc + sizeof header, build_id, build_id_size);
	memcpy(desc + sizeof header + build_id_size, path, header.path_size);
	int result = core_image_add_note(image, HEAPSNAP_NOTE_OWNER, HEAPSNAP_NOTE_MODULE, desc, size,
					 err);
	free(desc);
	return result;
}

int snapshot_notes_add_threads(struct core_image *image, const struct heapsnap_thread_note *threads,
			       size_t count, struct hs_error *err)
{
	return core_image_add_note(image, HEAPSNAP_NOTE_OWNER, HEAPSNAP_NOTE_THREADS, threads,
				   count * sizeof *threads, err);
}

int snapshot_notes_add_ranges(struct core_image *image, enum heapsnap_note_type type,
			      const struct heapsnap_range_note *ranges, size_t count,
			      struct hs_error *err)
{
	if (count == 0)
		return 0;
	return core_image_add_note(image, HEAPSNAP_NOTE_OWNER, type, ranges, count * sizeof *ranges,
				   err);
}

int snapshot_notes_add_sites(struct core_image *image, const struct heapsnap_site_note *sites,
			     size_t count, struct hs_error *err)
{
	return core_image_add_note(image, HEAPSNAP_NOTE_OWNER, HEAPSNAP_NOTE_SITES, sites,
				   count * sizeof *sites, err);
}

uint64_t snapshot_layout_digest(const uint8_t *headers, size_t headers_size, const uint8_t *notes,
				size_t notes_size)
{
	uint64_t hash = fnv1a_bytes(0xcbf29ce484222325ull, headers, headers_size);
	for (size_t at = 0; at + 12 <= notes_size;) {
		uint32_t name_size, desc_size;
		memcpy(&name_size, notes + at, 4);
		memcpy(&desc_size, notes + at + 4, 4);
		size_t name = ((size_t)name_size + 3) & ~(size_t)3, desc = ((size_t)desc_size + 3) & ~(size_t)3;
		size_t header = 12 + (name < notes_size - at - 12 ? name : notes_size - at - 12);
		hash = fnv1a_bytes(hash, notes + at, header);
		if (name > notes_size - at - 12 || desc > notes_size - at - 12 - name)
			break;
		at += 12 + name + desc;
	}
	return hash;
}

int snapshot_notes_add_layout(struct core_image *image, struct hs_error *err)
{
	struct heapsnap_layout_note layout = {0};
	return core_image_add_note(image, HEAPSNAP_NOTE_OWNER, HEAPSNAP_NOTE_LAYOUT, &layout,
				   sizeof layout, err);
}
