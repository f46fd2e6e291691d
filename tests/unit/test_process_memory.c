/* Finding never-touched pages in another process, both ways (PAGEMAP_SCAN, and reading pagemap as
 * older kernels must): a child touches a known pattern of pages in a 64 MiB mapping, and the runs
 * found must be exactly the untouched runs of the pattern that are long enough. Reading memory:
 * the bytes read equal what the child wrote, and a page that cannot be read is reported absent. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/process_memory.h"
#include "test_util.h"

#define PAGE 4096u
#define PAGES 16384u
#define MIN_RUN (16u * PAGE)

/* Pages the child touches: a dense start, sparse touches further on, an untouched tail. */
static int touched(unsigned page)
{
	if (page < 1000)
		return 1;
	if (page < 12000)
		return page % 997 == 0 || page % 1511 == 0 || page == 5003;
	return 0;
}

int main(void)
{
	uint8_t *region = mmap(NULL, (size_t)PAGES * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	madvise(region, (size_t)PAGES * PAGE, MADV_NOHUGEPAGE);
	int ready[2];
	if (region == MAP_FAILED || pipe(ready) != 0)
		return 2;
	pid_t child = fork();
	if (child == 0) {
		for (unsigned page = 0; page < PAGES; page++)
			if (touched(page))
				region[(size_t)page * PAGE] = (uint8_t)(page | 1);
		write(ready[1], "x", 1);
		pause();
		_exit(0);
	}
	char byte;
	read(ready[0], &byte, 1);

	/* the expected runs, from the pattern */
	struct range_list expected = {0};
	for (unsigned page = 0; page < PAGES;) {
		if (touched(page)) {
			page++;
			continue;
		}
		unsigned run = page;
		while (run < PAGES && !touched(run))
			run++;
		if ((run - page) * PAGE >= MIN_RUN)
			range_list_add(&expected, (uintptr_t)region + (uint64_t)page * PAGE,
				       (uintptr_t)region + (uint64_t)run * PAGE);
		page = run;
	}
	CHECK(expected.count > 10, "the pattern has %zu runs", expected.count);

	for (int way = 0; way < 2; way++) {
		struct process_memory memory;
		process_memory_open(&memory, child, NULL);
		memory.no_pagemap_scan = way == 1;
		struct range_list found = {0};
		CHECK(process_memory_untouched(&memory, (uintptr_t)region,
					       (uintptr_t)region + (uint64_t)PAGES * PAGE, MIN_RUN,
					       &found) == 0,
		      "way %d failed", way);
		CHECK(found.count == expected.count, "way %d: %zu runs, expected %zu", way,
		      found.count, expected.count);
		for (size_t i = 0; i < found.count && i < expected.count; i++)
			CHECK(found.ranges[i].start == expected.ranges[i].start &&
				      found.ranges[i].end == expected.ranges[i].end,
			      "way %d run %zu: %llx-%llx, expected %llx-%llx", way, i,
			      (unsigned long long)found.ranges[i].start,
			      (unsigned long long)found.ranges[i].end,
			      (unsigned long long)expected.ranges[i].start,
			      (unsigned long long)expected.ranges[i].end);
		range_list_free(&found);

		/* bytes: touched pages hold what the child wrote; an unmapped page is absent */
		uint8_t buffer[3 * PAGE];
		struct range_list absent = {0};
		struct hs_error err;
		CHECK(process_memory_read(&memory, (uintptr_t)region + 997u * PAGE, buffer, PAGE,
					  &absent, &err) == 0 &&
			      buffer[0] == (uint8_t)(997 | 1) && absent.count == 0,
		      "way %d: bytes of page 997", way);
		munmap(region + (size_t)(PAGES - 2) * PAGE, PAGE); /* only in this process */
		range_list_free(&absent);
		process_memory_close(&memory);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);

	/* an unreadable page inside a read: zero-filled, reported, the rest read */
	struct process_memory self;
	process_memory_open(&self, getpid(), NULL);
	uint8_t *three = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
	memset(three, 0x77, 3 * PAGE);
	mprotect(three + PAGE, PAGE, PROT_NONE);
	uint8_t copy[3 * PAGE];
	struct range_list absent = {0};
	struct hs_error err;
	CHECK(process_memory_read(&self, (uintptr_t)three, copy, sizeof copy, &absent, &err) == 0,
	      "read around a hole: %s", err.message);
	CHECK(absent.count == 1 && absent.ranges[0].start == (uintptr_t)three + PAGE &&
		      absent.ranges[0].end == (uintptr_t)three + 2 * PAGE,
	      "the hole is reported absent (%zu ranges)", absent.count);
	CHECK(copy[0] == 0x77 && copy[PAGE] == 0 && copy[2 * PAGE] == 0x77 &&
		      copy[3 * PAGE - 1] == 0x77,
	      "bytes around the hole");
	range_list_free(&absent);
	range_list_free(&expected);
	process_memory_close(&self);
	return TEST_EXIT();
}
