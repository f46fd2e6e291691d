/* The snapshot reader (see snapshot.h): validates and indexes an ELF core held in a seekable zstd
 * file or in a plain file, and serves bounds-checked reads of the captured memory. */
#include "common/open_file.h"
#include "snapshot.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <unistd.h>

#include "common/array_grow.h"
#include "formats/elf_build_id.h"
#include "formats/seekable.h"
#include "formats/snapshot_notes.h"

#define NOTES_MAX_BYTES (64u << 20) /* refuse note segments larger than this: corrupt */
#define DEFAULT_CACHE_BYTES ((size_t)64 << 20)

struct absent_range {
	uint64_t start, end;
};

struct file_mapping {
	uint64_t start, end, offset;
	const char *path;
};

struct snapshot {
	char *path;
	struct seekable_reader *stream;
	bool compressed;
	struct snapshot_info info;

	struct snapshot_segment *segments;
	size_t segment_count;
	struct snapshot_region *regions;
	size_t region_count;
	uint8_t *note_bytes; /* all PT_NOTE contents, concatenated */
	size_t note_bytes_size;
	struct snapshot_note *notes;
	size_t note_count;
	struct snapshot_thread *threads;
	size_t thread_count;
	struct snapshot_module *modules;
	size_t module_count;
	struct absent_range *absent; /* unreadable at capture */
	size_t absent_count;
	struct absent_range *zero; /* never touched: not stored, reads as zeros */
	size_t zero_count;
	char *strings; /* NT_FILE names and module paths point in here */
	struct file_mapping *files; /* NT_FILE entries */
	size_t file_count;
	/* the addresses [hot_start, hot_end) whose bytes are all in one decompressed frame, at
	   hot_bytes, while the stream's generation is hot_generation: most reads fall near the one
	   before, and are then a copy */
	const uint8_t *hot_bytes;
	uint64_t hot_start, hot_end, hot_generation;
};

static int compare_regions(const void *left, const void *right)
{
	const struct snapshot_region *a = left, *b = right;
	return a->start < b->start ? -1 : a->start > b->start;
}

static int compare_absent(const void *left, const void *right)
{
	const struct absent_range *a = left, *b = right;
	return a->start < b->start ? -1 : a->start > b->start;
}

static int read_core(struct snapshot *snapshot, uint64_t offset, void *buf, size_t size,
		     struct hs_error *err)
{
	return seekable_read(snapshot->stream, offset, buf, size, err);
}

/* Splits the concatenated note segments into notes, checking every size against the bytes. */
static int parse_notes(struct snapshot *snapshot, size_t total, struct hs_error *err)
{
	size_t capacity = 0;
	size_t at = 0;
	while (at < total) {
		Elf64_Nhdr nhdr;
		if (total - at < sizeof nhdr)
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: corrupt note at byte %zu of the notes: "
						 "header cut short",
						 snapshot->path, at);
		memcpy(&nhdr, snapshot->note_bytes + at, sizeof nhdr);
		size_t name_size = ((size_t)nhdr.n_namesz + 3) & ~(size_t)3;
		size_t desc_size = ((size_t)nhdr.n_descsz + 3) & ~(size_t)3;
		if (name_size > total - at - sizeof nhdr ||
		    desc_size > total - at - sizeof nhdr - name_size)
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: corrupt note at byte %zu of the notes: "
						 "sizes %u+%u pass the end of the note segment",
						 snapshot->path, at, nhdr.n_namesz, nhdr.n_descsz);
		uint8_t *name = snapshot->note_bytes + at + sizeof nhdr;
		/* a name is one string whose size counts its NUL (the kernel's, gdb's and heapsnap's
		   notes all are): one that is not was damaged, and whatever follows it would be read
		   out of step, a heapsnap snapshot then passing for a foreign core */
		if (nhdr.n_namesz > 0 && strnlen((const char *)name, nhdr.n_namesz) != nhdr.n_namesz - 1)
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: corrupt note at byte %zu of the notes: its "
						 "name of %u bytes is not one string",
						 snapshot->path, at, nhdr.n_namesz);
		void *grown = array_grow(snapshot->notes, &capacity, snapshot->note_count,
					 sizeof *snapshot->notes, 32);
		if (grown == NULL)
			return hs_error_nomem(err, "reading %s", snapshot->path);
		snapshot->notes = grown;
		struct snapshot_note *note = &snapshot->notes[snapshot->note_count++];
		note->owner = nhdr.n_namesz > 0 ? (const char *)name : "";
		note->type = nhdr.n_type;
		note->desc = name + name_size;
		note->size = nhdr.n_descsz;
		at += sizeof nhdr + name_size + desc_size;
	}
	return 0;
}

/* Copies a value after "key=" from the info note's text, if present. */
static void info_text_value(const char *text, size_t size, const char *key, char *out,
			    size_t out_size)
{
	size_t key_length = strlen(key);
	const char *end = text + size;
	for (const char *line = text; line < end;) {
		const char *newline = memchr(line, '\n', (size_t)(end - line));
		const char *line_end = newline ? newline : end;
		if ((size_t)(line_end - line) > key_length && memcmp(line, key, key_length) == 0 &&
		    line[key_length] == '=') {
			size_t length = (size_t)(line_end - line) - key_length - 1;
			if (length >= out_size)
				length = out_size - 1;
			memcpy(out, line + key_length + 1, length);
			out[length] = '\0';
			return;
		}
		line = line_end + 1;
	}
}

static uint64_t info_number(const char *text, size_t size, const char *key, bool *found)
{
	char value[32] = "";
	info_text_value(text, size, key, value, sizeof value);
	if (found)
		*found = value[0] != '\0';
	return strtoull(value, NULL, 10);
}

static void parse_info_note(struct snapshot *snapshot, const struct snapshot_note *note)
{
	const char *text = (const char *)note->desc;
	struct snapshot_info *info = &snapshot->info;
	info->format_version = (unsigned)info_number(text, note->size, "format_version", NULL);
	info_text_value(text, note->size, "tool_version", info->tool_version,
			sizeof info->tool_version);
	info_text_value(text, note->size, "source", info->source, sizeof info->source);
	info->pid = (int)info_number(text, note->size, "pid", NULL);
	info_text_value(text, note->size, "exe", info->exe, sizeof info->exe);
	info->capture_start_ns = info_number(text, note->size, "capture_start_ns", NULL);
	info->capture_end_ns = info_number(text, note->size, "capture_end_ns", NULL);
	info->pause_ns = info_number(text, note->size, "pause_ns", &info->has_pause);
	info_text_value(text, note->size, "method", info->method, sizeof info->method);
	info_text_value(text, note->size, "kernel_release", info->kernel_release,
			sizeof info->kernel_release);
	info_text_value(text, note->size, "boot_id", info->boot_id, sizeof info->boot_id);
	info->process_start_ticks = info_number(text, note->size, "process_start_ticks", NULL);
	info_text_value(text, note->size, "sites_source", info->sites_source,
			sizeof info->sites_source);
	info_text_value(text, note->size, "sites_allocator", info->sites_allocator,
			sizeof info->sites_allocator);
	info->sites_window_ns = info_number(text, note->size, "sites_window_ns", NULL);
	info->sites_sample_bytes = info_number(text, note->size, "sites_sample_bytes", NULL);
	info->sites_allocations = info_number(text, note->size, "sites_allocations", NULL);
	info->sites_unrecorded = info_number(text, note->size, "sites_unrecorded", NULL);
	info->sites_map_full = info_number(text, note->size, "sites_map_full", NULL);
}

