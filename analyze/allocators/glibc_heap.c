/* The glibc malloc walker (see glibc_heap.h). Facts about ptmalloc used here, from glibc's
 * malloc/malloc.c and malloc/arena.c: a chunk starts with prev_size and size words, the user's
 * pointer is 16 bytes in; size's low bits are PREV_INUSE (the chunk before is in use),
 * IS_MMAPPED and NON_MAIN_ARENA; a chunk is in use when the next chunk's PREV_INUSE is set, except
 * that tcache and fast-bin chunks keep it set while free, so their lists are followed to find
 * them; usable size is the chunk size minus 8, or minus 16 for mmapped chunks. Thread arenas live
 * in 64 MiB-aligned heaps that start with a heap_info; since 2.32, tcache and fast-bin links are
 * stored as (address of the link >> 12) XOR pointer. */
#include "glibc_heap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <elf.h>
#include <sys/mman.h>
#include <unistd.h>

#include "analyze/dwarf_types.h"
#include "analyze/allocators/glibc_layout.h"
#include "common/array_grow.h"
#include "common/open_file.h"

#define CHUNK_HEADER 16u
#define MIN_CHUNK 32u
#define PREV_INUSE 1u
#define IS_MMAPPED 2u
#define NON_MAIN_ARENA 4u
#define SIZE_FLAGS 7u
#define HEAP_MAX_SIZE (64ull << 20)
#define ARENAS_MAX 1024
#define RESYNC_WINDOW (1u << 20)
#define MMAP_THRESHOLD_MIN (128u << 10) /* malloc's default, the least it mmaps unless told */

struct arena {
	uint64_t state; /* address of its malloc_state */
	bool main;
	uint16_t index; /* in heap->arenas */
};

struct walker {
	struct address_space *space;
	struct snapshot *snapshot;
	struct warnings *warnings;
	struct glibc_layout layout;
	struct heap *heap;
	struct address_cursor cursor;
	struct arena arenas[ARENAS_MAX];
	size_t arena_count;
	uint64_t sbrk_base; /* 0 when unknown */
	int glibc_minor;    /* 0 when not known exactly (a static glibc's is only a range) */
	uint64_t tcache_key; /* glibc >= 2.34's random tcache key, when its symbol is known */
	/* the keys found in tcache entries, checked once every tcache is followed */
	struct tcache_entry_key {
		uint64_t entry, key, tcache;
	} *tcache_keys;
	size_t tcache_key_count, tcache_key_capacity;
	/* per arena, order-free sums of every link of its bins, forward (chunk, fd) and backward
	   (bk, chunk): equal when the rings are whole (see link_term) */
	struct link_sums {
		uint64_t forward, backward, size_forward, size_backward;
	} link_sums[ARENAS_MAX];
	/* 64 MiB-aligned starts of writable memory and the arena their heap_info names */
	struct heap_info_candidate {
		uint64_t heap, owner;
		const struct snapshot_region *region;
	} *heap_infos;
	size_t heap_info_count, heap_info_capacity;
	/* spans covered by arena heaps, so the mmapped-chunk scan skips them */
	struct {
		uint64_t start, end;
	} heaps[ARENAS_MAX * 4];
	size_t heap_count;
	/* the allocations of a malloc walked before this one (sorted): the mmapped-chunk scan
	   skips them */
	size_t earlier_count;
};

static uint64_t earlier_block_end(const struct walker *walker, uint64_t page);

static bool read_u64(struct walker *walker, uint64_t addr, uint64_t *out)
{
	return address_space_read_u64(walker->space, addr, out);
}

/* The glibc minor version from the "release version 2.NN" banner in libc's file. */
static int glibc_minor_version(const char *path, char *version, size_t version_size)
{
	int fd = open_regular_file(path);
	if (fd < 0)
		return 0;
	off_t size = lseek(fd, 0, SEEK_END);
	const char *bytes = size > 0 ? mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0)
				     : MAP_FAILED;
	close(fd);
	if (bytes == MAP_FAILED)
		return 0;
	static const char banner[] = "release version 2.";
	const char *found = memmem(bytes, (size_t)size, banner, sizeof banner - 1);
	int minor = 0;
	if (found && found + sizeof banner + 3 < bytes + size) {
		minor = atoi(found + sizeof banner - 1);
		snprintf(version, version_size, "2.%d", minor);
	}
	munmap((void *)bytes, (size_t)size);
	return minor;
}

/* ---- chunks ---------------------------------------------------------------------------------- */

static bool plausible_size(uint64_t size, uint64_t at, uint64_t end)
{
	return size >= MIN_CHUNK && (size & 15) == 0 && at + size <= end && at + size > at;
}

/* One link `from` -> `to` as a term of a sum: a bin's ring is whole when the sum of its forward
 * links (chunk, fd) equals that of its back links read backwards (bk, chunk), whatever order the
 * terms come in. So the walk, which reads every free chunk's words in address order anyway, can
 * tell whether the rings are whole without following them through the snapshot at random (a
 * random read of a big snapshot can cost a frame's decompression); only when the sums differ are
 * the lists followed word by word to name the damage. */
static uint64_t link_term(uint64_t from, uint64_t to)
{
	uint64_t x = from * 0x9E3779B97F4A7C15ull ^ (to + 0x632BE59BD9B4E019ull);
	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 29;
	return x;
}

/* Adds a free chunk's links to its arena's sums: fd and bk, and for a chunk of large-bin size
 * that heads its size in its bin (fd_nextsize set; glibc clears it on the others), its size
 * links. */
static void sum_links(struct walker *walker, uint64_t chunk, uint64_t size, uint16_t arena,
		      uint64_t fd)
{
	uint64_t bk, fd_nextsize, bk_nextsize;
	if (arena >= ARENAS_MAX ||
	    !address_cursor_read_u64(&walker->cursor, chunk + 24, chunk + size, &bk))
		return;
	struct link_sums *sums = &walker->link_sums[arena];
	sums->forward += link_term(chunk, fd);
	sums->backward += link_term(bk, chunk);
	if (size >= 1024 &&
	    address_cursor_read_u64(&walker->cursor, chunk + 32, chunk + size, &fd_nextsize) &&
	    fd_nextsize != 0 &&
	    address_cursor_read_u64(&walker->cursor, chunk + 40, chunk + size, &bk_nextsize)) {
		sums->size_forward += link_term(chunk, fd_nextsize);
		sums->size_backward += link_term(bk_nextsize, chunk);
	}
}

static int add_chunk(struct walker *walker, uint64_t chunk, uint64_t size, bool in_use,
		     uint16_t arena, uint64_t first_word)
{
	if (!in_use)
		sum_links(walker, chunk, size, arena, first_word);
	struct allocation allocation = {.address = chunk + CHUNK_HEADER,
					.size = size - 8,
					.state = in_use ? ALLOCATION_LIVE : ALLOCATION_FREE,
					.place = in_use ? PLACE_IN_USE : PLACE_FREE_LIST,
					.arena = arena,
					.first_word = first_word};
	return heap_add(walker->heap, &allocation);
}

/* After a chunk with an impossible size at `bad`, finds where chunks make sense again: a chunk
 * whose size leads to a chunk whose size leads on (or to the top). */
static uint64_t resynchronise(struct walker *walker, uint64_t bad, uint64_t top, uint64_t limit)
{
	uint64_t last = bad + RESYNC_WINDOW < top ? bad + RESYNC_WINDOW : top;
	for (uint64_t at = (bad + 16) & ~15ull; at < last; at += 16) {
		uint64_t size, next_size;
		if (!address_cursor_read_u64(&walker->cursor, at + 8, limit, &size))
			return 0;
		size &= ~(uint64_t)SIZE_FLAGS;
		if (!plausible_size(size, at, top + MIN_CHUNK))
			continue;
		uint64_t next = at + size;
		if (next == top)
			return at;
		if (!address_cursor_read_u64(&walker->cursor, next + 8, limit, &next_size))
			continue;
		next_size &= ~(uint64_t)SIZE_FLAGS;
		if (plausible_size(next_size, next, top + MIN_CHUNK) &&
		    (next + next_size == top || next + next_size < top))
			return at;
	}
	return 0;
}

/* The first page past `at` (and before `end`) whose first word can be read, or 0. */
static uint64_t next_readable(struct walker *walker, uint64_t at, uint64_t end)
{
	uint64_t word;
	for (uint64_t page = (at + 4096) & ~4095ull; page < end; page += 4096)
		if (read_u64(walker, page, &word))
			return page;
	return 0;
}

/* Whether a chain of plausible main-arena chunks from `at` reaches `top` exactly, or a fencepost
 * pair (where glibc's heap ends again before memory another allocator took). */
static bool chain_reaches(struct walker *walker, uint64_t at, uint64_t top, uint64_t limit)
{
	while (at < top) {
		uint64_t word, next;
		if (!address_cursor_read_u64(&walker->cursor, at + 8, limit, &word))
			return false;
		uint64_t size = word & ~(uint64_t)SIZE_FLAGS;
		if (size == CHUNK_HEADER && address_cursor_read_u64(&walker->cursor, at + 24, limit,
								     &next) &&
		    next == (CHUNK_HEADER | PREV_INUSE))
			return true;
		if (!plausible_size(size, at, top) || (word & (IS_MMAPPED | NON_MAIN_ARENA)))
			return false;
		at += size;
	}
	return at == top;
}

