/* The snapshot reader on hostile files: the input is a whole snapshot file (a seekable zstd
 * stream: frames and seek table; or an uncompressed ELF core, which the reader also opens). It is
 * opened (seek table, frames, ELF header, program headers, notes: CORE, LINUX and HEAPSNAP ones),
 * and, when it opens, every query is made (info, threads, regions, modules, notes, segments,
 * totals), memory is read at the start, middle and end of every region directly and through the
 * analysis's address space, the decompressed core is read in pieces, and every frame is verified.
 * Any crash, out-of-bounds access, leak or runaway allocation is a bug in formats/ (seekable.c,
 * snapshot.c, snapshot_notes.c) or in analyze/address_space.c. */
#include <string.h>

#include "analyze/address_space.h"
#include "common/warnings.h"
#include "formats/snapshot.h"
#include "formats/snapshot_notes.h"
#include "fuzz_util.h"

/* a checksum of what was read, kept so that the reads are not optimised away */
static volatile uint64_t sink;

static void consume(const void *data, size_t size)
{
	const uint8_t *bytes = data;
	uint64_t sum = 0;
	for (size_t i = 0; i < size; i++)
		sum = sum * 31 + bytes[i];
	sink += sum;
}

enum { READ_MAX = 1 << 16 };

static void read_region(struct snapshot *snapshot, struct address_space *space,
			const struct snapshot_region *region, uint8_t *buffer)
{
	struct hs_error err;
	uint64_t length = region->end - region->start;
	uint64_t starts[] = {region->start, region->start + length / 2,
			     length > READ_MAX ? region->end - READ_MAX : region->start};
	for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
		size_t size = region->end - starts[i] < READ_MAX ? region->end - starts[i] : READ_MAX;
		if (snapshot_read(snapshot, starts[i], buffer, size, &err) == 0)
			consume(buffer, size);
		if (space && address_space_read(space, starts[i], buffer, size, &err) == 0)
			consume(buffer, size);
	}
	/* across its end, and one word at a time through the address space */
	snapshot_read(snapshot, region->end - 1, buffer, 2, &err);
	uint64_t word;
	if (space && address_space_read_u64(space, region->start, &word))
		sink += word;
	sink += snapshot_find_region(snapshot, region->start) == region;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_file file;
	fuzz_file_open(&file, data, size);
	struct hs_error err;
	/* a small cache, so that frames are evicted and decompressed again */
	struct snapshot *snapshot = snapshot_open(file.path, 1 << 20, &err);
	fuzz_file_close(&file);
	if (snapshot == NULL)
		return 0;
	static uint8_t buffer[READ_MAX];
	consume(snapshot_info(snapshot), sizeof(struct snapshot_info));
	consume(snapshot_path(snapshot), strlen(snapshot_path(snapshot)));
	sink += snapshot_is_compressed(snapshot) + snapshot_file_size(snapshot) +
		snapshot_core_size(snapshot) + (snapshot_raw_core(snapshot) != NULL);

	size_t count;
	const struct snapshot_thread *threads = snapshot_threads(snapshot, &count);
	consume(threads, count * sizeof *threads);
	const struct snapshot_module *modules = snapshot_modules(snapshot, &count);
	for (size_t i = 0; i < count; i++) {
		consume(modules[i].path, strlen(modules[i].path));
		consume(modules[i].build_id, modules[i].build_id_size);
		sink += snapshot_find_region(snapshot, modules[i].base) != NULL;
	}
	const struct snapshot_note *notes = snapshot_notes(snapshot, &count);
	for (size_t i = 0; i < count; i++) {
		consume(notes[i].owner, strlen(notes[i].owner));
		consume(notes[i].desc, notes[i].size);
	}
	for (uint32_t type = HEAPSNAP_NOTE_INFO; type <= HEAPSNAP_NOTE_SITES; type++)
		snapshot_find_note(snapshot, HEAPSNAP_NOTE_OWNER, type);
	const struct snapshot_segment *segments = snapshot_segments(snapshot, &count);
	consume(segments, count * sizeof *segments);
	struct snapshot_totals totals;
	snapshot_totals(snapshot, &totals);
	consume(&totals, sizeof totals);

	struct warnings warnings = {0};
	struct address_space *space = address_space_new(snapshot, &warnings, &err);
	const struct snapshot_region *regions = snapshot_regions(snapshot, &count);
	for (size_t i = 0; i < count; i++) {
		if (regions[i].path)
			consume(regions[i].path, strlen(regions[i].path));
		read_region(snapshot, space, &regions[i], buffer);
	}
	address_space_free(space);
	warnings_free(&warnings);

	uint64_t core_size = snapshot_core_size(snapshot);
	for (uint64_t offset = 0; offset < core_size; offset += core_size / 8 + 1) {
		size_t piece = core_size - offset < READ_MAX ? core_size - offset : READ_MAX;
		if (snapshot_read_core(snapshot, offset, buffer, piece, &err) == 0)
			consume(buffer, piece);
	}
	snapshot_check_damage(snapshot, &err);
	snapshot_verify(snapshot, &err);
	snapshot_close(snapshot);
	return 0;
}
