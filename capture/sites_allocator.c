/* Finding the malloc a process calls from its mapped files' dynamic symbols (see
 * sites_allocator.h). The order is the dynamic linker's: the executable and the libraries that
 * replace malloc come before libc, whose malloc they interpose. Only exported, defined functions
 * count: a probe on a symbol the program's calls do not reach would record nothing. */
#include "capture/sites_allocator.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "capture/proc.h"

static const struct {
	const char *symbol;
	enum sites_entry_kind kind;
	bool replacing_only; /* C++'s operators: glibc's reach its malloc through libstdc++ */
} known_entries[] = {
	{"malloc", SITES_ENTRY_MALLOC, false},
	{"calloc", SITES_ENTRY_CALLOC, false},
	{"realloc", SITES_ENTRY_REALLOC, false},
	{"free", SITES_ENTRY_FREE, false},
	{"aligned_alloc", SITES_ENTRY_ALIGNED, false},
	{"memalign", SITES_ENTRY_ALIGNED, false},
	{"posix_memalign", SITES_ENTRY_POSIX_MEMALIGN, false},
	{"_Znwm", SITES_ENTRY_MALLOC, true},
	{"_Znam", SITES_ENTRY_MALLOC, true},
	{"_ZnwmRKSt9nothrow_t", SITES_ENTRY_MALLOC, true},
	{"_ZnamRKSt9nothrow_t", SITES_ENTRY_MALLOC, true},
	{"_ZdlPv", SITES_ENTRY_FREE, true},
	{"_ZdaPv", SITES_ENTRY_FREE, true},
	{"_ZdlPvm", SITES_ENTRY_FREE, true},
	{"_ZdaPvm", SITES_ENTRY_FREE, true},
	/* jemalloc's own API: a block it frees must leave the map, or its address, reused by a
	   call not probed, would keep the old site */
	{"mallocx", SITES_ENTRY_MALLOC, true},
	{"rallocx", SITES_ENTRY_REALLOC, true},
	{"dallocx", SITES_ENTRY_FREE, true},
	{"sdallocx", SITES_ENTRY_FREE, true},
};

/* Each allocator by a symbol only it exports (the walkers' recognising symbols). */
static const struct {
	const char *symbol, *name;
} allocator_names[] = {
	{"mallctl", "jemalloc"}, {"je_mallctl", "jemalloc"}, {"tc_malloc", "tcmalloc"},
	{"mi_malloc", "mimalloc"},
};

static bool is_libc(const char *path)
{
	const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
	return strncmp(name, "libc.so", 7) == 0 || strncmp(name, "libc-2.", 7) == 0;
}

/* The dynamic symbol table's exported, defined functions checked against the known entries and
 * names; false when the file has no `malloc` among them. */
static bool read_entries(const char *path, struct sites_allocator *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	bool found[sizeof known_entries / sizeof known_entries[0]] = {0};
	size_t name = sizeof allocator_names / sizeof allocator_names[0]; /* none yet */
	Elf_Scn *section = NULL;
	while (elf && (section = elf_nextscn(elf, section)) != NULL) {
		GElf_Shdr header;
		if (gelf_getshdr(section, &header) == NULL || header.sh_type != SHT_DYNSYM ||
		    header.sh_entsize == 0)
			continue;
		Elf_Data *data = elf_getdata(section, NULL);
		for (size_t i = 0; data && i < header.sh_size / header.sh_entsize; i++) {
			GElf_Sym symbol;
			const char *text;
			if (gelf_getsym(data, (int)i, &symbol) == NULL || symbol.st_shndx == SHN_UNDEF ||
			    GELF_ST_TYPE(symbol.st_info) != STT_FUNC ||
			    (text = elf_strptr(elf, header.sh_link, symbol.st_name)) == NULL)
				continue;
			for (size_t k = 0; k < sizeof known_entries / sizeof known_entries[0]; k++)
				found[k] = found[k] || strcmp(text, known_entries[k].symbol) == 0;
			for (size_t k = 0; k < name; k++)
				if (strcmp(text, allocator_names[k].symbol) == 0)
					name = k;
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	if (!found[0])
		return false;
	snprintf(out->path, sizeof out->path, "%s", path);
	bool named = name < sizeof allocator_names / sizeof allocator_names[0];
	snprintf(out->name, sizeof out->name, "%s",
		 named ? allocator_names[name].name : is_libc(path) ? "glibc" : "unknown");
	out->entry_count = 0;
	bool replacing = !is_libc(path);
	for (size_t k = 0; k < sizeof known_entries / sizeof known_entries[0]; k++)
		if (found[k] && (replacing || !known_entries[k].replacing_only)) {
			out->entries[out->entry_count].symbol = known_entries[k].symbol;
			out->entries[out->entry_count++].kind = known_entries[k].kind;
		}
	return true;
}

int sites_allocator_find(pid_t pid, struct sites_allocator *out, struct hs_error *err)
{
	struct proc_maps maps = {0};
	if (proc_read_maps(pid, &maps, err) != 0)
		return -1;
	elf_version(EV_CURRENT);
	char exe[4096] = "", link[64];
	snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
	ssize_t length = readlink(link, exe, sizeof exe - 1);
	if (length > 0)
		exe[length] = '\0';
	bool found = exe[0] && read_entries(exe, out);
	/* pass 0: the libraries that replace libc's malloc; pass 1: libc */
	for (int pass = 0; pass < 2 && !found; pass++)
		for (size_t i = 0; i < maps.count && !found; i++) {
			const char *path = maps.mappings[i].path;
			if (path[0] != '/' || strcmp(path, exe) == 0 || is_libc(path) != (pass == 1) ||
			    (i > 0 && strcmp(maps.mappings[i - 1].path, path) == 0))
				continue;
			found = read_entries(path, out);
		}
	proc_maps_free(&maps);
	if (!found)
		return hs_error_set_code(err, HS_ERR_UNSUPPORTED,
					 "no file mapped by pid %d exports malloc (a static executable "
					 "without dynamic symbols, or an allocator under other names): "
					 "no uprobe can record its allocations",
					 (int)pid);
	return 0;
}