/* Where the main heap goes on after a fencepost pair at `fencepost`. glibc puts the pair where
 * its heap ends when the program break moved without it (another allocator in the process called
 * sbrk: tcmalloc does), and its heap goes on at a later break, on a page boundary, from where its
 * chunks lead to top. 0 when no such place is found. */
static uint64_t after_foreign_sbrk(struct walker *walker, uint64_t fencepost, uint64_t top,
				   uint64_t limit)
{
	for (uint64_t page = (fencepost + 2 * CHUNK_HEADER + 4095) & ~4095ull; page <= top;) {
		uint64_t taken = earlier_block_end(walker, page);
		if (taken) {
			page = taken;
			continue;
		}
		if (chain_reaches(walker, page, top, limit))
			return page;
		page += 4096;
	}
	return 0;
}

/* Walks the chunks of [start, end). With `top_known`, `end` is the arena's top chunk, walked
 * too; without (the arena's top pointer is damaged), `end` is where the heap's memory ends and
 * the chunk that reaches it is the top chunk. `non_main` is whether chunks must carry
 * NON_MAIN_ARENA. What cannot be walked is warned about and counted in the heap's damage. */
static int walk_chunks(struct walker *walker, uint64_t start, uint64_t end, uint64_t limit,
		       uint16_t arena, bool non_main, bool top_known)
{
	uint64_t at = start;
	uint64_t pending = 0, pending_size = 0; /* the chunk whose state the next header tells */
	uint64_t pending_word = 0;
	while (at < end) {
		uint64_t word;
		if (!address_cursor_read_u64(&walker->cursor, at + 8, limit, &word)) {
			/* (memory the snapshot lacks, or a damaged frame read as unreadable) */
			uint64_t readable = next_readable(walker, at, end);
			uint64_t resume = readable ? resynchronise(walker, readable - 16, end, limit) : 0;
			warnings_add(walker->warnings,
				     "glibc heap: the chunk at 0x%llx cannot be read; %s (to 0x%llx) "
				     "is skipped",
				     (unsigned long long)at,
				     resume ? "the heap up to the next plausible chunk"
					    : "the rest of its heap",
				     (unsigned long long)(resume ? resume : end));
			heap_note_damage(walker->heap, at, (resume ? resume : end) - at);
			if (pending && add_chunk(walker, pending, pending_size, true, arena,
						 pending_word) != 0)
				return -1;
			pending = 0;
			if (resume == 0)
				return 0;
			at = resume;
			continue;
		}
		uint64_t size = word & ~(uint64_t)SIZE_FLAGS;
		/* main-arena chunks never carry NON_MAIN_ARENA; thread-arena chunks carry it while
		 * in use, but free ones may have lost it, so only its absence is checked */
		bool flags_ok = !(word & IS_MMAPPED) && (non_main || !(word & NON_MAIN_ARENA));
		if (pending && add_chunk(walker, pending, pending_size, word & PREV_INUSE, arena,
					 pending_word) != 0)
			return -1;
		pending = 0;
		uint64_t second = 0;
		if (!non_main && top_known && size == CHUNK_HEADER &&
		    address_cursor_read_u64(&walker->cursor, at + 24, limit, &second) &&
		    second == (CHUNK_HEADER | PREV_INUSE)) {
			/* a fencepost pair: the heap goes on past memory another allocator took */
			uint64_t resume = after_foreign_sbrk(walker, at, end, limit);
			if (resume) {
				at = resume;
				continue;
			}
		}
		if (!plausible_size(size, at, end) || !flags_ok) {
			uint64_t resume = resynchronise(walker, at, end, limit);
			warnings_add(walker->warnings,
				     "glibc heap: the chunk at 0x%llx has an impossible size field "
				     "0x%llx (the heap is corrupt there); %s",
				     (unsigned long long)at, (unsigned long long)word,
				     resume ? "the walk resumes at the next plausible chunk"
					    : "the rest of its heap is skipped");
			heap_note_damage(walker->heap, at, (resume ? resume : end) - at);
			if (resume == 0)
				return 0;
			at = resume;
			continue;
		}
		if (!top_known && at + size == end) {
			struct allocation top_chunk = {.address = at + CHUNK_HEADER,
						       .size = size - 8,
						       .state = ALLOCATION_FREE,
						       .place = PLACE_TOP,
						       .arena = arena};
			return heap_add(walker->heap, &top_chunk);
		}
		pending = at;
		pending_size = size;
		pending_word = 0;
		address_cursor_read_u64(&walker->cursor, at + CHUNK_HEADER, limit, &pending_word);
		at += size;
	}
	uint64_t top_word = 0;
	if (top_known && at == end && address_space_read_u64(walker->space, end + 8, &top_word)) {
		if (pending && add_chunk(walker, pending, pending_size, top_word & PREV_INUSE, arena,
					 pending_word))
			return -1;
		uint64_t top_size = top_word & ~(uint64_t)SIZE_FLAGS;
		if (top_size >= MIN_CHUNK) {
			struct allocation top_chunk = {.address = end + CHUNK_HEADER,
						       .size = top_size - 8,
						       .state = ALLOCATION_FREE,
						       .place = PLACE_TOP,
						       .arena = arena};
			if (heap_add(walker->heap, &top_chunk) != 0)
				return -1;
		}
	}
	return 0;
}

static void note_heap_span(struct walker *walker, uint64_t start, uint64_t end)
{
	if (walker->heap_count < sizeof walker->heaps / sizeof walker->heaps[0]) {
		walker->heaps[walker->heap_count].start = start;
		walker->heaps[walker->heap_count].end = end;
		walker->heap_count++;
	}
}

/* ---- arenas ---------------------------------------------------------------------------------- */

static uint64_t arena_top(struct walker *walker, uint64_t state)
{
	uint64_t top = 0;
	read_u64(walker, state + walker->layout.state_top, &top);
	return top;
}

static bool anonymous_writable(const struct snapshot_region *region)
{
	return region && region->path == NULL && (region->flags & PF_W);
}

/* Where the mapping holding `region` ends: past its stored bytes and the untouched pages the
 * capture kept apart, which read as the zeros they are. */
static uint64_t mapping_end(const struct walker *walker, const struct snapshot_region *region)
{
	uint64_t start, end;
	snapshot_mapping_bounds(walker->snapshot, region, &start, &end);
	return end;
}

/* The region holding the top chunk at `top`, or NULL when `top` is no top chunk: not aligned,
 * not in anonymous writable memory, or with a size reaching past its region. */
static const struct snapshot_region *top_chunk_region(struct walker *walker, uint64_t top)
{
	uint64_t top_size;
	if ((top & 15) || top == 0 || !read_u64(walker, top + 8, &top_size))
		return NULL;
	const struct snapshot_region *region = snapshot_find_region(walker->snapshot, top);
	top_size &= ~(uint64_t)SIZE_FLAGS;
	if (!anonymous_writable(region) || top_size < MIN_CHUNK || top + top_size < top ||
	    top + top_size > mapping_end(walker, region))
		return NULL;
	return region;
}

/* The last of the anonymous writable regions that follow `region` without a gap. */
static const struct snapshot_region *contiguous_end(struct walker *walker,
						    const struct snapshot_region *region)
{
	for (const struct snapshot_region *next = snapshot_find_region(walker->snapshot, region->end);
	     anonymous_writable(next) && next->start == region->end;
	     next = snapshot_find_region(walker->snapshot, next->end))
		region = next;
	return region;
}

/* Where the main heap starts when the arena's top is damaged and mp_.sbrk_base is not known: the
 * start of the anonymous memory that a chunk pointer kept in the arena (a fast bin, a bin's
 * links, last_remainder) leads into, provided a chunk header in use sits there. 0 when none. */
static uint64_t main_heap_start_from_arena(struct walker *walker, uint64_t state)
{
	const struct glibc_layout *layout = &walker->layout;
	uint64_t first_word = state + layout->state_fastbins;
	uint64_t last_word = state + layout->state_bins + 8ull * layout->bin_count;
	for (uint64_t at = first_word; at < last_word; at += 8) {
		uint64_t pointer;
		if (at == state + layout->state_top || !read_u64(walker, at, &pointer) || pointer == 0)
			continue;
		const struct snapshot_region *region = snapshot_find_region(walker->snapshot, pointer);
		if (!anonymous_writable(region))
			continue;
		/* back to the first of the regions joined to this one */
		for (const struct snapshot_region *before;
		     region->start > 0 &&
		     anonymous_writable(before = snapshot_find_region(walker->snapshot,
								      region->start - 1)) &&
		     before->end == region->start;)
			region = before;
		uint64_t start = (region->start + 15) & ~15ull, word;
		if (read_u64(walker, start + 8, &word) && (word & PREV_INUSE) &&
		    plausible_size(word & ~(uint64_t)SIZE_FLAGS, start, region->end + 1))
			return start;
	}
	return 0;
}

/* The main heap when the arena's top pointer is damaged: from its start (mp_.sbrk_base, else
 * found from the arena's other pointers) to the end of the memory joined to it; its last chunk
 * is the top chunk. */
