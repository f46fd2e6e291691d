/* The hook's malloc: libheapsnap.so interposes the malloc family. In the process it passes every
 * call to the allocator the program really uses: the next definition of malloc after the hook
 * (jemalloc, tcmalloc or mimalloc preloaded after it), else glibc's own entry points
 * (__libc_malloc and the rest), so the heap is the one the program would have without the hook. In the fork that writes a snapshot it serves every call from memory
 * mapped for the purpose: that fork was made from a signal handler, a vanished thread may have
 * held glibc's arena lock at that moment, and one call into glibc's malloc could wait forever.
 * What the fork allocates is never freed: it exits when the snapshot is written. With allocation
 * sites on (HEAPSNAP_SITES=1), each allocation's caller is recorded (hook_sites.c). */
#include "capture/hook/hook_malloc.h"

#include "capture/hook/hook_sites.h"

#include <dlfcn.h>
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
extern size_t malloc_usable_size(void *pointer);

/* ---- the allocator calls are passed to ----
 * Found on the first call, with dlsym(RTLD_NEXT): no lock and no allocation on success, and
 * usable from ld.so's own first calls. Anything allocated while it is being found (dlsym may
 * allocate on a failure) comes from a small static buffer and is never freed. That first call
 * comes from ld.so or a constructor, before the program can start a thread, so the search and
 * the buffer need no lock. */
struct allocator {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*memalign)(size_t, size_t);
};
static struct allocator next_allocator;
static int finding; /* dlsym is running: calls are served from the buffer */
static _Alignas(16) uint8_t early[64 << 10];
static size_t early_used;

/* A block of the static buffer, with its size in the 16 bytes before it (for realloc). */
static void *early_take(size_t size, size_t alignment)
{
	if (alignment < 16)
		alignment = 16;
	size_t start = (early_used + 16 + alignment - 1) & ~(alignment - 1);
	if (size > sizeof early || start + size > sizeof early) {
		errno = ENOMEM;
		return NULL;
	}
	early_used = start + size;
	memcpy(early + start - 16, &size, sizeof size);
	return early + start;
}

static int in_early(const void *pointer)
{
	return (const uint8_t *)pointer >= early && (const uint8_t *)pointer < early + sizeof early;
}

static void *glibc_memalign(size_t alignment, size_t size)
{
	return __libc_memalign(alignment, size);
}

static void find_allocator(void)
{
	finding = 1;
	struct allocator found = {dlsym(RTLD_NEXT, "malloc"), dlsym(RTLD_NEXT, "free"),
				  dlsym(RTLD_NEXT, "calloc"), dlsym(RTLD_NEXT, "realloc"),
				  dlsym(RTLD_NEXT, "memalign")};
	if (found.memalign == NULL)
		found.memalign = dlsym(RTLD_NEXT, "aligned_alloc");
	/* glibc's malloc is __libc_malloc under another name; another allocator is used whole or
	   not at all (one's block must never reach the other's free) */
	if (found.malloc == NULL || found.malloc == (void *)__libc_malloc || found.free == NULL ||
	    found.calloc == NULL || found.realloc == NULL || found.memalign == NULL)
		found = (struct allocator){__libc_malloc, __libc_free, __libc_calloc, __libc_realloc,
					   glibc_memalign};
	next_allocator = found;
	finding = 0;
}

/* The allocator's functions, found on first use. */
static const struct allocator *allocator(void)
{
	if (next_allocator.malloc == NULL && !finding)
		find_allocator();
	return finding ? NULL : &next_allocator;
}

const char *hook_malloc_allocator_name(void)
{
	const struct allocator *found = allocator();
	Dl_info info;
	if (found == NULL || found->malloc == __libc_malloc ||
	    dladdr((void *)found->malloc, &info) == 0 || info.dli_fname == NULL)
		return NULL;
	return info.dli_fname;
}

/* The fork's arena: one reservation, handed out from the front. Every block has a 16-byte header
 * holding its size, for realloc. */
