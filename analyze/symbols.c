/* Module symbol tables through libelf (see symbols.h). */
#include "symbols.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze/dwarf_types.h"
#include "analyze/dwz_supplementary.h"
#include "analyze/module_files.h"
#include "common/open_file.h"
#include "formats/elf_build_id.h"

struct symbol {
	const char *name; /* points into the module's string storage */
	uint64_t address; /* run-time */
	uint64_t size;
	bool local; /* STB_LOCAL: a static */
};

struct module_symbols {
	const struct snapshot_module *module;
	bool loaded;
	uint64_t bias;
	char *file_path;  /* where its file was found on this machine, or NULL */
	char *debug_file;
	enum debug_source debug_source;
	const char *debug_url; /* the debuginfod server it came from in this run (the fetch's) */
	/* its debug file's link to a dwz supplementary file (NULL: none), and that file as found
	   (NULL: not found, and what dwz moved there is not seen) */
	struct dwz_link *dwz;
	char *supplementary_file;
	struct symbol *symbols; /* sorted by name */
	size_t symbol_count;
	struct symbol **by_address; /* the same, sorted by address */
	uint64_t start, end;	    /* the addresses the module's file is mapped at */
	uint64_t image_end;	    /* where its last PT_LOAD ends in memory (.bss included); 0: unknown */
	bool needs_cxx_runtime;	    /* its DT_NEEDED names libstdc++ or libc++ */
	char **strings; /* copies of string tables, freed with the module */
	size_t string_count;
	/* its writable sections (.data, .bss, ...), at run-time addresses: they name the data no
	   symbol covers (a stripped executable's) */
	struct data_section {
		char name[24];
		uint64_t start, end;
	} *sections;
	size_t section_count;
};

struct symbols {
	struct snapshot *snapshot;
	struct module_files own_files; /* when the caller gives none */
	struct module_files *files;
	char debug_dirs[3][4096]; /* where separate debug files are looked for, in order */
	size_t debug_dir_count;
	struct warnings *warnings;
	struct debug_fetch *fetch; /* NULL: debuginfod is not asked */
	bool no_debuginfod;	   /* --no-debuginfod: said with the modules left unnamed */
	struct module_symbols *modules;
	size_t module_count;
};

struct symbols *symbols_new(struct snapshot *snapshot, const char *debug_dir,
			    struct module_files *files, struct warnings *warnings)
{
	elf_version(EV_CURRENT);
	struct symbols *symbols = calloc(1, sizeof *symbols);
	if (symbols == NULL)
		return NULL;
	size_t count;
	const struct snapshot_module *modules = snapshot_modules(snapshot, &count);
	symbols->modules = calloc(count ? count : 1, sizeof *symbols->modules);
	if (symbols->modules == NULL) {
		free(symbols);
		return NULL;
	}
	symbols->snapshot = snapshot;
	symbols->warnings = warnings;
	symbols->module_count = count;
	if (files == NULL) {
		module_files_init(&symbols->own_files, snapshot, NULL);
		files = &symbols->own_files;
	}
	symbols->files = files;
	symbols->debug_dir_count = module_files_debug_dirs(
		files, debug_dir ? debug_dir : SYMBOLS_DEFAULT_DEBUG_DIR, symbols->debug_dirs, 3);
	size_t region_count;
	const struct snapshot_region *regions = snapshot_regions(snapshot, &region_count);
	for (size_t i = 0; i < count; i++) {
		struct module_symbols *module = &symbols->modules[i];
		module->module = &modules[i];
		module->start = UINT64_MAX;
		for (size_t k = 0; k < region_count; k++)
			if (regions[k].path && strcmp(regions[k].path, modules[i].path) == 0) {
				if (regions[k].start < module->start)
					module->start = regions[k].start;
				if (regions[k].end > module->end)
					module->end = regions[k].end;
			}
	}
	return symbols;
}

