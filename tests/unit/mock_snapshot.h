/* A builder of synthetic snapshots for unit tests, after drgn's mock_program: a test lays out a
 * process's memory (segments with given bytes), its modules with their symbols (globals at
 * addresses, C++ classes by their vtables, C structs with pointer members and the globals that
 * point at them, in DWARF) and its threads, and gets a real snapshot file, written by formats/ as
 * a capture writes it, which analysis_open opens like any other. The modules' files are small ELF
 * files written beside the snapshot, so symbols, roots and types come through the same code as a
 * real process's. On top, a glibc malloc arena laid out chunk by chunk, with the headers and free
 * lists glibc's malloc would have written, so the real glibc walker walks it (by its heuristics:
 * the mock libc has no DWARF).
 *
 *     struct mock_snapshot *mock = mock_snapshot_new(NULL);
 *     struct mock_module *program = mock_module_add(mock, "program", 0x400000);
 *     mock_segment_add(mock, 0x400000, 0x1000, PF_R | PF_W, program);
 *     uint64_t item_vptr = mock_class_add(program, "Item", 0x400100);
 *     struct mock_glibc glibc;
 *     mock_glibc_init(&glibc, mock, 36, 0x7f0000000000, 0x10000000, 0x21000);
 *     uint64_t item = mock_malloc(&glibc, 40);           (usable size 40)
 *     mock_write_u64(mock, item, item_vptr);             (an Item)
 *     mock_symbol_add(program, "all_items", 0x400200, 8, false);
 *     mock_write_u64(mock, 0x400200, item);              (all_items points at it)
 *     mock_glibc_finish(&glibc);
 *     struct analysis *analysis = mock_snapshot_analyse(mock, "heap.snap", &err);
 *     ...
 *     analysis_close(analysis);
 *     mock_snapshot_free(mock);
 *
 * A mistake in the layout (a write outside every segment, overlapping segments, a free chunk
 * beside another) is kept and returned by mock_snapshot_write, so that the building calls need
 * no checks of their own. Two snapshots of one process (for a diff) are built in one directory
 * (mock_snapshot_new(mock_snapshot_directory(first))) with the same modules: their files are
 * written under the same names. */
#ifndef HEAPSNAP_MOCK_SNAPSHOT_H
#define HEAPSNAP_MOCK_SNAPSHOT_H

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/allocators/glibc_layout.h"
#include "analyze/analysis.h"
#include "common/error.h"

struct mock_snapshot;
struct mock_module;

/* A new, empty process image whose files go in `directory`, or, when NULL, in a temporary
 * directory of its own that mock_snapshot_free removes. Every snapshot of one directory is of one
 * process (same pid, boot and start time). NULL when out of memory or the directory cannot be
 * made. */
struct mock_snapshot *mock_snapshot_new(const char *directory);
const char *mock_snapshot_directory(const struct mock_snapshot *mock);
/* Frees the image and removes every file it wrote (and its own temporary directory). */
void mock_snapshot_free(struct mock_snapshot *mock);

/* Memory: `size` bytes at `start` (both page-aligned), zeroed, with PF_R, PF_W and PF_X flags;
 * mapped from `module`'s file at offset start - base, or anonymous when `module` is NULL. Returns
 * the bytes, which the test may fill directly (NULL on a mistake). */
uint8_t *mock_segment_add(struct mock_snapshot *mock, uint64_t start, uint64_t size,
			  uint32_t flags, struct mock_module *module);
/* A little-endian word of the process's memory, written or read. */
void mock_write_u64(struct mock_snapshot *mock, uint64_t address, uint64_t value);
uint64_t mock_read_u64(struct mock_snapshot *mock, uint64_t address);

/* A module: a file named `name` in the directory, mapped at `base` (its segments are added with
 * mock_segment_add). The first module added is the executable. */
