/* Finding the process's malloc (see malloc_provider.h). A module other than libc and the dynamic
 * loader that defines `malloc` replaces glibc's: the executable and preloaded libraries come
 * before libc in symbol lookup, and libraries that define malloc are linked to replace it. The
 * in-process hook (libheapsnap.so) defines malloc too, but only to forward to the real one. */
#include "malloc_provider.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/open_file.h"

static bool defines(struct module_symbols *module, const char *name)
{
	uint64_t address;
	return module_symbols_lookup(module, name, &address, NULL);
}

static const char *file_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

static bool is_glibc_file(const char *path)
{
	const char *name = file_name(path);
	return strncmp(name, "libc.so", 7) == 0 || strncmp(name, "libc-2.", 7) == 0 ||
	       strncmp(name, "ld-linux", 8) == 0 || strncmp(name, "ld-2.", 5) == 0;
}

/* The mallocs heapsnap walks that replace glibc's, in the order their symbols (allocator.h) are
 * tried. */
static const struct allocator *const replacing_mallocs[] = {
	&jemalloc_allocator,
	&tcmalloc_allocator,
	&mimalloc_allocator,
};

/* Whether `module` defines one of the symbols that recognise `allocator`. */
static bool recognises(const struct allocator *allocator, struct module_symbols *module)
{
	for (const char *const *symbol = allocator->symbols; symbol && *symbol; symbol++)
		if (defines(module, *symbol))
			return true;
	return false;
}

/* The allocator a module holds, from the symbols each one alone defines, with its walker (NULL
 * when heapsnap has none); false when none is known. */
static bool known_allocator(struct module_symbols *module, char *name, size_t size,
			    const struct allocator **walker)
{
	/* mallocs heapsnap has no walker for, tried after those it has */
	static const struct {
		const char *symbol, *name;
	} unwalked[] = {
		{"__asan_init", "AddressSanitizer's allocator"},
		{"__hwasan_init", "HWAddressSanitizer's allocator"},
		{"__msan_init", "MemorySanitizer's allocator"},
		{"__tsan_init", "ThreadSanitizer's allocator"},
		{"scudo_malloc_info", "scudo"},
		{"snmalloc_malloc", "snmalloc"},
		/* musl's, linked statically (its internal names) */
		{"__libc_malloc_impl", "musl's malloc (mallocng)"},
		{"__malloc_donate", "musl's malloc"},
		{"__expand_heap", "musl's malloc (oldmalloc)"},
	};
	for (size_t i = 0; i < sizeof replacing_mallocs / sizeof replacing_mallocs[0]; i++)
		if (recognises(replacing_mallocs[i], module)) {
			snprintf(name, size, "%s", replacing_mallocs[i]->name);
			*walker = replacing_mallocs[i];
			return true;
		}
	*walker = NULL;
	for (size_t i = 0; i < sizeof unwalked / sizeof unwalked[0]; i++)
		if (defines(module, unwalked[i].symbol)) {
			snprintf(name, size, "%s", unwalked[i].name);
			return true;
		}
	const char *file = file_name(module_symbols_module(module)->path);
	if (strncmp(file, "ld-musl", 7) == 0 || strncmp(file, "libc.musl", 9) == 0) {
		snprintf(name, size, "musl's malloc");
		return true;
	}
	return false;
}

/* The Go toolchain's version when `path` is a Go executable: its .go.buildinfo section starts
 * with this magic, then the pointer size and flags, and (flags & 2) the version as a
 * varint-prefixed string at 32 (Go 1.18 and later); "" for an older Go. */
static bool go_buildinfo(const char *path, char *version, size_t size)
{
	static const char magic[] = "\xff Go buildinf:";
	int fd = open_regular_file(path);
	if (fd < 0)
		return false;
	off_t length = lseek(fd, 0, SEEK_END);
	const uint8_t *bytes = length > 0 ? mmap(NULL, (size_t)length, PROT_READ, MAP_PRIVATE, fd, 0)
					  : MAP_FAILED;
	close(fd);
	if (bytes == MAP_FAILED)
		return false;
	const uint8_t *found = memmem(bytes, (size_t)length, magic, sizeof magic - 1);
	version[0] = '\0';
	if (found && found + 33 < bytes + length && (found[15] & 2) && found[32] < 0x80 &&
	    found + 33 + found[32] <= bytes + length)
		snprintf(version, size, "%.*s", (int)found[32], (const char *)found + 33);
	munmap((void *)bytes, (size_t)length);
	return found != NULL;
}

