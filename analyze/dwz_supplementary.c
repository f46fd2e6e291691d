/* Finding dwz supplementary files (see dwz_supplementary.h). */
#include "dwz_supplementary.h"

#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/open_file.h"

/* The bytes of the section `wanted` of an opened ELF file, or NULL. */
static Elf_Data *section_data(Elf *elf, const char *wanted)
{
	size_t names;
	if (elf_getshdrstrndx(elf, &names) != 0)
		return NULL;
	for (Elf_Scn *section = NULL; (section = elf_nextscn(elf, section)) != NULL;) {
		GElf_Shdr header;
		const char *name = gelf_getshdr(section, &header)
					   ? elf_strptr(elf, names, header.sh_name)
					   : NULL;
		if (name && strcmp(name, wanted) == 0 && header.sh_type != SHT_NOBITS)
			return elf_getdata(section, NULL);
	}
	return NULL;
}

/* Calls `read` with the opened ELF file at `path`; false when it cannot be opened. */
static bool with_elf(const char *path, void (*read)(Elf *elf, void *context), void *context)
{
	int fd = open_regular_file(path);
	if (fd < 0)
		return false;
	elf_version(EV_CURRENT);
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf)
		read(elf, context);
	if (elf)
		elf_end(elf);
	close(fd);
	return elf != NULL;
}

static void read_link(Elf *elf, void *context)
{
	struct dwz_link *link = context;
	Elf_Data *data = section_data(elf, ".gnu_debugaltlink");
	if (data == NULL || data->d_buf == NULL || data->d_size == 0)
		return;
	const char *bytes = data->d_buf;
	size_t path_length = strnlen(bytes, data->d_size);
	if (path_length == 0 || path_length >= data->d_size || path_length >= sizeof link->path)
		return; /* no terminated path */
	memcpy(link->path, bytes, path_length + 1);
	size_t id_size = data->d_size - path_length - 1;
	if (id_size > sizeof link->build_id)
		id_size = sizeof link->build_id;
	memcpy(link->build_id, bytes + path_length + 1, id_size);
	link->build_id_size = id_size;
	link->present = true;
}

void dwz_link_read(const char *debug_file, struct dwz_link *link)
{
	memset(link, 0, sizeof *link);
	with_elf(debug_file, read_link, link);
}

struct build_id_check {
	const struct dwz_link *link;
	bool matches;
};

/* The supplementary file is a relocatable ELF without program headers: its build-id is in the
 * .note.gnu.build-id section. */
static void check_build_id(Elf *elf, void *context)
{
	struct build_id_check *check = context;
	Elf_Data *data = section_data(elf, ".note.gnu.build-id");
	if (data == NULL || data->d_buf == NULL)
		return;
	GElf_Nhdr note;
	size_t name_at, desc_at;
	for (size_t at = 0; (at = gelf_getnote(data, at, &note, &name_at, &desc_at)) != 0;)
		if (note.n_type == NT_GNU_BUILD_ID && note.n_descsz == check->link->build_id_size &&
		    desc_at + note.n_descsz <= data->d_size &&
		    memcmp((const char *)data->d_buf + desc_at, check->link->build_id,
			   note.n_descsz) == 0)
			check->matches = true;
}

static bool is_the_file(const char *path, const struct dwz_link *link)
{
	struct build_id_check check = {link, false};
	return access(path, R_OK) == 0 && with_elf(path, check_build_id, &check) && check.matches;
}

/* Tries `path`; a copy of it when it is the file. */
static char *try_path(const char *path, const struct dwz_link *link)
{
	return is_the_file(path, link) ? strdup(path) : NULL;
}

/* Under `dir` (a debug directory, often ROOT/usr/lib/debug): by build-id, and the link's absolute
 * path taken from ROOT, as a sysroot holds it. */
static char *try_debug_dir(const char *dir, const struct dwz_link *link)
{
	char path[8192];
	int at = snprintf(path, sizeof path, "%s/.build-id/%02x/", dir, link->build_id[0]);
	for (size_t i = 1; i < link->build_id_size && at < (int)sizeof path - 3; i++)
		at += snprintf(path + at, sizeof path - (size_t)at, "%02x", link->build_id[i]);
	snprintf(path + at, sizeof path - (size_t)at, ".debug");
	char *found = try_path(path, link);
	const char *suffix = "/usr/lib/debug";
	size_t dir_length = strlen(dir), suffix_length = strlen(suffix);
	if (found == NULL && link->path[0] == '/' && dir_length > suffix_length &&
	    strcmp(dir + dir_length - suffix_length, suffix) == 0) {
		snprintf(path, sizeof path, "%.*s%s", (int)(dir_length - suffix_length), dir,
			 link->path);
		found = try_path(path, link);
	}
	return found;
}

char *dwz_supplementary_find(const char *debug_file, const struct dwz_link *link,
			     const char (*dirs)[4096], size_t dir_count, struct debug_fetch *fetch,
			     const char **url)
{
	if (url)
		*url = NULL;
	if (!link->present || link->build_id_size < 2)
		return NULL;
	char path[8192];
	if (link->path[0] == '/') {
		snprintf(path, sizeof path, "%s", link->path);
	} else {
		const char *slash = strrchr(debug_file, '/');
		int directory = slash ? (int)(slash - debug_file) : 1;
		snprintf(path, sizeof path, "%.*s/%s", directory, slash ? debug_file : ".",
			 link->path);
	}
	char *found = try_path(path, link);
	for (size_t d = 0; found == NULL && d < dir_count; d++)
		found = try_debug_dir(dirs[d], link);
	if (found || fetch == NULL)
		return found;
	struct snapshot_module asked = {.path = link->path, .build_id_size = link->build_id_size};
	memcpy(asked.build_id, link->build_id, link->build_id_size);
	found = debug_fetch_file(fetch, &asked, DEBUG_FETCH_DEBUGINFO, url);
	if (found && !is_the_file(found, link)) {
		free(found);
		found = NULL;
	}
	return found;
}
