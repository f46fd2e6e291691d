/* Pre-copy with soft-dirty tracking (see precopy.h). */
#include "precopy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Regions smaller than this are simply copied again at the freeze: tracking them costs more. */
#define TRACK_MIN_BYTES (64u << 10)

static int clear_soft_dirty(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t written = write(fd, "4", 1);
	close(fd);
	return written == 1 ? 0 : -1;
}

bool precopy_supported(void)
{
	static int verdict = -1;
	if (verdict >= 0)
		return verdict;
	verdict = 0;
	volatile uint8_t *page = mmap(NULL, CAPTURE_PAGE_BYTES, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return false;
	page[0] = 1;
	struct process_memory self;
	process_memory_open(&self, getpid(), NULL);
	uint64_t before = 0, after = 0;
	/* the bit must be clear after a reset and set again by a write, and frames must be
	 * visible (they are hidden from unprivileged readers) */
	if (clear_soft_dirty(getpid()) == 0 &&
	    process_memory_pagemap(&self, (uintptr_t)page, (uintptr_t)page + CAPTURE_PAGE_BYTES,
				   &before) == 0) {
		page[0] = 2;
		if (process_memory_pagemap(&self, (uintptr_t)page,
					   (uintptr_t)page + CAPTURE_PAGE_BYTES, &after) == 0)
			verdict = !(before & PAGEMAP_SOFT_DIRTY) && (after & PAGEMAP_SOFT_DIRTY) &&
				  (after & PAGEMAP_FRAME_MASK) != 0;
	}
	process_memory_close(&self);
	munmap((void *)page, CAPTURE_PAGE_BYTES);
	return verdict;
}

int precopy_run(struct precopy *precopy, struct proc_maps *maps, struct capture_plan *plan,
		struct process_memory *memory, struct copy_buffer *buffer, struct hs_error *err)
{
	memset(precopy, 0, sizeof *precopy);
	precopy->maps = *maps;
	precopy->plan = *plan;
	memset(maps, 0, sizeof *maps);
	memset(plan, 0, sizeof *plan);
	plan = &precopy->plan;
	precopy->entries = calloc(plan->count ? plan->count : 1, sizeof *precopy->entries);
	if (precopy->entries == NULL)
		return hs_error_nomem(err, "for the pre-copy");
	/* reset first: a page written at any moment after this is seen as written */
	if (clear_soft_dirty(memory->pid) != 0)
		return hs_error_set_errno(err, errno, "cannot reset the soft-dirty bits of pid %d",
					  (int)memory->pid);
	struct range_list absent = {0};
	int result = 0;
	for (size_t i = 0; i < plan->count && result == 0; i++) {
		struct planned_region *region = &plan->regions[i];
		if (region->read_size == 0)
			continue;
		region->data = copy_buffer_take(buffer, region->read_size);
		if (region->data == NULL) {
			result = hs_error_nomem(err, "for the pre-copy");
			break;
		}
		/* frames are read before the bytes: a frame replaced after this shows at the
		 * freeze as a different frame, and the page is copied again */
		if (region->read_size >= TRACK_MIN_BYTES && !region->header_page) {
			size_t pages = (size_t)(region->read_size / CAPTURE_PAGE_BYTES);
			precopy->entries[i] = malloc(pages * sizeof(uint64_t));
			if (precopy->entries[i] == NULL ||
			    process_memory_pagemap(memory, region->start, region->end,
						   precopy->entries[i]) != 0) {
				free(precopy->entries[i]);
				precopy->entries[i] = NULL;
			}
		}
		size_t absent_before = absent.count;
		result = process_memory_read(memory, region->start, region->data, region->read_size,
					     &absent, err);
		/* pages unreadable now are marked not present, so the freeze tries them again */
		for (size_t k = absent_before; precopy->entries[i] && k < absent.count; k++)
			for (uint64_t page = absent.ranges[k].start & ~(uint64_t)(CAPTURE_PAGE_BYTES - 1);
			     page < absent.ranges[k].end; page += CAPTURE_PAGE_BYTES)
				precopy->entries[i][(page - region->start) / CAPTURE_PAGE_BYTES] = 0;
	}
	range_list_free(&absent);
	return result;
}

/* The pre-copied region matching `region`, or NULL. Regions are sorted by address. */
static size_t find_match(const struct capture_plan *plan, const struct planned_region *region)
{
	size_t low = 0, high = plan->count;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		if (plan->regions[mid].start < region->start)
			low = mid + 1;
		else
			high = mid;
	}
	if (low < plan->count && planned_regions_match(&plan->regions[low], region))
		return low;
	return SIZE_MAX;
}

static bool page_unchanged(uint64_t then, uint64_t now)
{
	return (then & PAGEMAP_PRESENT) && (now & PAGEMAP_PRESENT) && !(now & PAGEMAP_SOFT_DIRTY) &&
	       (then & PAGEMAP_FRAME_MASK) != 0 &&
	       (then & PAGEMAP_FRAME_MASK) == (now & PAGEMAP_FRAME_MASK);
}

int precopy_settle(struct precopy *precopy, struct capture_plan *plan,
		   struct process_memory *memory, struct range_list *absent, struct hs_error *err)
{
	uint64_t *now = NULL;
	size_t now_capacity = 0;
	for (size_t i = 0; i < plan->count; i++) {
		struct planned_region *region = &plan->regions[i];
		if (region->read_size == 0)
			continue;
		size_t match = find_match(&precopy->plan, region);
		if (match == SIZE_MAX || precopy->entries[match] == NULL)
			continue; /* changed or untracked: copied in full */
		size_t pages = (size_t)(region->read_size / CAPTURE_PAGE_BYTES);
		if (pages > now_capacity) {
			free(now);
			now_capacity = pages;
			now = malloc(pages * sizeof *now);
			if (now == NULL)
				return hs_error_nomem(err, "checking the pre-copy");
		}
		if (process_memory_pagemap(memory, region->start, region->end, now) != 0)
			continue; /* cannot tell what changed: copied in full */
		const uint64_t *then = precopy->entries[match];
		uint8_t *data = precopy->plan.regions[match].data;
		/* copy again each run of pages that changed */
		for (size_t page = 0; page < pages;) {
			if (page_unchanged(then[page], now[page])) {
				page++;
				continue;
			}
			size_t run = page;
			while (run < pages && !page_unchanged(then[run], now[run]))
				run++;
			uint64_t offset = (uint64_t)page * CAPTURE_PAGE_BYTES;
			uint64_t size = (uint64_t)(run - page) * CAPTURE_PAGE_BYTES;
			if (process_memory_read(memory, region->start + offset, data + offset, size,
						absent, err) != 0) {
				free(now);
				return -1;
			}
			precopy->recopied_bytes += size;
			page = run;
		}
		region->data = data;
	}
	free(now);
	return 0;
}

void precopy_free(struct precopy *precopy)
{
	for (size_t i = 0; precopy->entries && i < precopy->plan.count; i++)
		free(precopy->entries[i]);
	free(precopy->entries);
	capture_plan_free(&precopy->plan);
	proc_maps_free(&precopy->maps);
	memset(precopy, 0, sizeof *precopy);
}
