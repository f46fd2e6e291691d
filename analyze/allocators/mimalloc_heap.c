/* The mimalloc 2.0 and 2.1 walker (see mimalloc_heap.h; what differs between them is in
 * known_versions).
 *
 * What mimalloc 2.0 keeps, from its 2.0.9 sources (include/mimalloc-types.h, src/segment.c) and
 * checked on Debian's build: memory comes in segments, MI_SEGMENT_SIZE (32 MiB) aligned, so the
 * segment of any block is its address rounded down; a huge block (past 16 MiB) has a segment of
 * its own, longer than 32 MiB. A segment starts with its mi_segment_t, whose `slices` array has
 * one mi_page_t (80 bytes in a release build) per 64 KiB slice. A run of slices is either a page
 * (its first slice's `xblock_size` is its block size, `capacity` blocks of it are carved out from
 * the page's start, of which `used` are handed out or freed by other threads and not collected
 * yet) or a free span (`xblock_size` 0). A page's free blocks wait in three lists linked through
 * their first word: `free` (malloc takes from it), `local_free` (freed by the owning thread,
 * moved to `free` when `free` runs out) and `xthread_free` (freed by other threads, its low two
 * bits a flag); blocks other threads free into a full page go instead to the owning heap's
 * `thread_delayed_free` list (the mi_heap_t a page's `xheap` names). Both are still counted in
 * `used`. The release build does not encode these lists (MI_ENCODE_FREELIST is off: the page
 * has no keys, which its 80-byte size shows); secure and debug builds do (96-byte descriptors),
 * and a debug build pads each block (see padded_usable_size). Which build it is, is told by
 * which descriptor size chains each segment's slices (choose_layout).
 *
 * Segments are found by shape: at each 32 MiB aligned address of the anonymous mappings, a
 * header whose fields fit (kind, slice counts) and whose cookie, xor its address, gives the same
 * value as every other segment's: the main heap's cookie (_mi_ptr_cookie), which is then looked
 * for in the library's data. A segment owned by no thread is abandoned (its thread ended with
 * blocks still allocated: they are live, its free blocks retained) or, with no page in use,
 * freed and kept in mimalloc's segment cache (retained). Free spans are listed where they are
 * committed: as "free_span" (PLACE_TOP, the room a thread's pages grow into) in a segment a
 * thread owns, as retained in the others. Everything is checked as it is read, and what does
 * not fit is a warning naming its address, counted as damage. */
#include "mimalloc_heap.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/allocators/walk_report.h"
#include "analyze/dwarf_types.h"
#include "common/array_grow.h"
#include "common/bytes.h"

/* mi_segment_t (64-bit, release build) */
#define SEGMENT_SHIFT 25 /* MI_SEGMENT_SHIFT: 32 MiB */
#define SEGMENT_SIZE (1ull << SEGMENT_SHIFT)
#define SLICE_SIZE (1ull << 16) /* MI_SEGMENT_SLICE_SIZE */
#define SLICES_PER_SEGMENT 512	/* MI_SLICES_PER_SEGMENT */
#define SEGMENT_COMMIT_MASK 112 /* commit_mask: one bit per slice of the first 32 MiB */
#define SEGMENT_USED 208	/* pages in use */
#define SEGMENT_COOKIE 216
#define SEGMENT_SLICES 224	/* segment_slices: its length in slices */
#define SEGMENT_INFO_SLICES 232 /* segment_info_slices: the header's slices */
#define SEGMENT_KIND 240	/* MI_SEGMENT_NORMAL or MI_SEGMENT_HUGE */
#define SEGMENT_SLICE_ENTRIES 248
#define SEGMENT_THREAD_ID 256 /* the owning thread's _mi_thread_id (its fs base), 0 for none */
#define SEGMENT_SLICES_ARRAY 264
#define SEGMENT_HEADER SEGMENT_SLICES_ARRAY

/* mi_page_t: 80 bytes in a release build, 96 where free lists are encoded (MI_SECURE >= 3 or
 * MI_DEBUG >= 1: two keys before xthread_free); the fields before them are the same */
#define PAGE_SLICE_COUNT 0
#define PAGE_SLICE_OFFSET 4
#define PAGE_CAPACITY 10 /* uint16_t */
#define PAGE_RESERVED 12 /* uint16_t */
#define PAGE_FREE 16
#define PAGE_USED 24	    /* uint32_t */
#define PAGE_XBLOCK_SIZE 28 /* uint32_t */
#define PAGE_LOCAL_FREE 32
#define PAGE_KEYS 40 /* where free lists are encoded */
#define PAGE_DESCRIPTOR_MAX 96
#define HUGE_BLOCK_SIZE 0x80000000u /* MI_HUGE_BLOCK_SIZE: xblock_size for blocks past 2 GiB */
#define SMALL_START_OFFSET 384	    /* 3 * MI_MAX_ALIGN_GUARANTEE, before blocks of 8-1024 */
#define MEDIUM_OBJECT_MAX (128u << 10) /* MI_MEDIUM_OBJ_SIZE_MAX: larger blocks have a page each */

/* mi_heap_t (in a release or secure build; a debug build's has one more direct page pointer
 * before these: they are 8 bytes further, see heap_shift) */
#define HEAP_THREAD_DELAYED_FREE 2840
#define HEAP_THREAD_ID 2848
#define HEAP_COOKIE 2864
#define HEAP_KEYS 2872 /* encode thread_delayed_free where free lists are encoded */
#define HEAP_SIZE 3064

#define HEAPS_MAX 1024 /* mi_heap_t told apart (threads, and heaps the program made) */
#define OWNERS_MAX 1024

struct segment {
	uint64_t address, size, thread_id, used, key;
	unsigned info_slices, slice_entries, kind;
	uint64_t commit_mask[8];
};

struct owner {
	uint64_t thread_id; /* 0: abandoned, 1: cached */
	int arena;
};

struct mi_heap {
	uint64_t address, thread_id;
};

/* Where the builds differ (see mi_page_t and mi_heap_t above). */
struct page_layout {
	unsigned size, xthread_free, xheap;
	bool encoded;
	/* a debug build's (MI_DEBUG >= 1): mi_heap_t's fields after its direct pages are this
	   much further, and MI_PADDING puts this many bytes after each block, out of its usable
	   size */
	unsigned heap_shift, padding;
};