static void module_unload(struct module_symbols *module)
{
	free(module->by_address);
	free(module->sections);
	free(module->file_path);
	free(module->debug_file);
	free(module->dwz);
	free(module->supplementary_file);
	free(module->symbols);
	for (size_t i = 0; i < module->string_count; i++)
		free(module->strings[i]);
	free(module->strings);
}

void symbols_free(struct symbols *symbols)
{
	if (symbols == NULL)
		return;
	for (size_t i = 0; i < symbols->module_count; i++)
		module_unload(&symbols->modules[i]);
	if (symbols->fetch && symbols->files->fetch == symbols->fetch)
		symbols->files->fetch = NULL;
	debug_fetch_free(symbols->fetch);
	free(symbols->modules);
	free(symbols);
}

void symbols_use_debuginfod(struct symbols *symbols, const struct debug_fetch_options *options)
{
	symbols->fetch = debug_fetch_new(options, symbols->warnings);
	symbols->files->fetch = symbols->fetch;
	symbols->no_debuginfod = options->disabled;
}

/* Says the modules whose debug file was found but whose dwz supplementary file (.gnu_debugaltlink:
 * Debian's -dbgsym packages, Fedora's debuginfo) was not: what dwz moved there (shared types,
 * names) is not seen. */
static void warn_dwz_missing(struct symbols *symbols)
{
	char modules[600] = "";
	size_t used = 0, count = 0;
	for (size_t i = 0; i < symbols->module_count; i++) {
		const struct module_symbols *module = &symbols->modules[i];
		if (!module->loaded || module->dwz == NULL || module->supplementary_file)
			continue;
		if (count++ < 4 && used < sizeof modules)
			used += (size_t)snprintf(modules + used, sizeof modules - used,
						 "%s%s (needs %s)", used ? ", " : "",
						 module->module->path, module->dwz->path);
	}
	if (count)
		warnings_add(symbols->warnings,
			     "the debug info of %zu module%s is split by dwz into a supplementary "
			     "file (.gnu_debugaltlink) that was not found (by its path, by build-id "
			     "under the debug directories, from debuginfod when asked): the types "
			     "and names it holds are not seen: %s%s; install the package that has it (on "
			     "Debian the -dbgsym package's /usr/lib/debug/.dwz/ file) or name a "
			     "debuginfod server that has it",
			     count, count == 1 ? "" : "s", modules, count > 4 ? " and more" : "");
}

void symbols_warn_unfetched(struct symbols *symbols)
{
	debug_fetch_warn(symbols->fetch);
	warn_dwz_missing(symbols);
	if (!symbols->no_debuginfod)
		return;
	/* debuginfod was turned off: the modules it would have been asked for are said (when it
	   is not set up at all, nothing is said, as before it existed) */
	char modules[600] = "";
	size_t used = 0, count = 0;
	for (size_t i = 0; i < symbols->module_count; i++) {
		const struct module_symbols *module = &symbols->modules[i];
		if (!module->loaded || module->debug_source != DEBUG_SOURCE_NONE ||
		    module->module->build_id_size == 0)
			continue;
		if (count++ < 8 && used < sizeof modules)
			used += (size_t)snprintf(modules + used, sizeof modules - used, "%s%s",
						 used ? ", " : "", module->module->path);
	}
	if (count)
		warnings_add(symbols->warnings,
			     "no debug info here for %zu module%s, left unnamed (their types and "
			     "globals): %s%s; debuginfod was not asked (--no-debuginfod): install "
			     "their debug packages, point --debug-dir at their debug files, or let "
			     "heapsnap ask debuginfod (--debuginfod URLS or DEBUGINFOD_URLS)",
			     count, count == 1 ? "" : "s", modules, count > 8 ? " and more" : "");
}

const char *debug_source_name(enum debug_source source)
{
	static const char *const names[] = {"none", "local file", "debug package", "debuginfod"};
	return names[source];
}

static bool file_exists(const char *path) { return access(path, R_OK) == 0; }

static bool build_id_matches(const char *path, const struct snapshot_module *module)
{
	uint8_t build_id[ELF_BUILD_ID_MAX];
	size_t size = elf_build_id_from_file(path, build_id);
	return module->build_id_size == 0 ||
	       (size == module->build_id_size && memcmp(build_id, module->build_id, size) == 0);
}