static int walk_main_heap_without_top(struct walker *walker, const struct arena *arena, uint64_t top)
{
	uint64_t top_field = arena->state + walker->layout.state_top;
	heap_note_damage(walker->heap, top_field, 0);
	uint64_t start = walker->sbrk_base;
	if (start == 0 || !anonymous_writable(snapshot_find_region(walker->snapshot, start)))
		start = main_heap_start_from_arena(walker, arena->state);
	if (start == 0) {
		warnings_add(walker->warnings,
			     "glibc heap: the main arena's top pointer (at 0x%llx) is damaged: 0x%llx "
			     "is no chunk, and nothing else in the arena leads to its heap; the main "
			     "heap is skipped",
			     (unsigned long long)top_field, (unsigned long long)top);
		return 0;
	}
	start = (start + 15) & ~15ull;
	const struct snapshot_region *first = snapshot_find_region(walker->snapshot, start);
	const struct snapshot_region *last = contiguous_end(walker, first);
	warnings_add(walker->warnings,
		     "glibc heap: the main arena's top pointer (at 0x%llx) is damaged: 0x%llx is no "
		     "chunk; the main heap is walked from 0x%llx to the end of its memory at 0x%llx",
		     (unsigned long long)top_field, (unsigned long long)top, (unsigned long long)start,
		     (unsigned long long)last->end);
	note_heap_span(walker, first->start, last->end);
	return walk_chunks(walker, start, last->end, last->end, arena->index, false, false);
}

/* The main heap is the range from the arena's first chunk to its top, however many mappings the
 * kernel keeps it in (after fork(), the part a child inherited and the part it grew stay separate
 * mappings). Its start is mp_.sbrk_base with debug info; without, the top chunk's end less the
 * memory the arena took from the system (brk is contiguous, so the two agree). */
static int walk_main_arena(struct walker *walker, const struct arena *arena)
{
	uint64_t top = arena_top(walker, arena->state);
	const struct snapshot_region *region = top_chunk_region(walker, top);
	if (region == NULL)
		return walk_main_heap_without_top(walker, arena, top);
	uint64_t start = walker->sbrk_base, top_word = 0, system_bytes = 0;
	if (start == 0 && read_u64(walker, top + 8, &top_word) &&
	    read_u64(walker, arena->state + walker->layout.state_system_mem, &system_bytes)) {
		uint64_t top_end = top + (top_word & ~(uint64_t)SIZE_FLAGS);
		if (system_bytes <= top_end)
			start = top_end - system_bytes;
	}
	/* the start must be mapped, in anonymous writable memory joined to top's without a gap */
	const struct snapshot_region *first = region;
	if (start != 0 && start <= top) {
		const struct snapshot_region *at = snapshot_find_region(walker->snapshot, start);
		const struct snapshot_region *step = at;
		while (step && step != region && anonymous_writable(step))
			step = snapshot_find_region(walker->snapshot, step->end);
		if (step == region)
			first = at;
		else
			start = 0;
	} else {
		start = 0;
	}
	if (start == 0)
		start = region->start; /* not known: the brk heap starts top's region */
	start = (start + 15) & ~15ull;
	uint64_t end = mapping_end(walker, region);
	note_heap_span(walker, first->start, end);
	return walk_chunks(walker, start, top, end, arena->index, false, true);
}

static uint64_t arena_heap_end(const struct walker *walker, uint64_t addr);

/* Every 64 MiB-aligned address of anonymous writable memory, with the arena its heap_info would
 * name: a thread arena's heaps are found among them by their ar_ptr, so a damaged top pointer or
 * prev link loses no other heap. Run once the main arena is walked, so its brk heap (never a
 * thread's) is skipped: a word read every 64 MiB through it would decompress a frame each, to be
 * evicted before the walk came there (6% more decompression on a 1.2 GiB brk heap). */
static int find_heap_infos(struct walker *walker)
{
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(walker->snapshot, &count);
	for (size_t i = 0; i < count; i++) {
		if (!anonymous_writable(&regions[i]))
			continue;
		uint64_t heap = (regions[i].start + HEAP_MAX_SIZE - 1) & ~(HEAP_MAX_SIZE - 1);
		for (; heap >= regions[i].start && heap < regions[i].end; heap += HEAP_MAX_SIZE) {
			uint64_t owner;
			if (arena_heap_end(walker, heap) != 0)
				continue; /* in a heap walked already (the main arena's) */
			if (!read_u64(walker, heap + walker->layout.heap_info_ar_ptr, &owner) ||
			    owner == 0 || (owner & 7))
				continue;
			struct heap_info_candidate *grown =
				array_grow(walker->heap_infos, &walker->heap_info_capacity,
					   walker->heap_info_count, sizeof *grown, 64);
			if (grown == NULL)
				return -1;
			walker->heap_infos = grown;
			grown[walker->heap_info_count++] =
				(struct heap_info_candidate){heap, owner, &regions[i]};
		}
	}
	return 0;
}

/* Whether an old heap's fencepost pair (a 16-byte chunk, then a 0-byte one) sits at `at`. */
static bool fencepost_at(struct walker *walker, uint64_t at)
{
	uint64_t first, second;
	return read_u64(walker, at + 8, &first) && read_u64(walker, at + 24, &second) &&
	       (first & ~(uint64_t)(PREV_INUSE | NON_MAIN_ARENA)) == CHUNK_HEADER &&
	       (second & ~(uint64_t)(PREV_INUSE | NON_MAIN_ARENA)) == 0;
}

/* One heap of a thread arena: from after its heap_info (and the malloc_state, in the arena's
 * first heap) to top, or to the fencepost an old heap ends with, or, when neither is there, to
 * the end of its memory. */
static int walk_thread_heap(struct walker *walker, const struct arena *arena,
			    const struct heap_info_candidate *candidate, uint64_t top)
{
	const struct glibc_layout *layout = &walker->layout;
	uint64_t heap = candidate->heap, size = 0, previous = 0;
	uint64_t memory_end = mapping_end(walker, candidate->region);
	if (memory_end > heap + HEAP_MAX_SIZE)
		memory_end = heap + HEAP_MAX_SIZE;
	read_u64(walker, heap + layout->heap_info_size_field, &size);
	uint64_t heap_end = heap + size;
	if (size <= layout->heap_info_size || size > HEAP_MAX_SIZE || heap_end > memory_end) {
		warnings_add(walker->warnings,
			     "glibc heap: heap_info at 0x%llx has a damaged size 0x%llx; its heap is "
			     "walked to the end of its memory at 0x%llx",
			     (unsigned long long)heap, (unsigned long long)size,
			     (unsigned long long)memory_end);
		heap_note_damage(walker->heap, heap + layout->heap_info_size_field, 0);
		heap_end = memory_end;
	}
	if (read_u64(walker, heap + layout->heap_info_prev, &previous) && previous != 0) {
		uint64_t owner = 0;
		if ((previous & (HEAP_MAX_SIZE - 1)) != 0 ||
		    !read_u64(walker, previous + layout->heap_info_ar_ptr, &owner) ||
		    owner != arena->state) {
			warnings_add(walker->warnings,
				     "glibc heap: heap_info at 0x%llx has a broken prev link 0x%llx",
				     (unsigned long long)heap, (unsigned long long)previous);
			heap_note_damage(walker->heap, heap + layout->heap_info_prev, 0);
		}
	}
	/* the arena's first heap holds the malloc_state right after heap_info */
	uint64_t first = heap + layout->heap_info_size;
	if (arena->state >= heap && arena->state < heap_end)
		first = arena->state + layout->state_size;
	first = (first + 15) & ~15ull;
	note_heap_span(walker, heap, heap + HEAP_MAX_SIZE);
	if (top >= first && top < heap_end)
		return walk_chunks(walker, first, top, heap_end, arena->index, true, true);
	if (heap_end >= first + 2 * CHUNK_HEADER && fencepost_at(walker, heap_end - 2 * CHUNK_HEADER))
		return walk_chunks(walker, first, heap_end - 2 * CHUNK_HEADER, heap_end, arena->index,
				   true, true);
	return walk_chunks(walker, first, heap_end, heap_end, arena->index, true, false);
}

