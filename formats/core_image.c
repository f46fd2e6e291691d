/* Building and serialising a core image (see core_image.h). */
#include "core_image.h"

#include <elf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/array_grow.h"
#include "formats/snapshot_notes.h"

#define CORE_PAGE_SIZE 4096u

void core_image_init(struct core_image *image)
{
	memset(image, 0, sizeof *image);
	image->machine = EM_X86_64;
}

void core_image_free(struct core_image *image)
{
	for (size_t i = 0; i < image->note_count; i++) {
		free(image->notes[i].owner);
		free(image->notes[i].desc);
	}
	free(image->notes);
	free(image->segments);
	memset(image, 0, sizeof *image);
}

/* Grows an array to hold one more element. */
static int reserve_one(void **array, size_t *capacity, size_t count, size_t element_size)
{
	void *grown = array_grow(*array, capacity, count, element_size, 16);
	if (grown == NULL)
		return -1;
	*array = grown;
	return 0;
}

int core_image_add_note(struct core_image *image, const char *owner, uint32_t type,
			const void *desc, size_t size, struct hs_error *err)
{
	if (reserve_one((void **)&image->notes, &image->note_capacity, image->note_count,
			sizeof *image->notes) != 0)
		return hs_error_nomem(err, "adding a core note");
	struct core_note *note = &image->notes[image->note_count];
	note->owner = strdup(owner);
	note->desc = malloc(size ? size : 1);
	if (note->owner == NULL || note->desc == NULL) {
		free(note->owner);
		free(note->desc);
		return hs_error_nomem(err, "adding a core note");
	}
	if (size)
		memcpy(note->desc, desc, size);
	note->type = type;
	note->size = size;
	image->note_count++;
	return 0;
}

int core_image_add_segment(struct core_image *image, const struct core_segment *segment,
			   struct hs_error *err)
{
	if (reserve_one((void **)&image->segments, &image->segment_capacity,
			image->segment_count, sizeof *image->segments) != 0)
		return hs_error_nomem(err, "adding a core segment");
	image->segments[image->segment_count++] = *segment;
	return 0;
}

static size_t align4(size_t value) { return (value + 3) & ~(size_t)3; }

int core_image_write(const struct core_image *image, int fd, const char *path,
		     const struct seekable_options *options, struct seekable_stats *stats,
		     struct hs_error *err)
{
	size_t notes_size = 0;
	for (size_t i = 0; i < image->note_count; i++)
		notes_size += sizeof(Elf64_Nhdr) + align4(strlen(image->notes[i].owner) + 1) +
			      align4(image->notes[i].size);
	size_t phnum = image->segment_count + 1;
	/* more program headers than e_phnum can count: the kernel's extended numbering puts the
	 * count in the sh_info of a single section header placed after the program headers */
	bool extended = phnum >= PN_XNUM;
	size_t section_offset = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
	size_t notes_offset = section_offset + (extended ? sizeof(Elf64_Shdr) : 0);
	size_t header_size = notes_offset + notes_size;
	size_t data_offset = (header_size + CORE_PAGE_SIZE - 1) & ~(size_t)(CORE_PAGE_SIZE - 1);

	uint8_t *header = calloc(1, data_offset);
	struct byte_piece *pieces = calloc(image->segment_count + 1, sizeof *pieces);
	if (header == NULL || pieces == NULL) {
		free(header);
		free(pieces);
		return hs_error_nomem(err, "writing %s", path);
	}

	Elf64_Ehdr *ehdr = (Elf64_Ehdr *)header;
	memcpy(ehdr->e_ident, ELFMAG, SELFMAG);
	ehdr->e_ident[EI_CLASS] = ELFCLASS64;
	ehdr->e_ident[EI_DATA] = ELFDATA2LSB;
	ehdr->e_ident[EI_VERSION] = EV_CURRENT;
	ehdr->e_ident[EI_OSABI] = ELFOSABI_NONE;
	ehdr->e_type = ET_CORE;
	ehdr->e_machine = image->machine;
	ehdr->e_version = EV_CURRENT;
	ehdr->e_phoff = sizeof(Elf64_Ehdr);
	ehdr->e_ehsize = sizeof(Elf64_Ehdr);
	ehdr->e_phentsize = sizeof(Elf64_Phdr);
	ehdr->e_phnum = extended ? PN_XNUM : (uint16_t)phnum;
	if (extended) {
		ehdr->e_shoff = section_offset;
		ehdr->e_shentsize = sizeof(Elf64_Shdr);
		ehdr->e_shnum = 1;
		Elf64_Shdr section = {.sh_type = SHT_NULL, .sh_size = 1, .sh_info = (Elf64_Word)phnum};
		memcpy(header + section_offset, &section, sizeof section);
	}

	Elf64_Phdr *phdrs = (Elf64_Phdr *)(header + sizeof(Elf64_Ehdr));
	phdrs[0].p_type = PT_NOTE;
	phdrs[0].p_offset = notes_offset;
	phdrs[0].p_filesz = notes_size;
	phdrs[0].p_align = 4;

	uint8_t *note_at = header + notes_offset, *layout = NULL;
	for (size_t i = 0; i < image->note_count; i++) {
		const struct core_note *note = &image->notes[i];
		Elf64_Nhdr nhdr = {.n_namesz = (Elf64_Word)(strlen(note->owner) + 1),
				   .n_descsz = (Elf64_Word)note->size,
				   .n_type = note->type};
		memcpy(note_at, &nhdr, sizeof nhdr);
		note_at += sizeof nhdr;
		memcpy(note_at, note->owner, nhdr.n_namesz);
		note_at += align4(nhdr.n_namesz);
		memcpy(note_at, note->desc, note->size);
		if (strcmp(note->owner, HEAPSNAP_NOTE_OWNER) == 0 &&
		    note->type == HEAPSNAP_NOTE_LAYOUT && note->size == sizeof(struct heapsnap_layout_note))
			layout = note_at;
		note_at += align4(note->size);
	}

	pieces[0].data = header;
	pieces[0].size = data_offset;
	uint64_t offset = data_offset;
	for (size_t i = 0; i < image->segment_count; i++) {
		const struct core_segment *segment = &image->segments[i];
		Elf64_Phdr *phdr = &phdrs[i + 1];
		phdr->p_type = segment->type;
		phdr->p_flags = segment->flags;
		phdr->p_offset = offset;
		phdr->p_vaddr = segment->vaddr;
		phdr->p_memsz = segment->memsz;
		phdr->p_filesz = segment->filesz;
		phdr->p_align = segment->align ? segment->align : CORE_PAGE_SIZE;
		pieces[i + 1].data = segment->data;
		pieces[i + 1].size = segment->filesz;
		pieces[i + 1].source = segment->data == NULL ? segment->source : NULL;
		pieces[i + 1].source_at = segment->vaddr;
		offset += segment->filesz;
	}

	if (layout) { /* (the headers are final now) */
		struct heapsnap_layout_note digest = {
			snapshot_layout_digest(header, notes_offset, header + notes_offset, notes_size),
			phnum};
		memcpy(layout, &digest, sizeof digest);
	}
	int result = seekable_write(fd, path, pieces, image->segment_count + 1, options, stats, err);
	free(header);
	free(pieces);
	return result;
}