/* The .gnu_debuglink name of an ELF file, or an empty string. */
static void debuglink_of(Elf *elf, char *out, size_t out_size)
{
	out[0] = '\0';
	size_t section_names;
	if (elf_getshdrstrndx(elf, &section_names) != 0)
		return;
	for (Elf_Scn *section = NULL; (section = elf_nextscn(elf, section)) != NULL;) {
		GElf_Shdr header;
		if (gelf_getshdr(section, &header) == NULL)
			continue;
		const char *name = elf_strptr(elf, section_names, header.sh_name);
		if (name == NULL || strcmp(name, ".gnu_debuglink") != 0)
			continue;
		Elf_Data *data = elf_getdata(section, NULL);
		if (data && data->d_size > 0) {
			size_t length = strnlen(data->d_buf, data->d_size);
			if (length < out_size && length < data->d_size) {
				memcpy(out, data->d_buf, length);
				out[length] = '\0';
			}
		}
	}
}

/* Finds the separate debug file, as gdb does: by build-id under the debug directory, then by
 * debuglink next to the file, in its .debug/ directory, and under the debug directory. */
static char *find_separate_debug_file(const struct symbols *symbols,
				      const struct snapshot_module *module, const char *file_path,
				      Elf *elf);

/* Whether an ELF file carries DWARF itself (a library built with -g and not stripped). */
static bool has_debug_info(Elf *elf)
{
	size_t names;
	if (elf_getshdrstrndx(elf, &names) != 0)
		return false;
	for (Elf_Scn *section = NULL; (section = elf_nextscn(elf, section)) != NULL;) {
		GElf_Shdr header;
		const char *name = gelf_getshdr(section, &header)
					   ? elf_strptr(elf, names, header.sh_name)
					   : NULL;
		if (name && strcmp(name, ".debug_info") == 0 && header.sh_type != SHT_NOBITS)
			return true;
	}
	return false;
}

/* The separate debug file by build-id or debuglink; else the module's own file (found at
 * file_path) when it has DWARF. */
static char *find_debug_file(const struct symbols *symbols, const struct snapshot_module *module,
			     const char *file_path, Elf *elf)
{
	char *found = find_separate_debug_file(symbols, module, file_path, elf);
	if (found == NULL && has_debug_info(elf))
		found = strdup(file_path);
	return found;
}

static char *find_separate_debug_file(const struct symbols *symbols,
				      const struct snapshot_module *module, const char *file_path,
				      Elf *elf)
{
	char path[4096];
	for (size_t d = 0; d < symbols->debug_dir_count && module->build_id_size >= 2; d++) {
		int at = snprintf(path, sizeof path, "%s/.build-id/%02x/", symbols->debug_dirs[d],
				  module->build_id[0]);
		for (size_t i = 1; i < module->build_id_size && at < (int)sizeof path - 3; i++)
			at += snprintf(path + at, sizeof path - (size_t)at, "%02x",
				       module->build_id[i]);
		snprintf(path + at, sizeof path - (size_t)at, ".debug");
		if (file_exists(path) && build_id_matches(path, module))
			return strdup(path);
	}
	char link[256];
	debuglink_of(elf, link, sizeof link);
	if (link[0] == '\0')
		return NULL;
	/* beside the file as found here, and under each debug directory by the path the process
	   saw it at, as gdb looks */
	char directory[4096];
	snprintf(directory, sizeof directory, "%s", file_path);
	char *slash = strrchr(directory, '/');
	if (slash)
		*slash = '\0';
	const char *patterns[] = {"%s/%s", "%s/.debug/%s", NULL};
	for (int i = 0; patterns[i]; i++) {
		snprintf(path, sizeof path, patterns[i], directory, link);
		if (strcmp(path, file_path) != 0 && file_exists(path) &&
		    build_id_matches(path, module))
			return strdup(path);
	}
	snprintf(directory, sizeof directory, "%s", module->path);
	slash = strrchr(directory, '/');
	if (slash)
		*slash = '\0';
	for (size_t d = 0; d < symbols->debug_dir_count; d++)
		if ((size_t)snprintf(path, sizeof path, "%s%s/%s", symbols->debug_dirs[d], directory,
				     link) < sizeof path &&
		    file_exists(path) && build_id_matches(path, module))
			return strdup(path);
	return NULL;
}