static int walk_thread_arena(struct walker *walker, const struct arena *arena)
{
	uint64_t top = arena_top(walker, arena->state);
	uint64_t top_heap = 0;
	if (top_chunk_region(walker, top) != NULL) {
		top_heap = top & ~(HEAP_MAX_SIZE - 1);
	} else {
		warnings_add(walker->warnings,
			     "glibc heap: the top pointer of arena 0x%llx (at 0x%llx) is damaged: "
			     "0x%llx is no chunk; its heaps are walked to the end of their memory",
			     (unsigned long long)arena->state,
			     (unsigned long long)(arena->state + walker->layout.state_top),
			     (unsigned long long)top);
		heap_note_damage(walker->heap, arena->state + walker->layout.state_top, 0);
		top = 0;
	}
	bool found_top_heap = false;
	for (size_t i = 0; i < walker->heap_info_count; i++) {
		const struct heap_info_candidate *candidate = &walker->heap_infos[i];
		bool top_here = candidate->heap == top_heap;
		if (candidate->owner != arena->state && !top_here)
			continue;
		if (candidate->owner != arena->state) {
			warnings_add(walker->warnings,
				     "glibc heap: heap_info at 0x%llx names arena 0x%llx, but the top "
				     "chunk of arena 0x%llx lies in its heap: its ar_ptr is damaged",
				     (unsigned long long)candidate->heap,
				     (unsigned long long)candidate->owner,
				     (unsigned long long)arena->state);
			heap_note_damage(walker->heap,
					 candidate->heap + walker->layout.heap_info_ar_ptr, 0);
		}
		found_top_heap |= top_here;
		if (walk_thread_heap(walker, arena, candidate, top) != 0)
			return -1;
	}
	if (top_heap != 0 && !found_top_heap) {
		/* heap_info's ar_ptr read as 0 or misaligned: walk top's heap all the same */
		const struct snapshot_region *region = snapshot_find_region(walker->snapshot, top_heap);
		if (anonymous_writable(region)) {
			struct heap_info_candidate candidate = {top_heap, 0, region};
			warnings_add(walker->warnings,
				     "glibc heap: no heap_info of arena 0x%llx at 0x%llx, where its "
				     "top chunk lies: its ar_ptr is damaged",
				     (unsigned long long)arena->state, (unsigned long long)top_heap);
			heap_note_damage(walker->heap, top_heap + walker->layout.heap_info_ar_ptr, 0);
			return walk_thread_heap(walker, arena, &candidate, top);
		}
	}
	return 0;
}

/* Whether `state` looks like a malloc_state with a top chunk inside mapped memory whose size
 * reaches no further than its region. */
static bool plausible_arena(struct walker *walker, uint64_t state)
{
	return top_chunk_region(walker, arena_top(walker, state)) != NULL;
}

/* bin_at(m, i): the head of the bin whose fd and bk are bins[bin] and bins[bin + 1] (bin even) is
 * a fake chunk 16 bytes before them. */
static uint64_t bin_head(const struct walker *walker, uint64_t state, unsigned bin)
{
	return state + walker->layout.state_bins + 8ull * bin - 16;
}

/* The fd and bk of a bin's head; false when they cannot be read. */
static bool bin_links(struct walker *walker, uint64_t head, uint64_t *fd, uint64_t *bk)
{
	return read_u64(walker, head + 16, fd) && read_u64(walker, head + 24, bk);
}

/* Whether `state` looks like a malloc_state by its bins: an empty bin's fd and bk hold its own
 * head's address, and most bins of an arena in use are empty. This recognises an arena whose top
 * pointer is damaged. */
static bool arena_by_bins(struct walker *walker, uint64_t state)
{
	const struct glibc_layout *layout = &walker->layout;
	unsigned empty = 0;
	for (unsigned bin = 0; bin + 1 < layout->bin_count; bin += 2) {
		uint64_t head = bin_head(walker, state, bin), fd, bk;
		if (bin_links(walker, head, &fd, &bk) && fd == head && bk == head)
			empty++;
	}
	return empty >= 32;
}

/* Follows the arena ring from the main arena. */
static int collect_arenas(struct walker *walker, uint64_t main_arena)
{
	uint64_t state = main_arena;
	do {
		if (walker->arena_count == ARENAS_MAX) {
			warnings_add(walker->warnings, "glibc heap: more than %d arenas; the rest are "
						       "skipped",
				     ARENAS_MAX);
			break;
		}
		for (size_t i = 0; i < walker->arena_count; i++)
			if (walker->arenas[i].state == state) {
				warnings_add(walker->warnings,
					     "glibc heap: the arena ring loops at 0x%llx without "
					     "returning to the main arena",
					     (unsigned long long)state);
				return 0;
			}
		if (state != main_arena && !plausible_arena(walker, state) &&
		    !arena_by_bins(walker, state)) {
			warnings_add(walker->warnings,
				     "glibc heap: the arena ring leads to 0x%llx, which is not an "
				     "arena; the ring is cut there",
				     (unsigned long long)state);
			break;
		}
		struct heap_arena info = {.address = state};
		snprintf(info.kind, sizeof info.kind, "%s", state == main_arena ? "main" : "thread");
		read_u64(walker, state + walker->layout.state_system_mem, &info.system_bytes);
		if (heap_add_arena(walker->heap, &info) != 0)
			return -1;
		walker->arenas[walker->arena_count++] =
			(struct arena){state, state == main_arena,
				       (uint16_t)(walker->heap->arena_count - 1)};
		if (!read_u64(walker, state + walker->layout.state_next, &state))
			break;
	} while (state != main_arena && state != 0);
	return 0;
}

/* Without debug info: main_arena is the malloc_state in libc's writable data whose top lies in
 * an anonymous region (or, on a second look, when its top is damaged, whose empty bins point at
 * themselves) and whose ring of `next` pointers returns to it. */
static uint64_t find_main_arena_by(struct walker *walker, const char *libc_path,
				   bool (*plausible)(struct walker *, uint64_t))
{
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(walker->snapshot, &count);
	for (size_t i = 0; i < count; i++) {
		const struct snapshot_region *region = &regions[i];
		bool libc_data = region->path && strcmp(region->path, libc_path) == 0 &&
				 (region->flags & PF_W);
		/* libc's .bss continues in the anonymous mapping right after its file mapping */
		bool libc_bss = !region->path && i > 0 && regions[i - 1].path &&
				strcmp(regions[i - 1].path, libc_path) == 0 &&
				regions[i - 1].end == region->start && (region->flags & PF_W);
		if (!libc_data && !libc_bss)
			continue;
		for (uint64_t state = region->start;
		     state + walker->layout.state_size <= region->end; state += 16) {
			uint64_t next;
			if (!read_u64(walker, state + walker->layout.state_next, &next) || next == 0 ||
			    (next & 7))
				continue;
			if (!plausible(walker, state))
				continue;
			/* the ring must come back here */
			uint64_t at = next;
			for (int step = 0; step < ARENAS_MAX && at != state && at != 0; step++)
				if (!read_u64(walker, at + walker->layout.state_next, &at))
					at = 0;
			if (at == state)
				return state;
		}
	}
	return 0;
}

static uint64_t find_main_arena(struct walker *walker, const char *libc_path)
{
	uint64_t found = find_main_arena_by(walker, libc_path, plausible_arena);
	return found ? found : find_main_arena_by(walker, libc_path, arena_by_bins);
}

/* ---- free lists ------------------------------------------------------------------------------ */

static uint64_t reveal(const struct walker *walker, uint64_t link_address, uint64_t stored)
{
	return walker->layout.safe_linking ? stored ^ (link_address >> 12) : stored;
}

/* The allocation whose chunk starts at `chunk`, or NULL. */
static struct allocation *chunk_at(struct walker *walker, uint64_t chunk)
{
	struct allocation *found =
		(struct allocation *)heap_find(walker->heap, chunk + CHUNK_HEADER);
	return found && found->address == chunk + CHUNK_HEADER ? found : NULL;
}

static void mark_fastbins(struct walker *walker, const struct arena *arena)
{
	const struct glibc_layout *layout = &walker->layout;
	for (unsigned bin = 0; bin < layout->fastbin_count; bin++) {
		uint64_t chunk = 0;
		read_u64(walker, arena->state + layout->state_fastbins + 8ull * bin, &chunk);
		uint64_t expected = MIN_CHUNK + 16ull * bin, from = 0;
		for (size_t steps = 0; chunk != 0; steps++) {
			struct allocation *allocation = chunk_at(walker, chunk);
			if (allocation == NULL || allocation->size + 8 != expected ||
			    steps > walker->heap->count) {
				warnings_add(walker->warnings,
					     "glibc heap: fast bin %u of arena 0x%llx: the free chunk "
					     "at 0x%llx has a broken link to 0x%llx; the rest of that "
					     "list is not followed",
					     bin, (unsigned long long)arena->state,
					     (unsigned long long)from, (unsigned long long)chunk);
				break;
			}
			if (allocation->place == PLACE_FAST_LIST) {
				warnings_add(walker->warnings,
					     "glibc heap: fast bin %u of arena 0x%llx loops at chunk "
					     "0x%llx",
					     bin, (unsigned long long)arena->state,
					     (unsigned long long)chunk);
				break;
			}
			allocation->state = ALLOCATION_FREE;
			allocation->place = PLACE_FAST_LIST;
			from = chunk;
			chunk = reveal(walker, chunk + 16, allocation->first_word);
		}
	}
}

/* Whether `candidate` (a user address) is a tcache_perthread_struct: counts and entries agree
 * (zero together), at least one list is not empty, and every list's first entry is a chunk of its
 * bin's size. Zeroed or unrelated memory fails this; a tcache whose lists were damaged further
 * down still passes, so the damage can be reported. */
static bool is_tcache(struct walker *walker, const struct allocation *candidate, uint64_t *entries,
		      uint16_t *counts, unsigned bins)
{
	const struct glibc_layout *layout = &walker->layout;
	size_t total = 0;
	for (unsigned bin = 0; bin < bins; bin++) {
		uint64_t word = 0;
		if (!read_u64(walker, candidate->address + layout->tcache_entries + 8ull * bin,
			      &entries[bin]))
			return false;
		uint64_t count_at = candidate->address + layout->tcache_counts +
				    (uint64_t)bin * layout->tcache_count_width;
		if (address_space_read(walker->space, count_at, &word, layout->tcache_count_width,
				       NULL) != 0)
			return false;
		counts[bin] = (uint16_t)word;
		if ((counts[bin] == 0) != (entries[bin] == 0))
			return false;
		total += counts[bin];
		if (entries[bin] != 0) {
			struct allocation *head = chunk_at(walker, entries[bin] - CHUNK_HEADER);
			if (head == NULL || head->size + 8 != MIN_CHUNK + 16ull * bin)
				return false;
		}
	}
	return total > 0; /* an empty tcache cannot be told from zeroed memory, and frees nothing */
}