static const struct page_layout release_layout = {80, 40, 48, false, 0, 0};
static const struct page_layout encoded_layout = {96, 56, 64, true, 0, 0};

/* Where a small page's first block starts past the page's first slice (_mi_segment_page_start):
 * 2.0 puts blocks of 8 to 1024 bytes 3 * MI_MAX_ALIGN_GUARANTEE in; 2.1 (CPython's
 * Objects/mimalloc/segment.c, _mi_segment_page_start_from_slice) puts blocks of up to 64 bytes
 * three blocks in and blocks of up to 512 one block in, so that a block's offset in its page
 * stays a multiple of its size. */
static uint64_t start_offset_2_0(uint64_t block_size)
{
	return block_size >= 8 && block_size <= 1024 ? SMALL_START_OFFSET : 0;
}

static uint64_t start_offset_2_1(uint64_t block_size)
{
	if (block_size < 8)
		return 0;
	return block_size <= 64 ? 3 * block_size : block_size <= 512 ? block_size : 0;
}

/* The versions heapsnap knows and what differs between them. The offsets of mi_segment_t,
 * mi_page_t and mi_heap_t above are the same in both: 2.1 renamed and added bit fields in the
 * page's bytes 8 to 15, which are not read (checked against the DWARF of CPython 3.13's
 * libpython, and checked again on every libpython that has DWARF: check_dwarf_layout). */
struct mimalloc_version {
	const char *prefix; /* of mi_version()'s answer: "2.0." */
	uint64_t (*start_offset)(uint64_t block_size);
};

static const struct mimalloc_version mimalloc_2_0 = {"2.0.", start_offset_2_0};
static const struct mimalloc_version mimalloc_2_1 = {"2.1.", start_offset_2_1};
static const struct mimalloc_version *const known_versions[] = {&mimalloc_2_0, &mimalloc_2_1};

struct walker {
	struct address_space *space;
	const struct mimalloc_version *version;
	struct page_layout layout;
	struct heap *heap;
	struct warnings *warnings;
	struct address_cursor pages;
	struct segment *segments;
	size_t segment_count, segment_capacity;
	struct owner owners[OWNERS_MAX];
	size_t owner_count;
	bool owners_overflow;
	struct mi_heap heaps[HEAPS_MAX];
	size_t heap_count;
	bool heaps_overflow;
	size_t first_block; /* the heap's first block this walk added (a malloc walked before
			       it holds the ones before: they are in address order among themselves) */
	uint8_t marks[65536]; /* per block of the page walked: 0 live, else its place + 1 */
	struct walk_report report; /* damage and blocks (walk_report.h) */
};

/* ---- the version -------------------------------------------------------------------------- */

/* mi_version() returns MI_MALLOC_VERSION (209 for 2.0.9): its code is `mov $N, %eax; ret`,
 * perhaps after an endbr64, and in a build without optimisation inside `push %rbp; mov
 * %rsp, %rbp` ... `pop %rbp`. */
static void read_version(struct walker *walker, struct module_symbols *module, char *version,
			 size_t size)
{
	version[0] = 0;
	uint64_t address;
	uint8_t code[16];
	if (!module_symbols_lookup(module, "mi_version", &address, NULL) ||
	    address_space_read(walker->space, address, code, sizeof code, NULL) != 0)
		return;
	size_t at = memcmp(code, "\xf3\x0f\x1e\xfa", 4) == 0 ? 4 : 0;
	bool frame = memcmp(code + at, "\x55\x48\x89\xe5", 4) == 0;
	at += frame ? 4 : 0;
	if (code[at] != 0xb8 || (frame && code[at + 5] != 0x5d) || code[at + 5 + frame] != 0xc3)
		return;
	uint32_t number = u32_at(code, at + 1);
	if (number >= 100 && number < 1000)
		snprintf(version, size, "%u.%u.%u", number / 100, number / 10 % 10, number % 10);
}

/* ---- segments ----------------------------------------------------------------------------- */

/* Whether the header at `address` has the shape of a segment's. */
static bool parse_segment(uint64_t address, const uint8_t *header, struct segment *segment)
{
	segment->address = address;
	segment->used = u64_at(header, SEGMENT_USED);
	segment->key = u64_at(header, SEGMENT_COOKIE) ^ address;
	uint64_t slices = u64_at(header, SEGMENT_SLICES);
	uint64_t info = u64_at(header, SEGMENT_INFO_SLICES);
	uint64_t entries = u64_at(header, SEGMENT_SLICE_ENTRIES);
	segment->kind = u32_at(header, SEGMENT_KIND);
	segment->thread_id = u64_at(header, SEGMENT_THREAD_ID);
	memcpy(segment->commit_mask, header + SEGMENT_COMMIT_MASK, sizeof segment->commit_mask);
	if (segment->kind > 1 || info == 0 || info > 16 || entries > SLICES_PER_SEGMENT + 1 ||
	    entries <= info || slices < entries || segment->used > entries ||
	    slices > (1ull << 40) / SLICE_SIZE)
		return false;
	/* (a secure build keeps the last slice as a guard page, out of slice_entries) */
	if (segment->kind == 0 && (slices != SLICES_PER_SEGMENT || entries < SLICES_PER_SEGMENT - 8))
		return false;
	segment->info_slices = (unsigned)info;
	segment->slice_entries = (unsigned)entries;
	segment->size = slices * SLICE_SIZE;
	return true;
}

static int add_segment(struct walker *walker, const struct segment *segment, struct hs_error *err)
{
	struct segment *grown = array_grow(walker->segments, &walker->segment_capacity,
					   walker->segment_count, sizeof *walker->segments, 64);
	if (grown == NULL)
		return hs_error_nomem(err, "listing mimalloc's segments");
	walker->segments = grown;
	walker->segments[walker->segment_count++] = *segment;
	return 0;
}

/* Every header of a segment's shape at a 32 MiB aligned address of the anonymous writable
 * mappings, in address order. */