static int compare_symbols(const void *left, const void *right)
{
	const struct symbol *a = left, *b = right;
	return strcmp(a->name, b->name);
}

static int compare_addresses(const void *left, const void *right)
{
	const struct symbol *const *a = left, *const *b = right;
	if ((*a)->address != (*b)->address)
		return (*a)->address < (*b)->address ? -1 : 1;
	/* at one address, the sized symbol first, then by name for a stable choice */
	if ((*a)->size != (*b)->size)
		return (*a)->size > (*b)->size ? -1 : 1;
	return strcmp((*a)->name, (*b)->name);
}

/* Keeps the module's allocated writable sections, at run-time addresses. */
static void read_data_sections(struct module_symbols *module, Elf *elf, uint64_t bias)
{
	size_t names;
	if (elf_getshdrstrndx(elf, &names) != 0)
		return;
	for (Elf_Scn *section = NULL; (section = elf_nextscn(elf, section)) != NULL;) {
		GElf_Shdr header;
		const char *name = gelf_getshdr(section, &header)
					   ? elf_strptr(elf, names, header.sh_name)
					   : NULL;
		if (name == NULL || (header.sh_flags & (SHF_ALLOC | SHF_WRITE)) !=
					    (SHF_ALLOC | SHF_WRITE) || header.sh_size == 0)
			continue;
		void *grown = realloc(module->sections,
				      (module->section_count + 1) * sizeof *module->sections);
		if (grown == NULL)
			return;
		module->sections = grown;
		struct data_section *kept = &module->sections[module->section_count++];
		snprintf(kept->name, sizeof kept->name, "%s", name);
		kept->start = header.sh_addr + bias;
		kept->end = kept->start + header.sh_size;
	}
}

/* Adds the symbols of every SHT_SYMTAB and SHT_DYNSYM section of `elf`. */
static void read_symbol_tables(struct module_symbols *module, Elf *elf, uint64_t bias)
{
	for (Elf_Scn *section = NULL; (section = elf_nextscn(elf, section)) != NULL;) {
		GElf_Shdr header;
		if (gelf_getshdr(section, &header) == NULL ||
		    (header.sh_type != SHT_SYMTAB && header.sh_type != SHT_DYNSYM) ||
		    header.sh_entsize == 0)
			continue;
		Elf_Data *data = elf_getdata(section, NULL);
		Elf_Scn *strings_section = elf_getscn(elf, header.sh_link);
		Elf_Data *strings = strings_section ? elf_getdata(strings_section, NULL) : NULL;
		if (data == NULL || strings == NULL || strings->d_size == 0)
			continue;
		/* keep a copy of the string table: libelf's memory goes with the Elf handle */
		char *copy = malloc(strings->d_size + 1);
		char **grown_strings =
			realloc(module->strings, (module->string_count + 1) * sizeof *module->strings);
		if (copy == NULL || grown_strings == NULL) {
			free(copy);
			if (grown_strings)
				module->strings = grown_strings;
			continue;
		}
		module->strings = grown_strings;
		memcpy(copy, strings->d_buf, strings->d_size);
		copy[strings->d_size] = '\0';
		/* "clock_nanosleep@GLIBC_2.2.5" names clock_nanosleep, as gdb shows it */
		for (char *at = memchr(copy, '@', strings->d_size); at;
		     at = memchr(at + 1, '@', strings->d_size - (size_t)(at + 1 - copy)))
			if (at > copy && at[-1] != '\0')
				*at = '\0';
		module->strings[module->string_count++] = copy;
		size_t count = header.sh_size / header.sh_entsize;
		struct symbol *grown = realloc(module->symbols, (module->symbol_count + count) *
									sizeof *module->symbols);
		if (grown == NULL)
			continue;
		module->symbols = grown;
		for (size_t i = 0; i < count; i++) {
			GElf_Sym symbol;
			if (gelf_getsym(data, (int)i, &symbol) == NULL || symbol.st_name == 0 ||
			    symbol.st_name >= strings->d_size || symbol.st_shndx == SHN_UNDEF)
				continue;
			int type = GELF_ST_TYPE(symbol.st_info);
			if (type != STT_OBJECT && type != STT_FUNC && type != STT_TLS &&
			    type != STT_NOTYPE && type != STT_GNU_IFUNC)
				continue;
			/* TLS symbols are offsets in the TLS block, not addresses */
			uint64_t address = type == STT_TLS || symbol.st_shndx == SHN_ABS
						   ? symbol.st_value
						   : symbol.st_value + bias;
			module->symbols[module->symbol_count++] =
				(struct symbol){copy + symbol.st_name, address, symbol.st_size,
						GELF_ST_BIND(symbol.st_info) == STB_LOCAL};
		}
	}
}

