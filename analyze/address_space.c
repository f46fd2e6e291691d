/* The analysis's view of memory (see address_space.h). */
#include "address_space.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze/module_files.h"
#include "common/open_file.h"
#include "formats/elf_build_id.h"

#define CURSOR_WINDOW (4u << 20)

/* One mapped file the snapshot does not hold the bytes of, opened on first use. */
struct backing_file {
	const char *path;
	int fd;	      /* -1: not opened yet, or unusable */
	bool checked; /* opened and its build-id compared (or found wanting) */
};

struct address_space {
	struct snapshot *snapshot;
	struct warnings *warnings;
	struct module_files own_files; /* when the caller sets none */
	struct module_files *module_files; /* where the mapped files are found */
	struct backing_file *files;
	size_t file_count;
};

struct address_space *address_space_new(struct snapshot *snapshot, struct warnings *warnings,
					struct hs_error *err)
{
	struct address_space *space = calloc(1, sizeof *space);
	size_t region_count;
	const struct snapshot_region *regions = snapshot_regions(snapshot, &region_count);
	if (space != NULL)
		space->files = calloc(region_count ? region_count : 1, sizeof *space->files);
	if (space == NULL || space->files == NULL) {
		free(space);
		hs_error_nomem(err, "reading %s", snapshot_path(snapshot));
		return NULL;
	}
	space->snapshot = snapshot;
	space->warnings = warnings;
	module_files_init(&space->own_files, snapshot, NULL);
	space->module_files = &space->own_files;
	for (size_t i = 0; i < region_count; i++) {
		if (regions[i].path == NULL)
			continue;
		bool seen = false;
		for (size_t k = 0; k < space->file_count && !seen; k++)
			seen = strcmp(space->files[k].path, regions[i].path) == 0;
		if (!seen)
			space->files[space->file_count++] =
				(struct backing_file){.path = regions[i].path, .fd = -1};
	}
	return space;
}

void address_space_free(struct address_space *space)
{
	if (space == NULL)
		return;
	for (size_t i = 0; i < space->file_count; i++)
		if (space->files[i].fd >= 0)
			close(space->files[i].fd);
	free(space->files);
	free(space);
}

struct snapshot *address_space_snapshot(const struct address_space *space)
{
	return space->snapshot;
}

static const struct snapshot_module *recorded_module(struct snapshot *snapshot, const char *path)
{
	size_t count;
	const struct snapshot_module *modules = snapshot_modules(snapshot, &count);
	for (size_t i = 0; i < count; i++)
		if (strcmp(modules[i].path, path) == 0)
			return &modules[i];
	return NULL;
}

void address_space_set_module_files(struct address_space *space, struct module_files *files)
{
	space->module_files = files;
}

/* Opens the file behind a region, the one with the build-id recorded at capture (or at import).
 * Every way it can fail is a warning naming the file, once: the reads that needed its bytes then
 * fail, and what they would have found (a type's name, a constant) is missing. */
static int open_checked(struct address_space *space, const char *path)
{
	const struct snapshot_module *recorded = recorded_module(space->snapshot, path);
	if (recorded == NULL)
		return -1; /* no module: a data file (a locale archive) the analysis never needs */
	if (recorded->build_id_size == 0) {
		/* a data file mapped from its start is no module either; an ELF file is, but its
		   bytes cannot be checked */
		char *used = NULL;
		char why[16];
		int fd = module_files_open(space->module_files, recorded, &used, why, sizeof why);
		char magic[4] = {0};
		bool elf = fd >= 0 && pread(fd, magic, sizeof magic, 0) == (ssize_t)sizeof magic &&
			   memcmp(magic, "\177ELF", 4) == 0;
		if (elf)
			warnings_add(space->warnings,
				     "%s: no build-id was recorded at capture, so its bytes cannot be "
				     "checked and are not used",
				     path);
		if (fd >= 0)
			close(fd);
		free(used);
		return -1;
	}
	char *used = NULL;
	char why[1024];
	int fd = module_files_open(space->module_files, recorded, &used, why, sizeof why);
	free(used);
	char hint[512];
	if (fd < 0)
		warnings_add(space->warnings,
			     "%s: the file the process had mapped is not found (%s), so the bytes of "
			     "it that the snapshot does not hold (read-only data: type names, "
			     "constants) are missing",
			     path, why);
	if (fd < 0 && module_files_hint(space->module_files, hint, sizeof hint))
		warnings_add(space->warnings, "%s", hint);
	return fd;
}