#define ARENA_RESERVE (64ull << 30) /* address space only: pages are made as they are touched */
#define HEADER 16u

static int fork_mode;
static int probing, probed; /* hook_malloc_interposed is asking whether malloc reaches here */
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
	if (probing)
		probed = 1;
	const struct allocator *next = allocator();
	if (next == NULL)
		return early_take(size, 16);
	return recorded(next->malloc(size), CALLER);
}

void free(void *pointer)
{
	if (fork_mode || in_early(pointer))
		return; /* the fork exits soon; the allocator's free could wait on a lock */
	if (hook_sites_on && pointer)
		hook_sites_remove(pointer);
	const struct allocator *next = allocator();
	if (next != NULL)
		next->free(pointer);
}

void *calloc(size_t count, size_t size)
{
	const struct allocator *next = fork_mode ? NULL : allocator();
	if (next != NULL)
		return recorded(next->calloc(count, size), CALLER);
	if (size && count > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	size_t bytes = count * size;
	/* fresh pages are zero, and the static buffer is never reused */
	return fork_mode ? arena_take(bytes ? bytes : 1, HEADER) : early_take(bytes, 16);
}

/* A block of the static buffer moved to the allocator. */
static void *from_early(const struct allocator *next, void *pointer, size_t size)
{
	size_t old;
	memcpy(&old, (const uint8_t *)pointer - 16, sizeof old);
	void *moved = next->malloc(size ? size : 1);
	if (moved)
		memcpy(moved, pointer, old < size ? old : size);
	return moved;
}

void *realloc(void *pointer, size_t size)
{
	if (!fork_mode) {
		const struct allocator *next = allocator();
		if (next == NULL) {
			void *moved = early_take(size, 16);
			if (moved && pointer) {
				size_t old;
				memcpy(&old, (const uint8_t *)pointer - 16, sizeof old);
				memcpy(moved, pointer, old < size ? old : size);
			}
			return moved;
		}
		if (pointer && in_early(pointer))
			return recorded(from_early(next, pointer, size), CALLER);
		if (!hook_sites_on)
			return next->realloc(pointer, size);
		void *moved = next->realloc(pointer, size);
		if (pointer && (moved != pointer || size == 0) && (moved || size == 0))
			hook_sites_remove(pointer); /* freed, or moved */
		return recorded(moved, CALLER);
	}
	void *grown = arena_take(size ? size : 1, HEADER);
	if (grown == NULL || pointer == NULL)
		return grown;
	size_t old;
	if (in_arena(pointer) || in_early(pointer))
		memcpy(&old, (const uint8_t *)pointer - HEADER, sizeof old);
	else
		old = malloc_usable_size(pointer); /* a block from before the fork: reads its header */
	memcpy(grown, pointer, old < size ? old : size);
	return grown;
}

static void *aligned(size_t alignment, size_t size, const void *caller, const void *frame)
{
	const struct allocator *next = fork_mode ? NULL : allocator();
	if (next != NULL)
		return recorded(next->memalign(alignment, size), caller, frame);
	if (alignment == 0 || (alignment & (alignment - 1))) {
		errno = EINVAL;
		return NULL;
	}
	return fork_mode ? arena_take(size ? size : 1, alignment) : early_take(size, alignment);
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
	return aligned(4096, size, CALLER);
}

void *pvalloc(size_t size)
{
	size_t pages = (size + 4095) & ~(size_t)4095;
	return aligned(4096, pages ? pages : 4096, CALLER);
}

/* Calls malloc and free by the addresses the program calls them at (a symbol's address here is
 * the first definition in the process, the executable's when it has one) and says whether the
 * hook's ran. Asking dlsym would not do: an executable that takes malloc's address gets a
 * canonical entry of its own that still leads here. */
int hook_malloc_interposed(void)
{
	void *(*volatile program_malloc)(size_t) = malloc;
	void (*volatile program_free)(void *) = free;
	probing = 1;
	probed = 0;
	void *block = program_malloc(16);
	probing = 0;
	program_free(block);
	return probed;
}