/* Keeps the key word of a tcache entry (its second word) for check_tcache_keys. */
static void record_tcache_key(struct walker *walker, uint64_t entry, uint64_t tcache)
{
	uint64_t key;
	if (walker->glibc_minor < 29 || !read_u64(walker, entry + 8, &key))
		return;
	struct tcache_entry_key *grown = array_grow(walker->tcache_keys, &walker->tcache_key_capacity,
						    walker->tcache_key_count, sizeof *grown, 64);
	if (grown == NULL)
		return; /* out of memory: fewer keys checked, nothing wrong said */
	walker->tcache_keys = grown;
	grown[walker->tcache_key_count++] = (struct tcache_entry_key){entry, key, tcache};
}

/* Since 2.29 a tcache entry's second word is a key free() checks to catch double frees: the
 * tcache's address until 2.33, one random value for every thread since 2.34 (read from
 * tcache_key when its symbol is known, else the value most entries agree on). An entry whose key
 * differs was written to after it was freed. */
static void check_tcache_keys(struct walker *walker)
{
	size_t count = walker->tcache_key_count;
	const struct tcache_entry_key *keys = walker->tcache_keys;
	uint64_t expected = walker->tcache_key;
	if (walker->glibc_minor < 29)
		return; /* no key before 2.29 */
	if (walker->glibc_minor >= 34 && expected == 0) {
		size_t votes = 0, agree = 0;
		for (size_t i = 0; i < count; i++) {
			if (votes == 0)
				expected = keys[i].key;
			votes += keys[i].key == expected ? 1 : (size_t)-1;
		}
		for (size_t i = 0; i < count; i++)
			agree += keys[i].key == expected;
		if (agree < 2 || 2 * agree <= count)
			return; /* too few entries to tell the key */
	}
	for (size_t i = 0; i < count; i++) {
		uint64_t want = walker->glibc_minor < 34 ? keys[i].tcache : expected;
		if (keys[i].key == want)
			continue;
		warnings_add(walker->warnings,
			     "glibc heap: the free chunk at 0x%llx in the tcache at 0x%llx has a "
			     "damaged key 0x%llx (0x%llx expected): it was written to after it was "
			     "freed",
			     (unsigned long long)(keys[i].entry - CHUNK_HEADER),
			     (unsigned long long)keys[i].tcache, (unsigned long long)keys[i].key,
			     (unsigned long long)want);
		heap_note_damage(walker->heap, keys[i].entry - CHUNK_HEADER, 0);
	}
}

/* Marks the entries of a tcache free, following each list for as many entries as its count says
 * and warning where a link is broken, loops, or the list's length disagrees with its count. */
static void follow_tcache(struct walker *walker, struct allocation *candidate)
{
	uint64_t entries[128];
	uint16_t counts[128];
	unsigned bins = walker->layout.tcache_bins < 128 ? walker->layout.tcache_bins : 128;
	if (!is_tcache(walker, candidate, entries, counts, bins))
		return;
	candidate->place = PLACE_METADATA;
	for (unsigned bin = 0; bin < bins; bin++) {
		uint64_t entry = entries[bin], from = 0;
		for (unsigned k = 0; k < counts[bin]; k++) {
			struct allocation *allocation =
				entry ? chunk_at(walker, entry - CHUNK_HEADER) : NULL;
			const char *problem = NULL;
			if (allocation == NULL || allocation->size + 8 != MIN_CHUNK + 16ull * bin)
				problem = "a broken link to";
			else if (allocation->place == PLACE_THREAD_CACHE)
				problem = "a loop at";
			if (problem) {
				warnings_add(walker->warnings,
					     "glibc heap: tcache bin %u of the tcache at 0x%llx: the free "
					     "chunk at 0x%llx has %s 0x%llx; the rest of that list is not "
					     "followed",
					     bin, (unsigned long long)candidate->address,
					     (unsigned long long)(from ? from - CHUNK_HEADER : 0), problem,
					     (unsigned long long)entry);
				entry = 0;
				break;
			}
			allocation->state = ALLOCATION_FREE;
			allocation->place = PLACE_THREAD_CACHE;
			record_tcache_key(walker, entry, candidate->address);
			from = entry;
			entry = reveal(walker, entry, allocation->first_word);
		}
		if (entry != 0)
			warnings_add(walker->warnings,
				     "glibc heap: tcache bin %u of the tcache at 0x%llx is longer than "
				     "its count of %u",
				     bin, (unsigned long long)candidate->address, counts[bin]);
	}
}

static void mark_tcaches(struct walker *walker)
{
	uint64_t tcache_usable = ((walker->layout.tcache_size + 8 + 15) & ~15ull) - 8;
	for (size_t i = 0; i < walker->heap->count; i++) {
		struct allocation *allocation = &walker->heap->allocations[i];
		if (allocation->size == tcache_usable && allocation->state == ALLOCATION_LIVE &&
		    allocation->place == PLACE_IN_USE)
			follow_tcache(walker, allocation);
	}
}

#define NEXTSIZE_HEADS_MAX 4096

/* In a large bin, chunks are sorted by size, largest first, and the first chunk of each size is
 * linked to the first of the next smaller size (fd_nextsize) and of the next larger
 * (bk_nextsize), in a ring. `heads` are those first chunks in the bin's order. */
static void check_nextsize_ring(struct walker *walker, const struct arena *arena, unsigned index,
				const uint64_t *heads, size_t count)
{
	for (size_t k = 0; k < count; k++) {
		uint64_t fd_nextsize = 0, bk_nextsize = 0;
		uint64_t next = heads[(k + 1) % count], previous = heads[(k + count - 1) % count];
		if (!read_u64(walker, heads[k] + 32, &fd_nextsize) ||
		    !read_u64(walker, heads[k] + 40, &bk_nextsize))
			return;
		if (fd_nextsize == next && bk_nextsize == previous)
			continue;
		warnings_add(walker->warnings,
			     "glibc heap: large bin %u of arena 0x%llx: the free chunk at 0x%llx has "
			     "damaged size links (fd_nextsize 0x%llx, bk_nextsize 0x%llx; 0x%llx and "
			     "0x%llx expected)",
			     index, (unsigned long long)arena->state, (unsigned long long)heads[k],
			     (unsigned long long)fd_nextsize, (unsigned long long)bk_nextsize,
			     (unsigned long long)next, (unsigned long long)previous);
		heap_note_damage(walker->heap, heads[k], 0);
		return;
	}
}

/* Checks the unsorted, small and large bins: each forward link leads to a free chunk (not to
 * itself), and a small bin holds chunks of its size only. When the arena's link sums say a ring
 * is not whole, the lists are followed again reading each back link and large bins' size links,
 * to name where. */
static void check_bins(struct walker *walker, const struct arena *arena)
{
	const struct glibc_layout *layout = &walker->layout;
	struct link_sums sums = arena->index < ARENAS_MAX ? walker->link_sums[arena->index]
							  : (struct link_sums){0};
	/* the bins' heads are links of the rings too */
	for (unsigned bin = 0; bin + 1 < layout->bin_count; bin += 2) {
		uint64_t head = bin_head(walker, arena->state, bin), fd, bk;
		if (bin_links(walker, head, &fd, &bk)) {
			sums.forward += link_term(head, fd);
			sums.backward += link_term(bk, head);
		}
	}
	bool back_links = sums.forward != sums.backward;
	bool size_links = sums.size_forward != sums.size_backward;
	uint64_t *heads = size_links ? malloc(NEXTSIZE_HEADS_MAX * sizeof *heads) : NULL;
	for (unsigned bin = 0; bin + 1 < layout->bin_count; bin += 2) {
		unsigned index = bin / 2 + 1; /* 1: unsorted, 2-63: small, 64 and up: large */
		uint64_t head = bin_head(walker, arena->state, bin);
		uint64_t chunk = 0, from = head, last_size = 0;
		size_t head_count = 0;
		bool whole = true;
		if (!read_u64(walker, head + 16, &chunk))
			break;
		for (size_t steps = 0; chunk != head; steps++) {
			struct allocation *allocation = chunk_at(walker, chunk);
			uint64_t back = 0, size = allocation ? allocation->size + 8 : 0;
			const char *problem = NULL;
			if (allocation == NULL || allocation->state != ALLOCATION_FREE ||
			    steps > walker->heap->count)
				problem = "a broken link to";
			else if (chunk == from)
				problem = "a link to itself,";
			else if (back_links && read_u64(walker, chunk + 24, &back) && back != from)
				problem = "a link the back link of which is damaged, to";
			else if (index >= 2 && index < 64 && size != 16ull * index)
				problem = "a link to a chunk of another bin's size,";
			if (problem) {
				warnings_add(walker->warnings,
					     "glibc heap: bin %u of arena 0x%llx: %s0x%llx has %s "
					     "0x%llx; the rest of that bin is not followed",
					     index, (unsigned long long)arena->state,
					     from != head ? "the free chunk at " : "the bin's head at ",
					     (unsigned long long)from, problem,
					     (unsigned long long)chunk);
				heap_note_damage(walker->heap, from, 0);
				whole = false;
				break;
			}
			if (heads && index >= 64 && size != last_size) {
				if (head_count < NEXTSIZE_HEADS_MAX)
					heads[head_count] = chunk;
				head_count++;
				last_size = size;
			}
			from = chunk;
			chunk = allocation->first_word;
		}
		if (whole && heads && head_count > 0 && head_count <= NEXTSIZE_HEADS_MAX)
			check_nextsize_ring(walker, arena, index, heads, head_count);
	}
	free(heads);
}

