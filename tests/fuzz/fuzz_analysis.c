/* The analysis on damaged memory: a small real snapshot (seeds/: a C process's glibc heap, and a
 * CPython 3.11 process's) is loaded once, decompressed into an anonymous memory file; the input is
 * a list of patches to its memory (raw words, pointers into any of its segments, small changes to
 * a word, single bytes) which are applied to the core, opened as an uncompressed core (so heap
 * chunks, arenas, tcache and bins, pymalloc pools, Python objects, types and dicts are what is
 * damaged, never the headers), analysed as `heapsnap summary` does (glibc and pymalloc walks,
 * types, Python objects, the object graph with dominators, the summary with cycles, the retaining
 * paths of the largest types), and then undone. Any crash, out-of-bounds access, leak, hang or
 * runaway allocation is a bug in analyze/. The symbols are the modules' own (no separate debug
 * files). Input layout: byte 0 picks the seed (bit 7: without
 * debug information), then 13-byte patches: segment (1), word index (3, little-endian), kind (1),
 * value (8). */
#include <elf.h>
#include <string.h>

#include "analyze/analysis.h"
#include "analyze/graph/paths.h"
#include "analyze/reports/summary.h"
#include "fuzz_util.h"

#ifndef FUZZ_SEED_DIR
#error "FUZZ_SEED_DIR names the directory of the seed snapshots"
#endif

static const char *const seed_names[] = {"glibc.snap", "python.snap"};
enum { SEEDS = sizeof seed_names / sizeof seed_names[0], PATCH_SIZE = 13, PATCHES_MAX = 64 };

struct piece {
	uint64_t offset, size, vaddr; /* a segment's stored bytes in the core */
};

struct seed {
	struct fuzz_file file; /* the decompressed core, which the analysis opens */
	uint8_t *core;	       /* the file's bytes, mapped shared: patched in place */
	uint8_t *original;     /* a copy, to undo the patches */
	size_t size;
	struct piece *pieces;
	size_t piece_count;
};

static struct seed seeds[SEEDS];

static void load_seed(struct seed *seed, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", FUZZ_SEED_DIR, name);
	struct hs_error err;
	struct snapshot *snapshot = snapshot_open(path, 0, &err);
	if (snapshot == NULL) {
		fprintf(stderr, "heapsnap fuzz: %s\n", err.message);
		abort();
	}
	seed->size = (size_t)snapshot_core_size(snapshot);
	seed->original = malloc(seed->size);
	if (seed->original == NULL ||
	    snapshot_read_core(snapshot, 0, seed->original, seed->size, &err) != 0) {
		fprintf(stderr, "heapsnap fuzz: %s: cannot read its core\n", path);
		abort();
	}
	size_t count;
	const struct snapshot_segment *segments = snapshot_segments(snapshot, &count);
	seed->pieces = calloc(count, sizeof *seed->pieces);
	for (size_t i = 0; i < count; i++)
		if (segments[i].type == PT_LOAD && segments[i].filesz >= 8)
			seed->pieces[seed->piece_count++] = (struct piece){
				segments[i].offset, segments[i].filesz, segments[i].vaddr};
	snapshot_close(snapshot);
	fuzz_file_open(&seed->file, seed->original, seed->size);
	seed->core = mmap(NULL, seed->size, PROT_READ | PROT_WRITE, MAP_SHARED, seed->file.fd, 0);
	if (seed->core == MAP_FAILED || seed->piece_count == 0) {
		fprintf(stderr, "heapsnap fuzz: %s: cannot map its core\n", path);
		abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	for (size_t i = 0; i < SEEDS; i++)
		load_seed(&seeds[i], seed_names[i]);
	return 0;
}

static uint64_t little_endian(const uint8_t *bytes, size_t size)
{
	uint64_t value = 0;
	for (size_t i = size; i-- > 0;)
		value = value << 8 | bytes[i];
	return value;
}

/* Applies one patch; returns the offset in the core of the word it changed. */
static uint64_t apply_patch(struct seed *seed, const uint8_t *patch)
{
	const struct piece *piece = &seed->pieces[patch[0] % seed->piece_count];
	uint64_t at = piece->offset + little_endian(patch + 1, 3) % (piece->size / 8) * 8;
	uint8_t kind = patch[4];
	uint64_t value = little_endian(patch + 5, 8), word;
	memcpy(&word, seed->core + at, 8);
	switch (kind % 4) {
	case 0: /* any word */
		word = value;
		break;
	case 1: { /* a pointer into a segment: the low byte picks it, the rest is the offset */
		const struct piece *target = &seed->pieces[(value & 0xff) % seed->piece_count];
		word = target->vaddr + (value >> 8) % target->size;
		break;
	}
	case 2: /* a small change: a size, a count, a reference count, a pointer moved */
		word += (uint64_t)(int64_t)(int8_t)(value & 0xff);
		break;
	default: /* one byte */
		((uint8_t *)&word)[(kind >> 2) % 8] = (uint8_t)value;
		break;
	}
	memcpy(seed->core + at, &word, 8);
	return at;
}

static void analyse(const char *path, bool no_debuginfo)
{
	struct hs_error err;
	/* debug files are looked for in the seeds' directory, which has none: reading libc6-dbg's
	   DWARF takes seconds per input under the sanitizers */
	struct analysis_options options = {.debug_dir = FUZZ_SEED_DIR, .no_debuginfo = no_debuginfo};
	struct analysis *analysis = analysis_open(path, &options, &err);
	if (analysis == NULL)
		return;
	struct heap_summary summary;
	if (analysis_build_graph(analysis, &err) != 0 ||
	    heap_summary_build(analysis, &summary, &err) != 0) {
		analysis_close(analysis);
		return;
	}
	struct path_index *paths =
		path_index_build(&analysis->graph, &analysis->heap, &analysis->types,
				 analysis->same_type_dominated, false, &err);
	if (paths) {
		static struct path_shape shapes[5];
		for (size_t i = 0; i < summary.type_count && i < 10; i++)
			paths_of_type(paths, summary.types[i].type, summary.types[i].size, NULL, NULL,
				      shapes, 5);
		for (size_t i = 0; i < summary.unreachable_count && i < 10; i++)
			paths_of_type(paths, summary.unreachable[i].type,
				      summary.unreachable[i].size, NULL, NULL, shapes, 5);
		const struct heap *heap = &analysis->heap;
		for (size_t i = 0; i < heap->count; i += heap->count / 32 + 1)
			path_of_allocation(paths, i, &shapes[0]);
		path_index_free(paths);
	}
	heap_summary_free(&summary);
	analysis_close(analysis);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	struct seed *seed = &seeds[(data[0] & 0x7f) % SEEDS];
	uint64_t patched[PATCHES_MAX];
	size_t patch_count = 0;
	for (size_t at = 1; at + PATCH_SIZE <= size && patch_count < PATCHES_MAX; at += PATCH_SIZE)
		patched[patch_count++] = apply_patch(seed, data + at);
	analyse(seed->file.path, data[0] & 0x80);
	for (size_t i = patch_count; i-- > 0;)
		memcpy(seed->core + patched[i], seed->original + patched[i], 8);
	return 0;
}