static int find_candidates(struct walker *walker, struct hs_error *err)
{
	struct snapshot *snapshot = address_space_snapshot(walker->space);
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(snapshot, &count);
	uint8_t header[SEGMENT_HEADER];
	for (size_t i = 0; i < count; i++) {
		const struct snapshot_region *region = &regions[i];
		if (region->path != NULL || !(region->flags & PF_W))
			continue;
		uint64_t at = (region->start + SEGMENT_SIZE - 1) & ~(SEGMENT_SIZE - 1);
		for (; at >= region->start && at + SEGMENT_HEADER <= region->end; at += SEGMENT_SIZE) {
			struct segment segment;
			if (address_space_read(walker->space, at, header, sizeof header, NULL) != 0 ||
			    !parse_segment(at, header, &segment))
				continue;
			if (add_segment(walker, &segment, err) != 0)
				return -1;
		}
	}
	return 0;
}

/* The cookie key most candidates share: the main heap's cookie. */
static uint64_t common_key(const struct walker *walker)
{
	uint64_t best = 0;
	size_t best_count = 0;
	for (size_t i = 0; i < walker->segment_count; i++) {
		size_t same = 0;
		for (size_t j = 0; j < walker->segment_count; j++)
			same += walker->segments[j].key == walker->segments[i].key;
		if (same > best_count) {
			best_count = same;
			best = walker->segments[i].key;
		}
	}
	return best;
}

/* Keeps the candidates with the key, past the end of the segment before (a huge segment's
 * blocks may hold anything); a header of a segment's shape with another cookie, outside every
 * segment, is said. */
static void keep_segments(struct walker *walker, uint64_t key)
{
	size_t kept = 0;
	uint64_t end = 0;
	for (size_t i = 0; i < walker->segment_count; i++) {
		struct segment *segment = &walker->segments[i];
		if (segment->address < end)
			continue;
		if (segment->key != key) {
			walk_damage(
			    &walker->report, segment->address + SEGMENT_COOKIE,
			    "the segment-like header at 0x%llx has cookie 0x%llx, not the address "
			    "xor the main heap's cookie (0x%llx): it is not walked",
			    (unsigned long long)segment->address,
			    (unsigned long long)(segment->key ^ segment->address),
			    (unsigned long long)(key ^ segment->address));
			continue;
		}
		end = segment->address + segment->size;
		walker->segments[kept++] = *segment;
	}
	walker->segment_count = kept;
}

/* Where _mi_heap_main is: the word of the library's writable data holding the key, at the
 * cookie's offset in a mi_heap_t; 0 when not found. */
static uint64_t find_main_heap(struct walker *walker, const char *path, uint64_t key)
{
	struct snapshot *snapshot = address_space_snapshot(walker->space);
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(snapshot, &count);
	for (size_t i = 0; i < count; i++) {
		const struct snapshot_region *region = &regions[i];
		if (region->path == NULL || strcmp(region->path, path) != 0 ||
		    !(region->flags & PF_W))
			continue;
		for (uint64_t at = region->start; at + 8 <= region->end; at += 8) {
			uint64_t word;
			uint64_t offset = HEAP_COOKIE + walker->layout.heap_shift;
			if (address_space_read_u64(walker->space, at, &word) && word == key &&
			    at >= offset)
				return at - offset;
		}
	}
	return 0;
}

/* Whether the segment's descriptors, `size` bytes each, chain page by page and span by span
 * from the header's slices to slice_entries, as mimalloc keeps them. */
static bool descriptors_fit(struct walker *walker, const struct segment *segment, unsigned size,
			    uint8_t *descriptors)
{
	if (address_space_read(walker->space, segment->address + SEGMENT_SLICES_ARRAY, descriptors,
			       (size_t)segment->slice_entries * size, NULL) != 0)
		return false;
	uint64_t slices = segment->size / SLICE_SIZE;
	unsigned slice = segment->info_slices;
	while (slice < segment->slice_entries) {
		const uint8_t *descriptor = descriptors + (size_t)slice * size;
		uint32_t count = u32_at(descriptor, PAGE_SLICE_COUNT);
		if (count == 0 || u32_at(descriptor, PAGE_SLICE_OFFSET) != 0 || slice + count > slices)
			return false;
		if (u32_at(descriptor, PAGE_XBLOCK_SIZE) != 0 &&
		    (u16_at(descriptor, PAGE_CAPACITY) > u16_at(descriptor, PAGE_RESERVED) ||
		     u32_at(descriptor, PAGE_USED) > u16_at(descriptor, PAGE_CAPACITY)))
			return false;
		slice += count;
	}
	return slice == segment->slice_entries || segment->kind == 1;
}

/* The build's page layout: the one whose descriptors fit more segments (the release one when
 * as many). */
static void choose_layout(struct walker *walker, uint8_t *descriptors)
{
	size_t release = 0, encoded = 0;
	for (size_t i = 0; i < walker->segment_count; i++) {
		const struct segment *segment = &walker->segments[i];
		release += descriptors_fit(walker, segment, release_layout.size, descriptors);
		encoded += descriptors_fit(walker, segment, encoded_layout.size, descriptors);
	}
	walker->layout = encoded > release ? encoded_layout : release_layout;
	if (!walker->layout.encoded)
		return;
	/* free lists are encoded in secure and debug builds; a debug build's heap is told by where
	   a page's heap keeps its owner's thread id, and has padding after each block */
	for (size_t i = 0; i < walker->segment_count; i++) {
		const struct segment *segment = &walker->segments[i];
		uint64_t xheap = 0, thread_id = 0;
		if (segment->thread_id == 0 ||
		    !descriptors_fit(walker, segment, walker->layout.size, descriptors))
			continue;
		const uint8_t *first = descriptors + (size_t)segment->info_slices * walker->layout.size;
		if (u32_at(first, PAGE_XBLOCK_SIZE) == 0)
			continue;
		xheap = u64_at(first, walker->layout.xheap);
		if (address_space_read_u64(walker->space, xheap + HEAP_THREAD_ID + 8, &thread_id) &&
		    thread_id == segment->thread_id) {
			walker->layout.heap_shift = 8;
			walker->layout.padding = 8; /* sizeof(mi_padding_t) */
		}
		return;
	}
}