struct mock_module *mock_module_add(struct mock_snapshot *mock, const char *name, uint64_t base);
/* Text put in the module's file (not mapped): glibc's version banner. */
void mock_module_add_text(struct mock_module *module, const char *text);
/* A symbol at a run-time address: a global, or with `local` a file's static. */
void mock_symbol_add(struct mock_module *module, const char *name, uint64_t address,
		     uint64_t size, bool local);
/* A C++ class `name` (a plain name, no namespace) by its vtable at `vtable` (in one of the
 * module's segments, 24 bytes): returns the vtable pointer an object of the class starts with,
 * which names the blocks that hold it ("Item"). */
uint64_t mock_class_add(struct mock_module *module, const char *name, uint64_t vtable);

/* C types, as the module's DWARF gives them: a struct `name` ("node" for struct node) of `size`
 * bytes whose members are pointers to structs of the module (pointer_to "node": struct node *)
 * or, with pointer_to NULL, 8-byte integers (long). */
struct mock_member {
	const char *name;
	uint64_t offset;
	const char *pointer_to;
};
void mock_struct_add(struct mock_module *module, const char *name, uint64_t size,
		     const struct mock_member *members, size_t count);
/* A global `struct POINTER_TO *name` at `address`: its symbol and its DWARF variable, from which
 * the analysis types what it points at, and on through pointer members. */
void mock_pointer_variable_add(struct mock_module *module, const char *name, uint64_t address,
			       const char *pointer_to);

/* A thread (64 at most) with its stack pointer, instruction pointer and TLS base (0: none).
 * Without any, the snapshot has one thread whose registers are all 0 (no stack, no register
 * points anywhere). */
void mock_thread_add(struct mock_snapshot *mock, int tid, const char *name, uint64_t rsp,
		     uint64_t rip, uint64_t fs_base);

/* Writes the modules' files and the snapshot `name` in the directory; its path in `path`. -1 with
 * the first mistake made in building, or what failed in writing. */
int mock_snapshot_write(struct mock_snapshot *mock, const char *name, char *path,
			size_t path_size, struct hs_error *err);
/* Writes it, opens it with analysis_open and builds its graph (dominators too). */
struct analysis *mock_snapshot_analyse(struct mock_snapshot *mock, const char *name,
				       struct hs_error *err);

/* A glibc main arena as malloc leaves it: libc.so.6 (with the banner of glibc 2.MINOR) mapped at
 * `libc_base` with a page of writable data holding main_arena, and the brk heap, an anonymous
 * mapping [heap_start, heap_start + heap_size), cut into chunks in the order they are allocated,
 * the rest its top chunk. */
#define MOCK_FREED_MAX 64
struct mock_glibc {
	struct mock_snapshot *mock;
	struct mock_module *libc;
	struct glibc_layout layout;
	uint64_t main_arena;
	uint64_t heap_start, heap_end;
	uint64_t next_chunk; /* where the next chunk goes; the top chunk once finished */
	uint64_t freed[MOCK_FREED_MAX]; /* chunks, in the order freed */
	size_t freed_count;
	bool finished; /* then malloc and free are mistakes */
};

void mock_glibc_init(struct mock_glibc *glibc, struct mock_snapshot *mock, int minor,
		     uint64_t libc_base, uint64_t heap_start, uint64_t heap_size);
/* malloc(request): the next chunk, of request + 8 bytes rounded up to 16 (32 at least), so its
 * usable size is request when request is 8 more than a multiple of 16 (24, 40, 56...). Returns
 * the pointer malloc would (0 when the heap is full: a mistake). */
uint64_t mock_malloc(struct mock_glibc *glibc, uint64_t request);
/* free(pointer), as free does once the chunk's tcache bin is full or it is too big for it: the
 * chunk goes to the unsorted bin, and the next chunk's header says it is free. A free chunk beside
 * another, or beside the top, is a mistake (malloc would have merged them). */
void mock_free(struct mock_glibc *glibc, uint64_t pointer);
/* Writes the top chunk, the free lists and main_arena (its top, its bins, its ring of one): the
 * last call on the arena (the blocks' contents may still be written after it). */
void mock_glibc_finish(struct mock_glibc *glibc);

#endif