/* The file behind a region, opened and checked on first use. */
static struct backing_file *usable_file(struct address_space *space, const char *path)
{
	struct backing_file *file = NULL;
	for (size_t i = 0; i < space->file_count && file == NULL; i++)
		if (strcmp(space->files[i].path, path) == 0)
			file = &space->files[i];
	if (file != NULL && !file->checked) {
		file->checked = true;
		file->fd = open_checked(space, path);
	}
	return file != NULL && file->fd >= 0 ? file : NULL;
}

int address_space_read(struct address_space *space, uint64_t addr, void *buf, size_t size,
		       struct hs_error *err)
{
	if (snapshot_read(space->snapshot, addr, buf, size, err) == 0)
		return 0;
	/* not in the snapshot: maybe in a mapped file, region by region */
	uint8_t *out = buf;
	while (size > 0) {
		const struct snapshot_region *region = snapshot_find_region(space->snapshot, addr);
		if (region == NULL)
			return hs_error_set(err, "address 0x%llx is not mapped",
					    (unsigned long long)addr);
		uint64_t available = region->end - addr;
		size_t take = size < available ? size : (size_t)available;
		uint64_t within = addr - region->start;
		if (within < region->data_size && take > region->data_size - within)
			take = (size_t)(region->data_size - within); /* the stored part first */
		/* a file's bytes only where the process could read them (not its ---p gaps) */
		if (within < region->data_size || region->path == NULL || !(region->flags & PF_R)) {
			if (snapshot_read(space->snapshot, addr, out, take, err) != 0)
				return -1;
		} else {
			struct backing_file *file = usable_file(space, region->path);
			if (file == NULL)
				return hs_error_set(err, "address 0x%llx: the bytes of %s are not available",
						    (unsigned long long)addr, region->path);
			ssize_t got = pread(file->fd, out, take, (off_t)(region->file_offset + within));
			if (got != (ssize_t)take)
				return hs_error_set(err, "address 0x%llx: %s is shorter than its mapping",
						    (unsigned long long)addr, region->path);
		}
		out += take;
		addr += take;
		size -= take;
	}
	return 0;
}

bool address_space_read_u64(struct address_space *space, uint64_t addr, uint64_t *out)
{
	return address_space_read(space, addr, out, sizeof *out, NULL) == 0;
}

void address_cursor_init(struct address_cursor *cursor, struct address_space *space)
{
	memset(cursor, 0, sizeof *cursor);
	cursor->space = space;
}

void address_cursor_free(struct address_cursor *cursor)
{
	free(cursor->bytes);
	memset(cursor, 0, sizeof *cursor);
}

bool address_cursor_read_u64(struct address_cursor *cursor, uint64_t addr, uint64_t limit,
			     uint64_t *out)
{
	if (addr >= cursor->start && addr - cursor->start + 8 <= cursor->size &&
	    addr + 8 > addr) {
		memcpy(out, cursor->bytes + (addr - cursor->start), 8);
		return true;
	}
	if (cursor->bytes == NULL) {
		cursor->bytes = malloc(CURSOR_WINDOW);
		if (cursor->bytes == NULL)
			return address_space_read_u64(cursor->space, addr, out);
		cursor->capacity = CURSOR_WINDOW;
	}
	/* refill from addr, as far as the walk goes and the memory is readable */
	uint64_t size = limit > addr ? limit - addr : 8;
	if (size > cursor->capacity)
		size = cursor->capacity;
	if (size < 8)
		size = 8;
	cursor->size = 0;
	while (size >= 8) {
		if (address_space_read(cursor->space, addr, cursor->bytes, (size_t)size, NULL) == 0) {
			cursor->start = addr;
			cursor->size = (size_t)size;
			memcpy(out, cursor->bytes, 8);
			return true;
		}
		size /= 2; /* part of it is unreadable: try less */
	}
	return false;
}

const uint8_t *address_cursor_view(struct address_cursor *cursor, uint64_t addr, size_t size,
				   uint64_t limit)
{
	if (addr >= cursor->start && addr + size >= addr &&
	    addr + size <= cursor->start + cursor->size)
		return cursor->bytes + (addr - cursor->start);
	if (size > CURSOR_WINDOW)
		return NULL;
	if (cursor->bytes == NULL) {
		cursor->bytes = malloc(CURSOR_WINDOW);
		if (cursor->bytes == NULL)
			return NULL;
		cursor->capacity = CURSOR_WINDOW;
	}
	uint64_t want = limit > addr + size ? limit - addr : size;
	if (want > cursor->capacity)
		want = cursor->capacity;
	cursor->size = 0;
	while (want >= size) {
		if (address_space_read(cursor->space, addr, cursor->bytes, (size_t)want, NULL) == 0) {
			cursor->start = addr;
			cursor->size = (size_t)want;
			return cursor->bytes;
		}
		if (want == size)
			break;
		want = want / 2 > size ? want / 2 : size;
	}
	return NULL;
}
