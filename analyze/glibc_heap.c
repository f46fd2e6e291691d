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
#include "analyze/glibc_layout.h"
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
	bool have_par;
	uint64_t par;
	/* spans covered by arena heaps, so the mmapped-chunk scan skips them */
	struct {
		uint64_t start, end;
	} heaps[ARENAS_MAX * 4];
	size_t heap_count;
};

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

static int add_chunk(struct walker *walker, uint64_t chunk, uint64_t size, bool in_use,
		     uint16_t arena, uint64_t first_word)
{
	struct allocation allocation = {.address = chunk + CHUNK_HEADER,
					.size = size - 8,
					.state = in_use ? ALLOCATION_LIVE : ALLOCATION_FREE,
					.place = in_use ? PLACE_IN_USE : PLACE_BIN,
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

/* Walks the chunks of [start, top) and the top chunk itself. `non_main` is whether chunks must
 * carry NON_MAIN_ARENA. */
static int walk_chunks(struct walker *walker, uint64_t start, uint64_t top, uint64_t limit,
		       uint16_t arena, bool non_main)
{
	uint64_t at = start;
	uint64_t pending = 0, pending_size = 0; /* the chunk whose state the next header tells */
	uint64_t pending_word = 0;
	while (at < top) {
		uint64_t word;
		if (!address_cursor_read_u64(&walker->cursor, at + 8, limit, &word)) {
			warnings_add(walker->warnings,
				     "glibc heap: the chunk at 0x%llx cannot be read; the rest of its "
				     "heap (to 0x%llx) is skipped",
				     (unsigned long long)at, (unsigned long long)top);
			return 0;
		}
		uint64_t size = word & ~(uint64_t)SIZE_FLAGS;
		/* main-arena chunks never carry NON_MAIN_ARENA; thread-arena chunks carry it while
		 * in use, but free ones may have lost it, so only its absence is checked */
		bool flags_ok = !(word & IS_MMAPPED) && (non_main || !(word & NON_MAIN_ARENA));
		if (pending && add_chunk(walker, pending, pending_size, word & PREV_INUSE, arena,
					 pending_word) != 0)
			return -1;
		pending = 0;
		if (!plausible_size(size, at, top) || !flags_ok) {
			uint64_t resume = resynchronise(walker, at, top, limit);
			warnings_add(walker->warnings,
				     "glibc heap: the chunk at 0x%llx has an impossible size field "
				     "0x%llx (the heap is corrupt there); %s",
				     (unsigned long long)at, (unsigned long long)word,
				     resume ? "the walk resumes at the next plausible chunk"
					    : "the rest of its heap is skipped");
			if (resume == 0)
				return 0;
			at = resume;
			continue;
		}
		pending = at;
		pending_size = size;
		pending_word = 0;
		address_cursor_read_u64(&walker->cursor, at + CHUNK_HEADER, limit, &pending_word);
		at += size;
	}
	uint64_t top_word = 0;
	if (at == top && address_space_read_u64(walker->space, top + 8, &top_word)) {
		if (pending && add_chunk(walker, pending, pending_size, top_word & PREV_INUSE, arena,
					 pending_word))
			return -1;
		uint64_t top_size = top_word & ~(uint64_t)SIZE_FLAGS;
		if (top_size >= MIN_CHUNK) {
			struct allocation top_chunk = {.address = top + CHUNK_HEADER,
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

/* The main heap is the range from the arena's first chunk to its top, however many mappings the
 * kernel keeps it in (after fork(), the part a child inherited and the part it grew stay separate
 * mappings). Its start is mp_.sbrk_base with debug info; without, the top chunk's end less the
 * memory the arena took from the system (brk is contiguous, so the two agree). */
static int walk_main_arena(struct walker *walker, const struct arena *arena)
{
	uint64_t top = arena_top(walker, arena->state);
	const struct snapshot_region *region = snapshot_find_region(walker->snapshot, top);
	if (region == NULL) {
		warnings_add(walker->warnings,
			     "glibc heap: the main arena's top chunk 0x%llx is not mapped; the main "
			     "heap is skipped",
			     (unsigned long long)top);
		return 0;
	}
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
		while (step && step != region && step->path == NULL && (step->flags & PF_W))
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
	note_heap_span(walker, first->start, region->end);
	return walk_chunks(walker, start, top, region->end, arena->index, false);
}

static int walk_thread_arena(struct walker *walker, const struct arena *arena)
{
	const struct glibc_layout *layout = &walker->layout;
	uint64_t top = arena_top(walker, arena->state);
	/* heaps from the one holding top back through heap_info.prev */
	uint64_t heap = top & ~(HEAP_MAX_SIZE - 1);
	uint64_t end = top; /* the walk of the newest heap ends at top */
	for (int guard = 0; heap != 0 && guard < 1024; guard++) {
		uint64_t owner = 0, previous = 0, size = 0;
		if (!read_u64(walker, heap + layout->heap_info_ar_ptr, &owner) ||
		    !read_u64(walker, heap + layout->heap_info_prev, &previous) ||
		    !read_u64(walker, heap + layout->heap_info_size_field, &size) || owner != arena->state) {
			warnings_add(walker->warnings,
				     "glibc heap: no heap_info of arena 0x%llx at 0x%llx; its other "
				     "heaps are skipped",
				     (unsigned long long)arena->state, (unsigned long long)heap);
			return 0;
		}
		/* the arena's first heap holds the malloc_state right after heap_info */
		uint64_t first = heap + layout->heap_info_size;
		if (owner == heap + layout->heap_info_size)
			first = owner + layout->state_size;
		first = (first + 15) & ~15ull;
		uint64_t heap_end = heap + size;
		note_heap_span(walker, heap, heap + HEAP_MAX_SIZE);
		if (end == top) {
			if (walk_chunks(walker, first, top, heap_end, arena->index, true) != 0)
				return -1;
		} else {
			/* an older heap: its chunks run to its end, where a fencepost pair sits */
			if (walk_chunks(walker, first, heap_end - 2 * CHUNK_HEADER, heap_end,
					arena->index, true) != 0)
				return -1;
		}
		end = 0;
		if (previous != 0 && (previous & (HEAP_MAX_SIZE - 1)) != 0) {
			warnings_add(walker->warnings,
				     "glibc heap: heap_info at 0x%llx has a broken prev link 0x%llx",
				     (unsigned long long)heap, (unsigned long long)previous);
			return 0;
		}
		heap = previous;
	}
	return 0;
}

/* Whether `state` looks like a malloc_state with a top chunk inside mapped memory whose size
 * reaches no further than its region. */
static bool plausible_arena(struct walker *walker, uint64_t state)
{
	uint64_t top, top_size;
	if (!read_u64(walker, state + walker->layout.state_top, &top) || (top & 15) ||
	    !read_u64(walker, top + 8, &top_size))
		return false;
	const struct snapshot_region *region = snapshot_find_region(walker->snapshot, top);
	top_size &= ~(uint64_t)SIZE_FLAGS;
	return region && region->path == NULL && (region->flags & 2) && top_size >= MIN_CHUNK &&
	       top + top_size <= region->end && top + top_size > top;
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
		if (state != main_arena && !plausible_arena(walker, state)) {
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
 * an anonymous region and whose ring of `next` pointers returns to it. */
static uint64_t find_main_arena(struct walker *walker, const char *libc_path)
{
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(walker->snapshot, &count);
	for (size_t i = 0; i < count; i++) {
		const struct snapshot_region *region = &regions[i];
		bool libc_data = region->path && strcmp(region->path, libc_path) == 0 &&
				 (region->flags & 2);
		/* libc's .bss continues in the anonymous mapping right after its file mapping */
		bool libc_bss = !region->path && i > 0 && regions[i - 1].path &&
				strcmp(regions[i - 1].path, libc_path) == 0 &&
				regions[i - 1].end == region->start && (region->flags & 2);
		if (!libc_data && !libc_bss)
			continue;
		for (uint64_t state = region->start;
		     state + walker->layout.state_size <= region->end; state += 16) {
			uint64_t next;
			if (!read_u64(walker, state + walker->layout.state_next, &next) || next == 0 ||
			    (next & 7))
				continue;
			if (!plausible_arena(walker, state))
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
			if (allocation->place == PLACE_FASTBIN) {
				warnings_add(walker->warnings,
					     "glibc heap: fast bin %u of arena 0x%llx loops at chunk "
					     "0x%llx",
					     bin, (unsigned long long)arena->state,
					     (unsigned long long)chunk);
				break;
			}
			allocation->state = ALLOCATION_FREE;
			allocation->place = PLACE_FASTBIN;
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
			else if (allocation->place == PLACE_TCACHE)
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
			allocation->place = PLACE_TCACHE;
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

/* Checks the unsorted, small and large bins' links: each must lead to a free chunk and the ring
 * back to the bin. */
static void check_bins(struct walker *walker, const struct arena *arena)
{
	const struct glibc_layout *layout = &walker->layout;
	for (unsigned bin = 0; bin + 1 < layout->bin_count; bin += 2) {
		/* bin_at(m, i) is &bins[2i-2] - 16: a fake chunk whose fd/bk are bins[2i-2..] */
		uint64_t head = arena->state + layout->state_bins + 8ull * bin - 16;
		uint64_t chunk = 0, from = 0;
		if (!read_u64(walker, head + 16, &chunk))
			return;
		for (size_t steps = 0; chunk != head; steps++) {
			struct allocation *allocation = chunk_at(walker, chunk);
			if (allocation == NULL || allocation->state != ALLOCATION_FREE ||
			    steps > walker->heap->count) {
				warnings_add(walker->warnings,
					     "glibc heap: bin %u of arena 0x%llx: %s0x%llx has a broken "
					     "link to 0x%llx (a loop, or not a free chunk); the rest of "
					     "that bin is not followed",
					     bin / 2 + 1, (unsigned long long)arena->state,
					     from ? "the free chunk at " : "the bin's head at ",
					     (unsigned long long)(from ? from : head),
					     (unsigned long long)chunk);
				break;
			}
			from = chunk;
			chunk = allocation->first_word;
		}
	}
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
	    chunk_size < 4096 || page + chunk_size > end)
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

/* Chunks malloc got from mmap sit at the start of their own mapping (after `prev_size` bytes of
 * alignment), IS_MMAPPED set, page-sized; adjacent ones share a region in the snapshot. */
static int find_mmapped_chunks(struct walker *walker)
{
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(walker->snapshot, &count);
	int arena = -1;
	for (size_t i = 0; i < count; i++) {
		const struct snapshot_region *region = &regions[i];
		if (region->path != NULL || !(region->flags & 2))
			continue;
		/* (a mapping may follow an arena heap closely enough to share its region) */
		for (uint64_t page = region->start; page + CHUNK_HEADER <= region->end;) {
			uint64_t heap_end = arena_heap_end(walker, page);
			if (heap_end) {
				page = heap_end;
				continue;
			}
			uint64_t lead = 0, size = 0;
			if (!mmapped_chunk_at(walker, page, region->end, &lead, &size)) {
				page += 4096;
				continue;
			}
			if (arena < 0) {
				struct heap_arena info = {.address = page};
				snprintf(info.kind, sizeof info.kind, "mmapped");
				if (heap_add_arena(walker->heap, &info) != 0)
					return -1;
				arena = (int)walker->heap->arena_count - 1;
			}
			uint64_t chunk = page + lead;
			struct allocation allocation = {.address = chunk + CHUNK_HEADER,
							.size = size - CHUNK_HEADER,
							.state = ALLOCATION_LIVE,
							.place = PLACE_MMAPPED,
							.arena = (uint16_t)arena};
			address_cursor_read_u64(&walker->cursor, chunk + CHUNK_HEADER, region->end,
						&allocation.first_word);
			if (heap_add(walker->heap, &allocation) != 0)
				return -1;
			walker->heap->arenas[arena].system_bytes += lead + size;
			page += lead + size;
		}
	}
	return 0;
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


int glibc_heap_walk(struct address_space *space, struct symbols *symbols,
		    const struct glibc_heap_options *options, struct heap *heap,
		    struct warnings *warnings, struct hs_error *err)
{
	(void)symbols;
	struct snapshot *snapshot = address_space_snapshot(space);
	struct module_symbols *libc = options->libc;
	const char *libc_path = module_symbols_module(libc)->path;
	struct walker *walker = calloc(1, sizeof *walker);
	if (walker == NULL)
		return hs_error_set(err, "out of memory walking the heap");
	walker->space = space;
	walker->snapshot = snapshot;
	walker->warnings = warnings;
	walker->heap = heap;
	address_cursor_init(&walker->cursor, space);
	snprintf(heap->allocator, sizeof heap->allocator, "glibc malloc");
	int minor = glibc_minor_version(libc_path, heap->version, sizeof heap->version);

	uint64_t main_arena = 0, par = 0;
	bool debug = false;
	const char *debug_file = module_symbols_debug_file(libc);
	if (!options->no_debuginfo && debug_file &&
	    module_symbols_lookup(libc, "main_arena", &main_arena, NULL) &&
	    module_symbols_lookup(libc, "mp_", &par, NULL)) {
		struct hs_error ignored;
		struct dwarf_types *types = dwarf_types_open(debug_file, &ignored);
		debug = types && glibc_layout_from_dwarf(types, minor, &walker->layout);
		dwarf_types_close(types);
	}
	int result = 0;
	if (debug) {
		snprintf(heap->method, sizeof heap->method, "debug info");
		uint64_t sbrk_base = 0;
		if (read_u64(walker, par + walker->layout.par_sbrk_base, &sbrk_base))
			walker->sbrk_base = sbrk_base;
	} else {
		snprintf(heap->method, sizeof heap->method, "heuristics");
		glibc_layout_builtin(minor, &walker->layout);
		if (options->static_glibc) {
			/* linked into the executable: its symbol table names main_arena, and
			 * where mp_ keeps sbrk_base tells the layout's age (moved in 2.35) */
			main_arena = 0;
			module_symbols_lookup(libc, "main_arena", &main_arena, NULL);
			minor = static_glibc_minor(walker, libc, main_arena);
			glibc_layout_builtin(minor, &walker->layout);
			snprintf(heap->version, sizeof heap->version, "%s",
				 minor >= 35 ? "2.35 or later" : minor ? "2.27 to 2.34" : "");
			if (minor && minor < 35)
				warnings_add(warnings,
					     "glibc heap: the executable links glibc statically, "
					     "older than 2.35: its version is not known exactly, so "
					     "free lists may be misread");
		}
		if (main_arena == 0 || !plausible_arena(walker, main_arena))
			main_arena = find_main_arena(walker, libc_path);
		if (main_arena == 0) {
			/* no arena: malloc was never called, or libc's data is not in the snapshot */
			warnings_add(warnings, "glibc heap: no malloc arena found in %s's data",
				     libc_path);
		}
	}
	if (main_arena != 0)
		heap_add_bookkeeping(heap, main_arena, main_arena + walker->layout.state_size);
	if (debug)
		heap_add_bookkeeping(heap, par, par + walker->layout.par_mmapped_mem + 64);
	if (main_arena != 0 && collect_arenas(walker, main_arena) != 0)
		result = hs_error_set(err, "out of memory walking the heap");
	for (size_t i = 0; result == 0 && i < walker->arena_count; i++) {
		const struct arena *arena = &walker->arenas[i];
		int walked = arena->main ? walk_main_arena(walker, arena)
					 : walk_thread_arena(walker, arena);
		if (walked != 0)
			result = hs_error_set(err, "out of memory walking the heap");
	}
	if (result == 0 && find_mmapped_chunks(walker) != 0)
		result = hs_error_set(err, "out of memory walking the heap");
	if (result == 0) {
		heap_finish(heap);
		for (size_t i = 0; i < walker->arena_count; i++)
			mark_fastbins(walker, &walker->arenas[i]);
		mark_tcaches(walker);
		for (size_t i = 0; i < walker->arena_count; i++)
			check_bins(walker, &walker->arenas[i]);
		heap_count_totals(heap);
		if (debug) {
			int mmaps = 0;
			size_t found = 0;
			for (size_t i = 0; i < heap->count; i++)
				found += heap->allocations[i].place == PLACE_MMAPPED;
			if (address_space_read(space, par + walker->layout.par_n_mmaps, &mmaps,
					       sizeof mmaps, NULL) == 0 &&
			    (size_t)mmaps != found)
				warnings_add(warnings,
					     "glibc heap: malloc counts %d mmapped chunks, %zu were "
					     "found",
					     mmaps, found);
		}
	}
	address_cursor_free(&walker->cursor);
	free(walker);
	return result;
}
