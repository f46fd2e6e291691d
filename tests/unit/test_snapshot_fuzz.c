/* Damaged cores must be refused or read safely, never read out of bounds: a small valid core is
 * damaged thousands of times (random bytes of its headers and notes changed, random cuts), and
 * each version is opened and, when it opens, queried and read everywhere (through the analysis's
 * address space too). Run under ASan and UBSan (the sanitizer build), any out-of-bounds read or
 * overflow fails the test. */
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <unistd.h>

#include "analyze/address_space.h"
#include "common/warnings.h"
#include "formats/core_image.h"
#include "formats/snapshot.h"
#include "formats/snapshot_file.h"
#include "formats/snapshot_notes.h"
#include "test_util.h"

static uint64_t state = 0x243F6A8885A308D3ull;
static uint64_t next_random(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

int main(void)
{
	char directory[] = "/tmp/heapsnap-test-fuzz-XXXXXX";
	if (mkdtemp(directory) == NULL)
		return 2;
	char original[4096], damaged[4096];
	snprintf(original, sizeof original, "%s/original.snap", directory);
	snprintf(damaged, sizeof damaged, "%s/damaged.core", directory);

	/* a small core, written uncompressed so every byte of it can be damaged */
	struct hs_error err;
	struct core_image image;
	core_image_init(&image);
	struct elf_prstatus status = {.pr_pid = 7};
	core_image_add_note(&image, "CORE", NT_PRSTATUS, &status, sizeof status, &err);
	/* two file mappings: one with a segment, one only NT_FILE names (as gcore leaves them) */
	uint8_t file_note[16 + 2 * 24 + 2 * 8] = {0};
	uint64_t header[8] = {2, 4096, 0x20000, 0x21000, 0, 0x30000, 0x32000, 1};
	memcpy(file_note, header, sizeof header);
	memcpy(file_note + 64, "/x/y.so", 8);
	memcpy(file_note + 72, "/x/y.so", 8);
	core_image_add_note(&image, "CORE", NT_FILE, file_note, sizeof file_note, &err);
	struct snapshot_info info = {.pid = 7, .has_pause = true, .pause_ns = 5};
	snapshot_notes_add_info(&image, &info, &err);
	uint8_t build_id[20] = {1, 2, 3};
	snapshot_notes_add_module(&image, 0x20000, build_id, 20, "/x/y.so", &err);
	struct heapsnap_range_note range = {0x10800, 0x10900};
	snapshot_notes_add_ranges(&image, HEAPSNAP_NOTE_ABSENT, &range, 1, &err);
	static uint8_t memory[0x2000];
	for (size_t i = 0; i < sizeof memory; i++)
		memory[i] = (uint8_t)i;
	struct core_segment one = {PT_LOAD, PF_R | PF_W, 0x10000, 0x2000, 0x2000, 0x1000, memory, NULL};
	struct core_segment two = {PT_LOAD, PF_R, 0x20000, 0x1000, 0x200, 0x1000, memory, NULL};
	core_image_add_segment(&image, &one, &err);
	core_image_add_segment(&image, &two, &err);
	CHECK(snapshot_file_write(&image, original, NULL, NULL, NULL, &err) == 0, "%s", err.message);
	core_image_free(&image);
	struct snapshot *snapshot = snapshot_open(original, 0, &err);
	CHECK(snapshot != NULL, "%s", err.message);
	uint8_t *core = malloc(1 << 16);
	size_t core_size = snapshot ? (size_t)snapshot_core_size(snapshot) : 0;
	CHECK(core_size > 0 && core_size < (1 << 16), "core size %zu", core_size);
	if (snapshot)
		snapshot_read_core(snapshot, 0, core, core_size, &err);
	snapshot_close(snapshot);

	size_t opened = 0, refused = 0;
	uint8_t *copy = malloc(core_size);
	uint8_t *buffer = malloc(0x4000);
	for (int round = 0; round < 4000; round++) {
		memcpy(copy, core, core_size);
		size_t size = core_size;
		/* damage the first page mostly: headers and notes are what the reader interprets */
		int changes = 1 + (int)(next_random() % 8);
		for (int k = 0; k < changes; k++) {
			size_t at = (size_t)(next_random() % (next_random() % 4 ? 0x1000 : core_size));
			copy[at] = (uint8_t)next_random();
		}
		if (next_random() % 5 == 0)
			size = (size_t)(next_random() % core_size);
		int fd = open(damaged, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (write(fd, copy, size) != (ssize_t)size)
			return 2;
		close(fd);
		snapshot = snapshot_open(damaged, 0, &err);
		if (snapshot == NULL) {
			refused++;
			CHECK(strstr(err.message, "damaged.core") != NULL, "a refusal names the file: %s",
			      err.message);
			continue;
		}
		opened++;
		size_t count;
		const struct snapshot_region *regions = snapshot_regions(snapshot, &count);
		struct warnings warnings = {0};
		struct address_space *space = address_space_new(snapshot, &warnings, &err);
		for (size_t i = 0; i < count; i++) {
			uint64_t length = regions[i].end - regions[i].start;
			if (length > 0x4000)
				length = 0x4000;
			snapshot_read(snapshot, regions[i].start, buffer, (size_t)length, &err);
			snapshot_read(snapshot, regions[i].end - 1, buffer, 2, &err);
			if (space)
				address_space_read(space, regions[i].start, buffer, (size_t)length, &err);
		}
		address_space_free(space);
		warnings_free(&warnings);
		snapshot_threads(snapshot, &count);
		snapshot_modules(snapshot, &count);
		struct snapshot_totals totals;
		snapshot_totals(snapshot, &totals);
		snapshot_verify(snapshot, &err);
		snapshot_close(snapshot);
	}
	CHECK(opened > 100 && refused > 100, "both outcomes were exercised: %zu opened, %zu refused",
	      opened, refused);
	free(copy);
	free(buffer);
	free(core);
	char command[4200];
	snprintf(command, sizeof command, "rm -rf '%s'", directory);
	system(command);
	return TEST_EXIT();
}
