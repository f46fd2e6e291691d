/* Reading a stopped process's memory (see process_memory.h). */
#include "process_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/array_grow.h"

#define PAGE_SIZE_BYTES 4096u

int range_list_add(struct range_list *list, uint64_t start, uint64_t end)
{
	if (list->count > 0 && list->ranges[list->count - 1].end == start) {
		list->ranges[list->count - 1].end = end;
		return 0;
	}
	void *grown = array_grow(list->ranges, &list->capacity, list->count, sizeof *list->ranges,
				 16);
	if (grown == NULL)
		return -1;
	list->ranges = grown;
	list->ranges[list->count++] = (struct address_range){start, end};
	return 0;
}

void range_list_free(struct range_list *list)
{
	free(list->ranges);
	memset(list, 0, sizeof *list);
}

int process_memory_open(struct process_memory *memory, pid_t pid, struct hs_error *err)
{
	(void)err;
	memset(memory, 0, sizeof *memory);
	memory->pid = pid;
	memory->mem_fd = -1;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
	memory->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	/* opened now, not on first need, so that reader threads share it without a lock */
	snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
	memory->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	return 0;
}

void process_memory_close(struct process_memory *memory)
{
	if (memory->mem_fd >= 0)
		close(memory->mem_fd);
	if (memory->pagemap_fd >= 0)
		close(memory->pagemap_fd);
	memory->mem_fd = memory->pagemap_fd = -1;
}

/* One attempt to read; returns bytes read (possibly fewer than asked) or -1 with errno. */
static ssize_t read_once(struct process_memory *memory, uint64_t addr, void *buf, size_t size)
{
	if (!__atomic_load_n(&memory->use_mem_fd, __ATOMIC_RELAXED)) {
		struct iovec local = {buf, size};
		struct iovec remote = {(void *)(uintptr_t)addr, size};
		ssize_t got = process_vm_readv(memory->pid, &local, 1, &remote, 1, 0);
		if (got >= 0 || (errno != ENOSYS && errno != EPERM))
			return got;
		/* refused (seccomp, old kernel): /proc/PID/mem works for a tracer */
		__atomic_store_n(&memory->use_mem_fd, true, __ATOMIC_RELAXED);
	}
	if (memory->mem_fd < 0) {
		errno = EPERM;
		return -1;
	}
	ssize_t got;
	do
		got = pread(memory->mem_fd, buf, size, (off_t)addr);
	while (got < 0 && errno == EINTR);
	return got;
}

int process_memory_read(struct process_memory *memory, uint64_t addr, void *buf, size_t size,
			struct range_list *absent, struct hs_error *err)
{
	uint8_t *out = buf;
	uint64_t end = addr + size;
	while (addr < end) {
		ssize_t got = read_once(memory, addr, out, (size_t)(end - addr));
		if (got < 0 && errno == ESRCH)
			return hs_error_set_code(err, HS_ERR_GONE,
						 "pid %d exited during capture; no snapshot "
						 "written",
						 (int)memory->pid);
		if (got > 0) {
			__atomic_fetch_add(&memory->bytes_read, (uint64_t)got, __ATOMIC_RELAXED);
			addr += (uint64_t)got;
			out += got;
			continue;
		}
		/* the page at addr cannot be read (EFAULT, EIO): record it and step over it */
		uint64_t page_end = (addr & ~(uint64_t)(PAGE_SIZE_BYTES - 1)) + PAGE_SIZE_BYTES;
		if (page_end > end)
			page_end = end;
		memset(out, 0, (size_t)(page_end - addr));
		if (range_list_add(absent, addr, page_end) != 0)
			return hs_error_nomem(err, "reading pid %d", (int)memory->pid);
		out += page_end - addr;
		addr = page_end;
	}
	return 0;
}

/* Calls visit(context, page address, pagemap entry) for each page of [start, end) until it returns
 * non-zero, and returns that value; 0 when every page was visited, -2 when pagemap cannot be
 * read. */
static int pagemap_walk(struct process_memory *memory, uint64_t start, uint64_t end,
			int (*visit)(void *context, uint64_t page, uint64_t entry), void *context)
{
	if (memory->pagemap_fd < 0)
		return -2;
	enum { BATCH = 4096 };
	uint64_t entries[BATCH];
	for (uint64_t page = start; page < end;) {
		size_t want = (size_t)((end - page) / PAGE_SIZE_BYTES);
		if (want > BATCH)
			want = BATCH;
		ssize_t got = pread(memory->pagemap_fd, entries, want * sizeof entries[0],
				    (off_t)(page / PAGE_SIZE_BYTES * sizeof entries[0]));
		if (got <= 0)
			return -2;
		size_t count = (size_t)got / sizeof entries[0];
		for (size_t i = 0; i < count; i++, page += PAGE_SIZE_BYTES) {
			int verdict = visit(context, page, entries[i]);
			if (verdict != 0)
				return verdict;
		}
	}
	return 0;
}

struct pagemap_copy {
	uint64_t start;
	uint64_t *entries;
};

