/* The core importer on hostile cores: the input is an uncompressed ELF core as gcore or the kernel
 * writes it (program headers, PT_NOTE with NT_PRSTATUS, NT_FILE, NT_AUXV..., PT_LOAD segments; a
 * decompressed heapsnap snapshot is one too). It is imported (capture/core_import.c: read through
 * the snapshot reader, module build-ids from the core or from the files NT_FILE names, every note
 * and segment copied, written back as a seekable zstd snapshot through formats/core_image.c and
 * snapshot_file.c) into a temporary directory, and the snapshot written is opened again, queried,
 * read in every region and verified: an import must never write a snapshot its own reader
 * refuses. */
#include <string.h>

#include "capture/core_import.h"
#include "formats/snapshot.h"
#include "fuzz_util.h"

static char directory[64];
static char output[80];

static void remove_directory(void)
{
	unlink(output);
	rmdir(directory);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* /dev/shm first: the writer's fsync costs nothing there */
	const char *templates[] = {"/dev/shm/heapsnap-fuzz-XXXXXX", "/tmp/heapsnap-fuzz-XXXXXX"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(directory, sizeof directory, "%s", templates[i]);
		if (mkdtemp(directory) != NULL)
			break;
		if (i == 1) {
			perror("heapsnap fuzz: mkdtemp");
			abort();
		}
	}
	snprintf(output, sizeof output, "%s/out.snap", directory);
	atexit(remove_directory);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_file file;
	fuzz_file_open(&file, data, size);
	struct hs_error err;
	struct import_result result;
	/* one thread, in the caller: no thread pool per input */
	struct seekable_options compression = {.level = 1, .threads = 1, .in_caller = true,
					       .frame_size = 1 << 16};
	int imported = import_core(file.path, output, &compression, &result, &err);
	fuzz_file_close(&file);
	if (imported != 0)
		return 0;
	struct snapshot *snapshot = snapshot_open(output, 0, &err);
	if (snapshot == NULL) {
		fprintf(stderr, "the imported snapshot does not open: %s\n", err.message);
		abort();
	}
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(snapshot, &count);
	static uint8_t buffer[4096];
	for (size_t i = 0; i < count; i++) {
		uint64_t length = regions[i].end - regions[i].start;
		snapshot_read(snapshot, regions[i].start, buffer,
			      length < sizeof buffer ? (size_t)length : sizeof buffer, &err);
	}
	snapshot_threads(snapshot, &count);
	snapshot_modules(snapshot, &count);
	snapshot_notes(snapshot, &count);
	if (snapshot_verify(snapshot, &err) != 0) {
		fprintf(stderr, "the imported snapshot does not verify: %s\n", err.message);
		abort();
	}
	snapshot_close(snapshot);
	unlink(output);
	return 0;
}