/* ---- blocks ------------------------------------------------------------------------------- */

static int thread_tid(struct walker *walker, uint64_t thread_id)
{
	size_t count;
	const struct snapshot_thread *threads =
		snapshot_threads(address_space_snapshot(walker->space), &count);
	for (size_t i = 0; i < count; i++)
		if (threads[i].registers.fs_base == thread_id)
			return threads[i].tid;
	return 0;
}

/* The heap arena of a segment's owner (a thread by its id, 0 for abandoned, 1 for cached). */
static int owner_arena(struct walker *walker, uint64_t thread_id, struct hs_error *err)
{
	for (size_t i = 0; i < walker->owner_count; i++)
		if (walker->owners[i].thread_id == thread_id)
			return walker->owners[i].arena;
	if (walker->owner_count == OWNERS_MAX) {
		walker->owners_overflow = true; /* (said at the end of the walk) */
		return walker->owners[0].arena;
	}
	struct heap_arena entry = {0};
	if (thread_id == 0)
		snprintf(entry.kind, sizeof entry.kind, "abandoned");
	else if (thread_id == 1)
		snprintf(entry.kind, sizeof entry.kind, "cached");
	else {
		int tid = thread_tid(walker, thread_id);
		if (tid)
			snprintf(entry.kind, sizeof entry.kind, "thread %d", tid);
		else
			snprintf(entry.kind, sizeof entry.kind, "thread ?");
	}
	if (heap_add_arena(walker->heap, &entry) != 0)
		return hs_error_nomem(err, "listing mimalloc's heaps");
	walker->owners[walker->owner_count].thread_id = thread_id;
	walker->owners[walker->owner_count].arena = (int)walker->heap->arena_count - 1;
	return walker->owners[walker->owner_count++].arena;
}

/* Follows one of a page's free lists, marking each block it holds with `place`; a link that
 * leaves the page's blocks, falls between them, comes back to a block already listed or cannot
 * be read ends the list, with a warning. Returns the blocks listed. */
/* A link as mimalloc stores it in a block: encoded with two keys where free lists are
 * (mi_ptr_decode: the end of a list is the address of its page or heap). */
static uint64_t decode(const struct walker *walker, uint64_t link, const uint64_t *keys,
		       uint64_t null)
{
	if (!walker->layout.encoded)
		return link;
	uint64_t x = link - keys[0];
	unsigned shift = (unsigned)(keys[0] % 64);
	uint64_t pointer = (shift ? (x >> shift) | (x << (64 - shift)) : x) ^ keys[1];
	return pointer == null ? 0 : pointer;
}

static unsigned follow_list(struct walker *walker, uint64_t head, const char *list,
			    uint64_t page, uint64_t start, uint64_t block_size, unsigned capacity,
			    const uint8_t *bytes, const uint64_t *keys, enum allocation_place place)
{
	unsigned listed = 0;
	uint64_t link_at = page; /* where the link to `block` was read */
	for (uint64_t block = head; block != 0;) {
		uint64_t index = (block - start) / block_size;
		if (block < start || index >= capacity || (block - start) % block_size != 0 ||
		    walker->marks[index] != 0) {
			walk_damage(
			    &walker->report, link_at,
			    "the %s list of the page at 0x%llx (descriptor 0x%llx) links, at "
			    "0x%llx, to 0x%llx, which is not a free block of that page: the rest "
			    "of the list is not walked",
			    list, (unsigned long long)start, (unsigned long long)page,
			    (unsigned long long)link_at, (unsigned long long)block);
			break;
		}
		walker->marks[index] = (uint8_t)(place + 1);
		listed++;
		link_at = block;
		if (bytes) /* the page's blocks, read once */
			memcpy(&block, bytes + index * block_size, 8);
		else if (!address_space_read_u64(walker->space, block, &block)) {
			walk_damage(
			    &walker->report, link_at,
			    "the %s list of the page at 0x%llx reaches 0x%llx, which cannot be read",
			    list, (unsigned long long)start, (unsigned long long)link_at);
			break;
		}
		block = decode(walker, block, keys, page);
	}
	return listed;
}

/* Remembers the heap a page belongs to, for its thread_delayed_free list. */
static void note_heap(struct walker *walker, uint64_t address, uint64_t thread_id)
{
	for (size_t i = 0; i < walker->heap_count; i++)
		if (walker->heaps[i].address == address)
			return;
	if (walker->heap_count == HEAPS_MAX) {
		walker->heaps_overflow = true;
		return;
	}
	walker->heaps[walker->heap_count++] = (struct mi_heap){address, thread_id};
}

/* What mi_usable_size gives for a block of a debug build: its bytes before the padding
 * (mi_padding_t: a canary, the block's address encoded with the page's keys, and `delta`, the
 * bytes between the size asked and the padding), less delta. A canary overwritten is a
 * warning, and the block is listed with its bytes before the padding. */
static uint64_t padded_usable_size(struct walker *walker, uint64_t page, const uint64_t *keys,
				   uint64_t block, uint64_t block_size, const uint8_t *bytes,
				   uint64_t at, bool is_free)
{
	uint64_t before = block_size - walker->layout.padding;
	if (is_free)
		return before;
	uint32_t padding[2];
	if (bytes)
		memcpy(padding, bytes + at + before, sizeof padding);
	else if (address_space_read(walker->space, block + before, padding, sizeof padding, NULL))
		return before;
	uint64_t x = block ^ keys[1];
	unsigned shift = (unsigned)(keys[0] % 64);
	uint32_t canary = (uint32_t)((shift ? (x << shift) | (x >> (64 - shift)) : x) + keys[0]);
	if (canary != padding[0] || padding[1] > before) {
		walk_damage(
		    &walker->report, block + before,
		    "the padding after the block at 0x%llx (page descriptor 0x%llx) is overwritten: "
		    "its usable size is listed as its %llu bytes before the padding",
		    (unsigned long long)block, (unsigned long long)page,
		    (unsigned long long)before);
		return before;
	}
	return before - padding[1];
}