/* The bias from the file's program headers: the module's base is where its first PT_LOAD
 * (the one mapping file offset 0) was put. */
static uint64_t load_bias(Elf *elf, uint64_t base)
{
	size_t count;
	if (elf_getphdrnum(elf, &count) != 0)
		return base;
	for (size_t i = 0; i < count; i++) {
		GElf_Phdr header;
		if (gelf_getphdr(elf, (int)i, &header) != NULL && header.p_type == PT_LOAD)
			return base - (header.p_vaddr & ~(uint64_t)0xfff);
	}
	return base;
}

/* The end of the module's memory image (file offset of nothing: the highest PT_LOAD end, which is
 * where .bss ends), in the file's addresses. */
static uint64_t image_end(Elf *elf)
{
	size_t count;
	uint64_t end = 0;
	if (elf_getphdrnum(elf, &count) != 0)
		return 0;
	for (size_t i = 0; i < count; i++) {
		GElf_Phdr header;
		if (gelf_getphdr(elf, (int)i, &header) != NULL && header.p_type == PT_LOAD &&
		    header.p_vaddr + header.p_memsz > end)
			end = header.p_vaddr + header.p_memsz;
	}
	return end;
}

static bool is_cxx_runtime(const char *path);

/* Whether the ELF file's dynamic section needs libstdc++ or libc++ (DT_NEEDED). */
static bool needs_cxx_runtime(Elf *elf)
{
	Elf_Scn *section = NULL;
	while ((section = elf_nextscn(elf, section)) != NULL) {
		GElf_Shdr header;
		if (gelf_getshdr(section, &header) == NULL || header.sh_type != SHT_DYNAMIC ||
		    header.sh_entsize == 0)
			continue;
		Elf_Data *data = elf_getdata(section, NULL);
		size_t count = header.sh_size / header.sh_entsize;
		for (size_t i = 0; data != NULL && i < count; i++) {
			GElf_Dyn entry;
			if (gelf_getdyn(data, (int)i, &entry) == NULL || entry.d_tag == DT_NULL)
				break;
			const char *name = entry.d_tag == DT_NEEDED
						   ? elf_strptr(elf, header.sh_link, entry.d_un.d_val)
						   : NULL;
			if (name != NULL && is_cxx_runtime(name))
				return true;
		}
	}
	return false;
}

/* The dwz supplementary file of the module's debug file, when it links to one. */
static void find_supplementary_file(struct symbols *symbols, struct module_symbols *module)
{
	struct dwz_link link;
	if (module->debug_file == NULL)
		return;
	dwz_link_read(module->debug_file, &link);
	if (!link.present || (module->dwz = malloc(sizeof *module->dwz)) == NULL)
		return;
	*module->dwz = link; /* (kept: the fetch remembers the path it was asked for) */
	module->supplementary_file =
		dwz_supplementary_find(module->debug_file, module->dwz,
				       (const char(*)[4096])symbols->debug_dirs,
				       symbols->debug_dir_count, symbols->fetch, NULL);
}