static int copy_entry(void *context, uint64_t page, uint64_t entry)
{
	struct pagemap_copy *copy = context;
	copy->entries[(page - copy->start) / PAGE_SIZE_BYTES] = entry;
	return 0;
}

int process_memory_pagemap(struct process_memory *memory, uint64_t start, uint64_t end,
			   uint64_t *entries)
{
	struct pagemap_copy copy = {start, entries};
	return pagemap_walk(memory, start, end, copy_entry, &copy) == 0 ? 0 : -1;
}

static int is_private_copy(void *context, uint64_t page, uint64_t entry)
{
	(void)context;
	(void)page;
	return (entry & PAGEMAP_SWAPPED) ||
	       ((entry & PAGEMAP_PRESENT) && !(entry & PAGEMAP_FILE_OR_SHARED));
}

bool process_memory_has_private_pages(struct process_memory *memory, uint64_t start, uint64_t end)
{
	return pagemap_walk(memory, start, end, is_private_copy, NULL) != 0;
}

struct untouched_search {
	uint64_t min_run_bytes;
	uint64_t run_start;
	bool in_run;
	struct range_list *runs;
};

/* Ends the current run of empty pages at `page`, keeping it if it is long enough. */
static int end_run(struct untouched_search *search, uint64_t page)
{
	search->in_run = false;
	if (page - search->run_start >= search->min_run_bytes &&
	    range_list_add(search->runs, search->run_start, page) != 0)
		return -1;
	return 0;
}

static int note_untouched(void *context, uint64_t page, uint64_t entry)
{
	struct untouched_search *search = context;
	bool empty = (entry & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) == 0;
	if (empty && !search->in_run) {
		search->run_start = page;
		search->in_run = true;
	} else if (!empty && search->in_run) {
		return end_run(search, page);
	}
	return 0;
}

/* PAGEMAP_SCAN (Linux 6.7) lists the pages of a range that are in given states as regions, walking
 * only the page tables that exist: on a 14 TiB mostly empty mapping (AddressSanitizer's shadow)
 * it answers in milliseconds, where reading pagemap (8 bytes for every page) takes seconds. */
#ifndef PAGEMAP_SCAN
struct page_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#endif

/* Adds [start, end) as an untouched run if it is long enough. */
static int add_gap(struct untouched_search *search, uint64_t start, uint64_t end)
{
	if (end <= start)
		return 0;
	search->in_run = true;
	search->run_start = start;
	return end_run(search, end);
}

/* Fills `search` from the regions of present or swapped pages. 0 when done, -1 on out of memory,
 * -2 when the kernel has no PAGEMAP_SCAN. */
static int scan_touched(struct process_memory *memory, uint64_t start, uint64_t end,
			struct untouched_search *search)
{
	enum { REGIONS = 256 };
	struct page_region regions[REGIONS];
	uint64_t cursor = start; /* everything before it is accounted for */
	for (;;) {
		struct pm_scan_arg scan = {.size = sizeof scan, .start = cursor, .end = end,
					   .vec = (uintptr_t)regions, .vec_len = REGIONS,
					   .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
					   .return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED};
		int count = ioctl(memory->pagemap_fd, PAGEMAP_SCAN, &scan);
		if (count < 0)
			return -2;
		for (int i = 0; i < count; i++) {
			if (add_gap(search, cursor, regions[i].start) != 0)
				return -1;
			cursor = regions[i].end;
		}
		/* the walk stops at `end`, or where the next touched page found no room in the
		 * vector: either way, the pages up to walk_end after the last region are untouched */
		uint64_t walked = scan.walk_end < end ? scan.walk_end : end;
		if (add_gap(search, cursor, walked) != 0)
			return -1;
		if (walked > cursor)
			cursor = walked;
		if (walked >= end)
			return 0;
		if (count == 0 && walked <= cursor && scan.walk_end <= scan.start)
			return -2; /* no progress: do not loop forever on an odd kernel */
	}
}

int process_memory_untouched(struct process_memory *memory, uint64_t start, uint64_t end,
			     uint64_t min_run_bytes, struct range_list *untouched)
{
	struct untouched_search search = {.min_run_bytes = min_run_bytes, .runs = untouched};
	if (memory->pagemap_fd < 0)
		return 0;
	size_t before = untouched->count;
	int scanned = memory->no_pagemap_scan ? -2 : scan_touched(memory, start, end, &search);
	if (scanned == -1)
		return -1;
	if (scanned == 0)
		return 0;
	untouched->count = before; /* no PAGEMAP_SCAN: start again with pagemap reads */
	search = (struct untouched_search){.min_run_bytes = min_run_bytes, .runs = untouched};
	int result = pagemap_walk(memory, start, end, note_untouched, &search);
	if (result == -1)
		return -1;
	/* pagemap unreadable (-2): best effort, the caller reads these pages instead; runs found so
	 * far are still true */
	if (result == 0 && search.in_run && end_run(&search, end) != 0)
		return -1;
	return 0;
}