/* The index of the first region that ends after addr (region_count when none does). */
static size_t first_region_ending_after(const struct snapshot *snapshot, uint64_t addr)
{
	size_t low = 0, high = snapshot->region_count;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		if (snapshot->regions[mid].end <= addr)
			low = mid + 1;
		else
			high = mid;
	}
	return low;
}

/* Regions are sorted; overlapping ones would make an address mean two things. */
static int check_regions_disjoint(const struct snapshot *snapshot, struct hs_error *err)
{
	for (size_t i = 1; i < snapshot->region_count; i++) {
		const struct snapshot_region *before = &snapshot->regions[i - 1];
		const struct snapshot_region *after = &snapshot->regions[i];
		if (after->start < before->end) {
			const char *first = before->has_segment ? "segment" : "NT_FILE mapping";
			const char *second = after->has_segment ? "segment" : "NT_FILE mapping";
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: corrupt: %s at 0x%llx and %s at 0x%llx "
						 "overlap",
						 snapshot->path, first, (unsigned long long)before->start,
						 second, (unsigned long long)after->start);
		}
	}
	return 0;
}

static struct snapshot_region file_only_region(const struct file_mapping *file, uint64_t start,
					       uint64_t end)
{
	return (struct snapshot_region){.start = start, .end = end, .flags = PF_R,
					.path = file->path,
					.file_offset = file->offset + (start - file->start)};
}

/* Names the segments that lie inside a file mapping after their file. The parts of the mapping
 * no segment covers become regions without bytes, written to `out` unless it is NULL: gdb's
 * gcore leaves unwritten read-only file mappings out of the core's segments (the kernel writes
 * them, with their first page at most), but the process had them mapped, and their bytes (type
 * names, constant tables) are in the file. Returns how many such regions there are. */
static size_t map_file(struct snapshot *snapshot, const struct file_mapping *file,
		       struct snapshot_region *out)
{
	size_t count = 0;
	uint64_t covered_to = file->start;
	for (size_t i = first_region_ending_after(snapshot, file->start);
	     i < snapshot->region_count && snapshot->regions[i].start < file->end; i++) {
		struct snapshot_region *region = &snapshot->regions[i];
		if (out && region->start >= file->start && region->end <= file->end) {
			region->path = file->path;
			region->file_offset = file->offset + (region->start - file->start);
		}
		if (region->start > covered_to) {
			if (out)
				out[count] = file_only_region(file, covered_to, region->start);
			count++;
		}
		if (region->end > covered_to)
			covered_to = region->end;
	}
	if (covered_to < file->end) {
		if (out)
			out[count] = file_only_region(file, covered_to, file->end);
		count++;
	}
	return count;
}

/* Every NT_FILE mapping joins the regions: see map_file. */
static int add_file_regions(struct snapshot *snapshot, struct hs_error *err)
{
	size_t extra = 0;
	for (size_t i = 0; i < snapshot->file_count; i++)
		extra += map_file(snapshot, &snapshot->files[i], NULL);
	if (extra > 0) {
		struct snapshot_region *grown = realloc(
			snapshot->regions, (snapshot->region_count + extra) * sizeof *grown);
		if (grown == NULL)
			return hs_error_nomem(err, "reading %s", snapshot->path);
		snapshot->regions = grown;
	}
	size_t added = 0;
	for (size_t i = 0; i < snapshot->file_count; i++)
		added += map_file(snapshot, &snapshot->files[i],
				  snapshot->regions + snapshot->region_count + added);
	snapshot->region_count += added;
	qsort(snapshot->regions, snapshot->region_count, sizeof *snapshot->regions, compare_regions);
	return check_regions_disjoint(snapshot, err);
}

/* NT_FILE: count, page size, count x {start, end, offset in pages}, then count NUL-terminated
 * names. The kernel's page size is the page's; gdb writes 1 and offsets in bytes. */
static int parse_file_note(struct snapshot *snapshot, const struct snapshot_note *note,
			   struct hs_error *err)
{
	if (note->size < 16)
		return hs_error_set_code(err, HS_ERR_DAMAGED, "%s: corrupt NT_FILE note: %zu bytes",
					 snapshot->path, note->size);
	uint64_t count, page_size;
	memcpy(&count, note->desc, 8);
	memcpy(&page_size, note->desc + 8, 8);
	if (count > (note->size - 16) / 24)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s: corrupt NT_FILE note: %llu entries in %zu bytes",
					 snapshot->path, (unsigned long long)count, note->size);
	if (page_size == 0 || (page_size & (page_size - 1)) != 0)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s: corrupt NT_FILE note: page size %llu", snapshot->path,
					 (unsigned long long)page_size);
	size_t names_at = 16 + (size_t)count * 24;
	size_t names_size = note->size - names_at;
	snapshot->strings = malloc(names_size + 1);
	if (snapshot->strings == NULL)
		return hs_error_nomem(err, "reading %s", snapshot->path);
	memcpy(snapshot->strings, note->desc + names_at, names_size);
	snapshot->strings[names_size] = '\0';
	snapshot->files = calloc(count ? count : 1, sizeof *snapshot->files);
	if (snapshot->files == NULL)
		return hs_error_nomem(err, "reading %s", snapshot->path);
	const char *name = snapshot->strings;
	const char *names_end = snapshot->strings + names_size;
	for (uint64_t i = 0; i < count; i++) {
		if (name >= names_end)
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: corrupt NT_FILE note: %llu names for %llu "
						 "entries",
						 snapshot->path, (unsigned long long)i,
						 (unsigned long long)count);
		uint64_t entry[3];
		memcpy(entry, note->desc + 16 + i * 24, sizeof entry);
		if (entry[0] >= entry[1] || entry[2] > UINT64_MAX / page_size)
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: corrupt NT_FILE note: entry %llu (%s) maps "
						 "0x%llx-0x%llx at page %llu",
						 snapshot->path, (unsigned long long)i, name,
						 (unsigned long long)entry[0],
						 (unsigned long long)entry[1],
						 (unsigned long long)entry[2]);
		snapshot->files[snapshot->file_count++] = (struct file_mapping){
			entry[0], entry[1], entry[2] * page_size, name};
		name += strlen(name) + 1;
	}
	return add_file_regions(snapshot, err);
}