/* One page: its blocks, free by the list they are in, live otherwise. */
static int walk_page(struct walker *walker, const struct segment *segment, unsigned slice,
		     const uint8_t *descriptor, int arena, struct hs_error *err)
{
	uint64_t page = segment->address + SEGMENT_SLICES_ARRAY + (uint64_t)slice * walker->layout.size;
	uint64_t page_bytes = (uint64_t)u32_at(descriptor, PAGE_SLICE_COUNT) * SLICE_SIZE;
	unsigned capacity = u16_at(descriptor, PAGE_CAPACITY);
	unsigned reserved = u16_at(descriptor, PAGE_RESERVED);
	uint32_t used = u32_at(descriptor, PAGE_USED);
	uint32_t xblock_size = u32_at(descriptor, PAGE_XBLOCK_SIZE);
	uint64_t offset = walker->version->start_offset(xblock_size);
	uint64_t block_size = xblock_size < HUGE_BLOCK_SIZE ? xblock_size : page_bytes - offset;
	uint64_t start = segment->address + slice * SLICE_SIZE + offset;
	if (capacity > reserved || used > capacity ||
	    (uint64_t)reserved * block_size > page_bytes - offset) {
		walk_damage(
		    &walker->report, page,
		    "the page descriptor at 0x%llx (page 0x%llx) has capacity %u, reserved %u, "
		    "used %u and blocks of %llu bytes, which do not fit its %llu bytes: its "
		    "blocks are not listed",
		    (unsigned long long)page, (unsigned long long)start, capacity, reserved, used,
		    (unsigned long long)block_size, (unsigned long long)page_bytes);
		return 0;
	}
	if (capacity == 0)
		return 0;
	bool abandoned = segment->thread_id == 0;
	uint64_t xheap = u64_at(descriptor, walker->layout.xheap);
	uint64_t keys[2] = {u64_at(descriptor, PAGE_KEYS), u64_at(descriptor, PAGE_KEYS + 8)};
	if (xheap && !abandoned)
		note_heap(walker, xheap, segment->thread_id);
	/* the page's blocks through the window (pages come in address order), else read apart */
	uint64_t area = (uint64_t)capacity * block_size;
	const struct snapshot_region *mapping =
		snapshot_find_region(address_space_snapshot(walker->space), start);
	const uint8_t *bytes = mapping && area <= (4u << 20)
				       ? address_cursor_view(&walker->pages, start, (size_t)area,
							     mapping->end)
				       : NULL;
	memset(walker->marks, 0, capacity);
	unsigned listed =
		follow_list(walker, u64_at(descriptor, PAGE_FREE), "free", page, start, block_size,
			    capacity, bytes, keys, PLACE_FREE_LIST) +
		follow_list(walker, u64_at(descriptor, PAGE_LOCAL_FREE), "local_free", page, start,
			    block_size, capacity, bytes, keys, PLACE_FAST_LIST);
	if (listed + used != capacity)
		walk_damage(
		    &walker->report, page,
		    "the page descriptor at 0x%llx (page 0x%llx) counts %u blocks used of %u, "
		    "but its free and local_free lists hold %u: its blocks are listed by the lists",
		    (unsigned long long)page, (unsigned long long)start, used, capacity, listed);
	follow_list(walker, u64_at(descriptor, walker->layout.xthread_free) & ~3ull, "xthread_free",
		    page, start, block_size, capacity, bytes, keys, PLACE_THREAD_CACHE);
	for (unsigned k = 0; k < capacity; k++) {
		uint64_t block = start + k * block_size, first_word = 0;
		if (bytes)
			memcpy(&first_word, bytes + k * block_size, 8);
		else
			address_space_read_u64(walker->space, block, &first_word);
		bool is_free = walker->marks[k] != 0;
		enum allocation_place place = PLACE_IN_USE;
		if (is_free)
			place = (enum allocation_place)(walker->marks[k] - 1);
		else if (block_size > MEDIUM_OBJECT_MAX)
			place = PLACE_LARGE;
		if (is_free && abandoned)
			place = PLACE_RETAINED; /* no thread allocates from it until one reclaims it */
		uint64_t usable = block_size;
		if (walker->layout.padding && block_size > walker->layout.padding)
			usable = padded_usable_size(walker, page, keys, block, block_size, bytes,
						    k * block_size, is_free);
		if (walk_add_block(&walker->report, block, usable,
		                   is_free ? ALLOCATION_FREE : ALLOCATION_LIVE, place, arena,
		                   first_word, err) != 0)
			return -1;
	}
	return 0;
}

/* The committed slices of a free span, each run a free block: in a segment a thread owns, the
 * room its pages grow into (most of it never touched: mimalloc commits a segment at once), like
 * glibc's top chunk and so not counted as fragmentation; in an abandoned or cached segment,
 * retained. A run is listed as far as the mapping it starts in is readable (memory mimalloc
 * gave back to the system without a mark in commit_mask is not). */
static int add_free_span(struct walker *walker, const struct segment *segment, unsigned slice,
			 unsigned count, int arena, struct hs_error *err)
{
	struct snapshot *snapshot = address_space_snapshot(walker->space);
	unsigned run = 0;
	for (unsigned k = slice; k <= slice + count; k++) {
		bool committed = k < slice + count && k < SLICES_PER_SEGMENT &&
				 ((segment->commit_mask[k / 64] >> (k % 64)) & 1);
		if (committed) {
			run++;
			continue;
		}
		uint64_t address = segment->address + (uint64_t)(k - run) * SLICE_SIZE;
		uint64_t size = run * SLICE_SIZE, first_word = 0;
		const struct snapshot_region *region = snapshot_find_region(snapshot, address);
		run = 0;
		if (size == 0 || region == NULL || !(region->flags & PF_R))
			continue;
		if (region->end - address < size)
			size = region->end - address;
		address_space_read_u64(walker->space, address, &first_word);
		enum allocation_place place = segment->thread_id ? PLACE_TOP : PLACE_RETAINED;
		if (walk_add_block(&walker->report, address, size, ALLOCATION_FREE, place, arena,
				   first_word, err) != 0)
			return -1;
	}
	return 0;
}

