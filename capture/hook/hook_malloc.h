/* The hook's malloc (see hook_malloc.c): the program's allocator in the process (the next malloc
 * after the hook, else glibc's), a private arena in the fork that writes a snapshot. */
#ifndef HEAPSNAP_HOOK_MALLOC_H
#define HEAPSNAP_HOOK_MALLOC_H

#include <stddef.h>
#include <stdint.h>

struct hook_range {
	uint64_t start, end;
};

/* In the fork: from now on every malloc-family call is served from a fresh mapping, returned in
 * `range` (the snapshot leaves it out). -1 when it cannot be mapped. */
int hook_malloc_fork_mode(struct hook_range *range);

/* In the fork, after hook_malloc_fork_mode: `size` bytes of page-aligned memory from the arena
 * (for a stack); NULL otherwise. */
void *hook_stack(size_t size);

/* At load: notes the executable code of the loaded modules, which an allocation's call stack is
 * checked against. */
void hook_malloc_note_code(void);

/* Whether the program's calls to malloc reach the hook's: false when a module before it (the
 * executable) defines malloc itself, and the fork would call that malloc, which may wait on a
 * lock a vanished thread held. */
int hook_malloc_interposed(void);

/* The file of the allocator the hook passes calls to, when it is not glibc's; NULL for glibc. */
const char *hook_malloc_allocator_name(void);

#endif
