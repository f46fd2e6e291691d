/* Build-id lookup (see elf_build_id.h). Works on raw bytes so it needs no libelf handle and is
 * safe on truncated or hostile input: every offset is checked against the buffer. */
#include "elf_build_id.h"

#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/open_file.h"

#define FILE_PROBE_SIZE (64u << 10)

int elf_image_is_elf(const uint8_t *image, size_t size)
{
	return size >= SELFMAG && memcmp(image, ELFMAG, SELFMAG) == 0;
}

static size_t build_id_in_notes(const uint8_t *notes, size_t size, uint8_t out[ELF_BUILD_ID_MAX])
{
	size_t at = 0;
	while (size - at >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nhdr;
		memcpy(&nhdr, notes + at, sizeof nhdr);
		size_t name_size = ((size_t)nhdr.n_namesz + 3) & ~(size_t)3;
		size_t desc_size = ((size_t)nhdr.n_descsz + 3) & ~(size_t)3;
		at += sizeof nhdr;
		if (name_size > size - at || desc_size > size - at - name_size)
			return 0;
		if (nhdr.n_type == NT_GNU_BUILD_ID && nhdr.n_namesz == 4 &&
		    memcmp(notes + at, "GNU", 4) == 0 && nhdr.n_descsz > 0 &&
		    nhdr.n_descsz <= ELF_BUILD_ID_MAX) {
			memcpy(out, notes + at + name_size, nhdr.n_descsz);
			return nhdr.n_descsz;
		}
		at += name_size + desc_size;
	}
	return 0;
}

size_t elf_build_id_from_image(const uint8_t *image, size_t size, uint8_t out[ELF_BUILD_ID_MAX])
{
	Elf64_Ehdr ehdr;
	if (size < sizeof ehdr || !elf_image_is_elf(image, size))
		return 0;
	memcpy(&ehdr, image, sizeof ehdr);
	if (ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_phentsize != sizeof(Elf64_Phdr) ||
	    ehdr.e_phoff > size || (uint64_t)ehdr.e_phnum * sizeof(Elf64_Phdr) > size - ehdr.e_phoff)
		return 0;
	for (unsigned i = 0; i < ehdr.e_phnum; i++) {
		Elf64_Phdr phdr;
		memcpy(&phdr, image + ehdr.e_phoff + i * sizeof phdr, sizeof phdr);
		if (phdr.p_type != PT_NOTE || phdr.p_offset > size || phdr.p_filesz > size - phdr.p_offset)
			continue;
		size_t found = build_id_in_notes(image + phdr.p_offset, phdr.p_filesz, out);
		if (found)
			return found;
	}
	return 0;
}

size_t elf_build_id_from_fd(int fd, uint8_t out[ELF_BUILD_ID_MAX])
{
	static __thread uint8_t probe[FILE_PROBE_SIZE];
	ssize_t got = pread(fd, probe, sizeof probe, 0);
	return got > 0 ? elf_build_id_from_image(probe, (size_t)got, out) : 0;
}

size_t elf_build_id_from_file(const char *path, uint8_t out[ELF_BUILD_ID_MAX])
{
	int fd = open_regular_file(path);
	if (fd < 0)
		return 0;
	size_t size = elf_build_id_from_fd(fd, out);
	close(fd);
	return size;
}
