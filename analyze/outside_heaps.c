/* Memory outside every walked heap (see outside_heaps.h). */
#include "outside_heaps.h"

#include <elf.h>
#include <stdbool.h>
#include <string.h>

#define PAGE 4096u
/* a gap between blocks smaller than this is their headers and alignment, not other memory */
#define GAP_ALLOWED (16u * PAGE)
#define READ_SIZE (16u * PAGE)

static bool holds_thread_stack(struct snapshot *snapshot, const struct snapshot_region *region)
{
	size_t count;
	const struct snapshot_thread *threads = snapshot_threads(snapshot, &count);
	for (size_t i = 0; i < count; i++)
		if (threads[i].registers.rsp >= region->start && threads[i].registers.rsp < region->end)
			return true;
	return false;
}

/* The pages of [start, end) that hold something other than zeros, in bytes. */
static uint64_t written_bytes(struct address_space *space, uint64_t start, uint64_t end)
{
	uint64_t words_read[READ_SIZE / 8];
	uint8_t *buffer = (uint8_t *)words_read;
	uint64_t written = 0;
	start = start & ~(uint64_t)(PAGE - 1);
	for (uint64_t at = start; at < end; at += READ_SIZE) {
		size_t size = end - at < READ_SIZE ? (size_t)(end - at) : READ_SIZE;
		if (address_space_read(space, at, buffer, size, NULL) != 0)
			continue;
		for (size_t page = 0; page < size; page += PAGE) {
			size_t length = size - page < PAGE ? size - page : PAGE;
			const uint64_t *words = (const uint64_t *)(buffer + page);
			for (size_t k = 0; k < length / 8; k++)
				if (words[k] != 0) {
					written += length;
					break;
				}
		}
	}
	return written;
}

/* The first allocation that ends after `address` (allocations are in address order). */
static size_t first_ending_after(const struct heap *heap, uint64_t address)
{
	size_t low = 0, high = heap->count;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		if (heap->allocations[mid].address + heap->allocations[mid].size <= address)
			low = mid + 1;
		else
			high = mid;
	}
	return low;
}

/* Where the bookkeeping ranges let [start, end) be outside: *skip_to past the range holding
 * `start` (then nothing is outside here), else the end clamped to the next range's start. */
static uint64_t outside_end(const struct heap *heap, uint64_t start, uint64_t end, uint64_t *skip_to)
{
	*skip_to = 0;
	for (size_t i = 0; i < heap->bookkeeping_count; i++) {
		uint64_t from = heap->bookkeeping[i].start, to = heap->bookkeeping[i].end;
		if (start >= from && start < to)
			*skip_to = to;
		else if (from > start && from < end)
			end = from;
	}
	return end;
}

static uint64_t region_outside(struct address_space *space, const struct heap *heap,
			       const struct snapshot_region *region)
{
	uint64_t end = region->start + region->data_size, outside = 0, at = region->start;
	size_t next = first_ending_after(heap, at);
	while (at < end) {
		while (next < heap->count &&
		       heap->allocations[next].address + heap->allocations[next].size <= at)
			next++;
		if (next < heap->count && heap->allocations[next].address <= at + GAP_ALLOWED) {
			/* covered up to the end of this block (and of any block it overlaps) */
			const struct allocation *block = &heap->allocations[next++];
			uint64_t block_end = block->address + (block->size ? block->size : 1);
			at = block_end > at ? block_end : at;
			continue;
		}
		/* a gap, up to the next block, less the allocators' bookkeeping */
		uint64_t gap_end = next < heap->count && heap->allocations[next].address < end
					   ? heap->allocations[next].address
					   : end;
		if (gap_end == end && end <= at + GAP_ALLOWED)
			break; /* the end of the last block's page, or of its mapping */
		uint64_t skip_to;
		gap_end = outside_end(heap, at, gap_end, &skip_to);
		if (skip_to) {
			at = skip_to;
			continue;
		}
		outside += written_bytes(space, at, gap_end);
		at = gap_end;
	}
	return outside;
}

void outside_heaps_measure(struct address_space *space, const struct heap *heap,
			   struct outside_heaps *outside)
{
	memset(outside, 0, sizeof *outside);
	for (size_t i = 0; i < heap->count; i++)
		outside->heap_bytes += heap->allocations[i].size;
	struct snapshot *snapshot = address_space_snapshot(space);
	size_t count;
	const struct snapshot_region *regions = snapshot_regions(snapshot, &count);
	for (size_t i = 0; i < count; i++) {
		const struct snapshot_region *region = &regions[i];
		if (region->path != NULL || !(region->flags & PF_W) || (region->flags & PF_X) ||
		    region->data_size == 0)
			continue;
		/* a module's .bss follows its file's last mapping */
		if (i > 0 && regions[i - 1].path != NULL && regions[i - 1].end == region->start)
			continue;
		if (holds_thread_stack(snapshot, region))
			continue;
		uint64_t bytes = region_outside(space, heap, region);
		outside->bytes += bytes;
		if (bytes > outside->largest_bytes) {
			outside->largest_bytes = bytes;
			outside->largest_start = region->start;
		}
	}
}