/* One segment: its slices from the first after its header, page by page and span by span. */
static int walk_segment(struct walker *walker, const struct segment *segment,
			uint8_t *descriptors, struct hs_error *err)
{
	bool cached = segment->thread_id == 0 && segment->used == 0;
	int arena = owner_arena(walker, cached ? 1 : segment->thread_id, err);
	if (arena < 0)
		return -1;
	walker->heap->arenas[arena].system_bytes += segment->size;
	/* a segment freed to mimalloc's cache: its page descriptors are stale, all of it is free */
	if (cached)
		return add_free_span(walker, segment, segment->info_slices,
				     segment->slice_entries - segment->info_slices, arena, err);
	size_t bytes = (size_t)segment->slice_entries * walker->layout.size;
	if (address_space_read(walker->space, segment->address + SEGMENT_SLICES_ARRAY, descriptors,
			       bytes, NULL) != 0) {
		walk_damage(
		    &walker->report, segment->address,
		    "the page descriptors of the segment at 0x%llx cannot be read: its blocks "
		    "are not listed",
		    (unsigned long long)segment->address);
		return 0;
	}
	uint64_t slices = segment->size / SLICE_SIZE;
	unsigned pages = 0;
	for (unsigned slice = segment->info_slices; slice < segment->slice_entries;) {
		const uint8_t *descriptor = descriptors + (size_t)slice * walker->layout.size;
		uint32_t count = u32_at(descriptor, PAGE_SLICE_COUNT);
		if (count == 0 || u32_at(descriptor, PAGE_SLICE_OFFSET) != 0 || slice + count > slices) {
			walk_damage(
			    &walker->report,
			    segment->address + SEGMENT_SLICES_ARRAY +
			        (uint64_t)slice * walker->layout.size,
			    "slice %u of the segment at 0x%llx starts neither a page nor a free span "
			    "(%u slices, offset %u): the rest of the segment is not walked",
			    slice, (unsigned long long)segment->address, count,
			    u32_at(descriptor, PAGE_SLICE_OFFSET));
			break;
		}
		int result = u32_at(descriptor, PAGE_XBLOCK_SIZE) == 0
				     ? add_free_span(walker, segment, slice, count, arena, err)
				     : walk_page(walker, segment, slice, descriptor, arena, err);
		if (result != 0)
			return -1;
		pages += u32_at(descriptor, PAGE_XBLOCK_SIZE) != 0;
		slice += count;
	}
	if (pages != segment->used)
		walk_damage(&walker->report, segment->address + SEGMENT_USED,
		            "the segment at 0x%llx counts %llu pages in use but its slices hold %u",
		            (unsigned long long)segment->address, (unsigned long long)segment->used,
		            pages);
	return 0;
}

/* The block at `address` among those this walk added (in address order, unlike the whole heap
 * when a malloc was walked before), or NULL. */
static struct allocation *own_block_at(struct walker *walker, uint64_t address)
{
	return walk_block_among(walker->heap->allocations + walker->first_block,
				walker->heap->count - walker->first_block, address);
}

/* Each heap's thread_delayed_free list: blocks other threads freed into its full pages, which the
 * pages count as used. Each must be a live block. */
static void walk_delayed(struct walker *walker)
{
	for (size_t i = 0; i < walker->heap_count; i++) {
		const struct mi_heap *mi_heap = &walker->heaps[i];
		uint64_t fields = mi_heap->address + walker->layout.heap_shift;
		uint64_t thread_id = 0, block = 0, link_at = fields + HEAP_THREAD_DELAYED_FREE;
		uint64_t keys[2] = {0, 0};
		if (!address_space_read_u64(walker->space, fields + HEAP_THREAD_ID, &thread_id) ||
		    address_space_read(walker->space, fields + HEAP_KEYS, keys, sizeof keys, NULL) != 0 ||
		    thread_id != mi_heap->thread_id ||
		    !address_space_read_u64(walker->space, link_at, &block)) {
			walk_damage(
			    &walker->report, mi_heap->address,
			    "the heap at 0x%llx that pages name does not belong to their thread "
			    "(0x%llx): its thread_delayed_free list is not walked",
			    (unsigned long long)mi_heap->address,
			    (unsigned long long)mi_heap->thread_id);
			continue;
		}
		for (size_t steps = 0; block != 0 && steps <= walker->heap->count; steps++) {
			struct allocation *allocation = own_block_at(walker, block);
			if (allocation == NULL || allocation->state != ALLOCATION_LIVE) {
				walk_damage(
				    &walker->report, link_at,
				    "the thread_delayed_free list of the heap at 0x%llx links, at "
				    "0x%llx, to 0x%llx, which is not an allocated block: the rest of "
				    "the list is not walked",
				    (unsigned long long)mi_heap->address,
				    (unsigned long long)link_at, (unsigned long long)block);
				break;
			}
			allocation->state = ALLOCATION_FREE;
			allocation->place = PLACE_THREAD_CACHE;
			link_at = block;
			block = decode(walker, allocation->first_word, keys, mi_heap->address);
		}
		struct heap_arena *arena = NULL;
		for (size_t k = 0; k < walker->owner_count; k++)
			if (walker->owners[k].thread_id == mi_heap->thread_id)
				arena = &walker->heap->arenas[walker->owners[k].arena];
		if (arena && arena->address == 0)
			arena->address = mi_heap->address;
	}
}

/* The main heap is bookkeeping: it is in the library's data, which the graph scans for roots, and
 * its one pointer into blocks (thread_delayed_free's head) is no reference of the program's. (The
 * other heaps and the segment headers are in anonymous memory of mimalloc's own, and point only
 * at page descriptors, inside segment headers, and at free blocks: nothing the graph takes for a
 * reference.) */
static void note_bookkeeping(struct walker *walker, uint64_t main_heap)
{
	if (main_heap)
		heap_add_bookkeeping(walker->heap, main_heap,
				     main_heap + HEAP_SIZE + walker->layout.heap_shift);
}

/* ---- the walk ----------------------------------------------------------------------------- */

/* The table's entry for the version mi_version() gives; for one it does not give, CPython's
 * (2.1: CPython 3.13 bundles 2.1.2) or 2.0, the one Debian packages. */