/* ---- mmapped chunks -------------------------------------------------------------------------- */

/* The end of the arena heap holding addr, or 0 when none does. */
static uint64_t arena_heap_end(const struct walker *walker, uint64_t addr)
{
	for (size_t i = 0; i < walker->heap_count; i++)
		if (addr >= walker->heaps[i].start && addr < walker->heaps[i].end)
			return walker->heaps[i].end;
	return 0;
}

/* Whether an mmapped chunk starts at `page`, and where its live header is. A chunk memalign
 * aligned keeps the header malloc wrote at the mapping's start (stale) and gets a new one `lead`
 * bytes in (lead < the alignment), whose prev_size is `lead` and which ends where the stale one
 * ends. The bytes between are not necessarily zeros (MALLOC_PERTURB_ fills them), so the first
 * 256 KiB are searched for such a header. */
static bool mmapped_chunk_at(struct walker *walker, uint64_t page, uint64_t end, uint64_t *lead,
			     uint64_t *size)
{
	uint64_t prev_size = 0, word = 0;
	if (!address_cursor_read_u64(&walker->cursor, page, end, &prev_size) ||
	    !address_cursor_read_u64(&walker->cursor, page + 8, end, &word))
		return false;
	uint64_t chunk_size = word & ~(uint64_t)SIZE_FLAGS;
	if ((word & SIZE_FLAGS) != IS_MMAPPED || prev_size != 0 || (chunk_size & 4095) != 0 ||
	    chunk_size < 4096 || chunk_size > end - page) /* (not page + size: it may wrap) */
		return false;
	*lead = 0;
	*size = chunk_size;
	for (uint64_t offset = 16; offset < chunk_size && offset < (256u << 10); offset += 16) {
		uint64_t a, b;
		if (!address_cursor_read_u64(&walker->cursor, page + offset, end, &a))
			break;
		if (a != offset ||
		    !address_cursor_read_u64(&walker->cursor, page + offset + 8, end, &b))
			continue;
		if ((b & SIZE_FLAGS) == IS_MMAPPED &&
		    offset + (b & ~(uint64_t)SIZE_FLAGS) == chunk_size) {
			*lead = offset;
			*size = chunk_size - offset;
			break;
		}
	}
	return true;
}

/* The page after the block of an earlier-walked malloc that holds `page`, 0 when none does. */
static uint64_t earlier_block_end(const struct walker *walker, uint64_t page)
{
	const struct allocation *blocks = walker->heap->allocations;
	size_t low = 0, high = walker->earlier_count;
	while (low < high) { /* the first block ending after `page` */
		size_t middle = low + (high - low) / 2;
		if (blocks[middle].address + blocks[middle].size <= page)
			low = middle + 1;
		else
			high = middle;
	}
	if (low == walker->earlier_count || blocks[low].address > page)
		return 0;
	return (blocks[low].address + blocks[low].size + 4095) & ~4095ull;
}

/* A page that starts like an mmapped chunk, before malloc's counters or other evidence say
 * whether it is one: any anonymous page may begin with the words 0 and N | IS_MMAPPED. */
struct mmapped_candidate {
	uint64_t page, lead, size; /* its mapping would be [page, page + lead + size) */
	bool fills_mapping;	   /* starts and ends where memory or something known does */
	bool rescanned;		   /* its span was searched for chunks after it was left out */
	bool kept;
};

struct candidate_list {
	struct mmapped_candidate *items;
	size_t count, capacity;
};

/* malloc's own figures for its mmapped chunks (mp_.n_mmaps, mp_.mmapped_mem), with debug info */
struct mmap_counters {
	bool known;
	int chunks;
	uint64_t bytes;
};

/* Whether something that is not an mmapped chunk (an arena heap, an earlier malloc's block)
 * covers the byte at `addr`. */
static bool known_at(const struct walker *walker, uint64_t addr)
{
	return arena_heap_end(walker, addr) != 0 || earlier_block_end(walker, addr) != 0;
}

/* Adds the pages of [start, stored_end) that start like an mmapped chunk no longer than its
 * mapping (to `memory_end`), skipping arena heaps, earlier blocks and the span of each candidate
 * found. Returns where the scan ended (past the last span: a chunk's untouched pages may lie in
 * regions after this one), or 0 when out of memory. */
static uint64_t scan_for_candidates(struct walker *walker, uint64_t start, uint64_t stored_end,
				    uint64_t memory_end, struct candidate_list *list)
{
	uint64_t page = start;
	while (page + CHUNK_HEADER <= stored_end) {
		uint64_t skip_to = arena_heap_end(walker, page);
		if (skip_to == 0)
			skip_to = earlier_block_end(walker, page);
		if (skip_to) {
			page = skip_to;
			continue;
		}
		uint64_t lead = 0, size = 0;
		if (!mmapped_chunk_at(walker, page, memory_end, &lead, &size)) {
			page += 4096;
			continue;
		}
		struct mmapped_candidate *grown =
			array_grow(list->items, &list->capacity, list->count, sizeof *list->items, 16);
		if (grown == NULL)
			return 0;
		list->items = grown;
		list->items[list->count++] =
			(struct mmapped_candidate){.page = page, .lead = lead, .size = size};
		page += lead + size;
	}
	return page > stored_end ? page : stored_end;
}

static int candidate_order(const void *a, const void *b)
{
	const struct mmapped_candidate *x = a, *y = b;
	return x->page < y->page ? -1 : x->page > y->page;
}

/* Whether a candidate fills a mapping of its own, as malloc's mmap gives each chunk: it starts
 * where a region, a candidate, an arena heap or an earlier block does or ends, and ends so too. A
 * look-alike page in the middle of another mapping does not. */
static void mark_filling(struct walker *walker, struct candidate_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		struct mmapped_candidate *c = &list->items[i];
		uint64_t end = c->page + c->lead + c->size, mapping_start = 0, mapping_stop = 0;
		const struct snapshot_region *region = snapshot_find_region(walker->snapshot, c->page);
		if (region)
			snapshot_mapping_bounds(walker->snapshot, region, &mapping_start,
						&mapping_stop);
		bool starts = mapping_start == c->page ||
			      (i > 0 && list->items[i - 1].page + list->items[i - 1].lead +
						list->items[i - 1].size == c->page) ||
			      known_at(walker, c->page - 1);
		bool ends = mapping_stop == end ||
			    (i + 1 < list->count && list->items[i + 1].page == end) ||
			    known_at(walker, end);
		c->fills_mapping = starts && ends;
	}
}

/* Chooses `drop` candidates of `bytes` bytes in all to leave out, those that do not fill a
 * mapping tried first (`order` lists the candidates so); false when no such choice is found
 * within a bounded search. */
static bool choose_dropped(struct mmapped_candidate *items, const size_t *order, size_t count,
			   size_t from, size_t drop, uint64_t bytes, unsigned *budget)
{
	if (drop == 0)
		return bytes == 0;
	for (size_t i = from; i + drop <= count && *budget > 0; i++) {
		struct mmapped_candidate *c = &items[order[i]];
		uint64_t size = c->lead + c->size;
		--*budget;
		if (size > bytes)
			continue;
		c->kept = false;
		if (choose_dropped(items, order, count, i + 1, drop - 1, bytes - size, budget))
			return true;
		c->kept = true;
	}
	return false;
}

/* Keeps the candidates malloc's counters account for: when leaving out some of them makes the
 * count and the bytes both match, those are look-alikes. False when no such choice exists. */
static bool keep_counted(struct candidate_list *list, const struct mmap_counters *counters)
{
	uint64_t bytes = 0;
	for (size_t i = 0; i < list->count; i++) {
		list->items[i].kept = true;
		bytes += list->items[i].lead + list->items[i].size;
	}
	if (!counters->known || counters->chunks < 0 || (size_t)counters->chunks > list->count ||
	    counters->bytes > bytes)
		return false;
	size_t *order = malloc((list->count + 1) * sizeof *order), placed = 0;
	if (order == NULL)
		return false;
	for (int filling = 0; filling <= 1; filling++)
		for (size_t i = 0; i < list->count; i++)
			if (list->items[i].fills_mapping == (filling == 1))
				order[placed++] = i;
	unsigned budget = 100000;
	bool found = choose_dropped(list->items, order, list->count, 0,
				    list->count - (size_t)counters->chunks, bytes - counters->bytes,
				    &budget);
	free(order);
	if (!found)
		for (size_t i = 0; i < list->count; i++)
			list->items[i].kept = true;
	return found;
}

