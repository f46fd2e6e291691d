/* Finding the GNU build-id of an ELF file, from its first bytes (as mapped in memory or read from
 * disk). The build-id is how a snapshot names the exact binaries it was taken with, so that the
 * analysis can refuse a mismatching file instead of reading wrong symbols. */
#ifndef HEAPSNAP_ELF_BUILD_ID_H
#define HEAPSNAP_ELF_BUILD_ID_H

#include <stddef.h>
#include <stdint.h>

#define ELF_BUILD_ID_MAX 64

/* Looks for NT_GNU_BUILD_ID in the PT_NOTE segments that lie inside `image` (the file's bytes from
 * offset 0). Returns the build-id size, or 0 when none is found there. */
size_t elf_build_id_from_image(const uint8_t *image, size_t size, uint8_t out[ELF_BUILD_ID_MAX]);

/* Reads the start of the file at `path` (or open as `fd`) and looks there. Returns the size, or 0. */
size_t elf_build_id_from_file(const char *path, uint8_t out[ELF_BUILD_ID_MAX]);
size_t elf_build_id_from_fd(int fd, uint8_t out[ELF_BUILD_ID_MAX]);

/* True when the bytes start with the ELF magic. */
int elf_image_is_elf(const uint8_t *image, size_t size);

#endif