static int parse_threads(struct snapshot *snapshot, struct hs_error *err)
{
	size_t count = 0;
	for (size_t i = 0; i < snapshot->note_count; i++)
		if (snapshot->notes[i].type == NT_PRSTATUS && strcmp(snapshot->notes[i].owner, "CORE") == 0)
			count++;
	snapshot->threads = calloc(count ? count : 1, sizeof *snapshot->threads);
	if (snapshot->threads == NULL)
		return hs_error_nomem(err, "reading %s", snapshot->path);
	const struct snapshot_note *names = snapshot_find_note(snapshot, HEAPSNAP_NOTE_OWNER,
								 HEAPSNAP_NOTE_THREADS);
	for (size_t i = 0; i < snapshot->note_count; i++) {
		const struct snapshot_note *note = &snapshot->notes[i];
		if (note->type != NT_PRSTATUS || strcmp(note->owner, "CORE") != 0)
			continue;
		struct elf_prstatus status;
		if (note->size < sizeof status)
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: corrupt NT_PRSTATUS note: %zu bytes, "
						 "expected %zu",
						 snapshot->path, note->size, sizeof status);
		memcpy(&status, note->desc, sizeof status);
		struct snapshot_thread *thread = &snapshot->threads[snapshot->thread_count++];
		thread->tid = status.pr_pid;
		thread->signal = status.pr_cursig;
		memcpy(&thread->registers, &status.pr_reg, sizeof thread->registers);
		for (size_t at = 0; names && at + sizeof(struct heapsnap_thread_note) <= names->size;
		     at += sizeof(struct heapsnap_thread_note)) {
			struct heapsnap_thread_note entry;
			memcpy(&entry, names->desc + at, sizeof entry);
			if ((int)entry.tid == thread->tid) {
				memcpy(thread->name, entry.name, sizeof entry.name);
				thread->name[16] = '\0';
			}
		}
	}
	return 0;
}

/* A foreign core's build-id of a file: from its ELF header page, where the core holds it (the
 * kernel stores that page; gcore, the mapping that holds it). 0 when it does not. */
static size_t core_build_id(struct snapshot *snapshot, const struct file_mapping *file,
			    uint8_t out[ELF_BUILD_ID_MAX])
{
	uint8_t page[4096];
	size_t size = file->end - file->start < sizeof page ? (size_t)(file->end - file->start)
							    : sizeof page;
	if (snapshot_read(snapshot, file->start, page, size, NULL) != 0)
		return 0;
	return elf_build_id_from_image(page, size, out);
}

static int parse_modules(struct snapshot *snapshot, struct hs_error *err)
{
	size_t count = 0;
	for (size_t i = 0; i < snapshot->note_count; i++)
		if (snapshot->notes[i].type == HEAPSNAP_NOTE_MODULE &&
		    strcmp(snapshot->notes[i].owner, HEAPSNAP_NOTE_OWNER) == 0)
			count++;
	if (count == 0) {
		/* a foreign core: every file mapped from offset 0 is a module, build-id unknown */
		for (size_t i = 0; i < snapshot->file_count; i++)
			if (snapshot->files[i].offset == 0)
				count++;
	}
	snapshot->modules = calloc(count ? count : 1, sizeof *snapshot->modules);
	if (snapshot->modules == NULL)
		return hs_error_nomem(err, "reading %s", snapshot->path);
	for (size_t i = 0; i < snapshot->note_count; i++) {
		const struct snapshot_note *note = &snapshot->notes[i];
		if (note->type != HEAPSNAP_NOTE_MODULE || strcmp(note->owner, HEAPSNAP_NOTE_OWNER) != 0)
			continue;
		struct heapsnap_module_note header;
		if (note->size < sizeof header)
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: corrupt HEAPSNAP module note: %zu bytes",
						 snapshot->path, note->size);
		memcpy(&header, note->desc, sizeof header);
		if (header.build_id_size > sizeof snapshot->modules[0].build_id ||
		    header.path_size == 0 ||
		    (uint64_t)header.build_id_size + header.path_size > note->size - sizeof header ||
		    note->desc[sizeof header + header.build_id_size + header.path_size - 1] != '\0')
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: corrupt HEAPSNAP module note: bad sizes",
						 snapshot->path);
		struct snapshot_module *module = &snapshot->modules[snapshot->module_count++];
		module->base = header.base;
		module->build_id_size = header.build_id_size;
		memcpy(module->build_id, note->desc + sizeof header, header.build_id_size);
		module->path = (const char *)note->desc + sizeof header + header.build_id_size;
	}
	if (snapshot->module_count == 0) {
		for (size_t i = 0; i < snapshot->file_count; i++) {
			const struct file_mapping *file = &snapshot->files[i];
			if (file->offset != 0)
				continue;
			bool seen = false;
			for (size_t j = 0; j < snapshot->module_count; j++)
				seen |= strcmp(snapshot->modules[j].path, file->path) == 0;
			if (seen)
				continue;
			struct snapshot_module *module = &snapshot->modules[snapshot->module_count++];
			module->path = file->path;
			module->base = file->start;
			module->build_id_size = core_build_id(snapshot, file, module->build_id);
		}
	}
	return 0;
}

/* Reads a HEAPSNAP range note (absent or zero) into a sorted array. */
static int parse_ranges(struct snapshot *snapshot, enum heapsnap_note_type type,
			struct absent_range **ranges, size_t *count, struct hs_error *err)
{
	const struct snapshot_note *note = snapshot_find_note(snapshot, HEAPSNAP_NOTE_OWNER, type);
	if (note == NULL)
		return 0;
	size_t entries = note->size / sizeof(struct heapsnap_range_note);
	*ranges = calloc(entries ? entries : 1, sizeof **ranges);
	if (*ranges == NULL)
		return hs_error_nomem(err, "reading %s", snapshot->path);
	for (size_t i = 0; i < entries; i++) {
		struct heapsnap_range_note entry;
		memcpy(&entry, note->desc + i * sizeof entry, sizeof entry);
		if (entry.end < entry.start)
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: corrupt HEAPSNAP range note: 0x%llx > "
						 "0x%llx",
						 snapshot->path, (unsigned long long)entry.start,
						 (unsigned long long)entry.end);
		(*ranges)[i].start = entry.start;
		(*ranges)[i].end = entry.end;
	}
	*count = entries;
	qsort(*ranges, entries, sizeof **ranges, compare_absent);
	return 0;
}

/* Whether heapsnap writes notes of this owner and type (capture.c, snapshot_notes.h). */
static bool own_note_type(const struct snapshot_note *note)
{
	if (strcmp(note->owner, "CORE") == 0)
		return note->type == NT_PRSTATUS || note->type == NT_PRFPREG ||
		       note->type == NT_PRPSINFO || note->type == NT_AUXV || note->type == NT_FILE;
	return strcmp(note->owner, HEAPSNAP_NOTE_OWNER) == 0 && note->type >= HEAPSNAP_NOTE_INFO &&
	       note->type <= HEAPSNAP_NOTE_LAYOUT;
}

