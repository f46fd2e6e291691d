/* The snapshot container end to end without a process: a core image written by the writer must
 * read back through the reader with the same threads, regions, modules and info; reads must return
 * stored bytes, zeros for untouched ranges, and clean errors for unreadable, unmapped and
 * file-backed addresses; the file must be 0600; a corrupt core must be refused. */
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/core_image.h"
#include "formats/snapshot.h"
#include "formats/snapshot_file.h"
#include "formats/snapshot_notes.h"
#include "test_util.h"

#define BASE 0x10000000ull

static void add_file_note(struct core_image *image, struct hs_error *err)
{
	/* one file mapping at BASE + 0x4000, 2 pages, file page 0 */
	const char name[] = "/usr/lib/libexample.so";
	uint8_t desc[16 + 24 + sizeof name];
	uint64_t header[2] = {1, 4096};
	uint64_t entry[3] = {BASE + 0x4000, BASE + 0x6000, 0};
	memcpy(desc, header, 16);
	memcpy(desc + 16, entry, 24);
	memcpy(desc + 40, name, sizeof name);
	core_image_add_note(image, "CORE", NT_FILE, desc, sizeof desc, err);
}

int main(void)
{
	char directory[] = "/tmp/heapsnap-test-snapshot-XXXXXX";
	if (mkdtemp(directory) == NULL)
		return 2;
	char path[4096];
	snprintf(path, sizeof path, "%s/test.snap", directory);
	struct hs_error err;
	struct core_image image;
	core_image_init(&image);

	struct elf_prstatus status;
	memset(&status, 0, sizeof status);
	status.pr_pid = 4242;
	status.pr_reg[16] = 0x401000; /* rip */
	status.pr_reg[19] = 0x7ffd000; /* rsp */
	CHECK(core_image_add_note(&image, "CORE", NT_PRSTATUS, &status, sizeof status, &err) == 0,
	      "%s", err.message);
	status.pr_pid = 4243;
	core_image_add_note(&image, "CORE", NT_PRSTATUS, &status, sizeof status, &err);
	add_file_note(&image, &err);
	struct snapshot_info info = {.pid = 4242, .capture_start_ns = 1795000000000000000ull,
				     .capture_end_ns = 1795000000500000000ull,
				     .pause_ns = 12500000, .has_pause = true};
	strcpy(info.exe, "/usr/bin/example");
	strcpy(info.tool_version, "test");
	strcpy(info.source, "ptrace");
	CHECK(snapshot_notes_add_info(&image, &info, &err) == 0, "%s", err.message);
	struct heapsnap_thread_note names[2] = {{4242, "main"}, {4243, "worker-1"}};
	snapshot_notes_add_threads(&image, names, 2, &err);
	uint8_t build_id[20];
	for (int i = 0; i < 20; i++)
		build_id[i] = (uint8_t)(0xa0 + i);
	snapshot_notes_add_module(&image, BASE + 0x4000, build_id, 20, "/usr/lib/libexample.so",
				  &err);
	struct heapsnap_range_note absent = {BASE + 0x1000, BASE + 0x2000};
	snapshot_notes_add_ranges(&image, HEAPSNAP_NOTE_ABSENT, &absent, 1, &err);
	struct heapsnap_range_note zero = {BASE + 0x2000, BASE + 0x4000};
	snapshot_notes_add_ranges(&image, HEAPSNAP_NOTE_ZERO, &zero, 1, &err);

	/* regions: [BASE, +0x2000) stored (second page unreadable), [+0x2000, +0x4000) untouched,
	 * [+0x4000, +0x6000) a file mapping with only its first page stored */
	static uint8_t heap[0x2000], header_page[0x1000];
	for (size_t i = 0; i < sizeof heap; i++)
		heap[i] = (uint8_t)(i * 31 + 7);
	memset(heap + 0x1000, 0, 0x1000);
	memcpy(header_page, ELFMAG, SELFMAG);
	struct core_segment segments[] = {
		{PT_LOAD, PF_R | PF_W, BASE, 0x2000, 0x2000, 0x1000, heap, NULL},
		{PT_LOAD, PF_R | PF_W, BASE + 0x2000, 0x2000, 0, 0x1000, NULL, NULL},
		{PT_LOAD, PF_R, BASE + 0x4000, 0x2000, 0x1000, 0x1000, header_page, NULL},
	};
	for (size_t i = 0; i < 3; i++)
		core_image_add_segment(&image, &segments[i], &err);
	struct seekable_options options = {.frame_size = 4096 * 3};
	struct seekable_stats stats;
	CHECK(snapshot_file_write(&image, path, NULL, &options, &stats, &err) == 0, "%s", err.message);
	core_image_free(&image);

	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode %o", st.st_mode & 0777);
	char leftover[4200];
	snprintf(leftover, sizeof leftover, "%s.tmp.%d", path, (int)getpid());
	CHECK(access(leftover, F_OK) != 0, "temporary file left behind");

	struct snapshot *snapshot = snapshot_open(path, 0, &err);
	CHECK(snapshot != NULL, "open: %s", err.message);
	if (snapshot == NULL)
		return TEST_EXIT();
	const struct snapshot_info *read_info = snapshot_info(snapshot);
	CHECK(read_info->pid == 4242 && strcmp(read_info->exe, "/usr/bin/example") == 0, "info");
	CHECK(read_info->has_pause && read_info->pause_ns == 12500000, "pause");
	CHECK(read_info->format_version == HEAPSNAP_FORMAT_VERSION, "format version");
	size_t count;
	const struct snapshot_thread *threads = snapshot_threads(snapshot, &count);
	CHECK(count == 2, "threads %zu", count);
	CHECK(count == 2 && threads[0].tid == 4242 && threads[1].tid == 4243, "tids");
	CHECK(count == 2 && strcmp(threads[1].name, "worker-1") == 0, "name '%s'", threads[1].name);
	CHECK(count >= 1 && threads[0].registers.rip == 0x401000 &&
		      threads[0].registers.rsp == 0x7ffd000,
	      "registers");
	const struct snapshot_region *regions = snapshot_regions(snapshot, &count);
	CHECK(count == 3, "regions %zu", count);
	CHECK(count == 3 && regions[2].path && strcmp(regions[2].path, "/usr/lib/libexample.so") == 0,
	      "NT_FILE path");
	const struct snapshot_module *modules = snapshot_modules(snapshot, &count);
	CHECK(count == 1 && modules[0].build_id_size == 20 &&
		      memcmp(modules[0].build_id, build_id, 20) == 0,
	      "module build-id");

	uint8_t buffer[0x3000];
	CHECK(snapshot_read(snapshot, BASE + 16, buffer, 100, &err) == 0, "%s", err.message);
	CHECK(memcmp(buffer, heap + 16, 100) == 0, "stored bytes");
	CHECK(snapshot_read(snapshot, BASE + 0x1800, buffer, 8, &err) != 0, "absent read succeeded");
	CHECK(strstr(err.message, "unreadable") && strstr(err.message, "0x10001800"), "message: %s",
	      err.message);
	memset(buffer, 0xff, sizeof buffer);
	CHECK(snapshot_read(snapshot, BASE + 0x2000, buffer, 0x2000, &err) == 0, "zero: %s",
	      err.message);
	CHECK(buffer[0] == 0 && buffer[0x1fff] == 0, "untouched memory reads as zeros");
	CHECK(snapshot_read(snapshot, BASE + 0x3ff8, buffer, 16, &err) == 0, "across regions: %s",
	      err.message);
	CHECK(memcmp(buffer + 8, ELFMAG, 4) == 0, "bytes across two regions");
	CHECK(snapshot_read(snapshot, BASE + 0x5000, buffer, 8, &err) != 0, "file bytes invented");
	CHECK(strstr(err.message, "libexample.so") != NULL, "message: %s", err.message);
	CHECK(snapshot_read(snapshot, 0x1000, buffer, 8, &err) != 0, "unmapped read succeeded");
	CHECK(strstr(err.message, "not mapped") && strstr(err.message, "0x1000"), "message: %s",
	      err.message);
	CHECK(snapshot_read(snapshot, UINT64_MAX - 3, buffer, 8, &err) != 0, "wrapping read");
	struct snapshot_totals totals;
	snapshot_totals(snapshot, &totals);
	CHECK(totals.with_contents == 0x2000 && totals.unreadable == 0x1000 &&
		      totals.untouched == 0x2000 && totals.from_files == 0x1000,
	      "totals %llu %llu %llu %llu", (unsigned long long)totals.with_contents,
	      (unsigned long long)totals.unreadable, (unsigned long long)totals.untouched,
	      (unsigned long long)totals.from_files);
	snapshot_close(snapshot);

	/* an uncompressed core with a corrupt program header count is refused with its name */
	char corrupt[4096];
	snprintf(corrupt, sizeof corrupt, "%s/corrupt.core", directory);
	Elf64_Ehdr ehdr = {0};
	memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
	ehdr.e_ident[EI_CLASS] = ELFCLASS64;
	ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
	ehdr.e_type = ET_CORE;
	ehdr.e_machine = EM_X86_64;
	ehdr.e_phoff = sizeof ehdr;
	ehdr.e_phentsize = sizeof(Elf64_Phdr);
	ehdr.e_phnum = 500;
	int fd = open(corrupt, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	write(fd, &ehdr, sizeof ehdr);
	close(fd);
	snapshot = snapshot_open(corrupt, 0, &err);
	CHECK(snapshot == NULL, "corrupt core accepted");
	CHECK(strstr(err.message, "corrupt.core") != NULL, "message: %s", err.message);

	/* more program headers than e_phnum can count: extended numbering, read back exactly */
	char many[4096];
	snprintf(many, sizeof many, "%s/many.snap", directory);
	core_image_init(&image);
	enum { MANY = 70000 };
	static uint64_t page_values[MANY];
	for (uint64_t i = 0; i < MANY; i++) {
		page_values[i] = i * 3 + 1;
		struct core_segment segment = {PT_LOAD, PF_R | PF_W, BASE + i * 0x2000, 8, 8, 0x1000,
					       &page_values[i], NULL};
		core_image_add_segment(&image, &segment, &err);
	}
	CHECK(snapshot_file_write(&image, many, NULL, NULL, &stats, &err) == 0, "%s", err.message);
	core_image_free(&image);
	snapshot = snapshot_open(many, 0, &err);
	CHECK(snapshot != NULL, "extended numbering: %s", err.message);
	if (snapshot) {
		snapshot_regions(snapshot, &count);
		CHECK(count == MANY, "extended numbering: %zu regions", count);
		uint64_t value = 0;
		CHECK(snapshot_read(snapshot, BASE + 69999 * 0x2000ull, &value, 8, &err) == 0 &&
			      value == 69999 * 3 + 1,
		      "extended numbering: last segment reads %llu", (unsigned long long)value);
		snapshot_close(snapshot);
	}

	char command[4200];
	snprintf(command, sizeof command, "rm -rf '%s'", directory);
	system(command);
	return TEST_EXIT();
}
