/* The notes heapsnap adds to an ELF core (owner name "HEAPSNAP"), shared by the writers (capture,
 * import, hook) and the reader. Their layout is specified in docs/snapshot-format.md; a reader skips
 * note types it does not know, so new types can be added without breaking old readers. */
#ifndef HEAPSNAP_SNAPSHOT_NOTES_H
#define HEAPSNAP_SNAPSHOT_NOTES_H

#include <stdint.h>

#define HEAPSNAP_NOTE_OWNER "HEAPSNAP"
#define HEAPSNAP_FORMAT_VERSION 1

enum heapsnap_note_type {
	/* text, one "key=value" per line: format_version, tool_version, source, pid, exe,
	 * capture_start_ns, capture_end_ns, pause_ns, kernel_release, boot_id, process_start_ticks */
	HEAPSNAP_NOTE_INFO = 1,
	/* one per mapped ELF file: struct heapsnap_module_note, then the build-id bytes, then the
	 * NUL-terminated path */
	HEAPSNAP_NOTE_MODULE = 2,
	/* an array of struct heapsnap_thread_note, one per thread */
	HEAPSNAP_NOTE_THREADS = 3,
	/* an array of struct heapsnap_range_note: address ranges inside dumped segments whose bytes
	 * could not be read at capture (stored as zeros, but not to be trusted as zeros) */
	HEAPSNAP_NOTE_ABSENT = 4,
	/* an array of struct heapsnap_range_note: private anonymous memory never touched by the
	 * process (no page behind it), stored as PT_LOAD segments with p_filesz 0; it reads as zeros */
	HEAPSNAP_NOTE_ZERO = 5,
	/* an array of struct heapsnap_site_note, sorted by address: where each live allocation was
	 * made (written by the in-process hook with HEAPSNAP_SITES=1) */
	HEAPSNAP_NOTE_SITES = 6,
	/* struct heapsnap_layout_note: a digest of the core's layout (its ELF header, program
	   headers and every note's header and owner), filled by core_image_write once it has laid
	   the core out; a reader that finds another digest knows a header was damaged */
	HEAPSNAP_NOTE_LAYOUT = 7,
};

struct heapsnap_layout_note {
	uint64_t digest;
	uint64_t program_headers;
};


struct heapsnap_module_note {
	uint64_t base; /* lowest address the file is mapped at */
	uint32_t build_id_size;
	uint32_t path_size; /* including the terminating NUL */
};

struct heapsnap_thread_note {
	uint32_t tid;
	char name[16]; /* /proc/PID/task/TID/comm, NUL-padded */
};

struct heapsnap_range_note {
	uint64_t start;
	uint64_t end;
};

#define HEAPSNAP_SITE_FRAMES 4
struct heapsnap_site_note {
	uint64_t address; /* the allocation, as malloc returned it */
	/* return addresses, innermost first: [0] into the function that called the allocator, then
	   into its callers as far as they could be followed; 0 past the last */
	uint64_t pc[HEAPSNAP_SITE_FRAMES];
};

struct core_image;
struct snapshot_info;
#include "common/error.h"
#include <stddef.h>

/* Encoders, so that every writer lays the notes out the same way. */
/* The layout digest: 64-bit FNV-1a over `headers` (the core's first bytes up to its notes: the
 * ELF header and the program headers) and, for each note of `notes` (the note segment's
 * bytes), its header and owner name. Damage detection, not security. */
uint64_t snapshot_layout_digest(const uint8_t *headers, size_t headers_size, const uint8_t *notes,
				size_t notes_size);

/* Adds a layout note for core_image_write to fill. */
int snapshot_notes_add_layout(struct core_image *image, struct hs_error *err);

int snapshot_notes_add_info(struct core_image *image, const struct snapshot_info *info,
			    struct hs_error *err);
int snapshot_notes_add_module(struct core_image *image, uint64_t base, const uint8_t *build_id,
			      size_t build_id_size, const char *path, struct hs_error *err);
int snapshot_notes_add_threads(struct core_image *image, const struct heapsnap_thread_note *threads,
			       size_t count, struct hs_error *err);
int snapshot_notes_add_ranges(struct core_image *image, enum heapsnap_note_type type,
			      const struct heapsnap_range_note *ranges, size_t count,
			      struct hs_error *err);
int snapshot_notes_add_sites(struct core_image *image, const struct heapsnap_site_note *sites,
			     size_t count, struct hs_error *err);

#endif