/* Marks `reached[i]` for each candidate `i` left out so far whose user pointer some word of the
 * process's other writable memory holds. Read only when there are such candidates and no
 * counters to settle them: it is a pass over the whole memory. */
static void find_pointers_to(struct walker *walker, const struct candidate_list *list,
			     bool *reached)
{
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(walker->snapshot, &count);
	enum { PIECE = 1 << 20 };
	uint64_t *words = malloc(PIECE);
	if (words == NULL)
		return;
	for (size_t r = 0; r < count; r++) {
		const struct snapshot_region *region = &regions[r];
		if (!(region->flags & PF_W))
			continue;
		for (uint64_t at = region->start; at < region->start + region->data_size; at += PIECE) {
			uint64_t size = region->start + region->data_size - at;
			if (size > PIECE)
				size = PIECE;
			if (address_space_read(walker->space, at, words, (size_t)size, NULL) != 0)
				continue;
			for (size_t w = 0; w < size / 8; w++)
				for (size_t i = 0; i < list->count; i++) {
					const struct mmapped_candidate *c = &list->items[i];
					uint64_t user = c->page + c->lead + CHUNK_HEADER;
					uint64_t where = at + 8 * w;
					if (!c->kept && words[w] == user &&
					    (where < c->page || where >= c->page + c->lead + c->size))
						reached[i] = true;
				}
		}
	}
	free(words);
}

/* Without counters that settle it, a candidate that does not fill a mapping of its own is kept
 * only when a pointer reaches it and it is as large as malloc's smallest mmap threshold. */
static int keep_evident(struct walker *walker, struct candidate_list *list)
{
	bool any = false;
	for (size_t i = 0; i < list->count; i++) {
		list->items[i].kept = list->items[i].fills_mapping;
		any |= !list->items[i].kept;
	}
	if (!any)
		return 0;
	bool *reached = calloc(list->count, sizeof *reached);
	if (reached == NULL)
		return -1;
	find_pointers_to(walker, list, reached);
	for (size_t i = 0; i < list->count; i++)
		if (reached[i] && list->items[i].lead + list->items[i].size >= MMAP_THRESHOLD_MIN)
			list->items[i].kept = true;
	free(reached);
	return 0;
}

static void add_addresses(char *text, size_t size, const struct candidate_list *list, bool kept)
{
	size_t length = strlen(text), named = 0;
	for (size_t i = 0; i < list->count && length + 24 < size; i++) {
		if (list->items[i].kept != kept)
			continue;
		if (++named > 8) {
			snprintf(text + length, size - length, ", ...");
			return;
		}
		length += (size_t)snprintf(text + length, size - length, "%s0x%llx",
					   named > 1 ? ", " : "",
					   (unsigned long long)list->items[i].page);
	}
}

/* Says what the choice among candidates left open: counters that do not match what was kept, and
 * pages left out on too little evidence. Nothing when the counters account for every chunk. */
static void warn_mmapped(struct walker *walker, const struct candidate_list *list,
			 const struct mmap_counters *counters, bool counted)
{
	size_t kept = 0, dropped = 0;
	uint64_t kept_bytes = 0;
	for (size_t i = 0; i < list->count; i++) {
		if (list->items[i].kept) {
			kept++;
			kept_bytes += list->items[i].lead + list->items[i].size;
		} else {
			dropped++;
		}
	}
	char pages[256] = "";
	add_addresses(pages, sizeof pages, list, false);
	if (counters->known && !counted &&
	    ((size_t)counters->chunks != kept || counters->bytes != kept_bytes))
		warnings_add(walker->warnings,
			     "glibc heap: malloc counts %d mmapped chunks of %llu bytes, %zu of %llu "
			     "bytes were found%s%s",
			     counters->chunks, (unsigned long long)counters->bytes, kept,
			     (unsigned long long)kept_bytes,
			     dropped ? "; left out as look-alikes without a pointer to them: " : "",
			     pages);
	else if (!counters->known && dropped)
		warnings_add(walker->warnings,
			     "glibc heap: %zu pages start like an mmapped chunk but neither fill a "
			     "mapping of their own nor are pointed to, so they are not listed (%s); "
			     "libc's debug info (libc6-dbg) would settle it with malloc's counters",
			     dropped, pages);
}

/* Chunks malloc got from mmap sit at the start of their own mapping (after `prev_size` bytes of
 * alignment), IS_MMAPPED set, page-sized; adjacent ones share a region in the snapshot. A page of
 * other memory may start with the same words, so the candidates found are kept when malloc's
 * counters account for them, else when they fill a mapping of their own or are pointed to. */
static int find_mmapped_chunks(struct walker *walker, const struct mmap_counters *counters)
{
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(walker->snapshot, &count);
	struct candidate_list list = {0};
	int result = 0;
	uint64_t scanned_to = 0; /* the end of the last candidate's span */
	for (size_t i = 0; i < count && result == 0; i++) {
		const struct snapshot_region *region = &regions[i];
		/* Headers only in the bytes the snapshot holds: past them a region is never-touched
		 * zeros (no header there, though a chunk's untouched pages are) or was not captured
		 * (a JVM's heap reservation: gigabytes whose every page would be a failed read). A
		 * mapping may follow an arena heap closely enough to share its region. */
		uint64_t stored_end = region->start + region->data_size;
		if (!anonymous_writable(region) || stored_end <= scanned_to)
			continue;
		scanned_to = scan_for_candidates(
			walker, region->start > scanned_to ? region->start : scanned_to, stored_end,
			mapping_end(walker, region), &list);
		if (scanned_to == 0)
			result = -1;
	}
	bool counted = false;
	/* a look-alike left out may have hidden chunks in the span it claimed: search it, then
	   choose again among all (a few rounds: each finds what the last left out) */
	for (int round = 0; round < 4 && result == 0 && list.count > 0; round++) {
		qsort(list.items, list.count, sizeof *list.items, candidate_order);
		mark_filling(walker, &list);
		counted = keep_counted(&list, counters);
		if (!counted)
			result = keep_evident(walker, &list);
		size_t before = list.count;
		for (size_t i = 0; i < before && result == 0; i++) {
			struct mmapped_candidate *c = &list.items[i];
			if (c->kept || c->rescanned)
				continue;
			c->rescanned = true;
			const struct snapshot_region *region =
				snapshot_find_region(walker->snapshot, c->page);
			uint64_t stored_end = region->start + region->data_size;
			uint64_t end = c->page + c->lead + c->size;
			if (c->page + 4096 < stored_end &&
			    scan_for_candidates(walker, c->page + 4096,
						end < stored_end ? end : stored_end,
						mapping_end(walker, region), &list) == 0)
				result = -1;
		}
		if (list.count == before)
			break;
	}
	int arena = -1;
	for (size_t i = 0; i < list.count && result == 0; i++) {
		const struct mmapped_candidate *c = &list.items[i];
		if (!c->kept)
			continue;
		if (arena < 0) {
			struct heap_arena info = {.address = c->page};
			snprintf(info.kind, sizeof info.kind, "mmapped");
			if (heap_add_arena(walker->heap, &info) != 0) {
				result = -1;
				break;
			}
			arena = (int)walker->heap->arena_count - 1;
		}
		uint64_t chunk = c->page + c->lead;
		struct allocation allocation = {.address = chunk + CHUNK_HEADER,
						.size = c->size - CHUNK_HEADER,
						.state = ALLOCATION_LIVE,
						.place = PLACE_LARGE,
						.arena = (uint16_t)arena};
		address_space_read_u64(walker->space, chunk + CHUNK_HEADER, &allocation.first_word);
		result = heap_add(walker->heap, &allocation);
		walker->heap->arenas[arena].system_bytes += c->lead + c->size;
	}
	if (result == 0)
		warn_mmapped(walker, &list, counters, counted);
	free(list.items);
	return result;
}

/* ---- the walk -------------------------------------------------------------------------------- */

/* A static executable carries no glibc version banner. Its mp_ keeps sbrk_base at one of two
 * offsets (2.35 added three fields before it): the one that holds the main heap's start, the top
 * chunk's end less the arena's system memory, gives the layout. 0 when neither does. */
static int static_glibc_minor(struct walker *walker, struct module_symbols *libc,
			      uint64_t main_arena)
{
	uint64_t par = 0, top = 0, top_word = 0, system_bytes = 0;
	struct glibc_layout layout;
	glibc_layout_builtin(39, &layout);
	if (main_arena == 0 || !module_symbols_lookup(libc, "mp_", &par, NULL) ||
	    !read_u64(walker, main_arena + layout.state_top, &top) ||
	    !read_u64(walker, top + 8, &top_word) ||
	    !read_u64(walker, main_arena + layout.state_system_mem, &system_bytes))
		return 0;
	uint64_t start = top + (top_word & ~(uint64_t)SIZE_FLAGS) - system_bytes;
	static const int minors[] = {39, 34};
	for (size_t i = 0; i < sizeof minors / sizeof minors[0]; i++) {
		uint64_t sbrk_base = 0;
		glibc_layout_builtin(minors[i], &layout);
		if (read_u64(walker, par + layout.par_sbrk_base, &sbrk_base) && sbrk_base != 0 &&
		    ((sbrk_base + 15) & ~15ull) == ((start + 15) & ~15ull))
			return minors[i];
	}
	return 0;
}


