/* What the walkers of stripped allocators (jemalloc_heap.c, tcmalloc_heap.c) read of the module
 * that defines the allocator, to find its globals without symbols: the module's writable data and
 * .bss, a word of a given shape in them, and the bytes of its file (where a version string is). */
#ifndef HEAPSNAP_MODULE_DATA_H
#define HEAPSNAP_MODULE_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/address_space.h"
#include "analyze/symbols.h"

/* Calls `test(context, address, word)` on each 8-byte word of [start, end), read a page at a
 * time (pages that cannot be read are passed over), until it answers true: the address of that
 * word, or 0. How the walkers find their globals by shape in a module's data. */
uint64_t module_data_find_word(struct address_space *space, uint64_t start, uint64_t end,
			     bool (*test)(void *context, uint64_t address, uint64_t word),
			     void *context);

/* The first bytes of the file `module` was mapped from (up to 64 MiB: where an allocator's
 * version string is, in its read-only data), malloc'd, their count in *count; NULL when the
 * file cannot be read or out of memory. */
char *module_file_bytes(struct module_symbols *module, size_t *count);

/* The writable data of `module` and its .bss (the anonymous mapping right after it, up to where
 * its image ends), merged into [*start, *end): where an allocator keeps its globals. False when
 * none of it is in the snapshot. */
bool module_data_range(struct address_space *space, struct symbols *symbols,
			   struct module_symbols *module, uint64_t *start, uint64_t *end);

#endif
