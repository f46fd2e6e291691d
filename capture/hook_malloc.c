/* The hook's malloc: libheapsnap.so interposes the malloc family. In the process it passes every
 * call straight to glibc's own entry points (__libc_malloc and the rest), so the heap heapsnap
 * walks is glibc's as usual. In the fork that writes a snapshot it serves every call from memory
 * mapped for the purpose: that fork was made from a signal handler, a vanished thread may have
 * held glibc's arena lock at that moment, and one call into glibc's malloc could wait forever.
 * What the fork allocates is never freed: it exits when the snapshot is written. With allocation
 * sites on (HEAPSNAP_SITES=1), each allocation's caller is recorded (hook_sites.c). */
#include "capture/hook_malloc.h"

#include "capture/hook_sites.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
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

/* ---- call stacks of allocations (HEAPSNAP_SITES=1) ----
 * The first frame is exact: the interposed function's return address. Deeper ones follow the
 * frame-pointer chain from the interposed function's own frame (this file is built with frame
 * pointers) for as long as it looks sound: each frame above the last, on a page known to be mapped
 * (mincore, cached per thread), its return address inside a module's executable code. Code built
 * without frame pointers ends the chain early, or skips to an outer frame that keeps them; it
 * never makes the walk read unmapped memory. */
struct code_range {
	uint64_t start, end;
};
static struct code_range code[256]; /* executable segments of the modules loaded at start */
static size_t code_count;
static __thread uint64_t mapped_low __attribute__((tls_model("initial-exec")));
static __thread uint64_t mapped_high __attribute__((tls_model("initial-exec")));

static int note_code(struct dl_phdr_info *info, size_t size, void *context)
{
	(void)size;
	(void)context;
	for (int i = 0; i < info->dlpi_phnum && code_count < 256; i++) {
		const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
		if (segment->p_type == PT_LOAD && (segment->p_flags & PF_X))
			code[code_count++] = (struct code_range){
				info->dlpi_addr + segment->p_vaddr,
				info->dlpi_addr + segment->p_vaddr + segment->p_memsz};
	}
	return 0;
}

void hook_malloc_note_code(void)
{
	dl_iterate_phdr(note_code, NULL);
}

static int is_code(uint64_t address)
{
	for (size_t i = 0; i < code_count; i++)
		if (address >= code[i].start && address < code[i].end)
			return 1;
	return 0;
}

/* Whether [address, address + 16) is on a mapped page (both words on one page: aligned). */
static int is_mapped(uint64_t address)
{
	if (address >= mapped_low && address + 16 <= mapped_high)
		return 1;
	uint64_t page = address & ~4095ull;
	unsigned char resident;
	if (mincore((void *)(uintptr_t)page, 4096, &resident) != 0)
		return 0;
	if (page + 4096 == mapped_low)
		mapped_low = page; /* the stack grows down: extend the known range */
	else if (page == mapped_high)
		mapped_high = page + 4096;
	else {
		mapped_low = page;
		mapped_high = page + 4096;
	}
	return 1;
}

static void *recorded(void *block, const void *caller, const void *frame_address)
{
	if (!hook_sites_on || block == NULL)
		return block;
	uint64_t frames[HEAPSNAP_SITE_FRAMES] = {(uint64_t)(uintptr_t)caller};
	uint64_t frame = (uint64_t)(uintptr_t)frame_address;
	for (size_t depth = 1; depth < HEAPSNAP_SITE_FRAMES; depth++) {
		if ((frame & 15) != 0 || !is_mapped(frame))
			break;
		uint64_t next = ((const uint64_t *)(uintptr_t)frame)[0];
		if (next <= frame || next - frame > (1u << 20) || (next & 15) != 0 || !is_mapped(next))
			break;
		uint64_t pc = ((const uint64_t *)(uintptr_t)next)[1];
		if (!is_code(pc))
			break;
		frames[depth] = pc;
		frame = next;
	}
	hook_sites_add(block, frames);
	return block;
}

/* the caller of the interposed function, and its frame */
#define CALLER __builtin_return_address(0), __builtin_frame_address(0)

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

static void *aligned(size_t alignment, size_t size, const void *caller, const void *frame)
{
	if (!fork_mode)
		return recorded(__libc_memalign(alignment, size), caller, frame);
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