static const struct mimalloc_version *choose_version(const char *version, bool embedded,
						     const char *path, struct warnings *warnings)
{
	/* a runtime embeds the mimalloc of its time (CPython 3.13: 2.1) */
	const struct mimalloc_version *fallback = embedded ? &mimalloc_2_1 : &mimalloc_2_0;
	if (version[0] == 0)
		return fallback;
	for (size_t i = 0; i < sizeof known_versions / sizeof known_versions[0]; i++)
		if (strncmp(version, known_versions[i]->prefix, strlen(known_versions[i]->prefix)) == 0)
			return known_versions[i];
	warnings_add(warnings,
		     "mimalloc %s in %s: heapsnap knows the layouts of 2.0 and 2.1; the heap is read "
		     "with those of %.3s and checked structure by structure",
		     version, path, fallback->prefix);
	return fallback;
}

/* The offset of `name` in `layout`, or ~0 when it has no such member. */
static uint64_t dwarf_offset(const struct dwarf_struct *layout, const char *name)
{
	const struct dwarf_member *member = dwarf_struct_member(layout, name);
	return member ? member->offset : ~0ull;
}

/* Where the module that holds mimalloc has DWARF (CPython's libpython from pyenv or a -dbg
 * package), the offsets the walk reads are checked against it, and the page layout taken from
 * it: a build whose structures differ (another version, CPython's free-threaded build with its
 * larger pages) is refused with what differs, rather than misread. Returns 1 when checked (the
 * layout set), 0 without DWARF, -1 with err set when they differ. */
static int check_dwarf_layout(struct walker *walker, const struct allocator_input *input,
			      const char *what, struct hs_error *err)
{
	struct hs_error ignored;
	struct dwarf_types *types = module_symbols_open_types(input->module, &ignored);
	struct dwarf_struct *structs = malloc(3 * sizeof *structs); /* (large: not on the stack) */
	int result = 0;
	if (types == NULL || structs == NULL ||
	    !dwarf_types_struct(types, "mi_segment_s", &structs[0]) ||
	    !dwarf_types_struct(types, "mi_page_s", &structs[1]) ||
	    !dwarf_types_struct(types, "mi_heap_s", &structs[2]))
		goto done;
	const struct dwarf_struct *segment = &structs[0], *page = &structs[1], *mi_heap = &structs[2];
	uint64_t delayed = dwarf_offset(mi_heap, "thread_delayed_free");
	const struct page_layout *layout = page->size == release_layout.size   ? &release_layout
					   : page->size == encoded_layout.size ? &encoded_layout
									       : NULL;
	const struct {
		const char *name;
		uint64_t dwarf, expected;
	} fields[] = {
		{"mi_segment_t.commit_mask", dwarf_offset(segment, "commit_mask"), SEGMENT_COMMIT_MASK},
		{"mi_segment_t.used", dwarf_offset(segment, "used"), SEGMENT_USED},
		{"mi_segment_t.cookie", dwarf_offset(segment, "cookie"), SEGMENT_COOKIE},
		{"mi_segment_t.segment_slices", dwarf_offset(segment, "segment_slices"), SEGMENT_SLICES},
		{"mi_segment_t.segment_info_slices", dwarf_offset(segment, "segment_info_slices"),
		 SEGMENT_INFO_SLICES},
		{"mi_segment_t.kind", dwarf_offset(segment, "kind"), SEGMENT_KIND},
		{"mi_segment_t.slice_entries", dwarf_offset(segment, "slice_entries"),
		 SEGMENT_SLICE_ENTRIES},
		{"mi_segment_t.thread_id", dwarf_offset(segment, "thread_id"), SEGMENT_THREAD_ID},
		{"mi_segment_t.slices", dwarf_offset(segment, "slices"), SEGMENT_SLICES_ARRAY},
		{"sizeof(mi_page_t)", page->size, layout ? layout->size : release_layout.size},
		{"mi_page_t.slice_count", dwarf_offset(page, "slice_count"), PAGE_SLICE_COUNT},
		{"mi_page_t.slice_offset", dwarf_offset(page, "slice_offset"), PAGE_SLICE_OFFSET},
		{"mi_page_t.capacity", dwarf_offset(page, "capacity"), PAGE_CAPACITY},
		{"mi_page_t.reserved", dwarf_offset(page, "reserved"), PAGE_RESERVED},
		{"mi_page_t.free", dwarf_offset(page, "free"), PAGE_FREE},
		{"mi_page_t.used", dwarf_offset(page, "used"), PAGE_USED},
		{"mi_page_t.xblock_size", dwarf_offset(page, "xblock_size"), PAGE_XBLOCK_SIZE},
		{"mi_page_t.local_free", dwarf_offset(page, "local_free"), PAGE_LOCAL_FREE},
		{"mi_page_t.xthread_free", dwarf_offset(page, "xthread_free"),
		 layout ? layout->xthread_free : 0},
		{"mi_page_t.xheap", dwarf_offset(page, "xheap"), layout ? layout->xheap : 0},
		/* (a debug build's heap has one more direct page: its fields are 8 bytes further) */
		{"mi_heap_t.thread_delayed_free", delayed,
		 delayed == HEAP_THREAD_DELAYED_FREE + 8 ? delayed : HEAP_THREAD_DELAYED_FREE},
		{"mi_heap_t.thread_id", dwarf_offset(mi_heap, "thread_id"),
		 delayed - HEAP_THREAD_DELAYED_FREE + HEAP_THREAD_ID},
		{"mi_heap_t.cookie", dwarf_offset(mi_heap, "cookie"),
		 delayed - HEAP_THREAD_DELAYED_FREE + HEAP_COOKIE},
	};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (fields[i].dwarf != fields[i].expected) {
			hs_error_set(err,
				     "%s (%s): its debug information puts %s at %lld, where the "
				     "mimalloc heapsnap knows has %llu: a build it cannot walk, so its "
				     "blocks cannot be seen and there is no answer to give",
				     what, module_symbols_module(input->module)->path, fields[i].name,
				     fields[i].dwarf == ~0ull ? -1ll : (long long)fields[i].dwarf,
				     (unsigned long long)fields[i].expected);
			result = -1;
			goto done;
		}
	walker->layout = *layout;
	walker->layout.heap_shift = (unsigned)(delayed - HEAP_THREAD_DELAYED_FREE);
	walker->layout.padding = walker->layout.heap_shift ? 8 : 0; /* (as choose_layout says) */
	result = 1;
done:
	free(structs);
	dwarf_types_close(types);
	return result;
}