/* Says where the module's debug file came from, and asks debuginfod for one when there is none
 * here. */
static void find_debug_source(struct symbols *symbols, struct module_symbols *module)
{
	const char *url = NULL;
	if (module->debug_file == NULL) {
		module->debug_file = debug_fetch_file(symbols->fetch, module->module,
						      DEBUG_FETCH_DEBUGINFO, &url);
		module->debug_url = url;
		module->debug_source =
			module->debug_file ? DEBUG_SOURCE_DEBUGINFOD : DEBUG_SOURCE_NONE;
	} else if (debug_fetch_was_fetched(symbols->fetch, module->debug_file, &url)) {
		module->debug_source = DEBUG_SOURCE_DEBUGINFOD; /* the fetched file has DWARF */
		module->debug_url = url;
	} else
		module->debug_source = strcmp(module->debug_file, module->file_path) == 0
					       ? DEBUG_SOURCE_LOCAL_FILE
					       : DEBUG_SOURCE_DEBUG_PACKAGE;
	find_supplementary_file(symbols, module);
}

static void module_load(struct symbols *symbols, struct module_symbols *module)
{
	module->loaded = true;
	const struct snapshot_module *info = module->module;
	char why[1024];
	int fd = module_files_open(symbols->files, info, &module->file_path, why, sizeof why);
	Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
	if (elf == NULL) {
		char hint[512];
		if (fd < 0)
			warnings_add(symbols->warnings,
				     "%s: the file the process had mapped is not found (%s): its "
				     "symbols are not used",
				     info->path, why);
		if (fd < 0 && module_files_hint(symbols->files, hint, sizeof hint))
			warnings_add(symbols->warnings, "%s", hint);
		if (fd >= 0)
			warnings_add(symbols->warnings, "%s: cannot be read for its symbols (%s)",
				     info->path, module->file_path);
		if (fd >= 0)
			close(fd);
		free(module->file_path);
		module->file_path = NULL;
		return;
	}
	module->bias = load_bias(elf, info->base);
	module->needs_cxx_runtime = needs_cxx_runtime(elf);
	uint64_t end = image_end(elf);
	module->image_end = end ? end + module->bias : 0;
	read_symbol_tables(module, elf, module->bias);
	read_data_sections(module, elf, module->bias);
	module->debug_file = find_debug_file(symbols, info, module->file_path, elf);
	elf_end(elf);
	close(fd);
	find_debug_source(symbols, module);
	if (module->debug_file && strcmp(module->debug_file, module->file_path) != 0) {
		fd = open_regular_file(module->debug_file);
		elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
		if (elf) {
			read_symbol_tables(module, elf, module->bias);
			elf_end(elf);
		}
		if (fd >= 0)
			close(fd);
	}
	if (module->symbol_count)
		qsort(module->symbols, module->symbol_count, sizeof *module->symbols,
		      compare_symbols);
	module->by_address = malloc((module->symbol_count + 1) * sizeof *module->by_address);
	if (module->by_address && module->symbol_count) {
		for (size_t i = 0; i < module->symbol_count; i++)
			module->by_address[i] = &module->symbols[i];
		qsort(module->by_address, module->symbol_count, sizeof *module->by_address,
		      compare_addresses);
	}
}

struct module_symbols *symbols_find_module(struct symbols *symbols, const char *prefix)
{
	for (size_t i = 0; i < symbols->module_count; i++) {
		const char *path = symbols->modules[i].module->path;
		const char *name = strrchr(path, '/');
		name = name ? name + 1 : path;
		if (strncmp(name, prefix, strlen(prefix)) == 0) {
			struct module_symbols *module = &symbols->modules[i];
			if (!module->loaded)
				module_load(symbols, module);
			return module;
		}
	}
	return NULL;
}

