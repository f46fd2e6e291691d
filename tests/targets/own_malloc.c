/* A program with its own malloc (a bump allocator over a static array, as some embedded and
 * game-engine programs do): glibc's heap is never used, so heapsnap must say it cannot see the
 * heap rather than report it empty. Writes "ready" to the file named by its first argument once
 * it holds its blocks, then waits. Built with AS_JEMALLOC it also defines mallctl, so it looks
 * like a jemalloc (an old one, or one linked in with other layouts) but has no extent map of
 * jemalloc 5.3: the jemalloc walker must refuse it rather than show an empty heap. Built with
 * AS_TCMALLOC it defines tc_malloc, so it looks like a tcmalloc without gperftools 2.10's size
 * classes and page map: the tcmalloc walker must refuse it too; with AS_MIMALLOC it defines
 * mi_malloc, so it looks like a mimalloc but has no segment: the mimalloc walker must refuse it
 * too. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static _Alignas(16) unsigned char arena[8 << 20];
static size_t used;

#ifdef AS_JEMALLOC
int mallctl(const char *name, void *old, size_t *old_size, void *new, size_t new_size)
{
	(void)name, (void)old, (void)old_size, (void)new, (void)new_size;
	return 2; /* ENOENT: no such setting */
}
#endif

void *malloc(size_t size);

#ifdef AS_TCMALLOC
void *tc_malloc(size_t size)
{
	return malloc(size);
}
#endif

#ifdef AS_MIMALLOC
void *mi_malloc(size_t size)
{
	return malloc(size);
}
#endif

void *malloc(size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (size > sizeof arena - used)
		return NULL;
	void *block = arena + used;
	used += size;
	return block;
}

void free(void *block) { (void)block; }

void *calloc(size_t count, size_t size)
{
	if (size && count > SIZE_MAX / size)
		return NULL;
	void *block = malloc(count * size);
	if (block)
		memset(block, 0, count * size);
	return block;
}

void *realloc(void *old, size_t size)
{
	void *block = malloc(size);
	if (block && old)
		memcpy(block, old, size); /* a bump allocator may copy past the old block: fine here */
	return block;
}

int main(int argc, char **argv)
{
	static void *held[10000];
	for (int i = 0; i < 10000; i++)
		held[i] = malloc(32 + (size_t)i % 200);
	if (argc < 2)
		return 2;
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "ready\n", 6) != 6 || close(fd) != 0)
		return 1;
	for (;;)
		pause();
	return held[0] != NULL;
}