/* The layout digest the writer recorded against the core as read: a changed ELF header, program
 * header or note header (a note's type, its sizes) gives another. 0 when they agree or the
 * snapshot records none (written before the note existed). */
static int check_layout(struct snapshot *snapshot, struct hs_error *err)
{
	const struct snapshot_note *note = snapshot_find_note(snapshot, HEAPSNAP_NOTE_OWNER,
							      HEAPSNAP_NOTE_LAYOUT);
	if (note == NULL)
		return 0;
	struct heapsnap_layout_note recorded;
	const struct snapshot_segment *notes_segment = NULL;
	for (size_t i = 0; i < snapshot->segment_count && notes_segment == NULL; i++)
		if (snapshot->segments[i].type == PT_NOTE)
			notes_segment = &snapshot->segments[i];
	if (note->size != sizeof recorded || notes_segment == NULL ||
	    notes_segment->offset > (64u << 20))
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s is damaged: its layout note is not as heapsnap "
					 "writes it",
					 snapshot->path);
	memcpy(&recorded, note->desc, sizeof recorded);
	uint8_t *headers = malloc(notes_segment->offset ? notes_segment->offset : 1);
	if (headers == NULL)
		return hs_error_nomem(err, "reading %s", snapshot->path);
	if (read_core(snapshot, 0, headers, notes_segment->offset, err) != 0) {
		free(headers);
		return -1;
	}
	uint64_t digest = snapshot_layout_digest(headers, notes_segment->offset,
						 snapshot->note_bytes, snapshot->note_bytes_size);
	free(headers);
	if (digest != recorded.digest || recorded.program_headers != snapshot->segment_count)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s is damaged: its ELF header, program headers or note "
					 "headers are not those heapsnap wrote (their digest "
					 "differs from the one its layout note records); "
					 "`heapsnap info --verify %s` checks the rest",
					 snapshot->path, snapshot->path);
	return 0;
}

/* What a snapshot heapsnap took itself must hold, checked so that damage to a note is said, not
 * answered around: a flipped bit in a note's type would drop the process's threads (their stacks
 * are roots) or its files (no symbols, no types), and the analysis would go on with less. An
 * imported core may carry notes of other tools and is not held to this. */
static int check_own_notes(struct snapshot *snapshot, struct hs_error *err)
{
	const char *source = snapshot->info.source;
	bool info = snapshot_find_note(snapshot, HEAPSNAP_NOTE_OWNER, HEAPSNAP_NOTE_INFO) != NULL;
	bool layout = snapshot_find_note(snapshot, HEAPSNAP_NOTE_OWNER, HEAPSNAP_NOTE_LAYOUT) != NULL;
	/* heapsnap's own: its info says so, or it has the layout note only heapsnap writes (then an
	   info note that is missing, its type damaged, must not turn it into a foreign core) */
	if (!layout && strcmp(source, "ptrace") != 0 && strcmp(source, "hook") != 0)
		return 0;
	if (!info)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s is damaged: it has heapsnap's layout note but no "
					 "HEAPSNAP info note (the process, its program, when it "
					 "was captured); `heapsnap info --verify %s` checks the rest",
					 snapshot->path, snapshot->path);
	bool files = false;
	size_t modules = 0, of_type[HEAPSNAP_NOTE_LAYOUT + 1] = {0};
	for (size_t i = 0; i < snapshot->note_count; i++) {
		const struct snapshot_note *note = &snapshot->notes[i];
		/* heapsnap writes each of its notes once, but one per module: a second is one whose
		   type was damaged */
		bool own = strcmp(note->owner, HEAPSNAP_NOTE_OWNER) == 0 && own_note_type(note);
		if (own && note->type != HEAPSNAP_NOTE_MODULE && ++of_type[note->type] > 1)
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s is damaged: its note %zu is a second HEAPSNAP "
						 "note of type %u, which heapsnap writes once; "
						 "`heapsnap info --verify %s` checks the rest",
						 snapshot->path, i, (unsigned)note->type,
						 snapshot->path);
		if (!own_note_type(note))
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s is damaged: its note %zu (owner \"%.16s\", "
						 "type 0x%x) is none heapsnap writes; `heapsnap "
						 "info --verify %s` checks the rest",
						 snapshot->path, i, note->owner,
						 (unsigned)note->type, snapshot->path);
		files |= strcmp(note->owner, "CORE") == 0 && note->type == NT_FILE;
		modules += strcmp(note->owner, HEAPSNAP_NOTE_OWNER) == 0 &&
			   note->type == HEAPSNAP_NOTE_MODULE;
	}
	if (snapshot->thread_count == 0)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s is damaged: it holds no thread (no NT_PRSTATUS "
					 "note), and a process has at least one; without them "
					 "its stacks, which are roots, would be missing from "
					 "every answer",
					 snapshot->path);
	if (modules > 0 && !files)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s is damaged: it names %zu mapped files but has no "
					 "NT_FILE note saying where they are mapped; without it "
					 "no symbol or type could be found",
					 snapshot->path, modules);
	/* (what the checks above name, said first; the digest then catches any other change) */
	return check_layout(snapshot, err);
}

/* When the core has no HEAPSNAP info (a foreign core), take the pid from the first thread and the
 * executable from the file mapping that holds the entry point (AT_ENTRY in the auxiliary vector). */
