/* File mappings a core names only in NT_FILE (gcore writes no segment for unwritten read-only
 * ones) are regions, and the analysis reads their bytes from the file once its build-id matches
 * the one recorded; a file that is missing or differs is a warning naming it and no bytes; a
 * damaged NT_FILE note is refused with a message, never read out of bounds. The mapped "file" is
 * a copy of this test's own executable, which has a build-id. */
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <unistd.h>

#include "analyze/address_space.h"
#include "common/warnings.h"
#include "formats/core_image.h"
#include "formats/elf_build_id.h"
#include "formats/snapshot.h"
#include "formats/snapshot_file.h"
#include "formats/snapshot_notes.h"
#include "test_util.h"

#define BASE 0x40000000ull

struct mapping {
	uint64_t start, end, offset; /* offset in units of the note's page size */
	const char *path;
};

/* A core of one thread, the NT_FILE note given, a MODULE note for `module_path` with `build_id`
 * unless it is NULL, and the segments given. */
static int write_core(const char *path, uint64_t page_size, const struct mapping *mappings,
		      size_t mapping_count, const char *module_path, const uint8_t *build_id,
		      size_t build_id_size, const struct core_segment *segments, size_t segment_count,
		      struct hs_error *err)
{
	struct core_image image;
	core_image_init(&image);
	struct elf_prstatus status = {.pr_pid = 99};
	core_image_add_note(&image, "CORE", NT_PRSTATUS, &status, sizeof status, err);
	uint8_t note[4096];
	uint64_t header[2] = {mapping_count, page_size};
	memcpy(note, header, sizeof header);
	size_t at = 16 + mapping_count * 24;
	for (size_t i = 0; i < mapping_count; i++) {
		uint64_t entry[3] = {mappings[i].start, mappings[i].end, mappings[i].offset};
		memcpy(note + 16 + i * 24, entry, sizeof entry);
		size_t length = strlen(mappings[i].path) + 1;
		memcpy(note + at, mappings[i].path, length);
		at += length;
	}
	core_image_add_note(&image, "CORE", NT_FILE, note, at, err);
	struct snapshot_info info = {.pid = 99};
	strcpy(info.source, "import");
	snapshot_notes_add_info(&image, &info, err);
	if (build_id)
		snapshot_notes_add_module(&image, BASE, build_id, build_id_size, module_path, err);
	for (size_t i = 0; i < segment_count; i++)
		core_image_add_segment(&image, &segments[i], err);
	int status_code = snapshot_file_write(&image, path, NULL, NULL, NULL, err);
	core_image_free(&image);
	return status_code;
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char buffer[65536];
	ssize_t got;
	while (in >= 0 && out >= 0 && (got = read(in, buffer, sizeof buffer)) > 0)
		if (write(out, buffer, (size_t)got) != got)
			break;
	close(in);
	close(out);
}

static uint8_t *file_bytes(const char *path, uint64_t offset, size_t size)
{
	static uint8_t bytes[256];
	int fd = open(path, O_RDONLY);
	ssize_t got = pread(fd, bytes, size, (off_t)offset);
	close(fd);
	return got == (ssize_t)size ? bytes : NULL;
}

static bool has_warning(const struct warnings *warnings, const char *a, const char *b)
{
	for (size_t i = 0; i < warnings->count; i++)
		if (strstr(warnings->items[i], a) && strstr(warnings->items[i], b))
			return true;
	return false;
}