/* Without debug info: the layout of glibc's version (*minor), or of its age when it is linked
 * statically, and main_arena: from its symbol (`main_arena`, 0 without) where one fits there,
 * else by its shape; 0 when none is found. */
static uint64_t main_arena_by_heuristics(struct walker *walker, const struct allocator_input *input,
					 struct heap_allocator *self, uint64_t main_arena, int *minor)
{
	struct module_symbols *libc = input->module;
	const char *libc_path = module_symbols_module(libc)->path;
	glibc_layout_builtin(*minor, &walker->layout);
	if (input->linked_statically) {
		/* linked into the executable: its symbol table names main_arena, and where mp_
		 * keeps sbrk_base tells the layout's age (moved in 2.35) */
		main_arena = 0;
		module_symbols_lookup(libc, "main_arena", &main_arena, NULL);
		*minor = static_glibc_minor(walker, libc, main_arena);
		glibc_layout_builtin(*minor, &walker->layout);
		walker->glibc_minor = 0; /* a range: tcache keys cannot be checked */
		snprintf(self->version, sizeof self->version, "%s",
			 *minor >= 35 ? "2.35 or later" : *minor ? "2.27 to 2.34" : "");
		if (*minor && *minor < 35)
			warnings_add(walker->warnings,
				     "glibc heap: the executable links glibc statically, older than "
				     "2.35: its version is not known exactly, so free lists may be "
				     "misread");
	} else if (module_symbols_file(libc) == NULL) {
		warnings_add(walker->warnings,
			     "glibc heap: %s is not here (see its warning), so glibc's version is not "
			     "known: the layout of 2.35 and later is assumed, and an older glibc's "
			     "free lists may be misread",
			     libc_path);
	}
	if (main_arena == 0 ||
	    (!plausible_arena(walker, main_arena) && !arena_by_bins(walker, main_arena)))
		main_arena = find_main_arena(walker, libc_path);
	if (main_arena == 0) {
		/* no arena: malloc was never called, or libc's data is not in the snapshot */
		warnings_add(walker->warnings, "glibc heap: no malloc arena found in %s's data",
			     libc_path);
	}
	return main_arena;
}

/* Walks every arena, the main one first; fails only when out of memory. */
static int walk_arenas(struct walker *walker)
{
	bool heap_infos_found = false;
	for (size_t i = 0; i < walker->arena_count; i++) {
		const struct arena *arena = &walker->arenas[i];
		/* (the main arena comes first: see find_heap_infos) */
		if (!arena->main && !heap_infos_found) {
			heap_infos_found = true;
			if (find_heap_infos(walker) != 0)
				return -1;
		}
		int walked = arena->main ? walk_main_arena(walker, arena)
					 : walk_thread_arena(walker, arena);
		if (walked != 0)
			return -1;
	}
	return 0;
}

/* The mmapped chunks, counted against mp_'s counters (at `par`) where debug info says where they
 * are; fails only when out of memory. */
static int walk_mmapped_chunks(struct walker *walker, bool debug, uint64_t par)
{
	struct mmap_counters counters = {0};
	if (debug) {
		uint64_t bytes = 0;
		counters.known = address_space_read(walker->space, par + walker->layout.par_n_mmaps,
						    &counters.chunks, sizeof counters.chunks,
						    NULL) == 0 &&
				 read_u64(walker, par + walker->layout.par_mmapped_mem, &bytes);
		counters.bytes = bytes;
	}
	return find_mmapped_chunks(walker, &counters);
}

/* Once the chunks are in address order: the free lists mark theirs free (fast bins, tcaches),
 * and the lists are checked against the chunks. */
static void mark_free_lists(struct walker *walker)
{
	for (size_t i = 0; i < walker->arena_count; i++)
		mark_fastbins(walker, &walker->arenas[i]);
	mark_tcaches(walker);
	check_tcache_keys(walker);
	for (size_t i = 0; i < walker->arena_count; i++)
		check_bins(walker, &walker->arenas[i]);
}

int glibc_heap_walk(const struct allocator_input *input, struct heap *heap,
		    struct warnings *warnings, struct hs_error *err)
{
	struct address_space *space = input->space;
	struct module_symbols *libc = input->module;
	/* the version from libc's file as found here (the one the process had), else unknown */
	const char *libc_file = module_symbols_file(libc);
	struct heap_allocator *self = heap_begin_allocator(heap, &glibc_allocator);
	struct walker *walker = self ? calloc(1, sizeof *walker) : NULL;
	if (walker == NULL)
		return hs_error_nomem(err, "walking the heap");
	walker->space = space;
	walker->snapshot = address_space_snapshot(space);
	walker->warnings = warnings;
	walker->heap = heap;
	walker->earlier_count = heap->count; /* (sorted by the earlier walk's heap_finish) */
	address_cursor_init(&walker->cursor, space);
	int minor = libc_file ? glibc_minor_version(libc_file, self->version, sizeof self->version)
			      : 0;
	walker->glibc_minor = minor;

	uint64_t main_arena = 0, par = 0;
	bool debug = false;
	const char *debug_file = module_symbols_debug_file(libc);
	if (!input->no_debuginfo && debug_file &&
	    module_symbols_lookup(libc, "main_arena", &main_arena, NULL) &&
	    module_symbols_lookup(libc, "mp_", &par, NULL)) {
		struct hs_error ignored;
		struct dwarf_types *types = module_symbols_open_types(libc, &ignored);
		debug = types && glibc_layout_from_dwarf(types, minor, &walker->layout);
		dwarf_types_close(types);
	}
	if (debug) {
		snprintf(self->method, sizeof self->method, "debug info");
		uint64_t sbrk_base = 0;
		if (read_u64(walker, par + walker->layout.par_sbrk_base, &sbrk_base))
			walker->sbrk_base = sbrk_base;
	} else {
		snprintf(self->method, sizeof self->method, "heuristics");
		main_arena = main_arena_by_heuristics(walker, input, self, main_arena, &minor);
	}
	if (main_arena != 0)
		heap_add_bookkeeping(heap, main_arena, main_arena + walker->layout.state_size);
	if (debug)
		heap_add_bookkeeping(heap, par, par + walker->layout.par_mmapped_mem + 64);
	uint64_t tcache_key_address = 0;
	if (minor >= 34 && module_symbols_lookup(libc, "tcache_key", &tcache_key_address, NULL))
		read_u64(walker, tcache_key_address, &walker->tcache_key);
	int result = 0;
	if ((main_arena != 0 && collect_arenas(walker, main_arena) != 0) || walk_arenas(walker) != 0 ||
	    walk_mmapped_chunks(walker, debug, par) != 0)
		result = hs_error_nomem(err, "walking the heap");
	if (result == 0) {
		heap_finish(heap);
		mark_free_lists(walker);
		heap_count_totals(heap);
	}
	address_cursor_free(&walker->cursor);
	free(walker->tcache_keys);
	free(walker->heap_infos);
	free(walker);
	return result;
}

/* glibc's words for its places, as `list` has always printed them */
static const char *const glibc_place_names[PLACE_COUNT] = {
	[PLACE_IN_USE] = "in_use",
	[PLACE_LARGE] = "mmapped",
	[PLACE_THREAD_CACHE] = "tcache",
	[PLACE_FAST_LIST] = "fastbin",
	[PLACE_FREE_LIST] = "bin",
	[PLACE_TOP] = "top",
	[PLACE_METADATA] = "metadata",
};

/* (a module that defines malloc and main_arena, and none of another malloc's symbols, is glibc
   linked statically; libc.so is known by its file name) */
static const char *const glibc_symbols[] = {"main_arena", NULL};

const struct allocator glibc_allocator = {
	.name = "glibc malloc",
	.version_name = "glibc", /* (its version is glibc's) */
	.step = "glibc heap",
	.metadata_type = "glibc tcache_perthread_struct",
	.place_names = glibc_place_names,
	.symbols = glibc_symbols,
	.walk = glibc_heap_walk,
	.in_use = glibc_heap_in_use,
};

bool glibc_heap_in_use(const struct allocator_input *input)
{
	struct walker *walker = calloc(1, sizeof *walker);
	if (walker == NULL)
		return true; /* a walk says more than a guess, and fails cleanly when out of memory */
	walker->space = input->space;
	walker->snapshot = address_space_snapshot(input->space);
	address_cursor_init(&walker->cursor, input->space);
	const char *libc_file = module_symbols_file(input->module);
	char version[32];
	int minor = libc_file ? glibc_minor_version(libc_file, version, sizeof version) : 0;
	/* (where system_mem and next are has not changed since 2.26) */
	glibc_layout_builtin(minor, &walker->layout);
	uint64_t state = 0;
	module_symbols_lookup(input->module, "main_arena", &state, NULL);
	if (state == 0 || (!plausible_arena(walker, state) && !arena_by_bins(walker, state)))
		state = find_main_arena(walker, module_symbols_module(input->module)->path);
	uint64_t system_bytes = 0, next = 0;
	bool used = state != 0 &&
		    ((read_u64(walker, state + walker->layout.state_system_mem, &system_bytes) &&
		      system_bytes > 0) ||
		     (read_u64(walker, state + walker->layout.state_next, &next) && next != state &&
		      next != 0));
	address_cursor_free(&walker->cursor);
	free(walker);
	return used;
}