static void fill_foreign_info(struct snapshot *snapshot)
{
	struct snapshot_info *info = &snapshot->info;
	const struct snapshot_note *started = snapshot_find_note(snapshot, "CORE", NT_PRPSINFO);
	if (started && started->size >= sizeof(struct elf_prpsinfo)) {
		struct elf_prpsinfo ps;
		memcpy(&ps, started->desc, sizeof ps);
		size_t length = strnlen(ps.pr_psargs, sizeof ps.pr_psargs);
		const char *end = memchr(ps.pr_psargs, ' ', length);
		length = end ? (size_t)(end - ps.pr_psargs) : length;
		const char *name = ps.pr_psargs;
		for (size_t i = 0; i < length; i++)
			if (ps.pr_psargs[i] == '/')
				name = ps.pr_psargs + i + 1;
		size_t name_length = length - (size_t)(name - ps.pr_psargs);
		/* a title the program rewrote ("nginx: worker process", "postgres: checkpointer")
		   keeps its name before the colon; one that names something else entirely gives way to
		   the name the kernel took from the file executed (comm, at most 15 characters) */
		if (name_length > 1 && name[name_length - 1] == ':')
			name_length--;
		size_t comm_length = strnlen(ps.pr_fname, sizeof ps.pr_fname);
		if (comm_length > 0 &&
		    (name_length < comm_length || memcmp(name, ps.pr_fname, comm_length) != 0)) {
			name = ps.pr_fname;
			name_length = comm_length;
		}
		snprintf(info->program, sizeof info->program, "%.*s", (int)name_length, name);
	}
	if (info->pid == 0) {
		const struct snapshot_note *psinfo = snapshot_find_note(snapshot, "CORE", NT_PRPSINFO);
		if (psinfo && psinfo->size >= sizeof(struct elf_prpsinfo)) {
			struct elf_prpsinfo ps;
			memcpy(&ps, psinfo->desc, sizeof ps);
			info->pid = ps.pr_pid;
		} else if (snapshot->thread_count > 0) {
			info->pid = snapshot->threads[0].tid;
		}
	}
	if (info->exe[0] == '\0') {
		const struct snapshot_note *auxv = snapshot_find_note(snapshot, "CORE", NT_AUXV);
		for (size_t at = 0; auxv && at + 16 <= auxv->size; at += 16) {
			uint64_t pair[2];
			memcpy(pair, auxv->desc + at, 16);
			if (pair[0] != AT_ENTRY)
				continue;
			for (size_t i = 0; i < snapshot->file_count; i++)
				if (snapshot->files[i].start <= pair[1] && pair[1] < snapshot->files[i].end)
					snprintf(info->exe, sizeof info->exe, "%s",
						 snapshot->files[i].path);
		}
	}
}

/* Reads and checks the ELF header of a core of `core_size` bytes: *phnum is its count of
 * program headers (from section header 0 under extended numbering), which fit in the core. */
static int read_elf_header(struct snapshot *snapshot, uint64_t core_size, Elf64_Ehdr *ehdr,
			   uint32_t *phnum, struct hs_error *err)
{
	if (core_size < sizeof *ehdr)
		return hs_error_set_code(err, HS_ERR_FORMAT,
					 "%s is not an ELF core: %llu bytes is too short for an "
					 "ELF header",
					 snapshot->path, (unsigned long long)core_size);
	if (read_core(snapshot, 0, ehdr, sizeof *ehdr, err) != 0)
		return -1;
	if (memcmp(ehdr->e_ident, ELFMAG, SELFMAG) != 0)
		return hs_error_set_code(err, HS_ERR_FORMAT,
					 "%s holds no ELF core (bad magic at offset 0)",
					 snapshot->path);
	if (ehdr->e_ident[EI_CLASS] != ELFCLASS64 || ehdr->e_ident[EI_DATA] != ELFDATA2LSB ||
	    ehdr->e_machine != EM_X86_64)
		return hs_error_set_code(err, HS_ERR_UNSUPPORTED,
					 "%s: only 64-bit little-endian x86-64 cores are "
					 "supported",
					 snapshot->path);
	if (ehdr->e_type != ET_CORE)
		return hs_error_set_code(err, HS_ERR_FORMAT,
					 "%s is an ELF file but not a core (e_type %u)",
					 snapshot->path, ehdr->e_type);
	*phnum = ehdr->e_phnum;
	if (*phnum == PN_XNUM) {
		/* extended numbering: the real count is in section header 0's sh_info */
		Elf64_Shdr section;
		if (ehdr->e_shoff > core_size || core_size - ehdr->e_shoff < sizeof section ||
		    read_core(snapshot, ehdr->e_shoff, &section, sizeof section, err) != 0)
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: corrupt ELF header: extended program "
						 "header count without a section header at "
						 "offset %llu",
						 snapshot->path, (unsigned long long)ehdr->e_shoff);
		*phnum = section.sh_info;
	}
	if (ehdr->e_phentsize != sizeof(Elf64_Phdr) || *phnum == 0 || ehdr->e_phoff > core_size ||
	    (uint64_t)*phnum * sizeof(Elf64_Phdr) > core_size - ehdr->e_phoff)
		return hs_error_set_code(err, HS_ERR_DAMAGED,
					 "%s: corrupt ELF header: %u program headers at offset "
					 "%llu do not fit in %llu bytes",
					 snapshot->path, *phnum, (unsigned long long)ehdr->e_phoff,
					 (unsigned long long)core_size);
	return 0;
}

/* Checks that each loaded segment and note is in the core and has sane sizes; *notes_total is
 * the bytes of all notes. */
static int check_segments(struct snapshot *snapshot, const Elf64_Phdr *phdrs, uint32_t phnum,
			  uint64_t core_size, uint64_t *notes_total, struct hs_error *err)
{
	*notes_total = 0;
	for (uint32_t i = 0; i < phnum; i++) {
		const Elf64_Phdr *phdr = &phdrs[i];
		if (phdr->p_type != PT_LOAD && phdr->p_type != PT_NOTE)
			continue;
		if (phdr->p_offset > core_size || phdr->p_filesz > core_size - phdr->p_offset)
			return hs_error_set_code(
			    err, HS_ERR_DAMAGED,
			    "%s is truncated: segment %u (address 0x%llx) needs bytes up to offset "
			    "%llu of the core but it has %llu",
			    snapshot->path, i, (unsigned long long)phdr->p_vaddr,
			    (unsigned long long)(phdr->p_offset + phdr->p_filesz),
			    (unsigned long long)core_size);
		if (phdr->p_type == PT_NOTE)
			*notes_total += phdr->p_filesz;
		if (phdr->p_type == PT_LOAD &&
		    (phdr->p_filesz > phdr->p_memsz || phdr->p_vaddr + phdr->p_memsz < phdr->p_vaddr))
			return hs_error_set_code(err, HS_ERR_DAMAGED,
						 "%s: corrupt segment %u at address 0x%llx: sizes "
						 "%llu/%llu",
						 snapshot->path, i, (unsigned long long)phdr->p_vaddr,
						 (unsigned long long)phdr->p_filesz,
						 (unsigned long long)phdr->p_memsz);
	}
	if (*notes_total > NOTES_MAX_BYTES)
		return hs_error_set_code(err, HS_ERR_DAMAGED, "%s: corrupt: %llu bytes of notes",
					 snapshot->path, (unsigned long long)*notes_total);
	return 0;
}

/* Keeps every segment, a region for each loaded one, and the notes' bytes (`notes_total` of
 * them, all read into snapshot->note_bytes: *notes_size). */
