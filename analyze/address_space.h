/* The target's address space as the analysis sees it: the snapshot's regions, with bytes from the
 * snapshot, or, for read-only file mappings the snapshot does not store, from the mapped file on
 * disk once its build-id is checked against the one recorded at capture (a mismatch gives a
 * warning and no bytes, never a silent wrong answer). Every read is bounds-checked and fails
 * cleanly on unmapped or missing memory; walkers of corrupt heaps rely on that. */
#ifndef HEAPSNAP_ADDRESS_SPACE_H
#define HEAPSNAP_ADDRESS_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/warnings.h"
#include "formats/snapshot.h"

struct address_space;

struct address_space *address_space_new(struct snapshot *snapshot, struct warnings *warnings,
					struct hs_error *err);
void address_space_free(struct address_space *space);
/* Where the files the snapshot does not hold the bytes of are looked for (by default: here, and
 * under the captured process's root while it runs). */
struct module_files;
void address_space_set_module_files(struct address_space *space, struct module_files *files);
struct snapshot *address_space_snapshot(const struct address_space *space);

int address_space_read(struct address_space *space, uint64_t addr, void *buf, size_t size,
		       struct hs_error *err);
/* Reads a little-endian 64-bit word; false when it cannot be read (the caller decides whether
 * that is worth a warning). */
bool address_space_read_u64(struct address_space *space, uint64_t addr, uint64_t *out);

/* A window of consecutive bytes for sequential walks (heap chunks): reads of nearby addresses are
 * served from a buffer refilled a few MiB at a time, instead of one snapshot read each. */
struct address_cursor {
	struct address_space *space;
	uint64_t start;
	size_t size;
	uint8_t *bytes;
	size_t capacity;
};

void address_cursor_init(struct address_cursor *cursor, struct address_space *space);
void address_cursor_free(struct address_cursor *cursor);
/* Like address_space_read_u64, through the window. `limit` is where the caller's walk ends: the
 * window is not filled past it (it may be the end of readable memory). */
bool address_cursor_read_u64(struct address_cursor *cursor, uint64_t addr, uint64_t limit,
			     uint64_t *out);

/* The bytes [addr, addr + size) through the window, or NULL when they cannot all be read or do
 * not fit in it (the caller then reads them in pieces). Valid until the next call. */
const uint8_t *address_cursor_view(struct address_cursor *cursor, uint64_t addr, size_t size,
				   uint64_t limit);

#endif
