/* The hook's malloc: libheapsnap.so interposes the malloc family. In the process it passes every
 * call straight to glibc's own entry points (__libc_malloc and the rest), so the heap heapsnap
 * walks is glibc's as usual. In the fork that writes a snapshot it serves every call from memory
 * mapped for the purpose: that fork was made from a signal handler, a vanished thread may have
 * held glibc's arena lock at that moment, and one call into glibc's malloc could wait forever.
 * What the fork allocates is never freed: it exits when the snapshot is written. With allocation
 * sites on (HEAPSNAP_SITES=1), each allocation's caller is recorded (hook_sites.c). */
#include "capture/hook_malloc.h"

#include "capture/hook_sites.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* glibc's own entry points, which its malloc, free... are aliases of */
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *pointer);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);
extern size_t malloc_usable_size(void *pointer);

/* The fork's arena: one reservation, handed out from the front. Every block has a 16-byte header
 * holding its size, for realloc. */
#define ARENA_RESERVE (64ull << 30) /* address space only: pages are made as they are touched */
#define HEADER 16u

static int fork_mode;
static uint8_t *arena;
static size_t arena_used;

int hook_malloc_fork_mode(struct hook_range *range)
{
	void *reserved = mmap(NULL, ARENA_RESERVE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (reserved == MAP_FAILED)
		return -1;
	arena = reserved;
	arena_used = 0;
	fork_mode = 1;
	range->start = (uint64_t)(uintptr_t)arena;
	range->end = range->start + ARENA_RESERVE;
	return 0;
}

static void *arena_take(size_t size, size_t alignment)
{
	if (alignment < HEADER)
		alignment = HEADER;
	if (size > ARENA_RESERVE)
		return NULL;
	/* the block starts aligned, its header just before it */
	size_t start = (arena_used + HEADER + alignment - 1) & ~(alignment - 1);
	if (start + size > ARENA_RESERVE) {
		errno = ENOMEM;
		return NULL;
	}
	arena_used = start + size;
	uint8_t *block = arena + start;
	memcpy(block - HEADER, &size, sizeof size);
	return block;
}

static int in_arena(const void *pointer)
{
	return arena && (const uint8_t *)pointer >= arena &&
	       (const uint8_t *)pointer < arena + ARENA_RESERVE;
}

void *hook_stack(size_t size)
{
	return fork_mode ? arena_take(size, 4096) : NULL;
}

/* the caller of the interposed function: where the allocation was asked for */
#define CALLER __builtin_return_address(0)

static void *recorded(void *block, const void *caller)
{
	if (hook_sites_on && block)
		hook_sites_add(block, caller);
	return block;
}

void *malloc(size_t size)
{
	if (fork_mode)
		return arena_take(size ? size : 1, HEADER);
	return recorded(__libc_malloc(size), CALLER);
}

void free(void *pointer)
{
	if (fork_mode)
		return; /* the fork exits soon; glibc's free could wait on a lock */
	if (hook_sites_on && pointer)
		hook_sites_remove(pointer);
	__libc_free(pointer);
}

void *calloc(size_t count, size_t size)
{
	if (!fork_mode)
		return recorded(__libc_calloc(count, size), CALLER);
	if (size && count > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	size_t bytes = count * size;
	return arena_take(bytes ? bytes : 1, HEADER); /* fresh pages are zero */
}

void *realloc(void *pointer, size_t size)
{
	if (!fork_mode) {
		if (!hook_sites_on)
			return __libc_realloc(pointer, size);
		void *moved = __libc_realloc(pointer, size);
		if (pointer && (moved != pointer || size == 0) && (moved || size == 0))
			hook_sites_remove(pointer); /* freed, or moved */
		return recorded(moved, CALLER);
	}
	void *grown = arena_take(size ? size : 1, HEADER);
	if (grown == NULL || pointer == NULL)
		return grown;
	size_t old;
	if (in_arena(pointer))
		memcpy(&old, (const uint8_t *)pointer - HEADER, sizeof old);
	else
		old = malloc_usable_size(pointer); /* a block from before the fork: reads its header */
	memcpy(grown, pointer, old < size ? old : size);
	return grown;
}

static void *aligned(size_t alignment, size_t size, const void *caller)
{
	if (!fork_mode)
		return recorded(__libc_memalign(alignment, size), caller);
	if (alignment == 0 || (alignment & (alignment - 1))) {
		errno = EINVAL;
		return NULL;
	}
	return arena_take(size ? size : 1, alignment);
}

void *memalign(size_t alignment, size_t size)
{
	return aligned(alignment, size, CALLER);
}

void *aligned_alloc(size_t alignment, size_t size)
{
	return aligned(alignment, size, CALLER);
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
	if (alignment < sizeof(void *) || (alignment & (alignment - 1)))
		return EINVAL;
	int saved = errno;
	void *block = aligned(alignment, size, CALLER);
	int result = block ? 0 : errno ? errno : ENOMEM;
	errno = saved;
	if (block)
		*out = block;
	return result;
}

void *valloc(size_t size)
{
	if (!fork_mode)
		return recorded(__libc_valloc(size), CALLER);
	return arena_take(size ? size : 1, 4096);
}

void *pvalloc(size_t size)
{
	if (!fork_mode)
		return recorded(__libc_pvalloc(size), CALLER);
	size_t pages = (size + 4095) & ~(size_t)4095;
	return arena_take(pages ? pages : 4096, 4096);
}