static int keep_segments(struct snapshot *snapshot, const Elf64_Phdr *phdrs, uint32_t phnum,
			 uint64_t notes_total, size_t *notes_size, struct hs_error *err)
{
	snapshot->note_bytes = malloc(notes_total ? notes_total : 1);
	if (snapshot->note_bytes == NULL)
		return hs_error_nomem(err, "reading %s", snapshot->path);
	size_t notes_at = 0;
	for (uint32_t i = 0; i < phnum; i++) {
		const Elf64_Phdr *phdr = &phdrs[i];
		snapshot->segments[snapshot->segment_count++] = (struct snapshot_segment){
			.type = phdr->p_type, .flags = phdr->p_flags, .offset = phdr->p_offset,
			.vaddr = phdr->p_vaddr, .filesz = phdr->p_filesz, .memsz = phdr->p_memsz,
			.align = phdr->p_align};
		if (phdr->p_type == PT_NOTE) {
			if (read_core(snapshot, phdr->p_offset, snapshot->note_bytes + notes_at,
				      phdr->p_filesz, err) != 0)
				return -1;
			notes_at += phdr->p_filesz;
		} else if (phdr->p_type == PT_LOAD && phdr->p_memsz > 0) {
			snapshot->regions[snapshot->region_count++] = (struct snapshot_region){
				.start = phdr->p_vaddr, .end = phdr->p_vaddr + phdr->p_memsz,
				.flags = phdr->p_flags, .data_offset = phdr->p_offset,
				.data_size = phdr->p_filesz, .has_segment = true};
		}
	}
	*notes_size = notes_at;
	return 0;
}

/* The notes, once their bytes are read: heapsnap's information first (its format version), then
 * the mapped files, threads, ranges and modules. */
static int read_notes(struct snapshot *snapshot, size_t notes_size, struct hs_error *err)
{
	snapshot->note_bytes_size = notes_size;
	if (parse_notes(snapshot, notes_size, err) != 0)
		return -1;
	const struct snapshot_note *info = snapshot_find_note(snapshot, HEAPSNAP_NOTE_OWNER,
								HEAPSNAP_NOTE_INFO);
	if (info)
		parse_info_note(snapshot, info);
	if (snapshot->info.format_version > HEAPSNAP_FORMAT_VERSION)
		return hs_error_set_code(err, HS_ERR_UNSUPPORTED,
					 "%s uses snapshot format %u; this heapsnap reads up to "
					 "%u: use a newer heapsnap",
					 snapshot->path, snapshot->info.format_version,
					 HEAPSNAP_FORMAT_VERSION);
	const struct snapshot_note *files = snapshot_find_note(snapshot, "CORE", NT_FILE);
	if (files && parse_file_note(snapshot, files, err) != 0)
		return -1;
	/* modules last: a foreign core's are read from its memory */
	if (parse_threads(snapshot, err) != 0 ||
	    parse_ranges(snapshot, HEAPSNAP_NOTE_ABSENT, &snapshot->absent, &snapshot->absent_count,
			 err) != 0 ||
	    parse_ranges(snapshot, HEAPSNAP_NOTE_ZERO, &snapshot->zero, &snapshot->zero_count,
			 err) != 0 ||
	    parse_modules(snapshot, err) != 0)
		return -1;
	fill_foreign_info(snapshot);
	return check_own_notes(snapshot, err);
}

static int load(struct snapshot *snapshot, struct hs_error *err)
{
	uint64_t core_size = seekable_size(snapshot->stream);
	Elf64_Ehdr ehdr;
	uint32_t phnum = 0;
	if (read_elf_header(snapshot, core_size, &ehdr, &phnum, err) != 0)
		return -1;
	Elf64_Phdr *phdrs = calloc(phnum, sizeof *phdrs);
	snapshot->segments = calloc(phnum, sizeof *snapshot->segments);
	snapshot->regions = calloc(phnum, sizeof *snapshot->regions);
	if (phdrs == NULL || snapshot->segments == NULL || snapshot->regions == NULL) {
		free(phdrs);
		return hs_error_nomem(err, "reading %s", snapshot->path);
	}
	uint64_t notes_total = 0;
	size_t notes_size = 0;
	int result = read_core(snapshot, ehdr.e_phoff, phdrs, phnum * sizeof *phdrs, err) != 0 ||
			     check_segments(snapshot, phdrs, phnum, core_size, &notes_total, err) != 0 ||
			     keep_segments(snapshot, phdrs, phnum, notes_total, &notes_size, err) != 0
			 ? -1
			 : 0;
	free(phdrs);
	if (result != 0)
		return -1;
	qsort(snapshot->regions, snapshot->region_count, sizeof *snapshot->regions, compare_regions);
	if (check_regions_disjoint(snapshot, err) != 0)
		return -1;
	return read_notes(snapshot, notes_size, err);
}

/* The memory kept for decompressed frames when the caller names none: HEAPSNAP_CACHE_MIB when
 * set, else 64 MiB. Each analysis stage reads the whole heap in address order, so a cache that
 * holds all of it spares every stage after the first its decompression (a third less time on a
 * 1 GiB CPython heap), at the price of that much more memory: the default keeps the analysis's
 * peak memory within twice the heap. */
static size_t default_cache_bytes(void)
{
	const char *setting = getenv("HEAPSNAP_CACHE_MIB");
	char *end = NULL;
	if (setting != NULL && *setting != '\0') {
		unsigned long long mib = strtoull(setting, &end, 10);
		if (*end == '\0' && mib > 0 && mib < (1ull << 30))
			return (size_t)mib << 20;
	}
	return DEFAULT_CACHE_BYTES;
}

/* Whether a zstd file decompresses to the start of heapsnap's core: an ELF header, then notes
 * of the owner HEAPSNAP among the first bytes (a snapshot that lost its end). */
static bool starts_like_snapshot(int fd)
{
	enum { PEEK = 64 << 10 };
	uint8_t *start = malloc(PEEK);
	size_t size = start ? seekable_peek(fd, start, PEEK) : 0;
	static const char owner[] = "HEAPSNAP";
	bool found = size > SELFMAG && memcmp(start, ELFMAG, SELFMAG) == 0 &&
		     memmem(start, size, owner, sizeof owner - 1) != NULL;
	free(start);
	return found;
}