/* The walk of a mimalloc, as the process's malloc (`embedded` NULL) or as one a runtime embeds
 * and layers on it. Returns 0 when walked, 1 when `probe` and no segment was found (nothing
 * added), -1 with err set. */
static int walk_mimalloc(const struct allocator_input *input,
			 const struct mimalloc_embedded *embedded, bool probe, struct heap *heap,
			 struct warnings *warnings, struct hs_error *err)
{
	const struct allocator *as = embedded ? embedded->allocator : &mimalloc_allocator;
	const char *what = embedded ? embedded->what : "mimalloc";
	struct walker *walker = calloc(1, sizeof *walker);
	uint8_t *descriptors = malloc((SLICES_PER_SEGMENT + 1) * PAGE_DESCRIPTOR_MAX);
	if (walker == NULL || descriptors == NULL) {
		free(walker);
		free(descriptors);
		return hs_error_nomem(err, "walking %s's heap", what);
	}
	int result = -1;
	walker->space = input->space;
	walker->heap = heap;
	walker->warnings = warnings;
	walker->first_block = heap->count;
	walker->report =
	    (struct walk_report){.heap = heap, .warnings = warnings, .allocator = as->name};
	address_cursor_init(&walker->pages, input->space);
	const char *path = module_symbols_module(input->module)->path;
	char version[32];
	read_version(walker, input->module, version, sizeof version);
	walker->version = choose_version(version, embedded != NULL, path, warnings);
	if (find_candidates(walker, err) != 0)
		goto done;
	uint64_t key = common_key(walker);
	keep_segments(walker, key);
	if (walker->segment_count == 0 && probe) {
		result = 1;
		goto done;
	}
	if (walker->segment_count == 0) {
		if (embedded)
			hs_error_set(err, "%s (in %s): %s", what, path, embedded->not_found);
		else
			hs_error_set(err,
				     "mimalloc (%s): no segment was found in the process's anonymous "
				     "memory: it is not mimalloc 2.0 or 2.1 as heapsnap knows it, or it "
				     "has not allocated yet; there is no heap to show",
				     path);
		goto done;
	}
	struct heap_allocator *self = heap_begin_allocator(heap, as);
	if (self == NULL) {
		hs_error_set(err, "too many allocators in the heap walking %s", what);
		goto done;
	}
	snprintf(self->version, sizeof self->version, "%s", version);
	snprintf(self->method, sizeof self->method, "heuristics");
	int checked = input->no_debuginfo ? 0 : check_dwarf_layout(walker, input, what, err);
	if (checked < 0)
		goto done;
	if (checked == 0)
		choose_layout(walker, descriptors);
	uint64_t main_heap = find_main_heap(walker, path, key);
	if (main_heap == 0)
		warnings_add(warnings,
			     "%s: the cookie the %zu segments share (0x%llx) is not in %s's "
			     "data, where _mi_heap_main keeps it: they are walked, unconfirmed",
			     as->name, walker->segment_count, (unsigned long long)key, path);
	uint64_t symbol;
	if (main_heap && !input->no_debuginfo &&
	    module_symbols_lookup(input->module, "_mi_heap_main", &symbol, NULL)) {
		if (symbol == main_heap)
			snprintf(self->method, sizeof self->method, "heuristics, checked by symbols");
		else
			warnings_add(warnings,
				     "%s: the main heap found by its cookie at 0x%llx is not "
				     "_mi_heap_main (0x%llx)",
				     as->name, (unsigned long long)main_heap,
				     (unsigned long long)symbol);
	}
	for (size_t i = 0; i < walker->segment_count; i++)
		if (walk_segment(walker, &walker->segments[i], descriptors, err) != 0)
			goto done;
	walk_delayed(walker);
	if (walker->heaps_overflow)
		warnings_add(warnings,
			     "%s: more than %d heaps: the thread_delayed_free lists of the "
			     "others are not walked, and their blocks count as live",
			     as->name, HEAPS_MAX);
	note_bookkeeping(walker, main_heap);
	if (walker->owners_overflow)
		warnings_add(warnings,
			     "%s: segments of more than %d threads: the blocks of the others are "
			     "counted in the first heap listed",
			     as->name, OWNERS_MAX);
	walk_report_finish(&walker->report);
	heap_finish(heap);
	result = 0;
done:
	address_cursor_free(&walker->pages);
	free(walker->segments);
	free(walker);
	free(descriptors);
	return result;
}

int mimalloc_heap_walk(const struct allocator_input *input, struct heap *heap,
		       struct warnings *warnings, struct hs_error *err)
{
	return walk_mimalloc(input, NULL, false, heap, warnings, err);
}

int mimalloc_heap_walk_embedded(const struct allocator_input *input,
				const struct mimalloc_embedded *embedded, bool probe,
				struct heap *heap, struct warnings *warnings, struct hs_error *err)
{
	return walk_mimalloc(input, embedded, probe, heap, warnings, err);
}

const char *const mimalloc_place_names[PLACE_COUNT] = {
	[PLACE_IN_USE] = "in_use",
	[PLACE_LARGE] = "large",
	[PLACE_FREE_LIST] = "page_free",
	[PLACE_FAST_LIST] = "local_free",
	[PLACE_THREAD_CACHE] = "thread_free",
	[PLACE_TOP] = "free_span",
	[PLACE_RETAINED] = "retained",
};

static const char *const mimalloc_symbols[] = {"mi_malloc", NULL};

const struct allocator mimalloc_allocator = {
	.name = "mimalloc",
	.version_name = "mimalloc",
	.step = "mimalloc heap",
	.metadata_type = NULL,
	.place_names = mimalloc_place_names,
	.symbols = mimalloc_symbols,
	.walk = mimalloc_heap_walk,
};