/* Whether the module defines a symbol whose name starts with `prefix`. */
static bool defines_prefix(const struct module_symbols *module, const char *prefix)
{
	/* the first name not below the prefix (the symbols are sorted by name) */
	size_t low = 0, high = module->symbol_count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (strcmp(module->symbols[middle].name, prefix) < 0)
			low = middle + 1;
		else
			high = middle;
	}
	return low < module->symbol_count &&
	       strncmp(module->symbols[low].name, prefix, strlen(prefix)) == 0;
}

static bool is_cxx_runtime(const char *path)
{
	const char *name = strrchr(path, '/');
	name = name ? name + 1 : path;
	return strncmp(name, "libstdc++.so", 12) == 0 || strncmp(name, "libc++.so", 9) == 0 ||
	       strncmp(name, "libc++abi.so", 12) == 0;
}

bool symbols_may_name_cxx_objects(struct symbols *symbols,
				  struct module_symbols *const *except, size_t except_count)
{
	for (size_t i = 0; i < symbols->module_count; i++) {
		struct module_symbols *module = &symbols->modules[i];
		bool excepted = is_cxx_runtime(module->module->path);
		for (size_t k = 0; k < except_count && !excepted; k++)
			excepted = except[k] == module;
		if (excepted)
			continue;
		if (!module->loaded)
			module_load(symbols, module);
		if (module->needs_cxx_runtime || defines_prefix(module, "_ZTV"))
			return true;
	}
	return false;
}

const struct snapshot_module *module_symbols_module(const struct module_symbols *module)
{
	return module->module;
}

uint64_t module_symbols_bias(struct module_symbols *module) { return module->bias; }

struct dwarf_types *module_symbols_open_types(struct module_symbols *module,
					     struct hs_error *err)
{
	const char *debug_file = module_symbols_debug_file(module);
	if (debug_file == NULL) {
		hs_error_set(err, "%s has no debug information here", module->module->path);
		return NULL;
	}
	return dwarf_types_open(debug_file, module->supplementary_file, err);
}

const char *module_symbols_supplementary_file(struct module_symbols *module)
{
	return module->supplementary_file;
}

const char *module_symbols_debug_file(struct module_symbols *module)
{
	return module->debug_file;
}

enum debug_source module_symbols_debug_source(struct module_symbols *module, const char **url)
{
	*url = module->debug_url;
	return module->debug_source;
}

const char *module_symbols_file(struct module_symbols *module)
{
	if (!module->loaded)
		return NULL;
	return module->file_path;
}

/* A symbol named `name` (any of them when several are), or NULL. */
static const struct symbol *find_symbol(const struct module_symbols *module, const char *name)
{
	if (module->symbol_count == 0)
		return NULL;
	struct symbol key = {.name = name};
	return bsearch(&key, module->symbols, module->symbol_count, sizeof key, compare_symbols);
}

bool module_symbols_lookup(struct module_symbols *module, const char *name, uint64_t *address,
			   uint64_t *size)
{
	const struct symbol *found = find_symbol(module, name);
	if (found == NULL)
		return false;
	*address = found->address;
	if (size)
		*size = found->size;
	return true;
}

bool module_symbols_exports(struct module_symbols *module, const char *name)
{
	const struct symbol *found = find_symbol(module, name);
	if (found == NULL)
		return false;
	/* (equal names sit together: a static and a global of one name, or .symtab and .dynsym) */
	const struct symbol *first = module->symbols, *end = module->symbols + module->symbol_count;
	while (found > first && strcmp(found[-1].name, name) == 0)
		found--;
	for (; found < end && strcmp(found->name, name) == 0; found++)
		if (!found->local)
			return true;
	return false;
}

struct module_symbols *symbols_module_of(struct symbols *symbols, uint64_t address)
{
	for (size_t i = 0; i < symbols->module_count; i++) {
		struct module_symbols *module = &symbols->modules[i];
		if (address >= module->start && address < module->end) {
			if (!module->loaded)
				module_load(symbols, module);
			return module;
		}
	}
	return NULL;
}

/* How many of the module's symbols (by address) start at or before `address`: the last of
 * them is by_address[count - 1]. */