struct snapshot *snapshot_open(const char *path, size_t cache_bytes, struct hs_error *err)
{
	/* (a FIFO would block the open, a device could act on it: only regular files) */
	int fd = open_regular_file(path);
	if (fd < 0) {
		int saved = errno;
		struct stat st;
		if ((saved == EINVAL || saved == EISDIR) && stat(path, &st) == 0)
			hs_error_set_code(err, HS_ERR_FORMAT,
					  "%s is %s, not a snapshot file: nothing was read from it",
					  path,
					  S_ISDIR(st.st_mode)    ? "a directory"
					  : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
					  : S_ISSOCK(st.st_mode) ? "a socket"
								 : "a device");
		else
			hs_error_set_errno(err, saved, "cannot open %s", path);
		return NULL;
	}
	struct snapshot *snapshot = calloc(1, sizeof *snapshot);
	if (snapshot == NULL || (snapshot->path = strdup(path)) == NULL) {
		free(snapshot);
		close(fd);
		hs_error_nomem(err, "opening %s", path);
		return NULL;
	}
	uint8_t magic[SELFMAG] = {0};
	switch (seekable_detect(fd)) {
	case SEEKABLE_KIND_SEEKABLE_ZSTD:
		snapshot->compressed = true;
		snapshot->stream = seekable_open(fd, path, cache_bytes ? cache_bytes : default_cache_bytes(),
						 err);
		break;
	case SEEKABLE_KIND_PLAIN_ZSTD:
		if (seekable_ends_mid_frame(fd) && starts_like_snapshot(fd)) {
			struct stat st;
			hs_error_set_code(err, HS_ERR_DAMAGED,
					  "%s is a heapsnap snapshot cut short: it ends after "
					  "%lld bytes, before the seek table every snapshot ends "
					  "with (a copy or a capture that did not finish?); copy "
					  "it again, or capture again",
					  path, fstat(fd, &st) == 0 ? (long long)st.st_size : -1LL);
			break;
		}
		hs_error_set_code(err, HS_ERR_FORMAT,
				  "%s is zstd-compressed without a seek table (not a heapsnap "
				  "snapshot); decompress it with `zstd -d` and run `heapsnap "
				  "import` on the core",
				  path);
		break;
	case SEEKABLE_KIND_OTHER:
		if (pread(fd, magic, SELFMAG, 0) == SELFMAG && memcmp(magic, ELFMAG, SELFMAG) == 0)
			snapshot->stream = seekable_open_raw(fd, path, err);
		else
			hs_error_set_code(err, HS_ERR_FORMAT,
					  "%s is not a heapsnap snapshot or an ELF core", path);
		break;
	}
	if (snapshot->stream == NULL) {
		close(fd);
		free(snapshot->path);
		free(snapshot);
		return NULL;
	}
	if (load(snapshot, err) != 0) {
		snapshot_close(snapshot);
		return NULL;
	}
	return snapshot;
}

void snapshot_close(struct snapshot *snapshot)
{
	if (snapshot == NULL)
		return;
	seekable_close(snapshot->stream);
	free(snapshot->segments);
	free(snapshot->regions);
	free(snapshot->note_bytes);
	free(snapshot->notes);
	free(snapshot->threads);
	free(snapshot->modules);
	free(snapshot->absent);
	free(snapshot->zero);
	free(snapshot->strings);
	free(snapshot->files);
	free(snapshot->path);
	free(snapshot);
}

const char *snapshot_path(const struct snapshot *snapshot) { return snapshot->path; }
bool snapshot_is_compressed(const struct snapshot *snapshot) { return snapshot->compressed; }
uint64_t snapshot_file_size(const struct snapshot *snapshot)
{
	return seekable_file_size(snapshot->stream);
}
uint64_t snapshot_core_size(const struct snapshot *snapshot)
{
	return seekable_size(snapshot->stream);
}
const struct snapshot_info *snapshot_info(const struct snapshot *snapshot) { return &snapshot->info; }

const struct snapshot_thread *snapshot_threads(const struct snapshot *snapshot, size_t *count)
{
	*count = snapshot->thread_count;
	return snapshot->threads;
}

const struct snapshot_region *snapshot_regions(const struct snapshot *snapshot, size_t *count)
{
	*count = snapshot->region_count;
	return snapshot->regions;
}

const struct snapshot_module *snapshot_modules(const struct snapshot *snapshot, size_t *count)
{
	*count = snapshot->module_count;
	return snapshot->modules;
}

const struct snapshot_note *snapshot_notes(const struct snapshot *snapshot, size_t *count)
{
	*count = snapshot->note_count;
	return snapshot->notes;
}

const struct snapshot_segment *snapshot_segments(const struct snapshot *snapshot, size_t *count)
{
	*count = snapshot->segment_count;
	return snapshot->segments;
}

const struct snapshot_note *snapshot_find_note(const struct snapshot *snapshot, const char *owner,
					       uint32_t type)
{
	for (size_t i = 0; i < snapshot->note_count; i++)
		if (snapshot->notes[i].type == type && strcmp(snapshot->notes[i].owner, owner) == 0)
			return &snapshot->notes[i];
	return NULL;
}

const struct snapshot_region *snapshot_find_region(const struct snapshot *snapshot, uint64_t addr)
{
	size_t low = 0, high = snapshot->region_count;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		const struct snapshot_region *region = &snapshot->regions[mid];
		if (addr < region->start)
			high = mid;
		else if (addr >= region->end)
			low = mid + 1;
		else
			return region;
	}
	return NULL;
}

/* The first range of a sorted array that ends after addr, or NULL. */
static const struct absent_range *range_after(const struct absent_range *ranges, size_t count,
					      uint64_t addr)
{
	size_t low = 0, high = count;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		if (ranges[mid].end <= addr)
			low = mid + 1;
		else
			high = mid;
	}
	return low < count ? &ranges[low] : NULL;
}

/* Whether `a` and the region `b` right after it are parts of one mapping that a capture split at
 * a run of never-touched pages: contiguous, anonymous, alike, and the joint borders such a run. */
static bool split_from_one_mapping(const struct snapshot *snapshot, const struct snapshot_region *a,
				   const struct snapshot_region *b)
{
	if (b->start != a->end || a->path || b->path || a->flags != b->flags)
		return false;
	const struct absent_range *zero = range_after(snapshot->zero, snapshot->zero_count, a->end - 1);
	return zero && zero->start <= b->start;
}

void snapshot_mapping_bounds(const struct snapshot *snapshot, const struct snapshot_region *region,
			     uint64_t *start, uint64_t *end)
{
	const struct snapshot_region *first = region, *last = region;
	const struct snapshot_region *past = snapshot->regions + snapshot->region_count;
	while (first > snapshot->regions && split_from_one_mapping(snapshot, first - 1, first))
		first--;
	while (last + 1 < past && split_from_one_mapping(snapshot, last, last + 1))
		last++;
	*start = first->start;
	*end = last->end;
}

/* Makes the frame holding the bytes at `addr` of `region` (stored, readable) the hot window: the
 * addresses both in the region's stored bytes and in the frame, less any unreadable range. */
static void make_hot(struct snapshot *snapshot, const struct snapshot_region *region, uint64_t addr)
{
	snapshot->hot_bytes = NULL;
	uint64_t frame_start, frame_end;
	const uint8_t *frame = seekable_frame_at(snapshot->stream,
						 region->data_offset + (addr - region->start),
						 &frame_start, &frame_end, NULL);
	if (frame == NULL)
		return;
	/* the frame's stream offsets, as addresses of this region */
	uint64_t start = region->start, end = region->start + region->data_size;
	if (frame_start > region->data_offset)
		start = region->start + (frame_start - region->data_offset);
	if (frame_end < region->data_offset + region->data_size)
		end = region->start + (frame_end - region->data_offset);
	const struct absent_range *absent = range_after(snapshot->absent, snapshot->absent_count, addr);
	if (absent && absent->start < end)
		end = absent->start > addr ? absent->start : addr;
	size_t before = absent ? (size_t)(absent - snapshot->absent) : snapshot->absent_count;
	if (before > 0 && snapshot->absent[before - 1].end > start)
		start = snapshot->absent[before - 1].end;
	if (start >= end)
		return;
	snapshot->hot_bytes = frame + (region->data_offset + (start - region->start) - frame_start);
	snapshot->hot_start = start;
	snapshot->hot_end = end;
	snapshot->hot_generation = seekable_generation(snapshot->stream);
}