int main(void)
{
	char directory[] = "/tmp/heapsnap-test-address-space-XXXXXX";
	if (mkdtemp(directory) == NULL)
		return 2;
	char library[4200], core[4200];
	snprintf(library, sizeof library, "%s/libmapped.so", directory);
	snprintf(core, sizeof core, "%s/test.snap", directory);
	copy_file("/proc/self/exe", library);
	uint8_t build_id[ELF_BUILD_ID_MAX];
	size_t build_id_size = elf_build_id_from_file(library, build_id);
	CHECK(build_id_size > 0, "the test executable has a build-id");
	struct hs_error err;

	/* gdb's layout (page size 1, offsets in bytes): the file's first mapping stored, its next
	 * one left out; then a mapping with only its middle page stored, as a written page would be */
	static uint8_t header_page[0x1000], middle[0x1000];
	memcpy(header_page, file_bytes(library, 0, 64), 64);
	memset(middle, 0x5a, sizeof middle);
	const struct mapping mappings[] = {
		{BASE, BASE + 0x1000, 0, library},
		{BASE + 0x1000, BASE + 0x3000, 0x1000, library},
		{BASE + 0x10000, BASE + 0x13000, 0x2000, library},
	};
	const struct core_segment segments[] = {
		{PT_LOAD, PF_R, BASE, 0x1000, 0x1000, 0x1000, header_page, NULL},
		{PT_LOAD, PF_R | PF_W, BASE + 0x11000, 0x1000, 0x1000, 0x1000, middle, NULL},
	};
	CHECK(write_core(core, 1, mappings, 3, library, build_id, build_id_size, segments, 2, &err) == 0,
	      "%s", err.message);
	struct snapshot *snapshot = snapshot_open(core, 0, &err);
	CHECK(snapshot != NULL, "open: %s", err.message);
	if (snapshot == NULL)
		return TEST_EXIT();
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(snapshot, &count);
	CHECK(count == 5, "regions: %zu, expected 2 segments and 3 parts only NT_FILE maps", count);
	for (size_t i = 0; i < count; i++) {
		CHECK(regions[i].path && strcmp(regions[i].path, library) == 0,
		      "region at 0x%llx is named after its file", (unsigned long long)regions[i].start);
		CHECK(regions[i].has_segment == (regions[i].start == BASE ||
						 regions[i].start == BASE + 0x11000),
		      "region at 0x%llx: has_segment %d", (unsigned long long)regions[i].start,
		      regions[i].has_segment);
	}
	CHECK(count == 5 && regions[4].start == BASE + 0x12000 && regions[4].end == BASE + 0x13000 &&
		      regions[4].file_offset == 0x4000 && regions[4].flags == PF_R,
	      "the part after the stored page: 0x%llx offset 0x%llx",
	      (unsigned long long)regions[4].start, (unsigned long long)regions[4].file_offset);
	const struct snapshot_module *modules = snapshot_modules(snapshot, &count);
	CHECK(count == 1 && modules[0].build_id_size == build_id_size, "the module's build-id");
	struct snapshot_totals totals;
	snapshot_totals(snapshot, &totals);
	CHECK(totals.with_contents == 0x2000 && totals.from_files == 0x4000,
	      "totals: %llu stored, %llu in files", (unsigned long long)totals.with_contents,
	      (unsigned long long)totals.from_files);

	struct warnings warnings = {0};
	struct address_space *space = address_space_new(snapshot, &warnings, &err);
	uint8_t bytes[256];
	CHECK(address_space_read(space, BASE + 0x1800, bytes, 64, &err) == 0, "%s", err.message);
	CHECK(memcmp(bytes, file_bytes(library, 0x1800, 64), 64) == 0, "a part only NT_FILE maps");
	CHECK(address_space_read(space, BASE + 0xfc0, bytes, 128, &err) == 0, "%s", err.message);
	CHECK(memcmp(bytes, header_page + 0xfc0, 64) == 0 &&
		      memcmp(bytes + 64, file_bytes(library, 0x1000, 64), 64) == 0,
	      "across the stored page and the file");
	CHECK(address_space_read(space, BASE + 0x10fc0, bytes, 128, &err) == 0, "%s", err.message);
	CHECK(memcmp(bytes, file_bytes(library, 0x2fc0, 64), 64) == 0 && bytes[64] == 0x5a &&
		      bytes[127] == 0x5a,
	      "the file, then the stored (written) page");
	CHECK(address_space_read(space, BASE + 0x12000, bytes, 64, &err) == 0, "%s", err.message);
	CHECK(memcmp(bytes, file_bytes(library, 0x4000, 64), 64) == 0, "after the stored page");
	CHECK(address_space_read(space, BASE + 0x13000, bytes, 8, &err) != 0, "past the mapping");
	CHECK(warnings.count == 0, "warnings: %s", warnings.count ? warnings.items[0] : "");
	address_space_free(space);
	warnings_free(&warnings);

	/* another build-id recorded: the file is not the one the process had */
	uint8_t other[20] = {1, 2, 3};
	snapshot_close(snapshot);
	write_core(core, 4096, mappings, 1, library, other, sizeof other, NULL, 0, &err);
	snapshot = snapshot_open(core, 0, &err);
	CHECK(snapshot != NULL, "open: %s", err.message);
	if (snapshot != NULL) {
		memset(&warnings, 0, sizeof warnings);
		space = address_space_new(snapshot, &warnings, &err);
		CHECK(address_space_read(space, BASE + 8, bytes, 8, &err) != 0, "a different file read");
		CHECK(has_warning(&warnings, library, "build-id differs"), "warning: %s",
		      warnings.count ? warnings.items[0] : "none");
		address_space_free(space);
		warnings_free(&warnings);
		snapshot_close(snapshot);
	}

	/* the file gone */
	write_core(core, 4096, mappings, 1, library, build_id, build_id_size, NULL, 0, &err);
	unlink(library);
	snapshot = snapshot_open(core, 0, &err);
	CHECK(snapshot != NULL, "open: %s", err.message);
	if (snapshot != NULL) {
		memset(&warnings, 0, sizeof warnings);
		space = address_space_new(snapshot, &warnings, &err);
		CHECK(address_space_read(space, BASE + 8, bytes, 8, &err) != 0, "a missing file read");
		CHECK(has_warning(&warnings, library, "No such file"), "warning: %s",
		      warnings.count ? warnings.items[0] : "none");
		address_space_free(space);
		warnings_free(&warnings);
		snapshot_close(snapshot);
	}

	/* damaged NT_FILE notes: refused, naming the note */
	const struct {
		uint64_t page_size;
		struct mapping mappings[2];
		size_t count;
		const char *says;
	} damaged[] = {
		{3, {{BASE, BASE + 0x1000, 0, "/a"}}, 1, "page size"},
		{4096, {{BASE + 0x1000, BASE, 0, "/a"}}, 1, "entry 0"},
		{4096, {{BASE, BASE + 0x1000, UINT64_MAX / 2, "/a"}}, 1, "entry 0"},
		{4096, {{BASE, BASE + 0x2000, 0, "/a"}, {BASE + 0x1000, BASE + 0x3000, 0, "/b"}}, 2,
		 "NT_FILE mapping"},
	};
	for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
		write_core(core, damaged[i].page_size, damaged[i].mappings, damaged[i].count, "/a",
			   NULL, 0, NULL, 0, &err);
		snapshot = snapshot_open(core, 0, &err);
		CHECK(snapshot == NULL && strstr(err.message, "NT_FILE") &&
			      strstr(err.message, damaged[i].says),
		      "damaged note %zu: %s", i, snapshot ? "accepted" : err.message);
		snapshot_close(snapshot);
	}

	unlink(core);
	rmdir(directory);
	return TEST_EXIT();
}
