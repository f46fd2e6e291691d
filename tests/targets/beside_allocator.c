/* A program that allocates with glibc's malloc and, beside it, with an allocator linked in under a
 * prefix, as a Rust program with tikv-jemallocator does (jemalloc built with the prefix _rjem_,
 * serving Rust's allocations while C code keeps glibc's malloc). Its `_rjem_` functions are a
 * stand-in (a bump allocator over a static array): what matters is that heapsnap sees a second
 * allocator it does not walk and says so, instead of reporting glibc's heap as all there is.
 * Writes "ready" to the file named by its first argument once it holds its blocks, then waits. */
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Alignas(16) unsigned char arena[1 << 20];
static size_t used;
void *held[2000]; /* (global: the blocks stay reachable, and the compiler keeps every malloc) */

/* (exported, as a Rust binary's allocator symbols are) */
void *_rjem_malloc(size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (size > sizeof arena - used)
		return NULL;
	void *block = arena + used;
	used += size;
	return block;
}

int _rjem_mallctl(const char *name, void *old, size_t *old_size, void *new, size_t new_size)
{
	(void)name, (void)old, (void)old_size, (void)new, (void)new_size;
	return 2; /* ENOENT */
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	for (int i = 0; i < 1000; i++) {
		held[i] = malloc(48);
		held[1000 + i] = _rjem_malloc(64);
		memset(held[i], 1, 48);
		memset(held[1000 + i], 2, 64);
	}
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "ready\n", 6) != 6)
		return 1;
	close(fd);
	for (;;)
		pause();
}