int snapshot_read(struct snapshot *snapshot, uint64_t addr, void *buf, size_t size,
		  struct hs_error *err)
{
	if (snapshot->hot_bytes && addr >= snapshot->hot_start && addr < snapshot->hot_end &&
	    size <= snapshot->hot_end - addr &&
	    snapshot->hot_generation == seekable_generation(snapshot->stream)) {
		memcpy(buf, snapshot->hot_bytes + (addr - snapshot->hot_start), size);
		return 0;
	}
	if (size > 0 && addr + size - 1 < addr)
		return hs_error_set_code(err, HS_ERR_FAULT, "address 0x%llx + %zu wraps around",
					 (unsigned long long)addr, size);
	const struct absent_range *absent =
		range_after(snapshot->absent, snapshot->absent_count, addr);
	if (absent && absent->start < addr + size)
		return hs_error_set_code(
			err, HS_ERR_FAULT, "address 0x%llx was unreadable when %s was captured",
			(unsigned long long)(absent->start > addr ? absent->start : addr),
			snapshot->path);
	uint8_t *out = buf;
	while (size > 0) {
		const struct snapshot_region *region = snapshot_find_region(snapshot, addr);
		if (region == NULL)
			return hs_error_set_code(err, HS_ERR_FAULT,
						 "address 0x%llx is not mapped in %s",
						 (unsigned long long)addr, snapshot->path);
		uint64_t within = addr - region->start;
		if (within >= region->data_size) {
			const struct absent_range *zero =
				range_after(snapshot->zero, snapshot->zero_count, addr);
			if (zero && zero->start <= addr) {
				uint64_t available = zero->end - addr;
				size_t take = size < available ? size : (size_t)available;
				memset(out, 0, take);
				out += take;
				addr += take;
				size -= take;
				continue;
			}
			if (region->path)
				return hs_error_set_code(err, HS_ERR_FAULT,
							 "address 0x%llx is not in %s: its bytes "
							 "come from the mapped file %s",
							 (unsigned long long)addr, snapshot->path,
							 region->path);
			return hs_error_set_code(err, HS_ERR_FAULT,
						 "address 0x%llx is not in %s (not captured)",
						 (unsigned long long)addr, snapshot->path);
		}
		uint64_t available = region->data_size - within;
		size_t take = size < available ? size : (size_t)available;
		if (take <= 4096 && take == size) {
			/* a small read: through the hot window, made to hold it */
			make_hot(snapshot, region, addr);
			if (snapshot->hot_bytes && addr >= snapshot->hot_start &&
			    take <= snapshot->hot_end - addr) {
				memcpy(out, snapshot->hot_bytes + (addr - snapshot->hot_start), take);
				return 0;
			}
		}
		if (read_core(snapshot, region->data_offset + within, out, take, err) != 0)
			return -1;
		out += take;
		addr += take;
		size -= take;
	}
	return 0;
}

int snapshot_read_core(struct snapshot *snapshot, uint64_t offset, void *buf, size_t size,
		       struct hs_error *err)
{
	return read_core(snapshot, offset, buf, size, err);
}

const uint8_t *snapshot_raw_core(const struct snapshot *snapshot)
{
	return seekable_raw_bytes(snapshot->stream);
}

static uint64_t ranges_bytes(const struct absent_range *ranges, size_t count)
{
	uint64_t total = 0;
	for (size_t i = 0; i < count; i++)
		total += ranges[i].end - ranges[i].start;
	return total;
}

void snapshot_totals(const struct snapshot *snapshot, struct snapshot_totals *totals)
{
	memset(totals, 0, sizeof *totals);
	totals->regions = snapshot->region_count;
	totals->untouched = ranges_bytes(snapshot->zero, snapshot->zero_count);
	totals->unreadable = ranges_bytes(snapshot->absent, snapshot->absent_count);
	uint64_t missing = 0;
	for (size_t i = 0; i < snapshot->region_count; i++) {
		const struct snapshot_region *region = &snapshot->regions[i];
		totals->with_contents += region->data_size;
		uint64_t rest = region->end - region->start - region->data_size;
		if (region->path != NULL)
			totals->from_files += rest;
		else
			missing += rest;
	}
	totals->not_captured = missing > totals->untouched ? missing - totals->untouched : 0;
	/* unreadable pages are stored as zeros, but they are not contents */
	totals->with_contents -= totals->unreadable < totals->with_contents ? totals->unreadable
									    : totals->with_contents;
}

int snapshot_check_damage(const struct snapshot *snapshot, struct hs_error *err)
{
	return seekable_check_damage(snapshot->stream, err);
}

void snapshot_each_absent_range(const struct snapshot *snapshot,
				void (*visit)(void *context, uint64_t start, uint64_t end),
				void *context)
{
	for (size_t i = 0; i < snapshot->absent_count; i++)
		visit(context, snapshot->absent[i].start, snapshot->absent[i].end);
}

void snapshot_each_damaged_range(const struct snapshot *snapshot,
				 void (*visit)(void *context, uint64_t start, uint64_t end),
				 void *context)
{
	uint64_t frame_start, frame_end;
	for (uint64_t nth = 0;
	     seekable_damaged_range(snapshot->stream, nth, &frame_start, &frame_end); nth++)
		for (size_t i = 0; i < snapshot->region_count; i++) {
			const struct snapshot_region *region = &snapshot->regions[i];
			uint64_t from = region->data_offset, to = from + region->data_size;
			if (to <= frame_start || from >= frame_end)
				continue;
			uint64_t start = from > frame_start ? from : frame_start;
			uint64_t end = to < frame_end ? to : frame_end;
			visit(context, region->start + (start - from), region->start + (end - from));
		}
}

uint64_t snapshot_damaged_frames(const struct snapshot *snapshot)
{
	return seekable_damaged_frames(snapshot->stream);
}

int snapshot_verify(struct snapshot *snapshot, struct hs_error *err)
{
	enum { CHUNK = 4 << 20 };
	uint8_t *buffer = malloc(CHUNK);
	if (buffer == NULL)
		return hs_error_nomem(err, "verifying %s", snapshot->path);
	uint64_t size = seekable_size(snapshot->stream);
	int result = 0;
	for (uint64_t offset = 0; offset < size && result == 0; offset += CHUNK) {
		size_t take = size - offset < CHUNK ? (size_t)(size - offset) : CHUNK;
		result = read_core(snapshot, offset, buffer, take, err);
	}
	free(buffer);
	return result;
}
