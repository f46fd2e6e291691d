/* A target for jemalloc's explicit tcaches (mallctl "tcache.create", then mallocx and dallocx
 * with MALLOCX_TCACHE), run with libjemalloc.so.2 preloaded. It makes six, so that jemalloc's
 * array of them holds every kind of element: two in use holding freed blocks (one of them made
 * in the slot a destroyed one left), one flushed (TCACHES_ELM_NEED_REINIT), and two destroyed
 * (free slots, one linked to the other). Through each tcache in use and the flushed one it
 * allocates small and large blocks (the large ones small enough for a tcache bin) and frees every
 * other one through the same tcache, so the freed ones wait in the explicit tcache (or, past a
 * bin's bound or after the flush, free in their slab). Then, as tests/targets/known_heap.c does,
 * it writes to the file named by its last argument, with write(2) only:
 *     held ADDRESS USABLE_SIZE      (malloc_usable_size)
 *     freed ADDRESS SIZE_ASKED
 *     allocated 0x0 BYTES           (jemalloc's stats.allocated, after an epoch)
 *     tcache_bytes 0x0 BYTES        (stats.arenas.<all>.tcache_bytes, explicit tcaches included)
 * then "done", and waits. jemalloc's functions are looked up at run time (libjemalloc-dev need
 * not be installed). */
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCKS 600 /* per tcache that allocates */
#define TCACHE_FLAG(id) ((int)(((unsigned)(id) + 2) << 8)) /* jemalloc's MALLOCX_TCACHE */

typedef int (*mallctl_function)(const char *, void *, size_t *, void *, size_t);
static mallctl_function mallctl;
static void *(*mallocx)(size_t, int);
static void (*dallocx)(void *, int);
static int record_fd;

struct blocks {
	void *address[BLOCKS];
	size_t asked[BLOCKS];
};
static struct blocks held_by[3]; /* through the two tcaches in use, and the flushed one */

static void record(const char *what, uint64_t first, uint64_t second)
{
	char line[96];
	int length = snprintf(line, sizeof line, "%s 0x%llx %llu\n", what,
			      (unsigned long long)first, (unsigned long long)second);
	if (write(record_fd, line, (size_t)length) != length)
		_exit(3);
}

static unsigned tcache_create(void)
{
	unsigned id;
	size_t size = sizeof id;
	if (mallctl("tcache.create", &id, &size, NULL, 0) != 0)
		_exit(4);
	return id;
}

static void tcache_command(const char *command, unsigned id)
{
	if (mallctl(command, NULL, NULL, &id, sizeof id) != 0)
		_exit(4);
}

/* Mostly small blocks of many classes, one in 20 large (16 to 28 KiB: under the default
 * tcache_max of 32 KiB, so a tcache bin takes them); every other one freed through `id`, the
 * freed ones recorded at once (their memory may serve a later block of the same tcache). */
static void allocate_and_free(struct blocks *blocks, unsigned id, unsigned seed)
{
	for (int i = 0; i < BLOCKS; i++) {
		unsigned mix = (unsigned)i * 2654435761u + seed * 40503u;
		blocks->asked[i] = i % 20 == 0 ? 16384 + mix % 12288 : 1 + mix % 3000;
		blocks->address[i] = mallocx(blocks->asked[i], TCACHE_FLAG(id));
		if (blocks->address[i] == NULL)
			_exit(3);
		memset(blocks->address[i], (int)seed, 16);
	}
	for (int i = 1; i < BLOCKS; i += 2) {
		record("freed", (uint64_t)(uintptr_t)blocks->address[i], blocks->asked[i]);
		dallocx(blocks->address[i], TCACHE_FLAG(id));
		blocks->address[i] = NULL;
	}
}

static uint64_t stat_u64(const char *name)
{
	size_t value = 0, size = sizeof value;
	if (mallctl(name, &value, &size, NULL, 0) != 0)
		_exit(4);
	return value;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: explicit_tcaches RECORD\n");
		return 2;
	}
	*(void **)&mallctl = dlsym(RTLD_DEFAULT, "mallctl");
	*(void **)&mallocx = dlsym(RTLD_DEFAULT, "mallocx");
	*(void **)&dallocx = dlsym(RTLD_DEFAULT, "dallocx");
	if (mallctl == NULL || mallocx == NULL || dallocx == NULL) {
		fprintf(stderr,
			"explicit_tcaches: jemalloc (mallctl, mallocx, dallocx) is not loaded\n");
		return 2;
	}
	char temporary[4096];
	snprintf(temporary, sizeof temporary, "%s.tmp", argv[argc - 1]);
	record_fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (record_fd < 0)
		return 1;
	/* slots 0 to 4; 0 destroyed and taken again by the fifth made, 3 and 4 destroyed */
	unsigned first = tcache_create(), second = tcache_create(), flushed = tcache_create();
	unsigned gone = tcache_create(), also_gone = tcache_create();
	tcache_command("tcache.destroy", first);
	unsigned again = tcache_create();
	allocate_and_free(&held_by[0], second, 1);
	allocate_and_free(&held_by[1], again, 2);
	allocate_and_free(&held_by[2], flushed, 3);
	tcache_command("tcache.flush", flushed);
	tcache_command("tcache.destroy", gone);
	tcache_command("tcache.destroy", also_gone);
	for (int t = 0; t < 3; t++)
		for (int i = 0; i < BLOCKS; i++)
			if (held_by[t].address[i])
				record("held", (uint64_t)(uintptr_t)held_by[t].address[i],
				       malloc_usable_size(held_by[t].address[i]));
	/* the stats last: nothing is allocated from here on */
	uint64_t epoch = 1;
	size_t epoch_size = sizeof epoch;
	if (mallctl("epoch", &epoch, &epoch_size, &epoch, epoch_size) != 0)
		return 4;
	record("allocated", 0, stat_u64("stats.allocated"));
	record("tcache_bytes", 0, stat_u64("stats.arenas.4096.tcache_bytes"));
	if (write(record_fd, "done\n", 5) != 5 || close(record_fd) != 0 ||
	    rename(temporary, argv[argc - 1]) != 0)
		return 1;
	for (;;)
		pause();
}