void malloc_provider_identify(struct symbols *symbols, char *out, size_t size)
{
	out[0] = '\0';
	size_t count = symbols_module_count(symbols);
	for (size_t i = 0; i < count; i++) {
		struct module_symbols *module = symbols_module_at(symbols, i);
		const char *file = module_symbols_file(module);
		char version[64] = "";
		if ((file && go_buildinfo(file, version, sizeof version)) ||
		    defines(module, "runtime.mallocgc")) {
			snprintf(out, size,
				 "it is a Go program%s%s%s (%s), whose objects are in the Go "
				 "runtime's garbage-collected heap, which heapsnap does not walk",
				 version[0] ? " (" : "", version, version[0] ? ")" : "",
				 module_symbols_module(module)->path);
			return;
		}
	}
	const char *exe = count ? module_symbols_module(symbols_module_at(symbols, 0))->path : NULL;
	if (count == 1 && exe)
		snprintf(out, size,
			 "it is one statically linked executable (%s) without the symbols that would "
			 "name its malloc (stripped)",
			 exe);
}

/* An allocator a module exports without defining malloc: its own entry points, called by code
 * that chose it (a Rust global allocator, a library's private heap), or a runtime's garbage-
 * collected heap (V8, the JVM, Go); false when none is known. Its own list, not the allocators'
 * symbols: it names each prefix an allocator is exported under, and runtimes that are no malloc. */
static bool allocator_beside(struct module_symbols *module, char *name, size_t size)
{
	static const struct {
		const char *symbol, *name;
	} known[] = {
		{"_rjem_mallctl", "jemalloc under the prefix _rjem_ (Rust's tikv-jemallocator)"},
		{"je_mallctl", "jemalloc under the prefix je_"},
		{"mallctl", "jemalloc"},
		{"tc_malloc", "tcmalloc"},
		{"mi_malloc", "mimalloc"},
		/* runtimes whose objects live in heaps of their own, not in malloc's */
		{"_ZN2v87Isolate10GetCurrentEv", "V8's JavaScript heap (node, Chromium, Electron)"},
		{"JNI_CreateJavaVM", "the Java virtual machine's heap"},
		{"runtime.mallocgc", "the Go runtime's garbage-collected heap"},
		{"coreclr_initialize", "the .NET runtime's heap (CoreCLR)"},
		{"zend_mm_startup", "PHP's Zend memory manager (php, php-fpm)"},
		{"luaJIT_setmode", "LuaJIT's garbage-collected heap"},
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		/* (Go's linker makes runtime.mallocgc a local symbol in some builds) */
		if (module_symbols_exports(module, known[i].symbol) ||
		    (strncmp(known[i].symbol, "runtime.", 8) == 0 &&
		     defines(module, known[i].symbol))) {
			snprintf(name, size, "%s", known[i].name);
			return true;
		}
	return false;
}

bool malloc_provider_find(struct symbols *symbols, struct malloc_provider *provider)
{
	memset(provider, 0, sizeof *provider);
	struct module_symbols *libc = NULL, *static_glibc = NULL, *replacement = NULL;
	size_t count = symbols_module_count(symbols);
	for (size_t i = 0; i < count; i++) {
		struct module_symbols *module = symbols_module_at(symbols, i);
		const char *path = module_symbols_module(module)->path;
		if (is_glibc_file(path)) {
			if (strncmp(file_name(path), "libc", 4) == 0 && libc == NULL)
				libc = module;
			continue;
		}
		if (defines(module, "heapsnap_capture"))
			continue; /* (heapsnap's hook forwards to the real malloc) */
		if (!defines(module, "malloc")) {
			struct unwalked_allocator *beside = &provider->beside[provider->beside_count];
			if (provider->beside_count < sizeof provider->beside / sizeof provider->beside[0] &&
			    allocator_beside(module, beside->name, sizeof beside->name)) {
				beside->module_path = path;
				provider->beside_count++;
			}
			continue;
		}
		char name[sizeof provider->name];
		const struct allocator *walker = NULL;
		bool known = known_allocator(module, name, sizeof name, &walker);
		if (!known && recognises(&glibc_allocator, module)) {
			if (static_glibc == NULL)
				static_glibc = module; /* glibc linked in statically */
		} else if (replacement == NULL) {
			replacement = module;
			provider->allocator = walker;
			if (known)
				snprintf(provider->name, sizeof provider->name, "%s", name);
			else
				snprintf(provider->name, sizeof provider->name, "the malloc of %s",
					 file_name(module_symbols_module(module)->path));
		}
	}
	struct module_symbols *chosen = replacement ? replacement : static_glibc ? static_glibc : libc;
	if (chosen == NULL)
		return false;
	provider->module = chosen;
	if (replacement != NULL && (static_glibc != NULL || libc != NULL))
		provider->walk_beside[provider->walk_beside_count++] = (struct beside_malloc){
			&glibc_allocator, static_glibc ? static_glibc : libc, static_glibc != NULL};
	provider->module_path = module_symbols_module(chosen)->path;
	provider->linked_statically = replacement == NULL && static_glibc != NULL;
	if (replacement == NULL) {
		provider->allocator = &glibc_allocator;
		snprintf(provider->name, sizeof provider->name, "%s", glibc_allocator.name);
	}
	return true;
}
