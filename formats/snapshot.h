/* Reading a snapshot: a seekable-zstd ELF core written by heapsnap, or (for import and for
 * convenience) an uncompressed ELF core from gcore or the kernel. Opening validates the ELF header,
 * program headers and notes against the file's real size; reads of memory decompress only the
 * frames they need. Nothing returned here is trusted later without a bounds check. */
#ifndef HEAPSNAP_SNAPSHOT_H
#define HEAPSNAP_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

#include "common/error.h"

struct snapshot;

struct snapshot_thread {
	int tid;
	char name[17];			  /* empty when the snapshot does not record it */
	struct user_regs_struct registers; /* general registers, fs_base included */
	int signal;			  /* pending or current signal, 0 if none */
};

struct snapshot_region {
	uint64_t start, end; /* [start, end) */
	uint32_t flags;	     /* PF_R | PF_W | PF_X */
	uint64_t data_offset; /* offset of its bytes in the decompressed core */
	uint64_t data_size;   /* bytes present in the core, from start; the rest is not captured */
	const char *path;     /* mapped file (NT_FILE), or NULL for anonymous memory */
	uint64_t file_offset; /* offset of start in that file */
	bool has_segment;     /* false: a file mapping only NT_FILE names (gcore leaves read-only
				 ones out of the core); its bytes are the file's */
};

struct snapshot_module {
	const char *path;
	uint64_t base;
	uint8_t build_id[64];
	size_t build_id_size; /* 0: unknown */
};

struct snapshot_note {
	const char *owner;
	uint32_t type;
	const uint8_t *desc;
	size_t size;
};

/* What the HEAPSNAP info note says; fields are 0 or empty for an imported foreign core. */
struct snapshot_info {
	unsigned format_version;
	char tool_version[32];
	char source[16]; /* "ptrace", "import", "hook" */
	int pid;
	char exe[4096];
	/* the name the program was started by: argv[0]'s last component, from NT_PRPSINFO (a
	   symlink's name, "redis-server", where exe is its target); empty when unknown. The rest of
	   the command line is not kept: it may hold secrets */
	char program[64];
	uint64_t capture_start_ns, capture_end_ns, pause_ns; /* Unix time in ns; pause in ns */
	char kernel_release[65];
	char boot_id[40];
	uint64_t process_start_ticks;
	bool has_pause;
	/* how a live capture took the memory: "fork" (from a copy-on-write clone; the pause is
	   the clone's making) or "freeze" (copied while stopped); empty when not recorded */
	char method[8];
	/* allocation sites recorded from outside (`capture --sites`): sites_source "bpf", else
	   empty (the hook's sites, when present, leave these empty) */
	char sites_source[8];
	char sites_allocator[32];	/* whose entry points were probed: "glibc", "jemalloc"... */
	uint64_t sites_window_ns;	/* how long the recording ran before the capture */
	uint64_t sites_sample_bytes;	/* one allocation recorded per that many bytes; 0: all */
	uint64_t sites_allocations;	/* allocator calls seen during the window */
	/* allocations made during the window that got no site: stack lost, map full, or not
	   unwound (beside those made before the window, which have none either) */
	uint64_t sites_unrecorded;
	uint64_t sites_map_full; /* of them, not kept because the map was full (--sites-max) */
};

/* cache_bytes bounds memory used for decompressed frames (0: HEAPSNAP_CACHE_MIB MiB when set,
 * else 64 MiB). */
struct snapshot *snapshot_open(const char *path, size_t cache_bytes, struct hs_error *err);
void snapshot_close(struct snapshot *snapshot);

const char *snapshot_path(const struct snapshot *snapshot);
bool snapshot_is_compressed(const struct snapshot *snapshot);
uint64_t snapshot_file_size(const struct snapshot *snapshot);
uint64_t snapshot_core_size(const struct snapshot *snapshot); /* decompressed */
const struct snapshot_info *snapshot_info(const struct snapshot *snapshot);

