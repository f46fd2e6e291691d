/* Finding the process's malloc (see malloc_provider.h). A module other than libc and the dynamic
 * loader that defines `malloc` replaces glibc's: the executable and preloaded libraries come
 * before libc in symbol lookup, and libraries that define malloc are linked to replace it. The
 * in-process hook (libheapsnap.so) defines malloc too, but only to forward to glibc's. */
#include "malloc_provider.h"

#include <stdio.h>
#include <string.h>

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

/* The allocator a module holds, from the symbols each one alone defines; false when none is
 * known. */
static bool known_allocator(struct module_symbols *module, char *name, size_t size)
{
	static const struct {
		const char *symbol, *name;
	} known[] = {
		{"mallctl", "jemalloc"},	  {"je_mallctl", "jemalloc"},
		{"tc_malloc", "tcmalloc"},	  {"mi_malloc", "mimalloc"},
		{"__asan_init", "AddressSanitizer's allocator"},
		{"__hwasan_init", "HWAddressSanitizer's allocator"},
		{"__msan_init", "MemorySanitizer's allocator"},
		{"__tsan_init", "ThreadSanitizer's allocator"},
		{"scudo_malloc_info", "scudo"}, {"snmalloc_malloc", "snmalloc"},
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (defines(module, known[i].symbol)) {
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
		if (!defines(module, "malloc") || defines(module, "heapsnap_capture"))
			continue; /* (heapsnap's hook forwards to glibc's malloc) */
		char name[sizeof provider->name];
		bool known = known_allocator(module, name, sizeof name);
		if (!known && defines(module, "main_arena")) {
			if (static_glibc == NULL)
				static_glibc = module; /* glibc linked in statically */
		} else if (replacement == NULL) {
			replacement = module;
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
	provider->module_path = module_symbols_module(chosen)->path;
	provider->glibc = replacement == NULL;
	provider->static_glibc = replacement == NULL && static_glibc != NULL;
	if (replacement == NULL)
		snprintf(provider->name, sizeof provider->name, "glibc malloc");
	return true;
}
