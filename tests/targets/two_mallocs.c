/* Two mallocs in one process, side by side: the program's own calls go to glibc's malloc, and a
 * second allocator (argv[1]: a path such as libjemalloc.so.2 or libmimalloc.so.2) is loaded with
 * dlopen(RTLD_LOCAL), as a plugin or a Python extension brings in a library of its own. It defines
 * `malloc` too, but a library loaded that way does not replace the process's malloc: only the
 * code that asks it (through dlsym here) allocates from it. Both allocators get blocks of many
 * sizes, small to large; a quarter of each are freed. Then the program writes the file named by its
 * second argument (whole, by rename), without allocating:
 *     held glibc|other ADDRESS USABLE_SIZE   (each allocator's malloc_usable_size)
 *     freed glibc|other ADDRESS SIZE_ASKED
 * then "done", and waits. */
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCKS 2000

struct side {
	const char *name;
	void *(*allocate)(size_t);
	void (*release)(void *);
	size_t (*usable)(void *);
	void *address[BLOCKS];
	size_t asked[BLOCKS];
};

static struct side sides[2];
static int record_fd;

static void record(const char *format, const char *name, void *address, size_t size)
{
	char line[128];
	int length = snprintf(line, sizeof line, format, name, (unsigned long)(uintptr_t)address, size);
	if (write(record_fd, line, (size_t)length) != length)
		_exit(3);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: two_mallocs LIBRARY RECORD\n");
		return 2;
	}
	void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (library == NULL) {
		fprintf(stderr, "two_mallocs: %s\n", dlerror());
		return 2;
	}
	sides[0].name = "glibc";
	sides[0].allocate = malloc;
	sides[0].release = free;
	sides[0].usable = malloc_usable_size;
	sides[1].name = "other";
	*(void **)&sides[1].allocate = dlsym(library, "malloc");
	*(void **)&sides[1].release = dlsym(library, "free");
	*(void **)&sides[1].usable = dlsym(library, "malloc_usable_size");
	if (!sides[1].allocate || !sides[1].release || !sides[1].usable ||
	    sides[1].allocate == (void *(*)(size_t))malloc) {
		fprintf(stderr, "two_mallocs: %s has no malloc of its own\n", argv[1]);
		return 2;
	}
	static const size_t sizes[] = {16, 24, 40, 64, 100, 200, 512, 1000, 3000, 9000, 40000};
	for (int s = 0; s < 2; s++)
		for (int i = 0; i < BLOCKS; i++) {
			struct side *side = &sides[s];
			side->asked[i] = sizes[(i * 7 + s) % (sizeof sizes / sizeof sizes[0])];
			side->address[i] = side->allocate(side->asked[i]);
			if (side->address[i] == NULL)
				return 3;
			memset(side->address[i], 0x40 + s, side->asked[i]);
		}
	char partial[4096];
	snprintf(partial, sizeof partial, "%s.partial", argv[2]);
	record_fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (record_fd < 0)
		return 3;
	for (int s = 0; s < 2; s++) {
		struct side *side = &sides[s];
		for (int i = 0; i < BLOCKS; i++) {
			if (i % 4 == 1) {
				side->release(side->address[i]);
				record("freed %s %#lx %zu\n", side->name, side->address[i], side->asked[i]);
			} else {
				record("held %s %#lx %zu\n", side->name, side->address[i],
				       side->usable(side->address[i]));
			}
		}
	}
	if (write(record_fd, "done\n", 5) != 5)
		return 3;
	close(record_fd);
	if (rename(partial, argv[2]) != 0)
		return 3;
	for (;;)
		pause();
}