const struct snapshot_thread *snapshot_threads(const struct snapshot *snapshot, size_t *count);
/* The process's mappings sorted by address: every PT_LOAD segment, and the parts of NT_FILE's
 * file mappings no segment covers */
const struct snapshot_region *snapshot_regions(const struct snapshot *snapshot, size_t *count);
const struct snapshot_module *snapshot_modules(const struct snapshot *snapshot, size_t *count);
/* Every note, in file order, foreign ones included */
const struct snapshot_note *snapshot_notes(const struct snapshot *snapshot, size_t *count);
/* The first note with this owner and type, or NULL */
const struct snapshot_note *snapshot_find_note(const struct snapshot *snapshot, const char *owner,
					       uint32_t type);

/* Where the snapshot's address space comes from, in bytes. */
struct snapshot_totals {
	size_t regions;
	uint64_t with_contents; /* stored in the snapshot (memory_bytes) */
	uint64_t from_files;	/* read-only file mappings: their bytes are in the files */
	uint64_t untouched;	/* never-touched anonymous pages: zeros, not stored */
	uint64_t unreadable;	/* could not be read at capture */
	uint64_t not_captured;	/* anything else without bytes (unreadable mappings, [vvar]) */
};
void snapshot_totals(const struct snapshot *snapshot, struct snapshot_totals *totals);

/* The region containing addr, or NULL. */
const struct snapshot_region *snapshot_find_region(const struct snapshot *snapshot, uint64_t addr);

/* The mapping `region` was captured from, as [*start, *end): a capture keeps a mapping's runs of
 * never-touched pages as regions of their own (zeros, not stored), and this joins the parts
 * again, so that a walker bounds what it reads by the memory the process had, not by what was
 * stored. A region of the snapshot. */
void snapshot_mapping_bounds(const struct snapshot *snapshot, const struct snapshot_region *region,
			     uint64_t *start, uint64_t *end);

/* Copies the process's memory [addr, addr+size) as captured. Fails, naming the address, when any of
 * it is unmapped, was unreadable at capture, or lives only in a mapped file. */
int snapshot_read(struct snapshot *snapshot, uint64_t addr, void *buf, size_t size,
		  struct hs_error *err);

/* -1, naming the file, the frame and its offset, once a read has met a damaged frame: reads of
 * its bytes fail (quickly: it is not decompressed again), so an analysis that went on would
 * answer for part of the memory only. 0 while every frame read so far was whole. */
int snapshot_check_damage(const struct snapshot *snapshot, struct hs_error *err);
/* How many damaged frames reads have met so far. */
uint64_t snapshot_damaged_frames(const struct snapshot *snapshot);
/* Calls `visit` for each range of the process's memory [start, end) that could not be read when
 * the snapshot was taken (stored as zeros, but no contents). */
void snapshot_each_absent_range(const struct snapshot *snapshot,
				void (*visit)(void *context, uint64_t start, uint64_t end),
				void *context);
/* Calls `visit` for each range of the process's memory [start, end) whose stored bytes lie in a
 * damaged frame met so far: what reads of it could not see. */
void snapshot_each_damaged_range(const struct snapshot *snapshot,
				 void (*visit)(void *context, uint64_t start, uint64_t end),
				 void *context);

/* Decompresses every frame, checking each one's checksum: proves the whole file is intact. */
int snapshot_verify(struct snapshot *snapshot, struct hs_error *err);

/* Copies bytes of the decompressed core itself (for import and tests). */
int snapshot_read_core(struct snapshot *snapshot, uint64_t offset, void *buf, size_t size,
		       struct hs_error *err);
/* Non-NULL when the snapshot is an uncompressed core: its bytes, mapped. */
const uint8_t *snapshot_raw_core(const struct snapshot *snapshot);

/* Program headers of the core as read (for import). */
struct snapshot_segment {
	uint32_t type, flags;
	uint64_t offset, vaddr, filesz, memsz, align;
};
const struct snapshot_segment *snapshot_segments(const struct snapshot *snapshot, size_t *count);

#endif
