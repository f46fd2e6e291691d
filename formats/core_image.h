/* An ELF core file described in memory, and its writer. Capture, import and the in-process hook
 * all build a `struct core_image` (notes plus segments whose bytes stay where they are) and hand it
 * to core_image_write, which lays it out as the kernel does (ELF header, program headers with
 * PT_NOTE first, notes, page-aligned segment data) and streams it through the seekable zstd writer. */
#ifndef HEAPSNAP_CORE_IMAGE_H
#define HEAPSNAP_CORE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "formats/seekable.h"

struct core_note {
	char *owner; /* "CORE", "LINUX", "HEAPSNAP", ... (owned) */
	uint32_t type;
	void *desc; /* owned copy */
	size_t size;
};

struct core_segment {
	uint32_t type;	/* PT_LOAD, or another program header type kept from an imported core */
	uint32_t flags; /* PF_R | PF_W | PF_X */
	uint64_t vaddr;
	uint64_t memsz;
	uint64_t filesz; /* bytes stored in the file; the rest of memsz is not in the core */
	uint64_t align;
	const void *data; /* filesz bytes, borrowed; NULL stores zeros, or what source reads */
	const struct byte_source *source; /* with data NULL: the bytes are read from here, at vaddr */
};

struct core_image {
	uint16_t machine; /* EM_X86_64 */
	struct core_note *notes;
	size_t note_count, note_capacity;
	struct core_segment *segments;
	size_t segment_count, segment_capacity;
};

void core_image_init(struct core_image *image);
void core_image_free(struct core_image *image);
int core_image_add_note(struct core_image *image, const char *owner, uint32_t type,
			const void *desc, size_t size, struct hs_error *err);
int core_image_add_segment(struct core_image *image, const struct core_segment *segment,
			   struct hs_error *err);

/* Writes the image as a seekable-zstd ELF core to fd. */
int core_image_write(const struct core_image *image, int fd, const char *path,
		     const struct seekable_options *options, struct seekable_stats *stats,
		     struct hs_error *err);

#endif