static size_t symbols_starting_by(const struct module_symbols *module, uint64_t address)
{
	size_t low = 0, high = module->symbol_count;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		if (module->by_address[mid]->address <= address)
			low = mid + 1;
		else
			high = mid;
	}
	return low;
}

bool symbols_lookup_address(struct symbols *symbols, uint64_t address, const char **module_path,
			    const char **name, uint64_t *offset)
{
	return symbols_lookup_address_local(symbols, address, module_path, name, offset, NULL);
}

bool symbols_lookup_address_local(struct symbols *symbols, uint64_t address,
				  const char **module_path, const char **name, uint64_t *offset,
				  bool *local)
{
	for (size_t i = 0; i < symbols->module_count; i++) {
		struct module_symbols *module = &symbols->modules[i];
		/* (a large .bss goes on past the file's mappings, in the anonymous one after them:
		   its statics are the module's too) */
		if (address < module->start ||
		    address >= (module->image_end > module->end ? module->image_end : module->end))
			continue;
		if (!module->loaded)
			module_load(symbols, module);
		*module_path = module->module->path;
		if (module->by_address == NULL || module->symbol_count == 0)
			return false;
		size_t low = symbols_starting_by(module, address);
		/* among those, the nearest one that covers it (sized), or the nearest unsized one */
		for (size_t k = low; k-- > 0;) {
			const struct symbol *symbol = module->by_address[k];
			/* a symbol without a size (an assembler label, a section marker such as
			 * __TMC_END__) names only what is right at it */
			if (symbol->address + symbol->size > address ||
			    (symbol->size == 0 && k + 1 == low && address - symbol->address < 64)) {
				*name = symbol->name;
				*offset = address - symbol->address;
				if (local)
					*local = symbol->local;
				return true;
			}
			if (address - symbol->address > (1u << 20))
				break;
		}
		return false;
	}
	return false;
}

/* How far past the end of the symbol before it an address may be for that symbol to say where
 * it is: farther, the symbol is another object's, of no help. */
#define NEAR_SYMBOL_BYTES 4096

/* The name of the nearest symbol that starts at or before `address` but not before `floor` (the
 * start of its section) and ends at most NEAR_SYMBOL_BYTES before it, or NULL. */
static const char *symbol_before_in(const struct module_symbols *module, uint64_t address,
				    uint64_t floor)
{
	if (module->by_address == NULL || module->symbol_count == 0)
		return NULL;
	size_t count = symbols_starting_by(module, address);
	if (count == 0)
		return NULL;
	const struct symbol *before = module->by_address[count - 1];
	if (before->address < floor || address - before->address > before->size + NEAR_SYMBOL_BYTES)
		return NULL;
	return before->name;
}

bool symbols_lookup_section(struct symbols *symbols, uint64_t address, const char **module_path,
			    const char **section, uint64_t *offset, const char **near)
{
	for (size_t i = 0; i < symbols->module_count; i++) {
		struct module_symbols *module = &symbols->modules[i];
		if (address < module->start ||
		    address >= (module->image_end > module->end ? module->image_end : module->end))
			continue;
		if (!module->loaded)
			module_load(symbols, module);
		for (size_t k = 0; k < module->section_count; k++)
			if (address >= module->sections[k].start && address < module->sections[k].end) {
				*module_path = module->module->path;
				*section = module->sections[k].name;
				*offset = address - module->sections[k].start;
				if (near)
					*near = symbol_before_in(module, address,
								 module->sections[k].start);
				return true;
			}
	}
	return false;
}

size_t symbols_module_count(const struct symbols *symbols) { return symbols->module_count; }

struct module_symbols *symbols_module_at(struct symbols *symbols, size_t index)
{
	struct module_symbols *module = &symbols->modules[index];
	if (!module->loaded)
		module_load(symbols, module);
	return module;
}

uint64_t symbols_module_image_end(struct symbols *symbols, const char *path)
{
	for (size_t i = 0; i < symbols->module_count; i++)
		if (strcmp(symbols->modules[i].module->path, path) == 0)
			return symbols_module_at(symbols, i)->image_end;
	return 0;
}
