/* The synthetic snapshot builder (see mock_snapshot.h): memory, modules and threads kept in memory
 * until mock_snapshot_write writes each module as a minimal ELF file (a PT_LOAD giving the load
 * bias, a symbol table, a writable .data covering its image, and for C types one DWARF 4 compile
 * unit) and the process as a core image through formats/ (the notes a capture writes: threads,
 * NT_FILE, heapsnap's info, layout, thread names and modules). */
#include "mock_snapshot.h"

#include <dwarf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <unistd.h>

#include "common/vector.h"
#include "formats/core_image.h"
#include "formats/snapshot_file.h"
#include "formats/snapshot_notes.h"

#define PAGE 4096u
#define MOCK_PID 4242
#define MOCK_THREADS_MAX 64

struct mock_segment {
	uint64_t start, size;
	uint32_t flags;
	struct mock_module *module; /* NULL: anonymous */
	uint8_t *bytes;
};

struct mock_symbol {
	char *name;
	uint64_t address, size;
	bool local;
};

DEFINE_VECTOR(mock_symbol_vector, struct mock_symbol)

struct mock_struct {
	char *name;
	uint64_t size;
	struct mock_member *members; /* their names and pointees copied */
	size_t member_count;
};

struct mock_variable {
	char *name, *pointer_to;
	uint64_t address;
};

DEFINE_VECTOR(mock_struct_vector, struct mock_struct)
DEFINE_VECTOR(mock_variable_vector, struct mock_variable)

struct mock_module {
	struct mock_snapshot *mock;
	char path[4096 + 256];
	uint64_t base;
	struct mock_symbol_vector symbols;
	char *text; /* put in its file, not mapped */
	struct mock_struct_vector structs; /* its C types (DWARF) */
	struct mock_variable_vector variables;
};

struct mock_thread {
	int tid;
	char name[16];
	uint64_t rsp, rip, fs_base;
};

/* (element types named, so that a vector's `const type *` is a const pointer) */
typedef struct mock_module *mock_module_pointer;
typedef char *mock_path;
DEFINE_VECTOR(mock_segment_vector, struct mock_segment)
DEFINE_VECTOR(mock_module_vector, mock_module_pointer)
DEFINE_VECTOR(mock_thread_vector, struct mock_thread)
DEFINE_VECTOR(mock_path_vector, mock_path)

struct mock_snapshot {
	char directory[4096];
	bool own_directory;
	struct mock_segment_vector segments;
	struct mock_module_vector modules;
	struct mock_thread_vector threads;
	struct mock_path_vector written; /* files to remove */
	struct hs_error mistake;	 /* the first, code HS_ERR_NONE while there is none */
};

__attribute__((format(printf, 2, 3))) static void mistake(struct mock_snapshot *mock,
							  const char *format, ...)
{
	if (mock->mistake.code != HS_ERR_NONE)
		return;
	va_list arguments;
	va_start(arguments, format);
	char text[HS_ERROR_MESSAGE_MAX];
	vsnprintf(text, sizeof text, format, arguments);
	va_end(arguments);
	hs_error_set_code(&mock->mistake, HS_ERR_INVALID, "mock snapshot: %s", text);
}

struct mock_snapshot *mock_snapshot_new(const char *directory)
{
	struct mock_snapshot *mock = calloc(1, sizeof *mock);
	if (mock == NULL)
		return NULL;
	if (directory) {
		snprintf(mock->directory, sizeof mock->directory, "%s", directory);
		return mock;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(mock->directory, sizeof mock->directory, "%s/heapsnap-mock-XXXXXX",
		 tmp && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(mock->directory) == NULL) {
		free(mock);
		return NULL;
	}
	mock->own_directory = true;
	return mock;
}

const char *mock_snapshot_directory(const struct mock_snapshot *mock) { return mock->directory; }

void mock_snapshot_free(struct mock_snapshot *mock)
{
	if (mock == NULL)
		return;
	for (size_t i = 0; i < mock->written.size; i++) {
		unlink(mock->written.data[i]);
		free(mock->written.data[i]);
	}
	mock_path_vector_free(&mock->written);
	if (mock->own_directory)
		rmdir(mock->directory);
	for (size_t i = 0; i < mock->segments.size; i++)
		free(mock->segments.data[i].bytes);
	mock_segment_vector_free(&mock->segments);
	for (size_t i = 0; i < mock->modules.size; i++) {
		struct mock_module *module = mock->modules.data[i];
		for (size_t k = 0; k < module->symbols.size; k++)
			free(module->symbols.data[k].name);
		mock_symbol_vector_free(&module->symbols);
		for (size_t k = 0; k < module->structs.size; k++) {
			struct mock_struct *type = &module->structs.data[k];
			for (size_t m = 0; m < type->member_count; m++) {
				free((char *)type->members[m].name);
				free((char *)type->members[m].pointer_to);
			}
			free(type->members);
			free(type->name);
		}
		mock_struct_vector_free(&module->structs);
		for (size_t k = 0; k < module->variables.size; k++) {
			free(module->variables.data[k].name);
			free(module->variables.data[k].pointer_to);
		}
		mock_variable_vector_free(&module->variables);
		free(module->text);
		free(module);
	}
	mock_module_vector_free(&mock->modules);
	mock_thread_vector_free(&mock->threads);
	free(mock);
}

/* ---- memory ---------------------------------------------------------------------------------- */

uint8_t *mock_segment_add(struct mock_snapshot *mock, uint64_t start, uint64_t size,
			  uint32_t flags, struct mock_module *module)
{
	if (size == 0 || (start | size) % PAGE != 0 || start + size < start) {
		mistake(mock, "segment 0x%llx+0x%llx is empty or not page-aligned",
			(unsigned long long)start, (unsigned long long)size);
		return NULL;
	}
	if (module && start < module->base) {
		mistake(mock, "segment 0x%llx lies below its module's base 0x%llx",
			(unsigned long long)start, (unsigned long long)module->base);
		return NULL;
	}
	for (size_t i = 0; i < mock->segments.size; i++) {
		const struct mock_segment *other = &mock->segments.data[i];
		if (start < other->start + other->size && other->start < start + size) {
			mistake(mock, "segment 0x%llx overlaps segment 0x%llx",
				(unsigned long long)start, (unsigned long long)other->start);
			return NULL;
		}
	}
	uint8_t *bytes = calloc(1, size);
	struct mock_segment *segment = bytes ? mock_segment_vector_append(&mock->segments) : NULL;
	if (segment == NULL) {
		free(bytes);
		mistake(mock, "out of memory");
		return NULL;
	}
	*segment = (struct mock_segment){start, size, flags, module, bytes};
	return bytes;
}

/* The 8 bytes at `address` in the segment holding them, or NULL (a mistake). */
static uint8_t *word_at(struct mock_snapshot *mock, uint64_t address)
{
	for (size_t i = 0; i < mock->segments.size; i++) {
		const struct mock_segment *segment = &mock->segments.data[i];
		if (address >= segment->start && address - segment->start + 8 <= segment->size)
			return segment->bytes + (address - segment->start);
	}
	mistake(mock, "0x%llx lies in no segment", (unsigned long long)address);
	return NULL;
}

void mock_write_u64(struct mock_snapshot *mock, uint64_t address, uint64_t value)
{
	uint8_t *at = word_at(mock, address);
	if (at)
		memcpy(at, &value, 8);
}

uint64_t mock_read_u64(struct mock_snapshot *mock, uint64_t address)
{
	uint64_t value = 0;
	const uint8_t *at = word_at(mock, address);
	if (at)
		memcpy(&value, at, 8);
	return value;
}

/* ---- modules, symbols, threads --------------------------------------------------------------- */

struct mock_module *mock_module_add(struct mock_snapshot *mock, const char *name, uint64_t base)
{
	struct mock_module *module = calloc(1, sizeof *module);
	struct mock_module **slot = module ? mock_module_vector_append(&mock->modules) : NULL;
	if (slot == NULL) {
		free(module);
		mistake(mock, "out of memory");
		return NULL;
	}
	*slot = module;
	module->mock = mock;
	module->base = base;
	if ((size_t)snprintf(module->path, sizeof module->path, "%s/%s", mock->directory, name) >=
	    sizeof module->path)
		mistake(mock, "module path %s/%s too long", mock->directory, name);
	return module;
}

void mock_module_add_text(struct mock_module *module, const char *text)
{
	free(module->text);
	module->text = strdup(text);
	if (module->text == NULL)
		mistake(module->mock, "out of memory");
}

void mock_symbol_add(struct mock_module *module, const char *name, uint64_t address,
		     uint64_t size, bool local)
{
	if (address < module->base) {
		mistake(module->mock, "symbol %s at 0x%llx lies below its module", name,
			(unsigned long long)address);
		return;
	}
	char *copy = strdup(name);
	struct mock_symbol *symbol = copy ? mock_symbol_vector_append(&module->symbols) : NULL;
	if (symbol == NULL) {
		free(copy);
		mistake(module->mock, "out of memory");
		return;
	}
	*symbol = (struct mock_symbol){copy, address, size, local};
}

uint64_t mock_class_add(struct mock_module *module, const char *name, uint64_t vtable)
{
	/* the Itanium C++ ABI's name of a class's vtable: _ZTV, then the name by its length */
	char mangled[256];
	snprintf(mangled, sizeof mangled, "_ZTV%zu%s", strlen(name), name);
	mock_symbol_add(module, mangled, vtable, 24, false);
	/* an object points past the vtable's offset-to-top and typeinfo words */
	return vtable + 16;
}

/* A copy of `text`, NULL for NULL; a mistake when out of memory. */
static char *copy_text(struct mock_snapshot *mock, const char *text)
{
	char *copy = text ? strdup(text) : NULL;
	if (text && copy == NULL)
		mistake(mock, "out of memory");
	return copy;
}

void mock_struct_add(struct mock_module *module, const char *name, uint64_t size,
		     const struct mock_member *members, size_t count)
{
	struct mock_snapshot *mock = module->mock;
	struct mock_member *copies = calloc(count + 1, sizeof *copies);
	struct mock_struct *type = copies ? mock_struct_vector_append(&module->structs) : NULL;
	if (type == NULL) {
		free(copies);
		mistake(mock, "out of memory");
		return;
	}
	*type = (struct mock_struct){copy_text(mock, name), size, copies, count};
	for (size_t i = 0; i < count; i++)
		copies[i] = (struct mock_member){copy_text(mock, members[i].name), members[i].offset,
						 copy_text(mock, members[i].pointer_to)};
}

void mock_pointer_variable_add(struct mock_module *module, const char *name, uint64_t address,
			       const char *pointer_to)
{
	mock_symbol_add(module, name, address, 8, false);
	struct mock_variable *variable = mock_variable_vector_append(&module->variables);
	if (variable == NULL) {
		mistake(module->mock, "out of memory");
		return;
	}
	*variable = (struct mock_variable){copy_text(module->mock, name),
					   copy_text(module->mock, pointer_to), address};
}

void mock_thread_add(struct mock_snapshot *mock, int tid, const char *name, uint64_t rsp,
		     uint64_t rip, uint64_t fs_base)
{
	if (mock->threads.size == MOCK_THREADS_MAX) {
		mistake(mock, "more than %d threads", MOCK_THREADS_MAX);
		return;
	}
	struct mock_thread *thread = mock_thread_vector_append(&mock->threads);
	if (thread == NULL) {
		mistake(mock, "out of memory");
		return;
	}
	*thread = (struct mock_thread){.tid = tid, .rsp = rsp, .rip = rip, .fs_base = fs_base};
	snprintf(thread->name, sizeof thread->name, "%s", name);
}

/* ---- writing --------------------------------------------------------------------------------- */

static int remember_file(struct mock_snapshot *mock, const char *path, struct hs_error *err)
{
	for (size_t i = 0; i < mock->written.size; i++)
		if (strcmp(mock->written.data[i], path) == 0)
			return 0;
	char *copy = strdup(path);
	if (copy == NULL || !mock_path_vector_push(&mock->written, &copy)) {
		free(copy);
		return hs_error_nomem(err, "building a mock snapshot");
	}
	return 0;
}

/* Where the module's image ends, from its base: past its last segment. */
static uint64_t module_image_size(const struct mock_snapshot *mock,
				  const struct mock_module *module)
{
	uint64_t end = module->base + PAGE;
	for (size_t i = 0; i < mock->segments.size; i++) {
		const struct mock_segment *segment = &mock->segments.data[i];
		if (segment->module == module && segment->start + segment->size > end)
			end = segment->start + segment->size;
	}
	return end - module->base;
}

static int compare_locals_first(const void *left, const void *right)
{
	const struct mock_symbol *a = left, *b = right;
	return (int)b->local - (int)a->local;
}

/* Bytes of a file being made: appended, and patched where a reference is known only later. */
DEFINE_VECTOR(mock_bytes, uint8_t)

static void put(struct mock_bytes *bytes, const void *data, size_t size, bool *failed)
{
	if (size == 0)
		return; /* (an empty section's bytes may be NULL) */
	if (!mock_bytes_reserve(bytes, bytes->size + size)) {
		*failed = true;
		return;
	}
	memcpy(bytes->data + bytes->size, data, size);
	bytes->size += size;
}

static void put_u8(struct mock_bytes *bytes, uint8_t value, bool *failed)
{
	put(bytes, &value, 1, failed);
}

static void put_string(struct mock_bytes *bytes, const char *text, bool *failed)
{
	put(bytes, text, strlen(text) + 1, failed);
}

/* .symtab and .strtab: the null symbol, the locals, then the globals (from `*first_global`). */
static void symbol_table(struct mock_module *module, struct mock_bytes *symtab,
			 struct mock_bytes *strtab, size_t *first_global, bool *failed)
{
	struct mock_symbol *symbols = module->symbols.data;
	size_t count = module->symbols.size;
	if (count) /* (qsort must not be given a null array) */
		qsort(symbols, count, sizeof *symbols, compare_locals_first);
	Elf64_Sym null = {0};
	put(symtab, &null, sizeof null, failed);
	put_u8(strtab, 0, failed);
	*first_global = count + 1;
	for (size_t i = 0; i < count; i++) {
		if (!symbols[i].local && *first_global == count + 1)
			*first_global = i + 1;
		Elf64_Sym symbol = {.st_name = (uint32_t)strtab->size,
				    .st_info = ELF64_ST_INFO(symbols[i].local ? STB_LOCAL : STB_GLOBAL,
							     STT_OBJECT),
				    .st_shndx = 1 /* .data */,
				    .st_value = symbols[i].address - module->base,
				    .st_size = symbols[i].size};
		put(symtab, &symbol, sizeof symbol, failed);
		put_string(strtab, symbols[i].name, failed);
	}
}

/* DWARF 4's abbreviations for the DIEs written below: each code, tag, whether it has children,
 * then (attribute, form) pairs. */
enum { ABBREV_UNIT = 1, ABBREV_BASE, ABBREV_STRUCT, ABBREV_MEMBER, ABBREV_POINTER,
       ABBREV_VARIABLE };
static const uint8_t dwarf_abbreviations[] = {
	ABBREV_UNIT, DW_TAG_compile_unit, 1, DW_AT_name, DW_FORM_string, DW_AT_language,
	DW_FORM_data1, 0, 0,
	ABBREV_BASE, DW_TAG_base_type, 0, DW_AT_name, DW_FORM_string, DW_AT_byte_size,
	DW_FORM_data1, DW_AT_encoding, DW_FORM_data1, 0, 0,
	ABBREV_STRUCT, DW_TAG_structure_type, 1, DW_AT_name, DW_FORM_string, DW_AT_byte_size,
	DW_FORM_data4, 0, 0,
	ABBREV_MEMBER, DW_TAG_member, 0, DW_AT_name, DW_FORM_string, DW_AT_type, DW_FORM_ref4,
	DW_AT_data_member_location, DW_FORM_data4, 0, 0,
	ABBREV_POINTER, DW_TAG_pointer_type, 0, DW_AT_byte_size, DW_FORM_data1, DW_AT_type,
	DW_FORM_ref4, 0, 0,
	ABBREV_VARIABLE, DW_TAG_variable, 0, DW_AT_name, DW_FORM_string, DW_AT_type, DW_FORM_ref4,
	DW_AT_external, DW_FORM_flag_present, DW_AT_location, DW_FORM_exprloc, 0, 0,
	0,
};

/* The unit-relative offset of the DIE of `struct NAME *`, or of `long` for NULL; a mistake when
 * the module has no such struct. */
static uint32_t type_reference(struct mock_module *module, const char *pointer_to,
			       const uint32_t *pointer_dies, uint32_t long_die)
{
	if (pointer_to == NULL)
		return long_die;
	for (size_t i = 0; i < module->structs.size; i++)
		if (strcmp(module->structs.data[i].name, pointer_to) == 0)
			return pointer_dies[i];
	mistake(module->mock, "struct %s is not among %s's types", pointer_to, module->path);
	return long_die;
}

/* Puts the DIE's 4-byte reference at `at` once the DIEs it names are laid out. */
static void patch_u32(struct mock_bytes *bytes, size_t at, uint32_t value)
{
	if (at + 4 <= bytes->size)
		memcpy(bytes->data + at, &value, 4);
}

/* .debug_info: one compile unit with `long`, the module's structs, a pointer type to each, and
 * its variables. Members and variables refer to pointer types laid out after them: their
 * references are patched at the end. */
static void debug_info(struct mock_module *module, struct mock_bytes *info, bool *failed)
{
	uint32_t unit_length = 0, abbreviations_at = 0;
	uint16_t version = 4;
	put(info, &unit_length, 4, failed);
	put(info, &version, 2, failed);
	put(info, &abbreviations_at, 4, failed);
	put_u8(info, 8, failed); /* address size */
	put_u8(info, ABBREV_UNIT, failed);
	put_string(info, "mock.c", failed);
	put_u8(info, DW_LANG_C99, failed);
	uint32_t long_die = (uint32_t)info->size;
	put_u8(info, ABBREV_BASE, failed);
	put_string(info, "long", failed);
	put_u8(info, 8, failed);
	put_u8(info, DW_ATE_signed, failed);
	size_t count = module->structs.size;
	uint32_t *struct_dies = calloc(count + 1, sizeof *struct_dies);
	uint32_t *pointer_dies = calloc(count + 1, sizeof *pointer_dies);
	struct reference_fixup {
		size_t at;
		const char *pointer_to;
	} fixups[256];
	size_t fixup_count = 0;
	for (size_t i = 0; i < count && struct_dies; i++) {
		const struct mock_struct *type = &module->structs.data[i];
		struct_dies[i] = (uint32_t)info->size;
		uint32_t size = (uint32_t)type->size;
		put_u8(info, ABBREV_STRUCT, failed);
		put_string(info, type->name, failed);
		put(info, &size, 4, failed);
		for (size_t k = 0; k < type->member_count && fixup_count < 256; k++) {
			uint32_t offset = (uint32_t)type->members[k].offset, reference = 0;
			put_u8(info, ABBREV_MEMBER, failed);
			put_string(info, type->members[k].name, failed);
			fixups[fixup_count++] = (struct reference_fixup){info->size,
								    type->members[k].pointer_to};
			put(info, &reference, 4, failed);
			put(info, &offset, 4, failed);
		}
		put_u8(info, 0, failed); /* the members' end */
	}
	for (size_t i = 0; i < count && pointer_dies; i++) {
		pointer_dies[i] = (uint32_t)info->size;
		put_u8(info, ABBREV_POINTER, failed);
		put_u8(info, 8, failed);
		put(info, &struct_dies[i], 4, failed);
	}
	for (size_t i = 0; i < module->variables.size && fixup_count < 256; i++) {
		const struct mock_variable *variable = &module->variables.data[i];
		uint32_t reference = 0;
		uint64_t address = variable->address - module->base;
		put_u8(info, ABBREV_VARIABLE, failed);
		put_string(info, variable->name, failed);
		fixups[fixup_count++] = (struct reference_fixup){info->size, variable->pointer_to};
		put(info, &reference, 4, failed);
		put_u8(info, 9, failed); /* the location: DW_OP_addr and the address */
		put_u8(info, DW_OP_addr, failed);
		put(info, &address, 8, failed);
	}
	put_u8(info, 0, failed); /* the unit's children's end */
	if (fixup_count == 256 || struct_dies == NULL || pointer_dies == NULL)
		*failed = true;
	for (size_t i = 0; i < fixup_count && pointer_dies; i++)
		patch_u32(info, fixups[i].at,
			  type_reference(module, fixups[i].pointer_to, pointer_dies, long_die));
	patch_u32(info, 0, (uint32_t)info->size - 4);
	free(struct_dies);
	free(pointer_dies);
}

struct elf_section {
	const char *name;
	uint32_t type, link, info;
	uint64_t flags, size, entsize;
	const struct mock_bytes *bytes; /* NULL: none in the file */
};

/* The ELF file: header, one PT_LOAD over the image (from address 0: the load bias is the
 * module's base), the sections' bytes, their names, then the section headers. */
static int write_elf(const char *path, uint64_t image_size, const struct elf_section *sections,
		     size_t count, struct hs_error *err)
{
	struct mock_bytes file = {0}, names = {0};
	bool failed = false;
	Elf64_Ehdr header = {.e_type = ET_DYN, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
			     .e_phoff = sizeof(Elf64_Ehdr), .e_ehsize = sizeof(Elf64_Ehdr),
			     .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 1,
			     .e_shentsize = sizeof(Elf64_Shdr), .e_shnum = (uint16_t)(count + 2),
			     .e_shstrndx = (uint16_t)(count + 1)};
	memcpy(header.e_ident, ELFMAG, SELFMAG);
	header.e_ident[EI_CLASS] = ELFCLASS64;
	header.e_ident[EI_DATA] = ELFDATA2LSB;
	header.e_ident[EI_VERSION] = EV_CURRENT;
	Elf64_Phdr load = {.p_type = PT_LOAD, .p_flags = PF_R | PF_W, .p_memsz = image_size,
			   .p_align = PAGE};
	put(&file, &header, sizeof header, &failed);
	put(&file, &load, sizeof load, &failed);
	Elf64_Shdr headers[32] = {{0}};
	put_u8(&names, 0, &failed);
	for (size_t i = 0; i < count && i + 2 < 32; i++) {
		while (file.size % 8)
			put_u8(&file, 0, &failed);
		const struct elf_section *section = &sections[i];
		headers[i + 1] = (Elf64_Shdr){.sh_name = (uint32_t)names.size,
					      .sh_type = section->type,
					      .sh_flags = section->flags,
					      .sh_offset = file.size,
					      .sh_size = section->bytes ? section->bytes->size
									: section->size,
					      .sh_link = section->link,
					      .sh_info = section->info,
					      .sh_addralign = 8,
					      .sh_entsize = section->entsize};
		put_string(&names, section->name, &failed);
		if (section->bytes)
			put(&file, section->bytes->data, section->bytes->size, &failed);
	}
	headers[count + 1] = (Elf64_Shdr){.sh_name = (uint32_t)names.size, .sh_type = SHT_STRTAB,
					  .sh_offset = file.size, .sh_addralign = 1};
	put_string(&names, ".shstrtab", &failed);
	headers[count + 1].sh_size = names.size;
	put(&file, names.data, names.size, &failed);
	while (file.size % 8)
		put_u8(&file, 0, &failed);
	header.e_shoff = file.size;
	put(&file, headers, (count + 2) * sizeof headers[0], &failed);
	if (!failed)
		memcpy(file.data, &header, sizeof header); /* (with e_shoff now known) */
	int fd = failed || count + 2 > 32 ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int result = 0;
	if (failed || count + 2 > 32)
		result = hs_error_nomem(err, "writing %s", path);
	else if (fd < 0 || write(fd, file.data, file.size) != (ssize_t)file.size)
		result = hs_error_set_errno(err, errno, "writing %s", path);
	if (fd >= 0)
		close(fd);
	mock_bytes_free(&file);
	mock_bytes_free(&names);
	return result;
}

/* The module's file: its symbols, its text, its DWARF when it has C types, and a writable .data
 * over its whole image (what names data no symbol covers). */
static int write_module_file(struct mock_snapshot *mock, struct mock_module *module,
			     struct hs_error *err)
{
	struct mock_bytes symtab = {0}, strtab = {0}, text = {0}, abbreviations = {0}, info = {0};
	bool failed = false;
	size_t first_global;
	symbol_table(module, &symtab, &strtab, &first_global, &failed);
	if (module->text)
		put_string(&text, module->text, &failed);
	bool dwarf = module->structs.size || module->variables.size;
	if (dwarf) {
		put(&abbreviations, dwarf_abbreviations, sizeof dwarf_abbreviations, &failed);
		debug_info(module, &info, &failed);
	}
	struct elf_section sections[] = {
		{".data", SHT_NOBITS, 0, 0, SHF_ALLOC | SHF_WRITE, module_image_size(mock, module),
		 0, NULL},
		{".comment", SHT_PROGBITS, 0, 0, 0, 0, 0, &text},
		{".symtab", SHT_SYMTAB, 4 /* .strtab */, (uint32_t)first_global, 0, 0,
		 sizeof(Elf64_Sym), &symtab},
		{".strtab", SHT_STRTAB, 0, 0, 0, 0, 0, &strtab},
		{".debug_abbrev", SHT_PROGBITS, 0, 0, 0, 0, 0, &abbreviations},
		{".debug_info", SHT_PROGBITS, 0, 0, 0, 0, 0, &info},
	};
	int result = failed ? hs_error_nomem(err, "writing %s", module->path)
			    : write_elf(module->path, module_image_size(mock, module), sections,
					dwarf ? 6 : 4, err);
	mock_bytes_free(&symtab);
	mock_bytes_free(&strtab);
	mock_bytes_free(&text);
	mock_bytes_free(&abbreviations);
	mock_bytes_free(&info);
	return result ? result : remember_file(mock, module->path, err);
}

/* NT_FILE: count, page size, {start, end, file offset in pages} per file mapping, then the
 * paths. */
static int add_file_note(struct mock_snapshot *mock, struct core_image *image,
			 struct hs_error *err)
{
	size_t count = 0, names = 0;
	for (size_t i = 0; i < mock->segments.size; i++)
		if (mock->segments.data[i].module) {
			count++;
			names += strlen(mock->segments.data[i].module->path) + 1;
		}
	size_t size = 16 + 24 * count + names;
	uint8_t *desc = calloc(1, size);
	if (desc == NULL)
		return hs_error_nomem(err, "building a mock snapshot");
	uint64_t header[2] = {count, PAGE};
	memcpy(desc, header, sizeof header);
	size_t entry = 0, name_at = 16 + 24 * count;
	for (size_t i = 0; i < mock->segments.size; i++) {
		const struct mock_segment *segment = &mock->segments.data[i];
		if (segment->module == NULL)
			continue;
		uint64_t fields[3] = {segment->start, segment->start + segment->size,
				      (segment->start - segment->module->base) / PAGE};
		memcpy(desc + 16 + 24 * entry++, fields, sizeof fields);
		strcpy((char *)desc + name_at, segment->module->path);
		name_at += strlen(segment->module->path) + 1;
	}
	int result = core_image_add_note(image, "CORE", NT_FILE, desc, size, err);
	free(desc);
	return result;
}

/* The notes in the order a capture writes them: each thread's registers (NT_FILE after the
 * first's), then heapsnap's info, layout and thread names (the modules' come after). */
static int add_notes(struct mock_snapshot *mock, struct core_image *image, struct hs_error *err)
{
	if (mock->threads.size == 0)
		mock_thread_add(mock, MOCK_PID, "mock", 0, 0, 0);
	struct heapsnap_thread_note names[MOCK_THREADS_MAX] = {0};
	size_t count = mock->threads.size;
	for (size_t i = 0; i < count; i++) {
		const struct mock_thread *thread = &mock->threads.data[i];
		struct elf_prstatus status;
		memset(&status, 0, sizeof status);
		status.pr_pid = thread->tid;
		struct user_regs_struct registers = {.rsp = thread->rsp, .rip = thread->rip,
						     .fs_base = thread->fs_base};
		memcpy(&status.pr_reg, &registers, sizeof registers);
		if (core_image_add_note(image, "CORE", NT_PRSTATUS, &status, sizeof status, err))
			return -1;
		if (i == 0 && add_file_note(mock, image, err) != 0)
			return -1;
		names[i].tid = (uint32_t)thread->tid;
		memcpy(names[i].name, thread->name, sizeof names[i].name);
	}
	struct snapshot_info info = {.pid = MOCK_PID, .process_start_ticks = 1,
				     .capture_start_ns = 1795000000000000000ull,
				     .capture_end_ns = 1795000000000000000ull};
	snprintf(info.tool_version, sizeof info.tool_version, "mock");
	snprintf(info.source, sizeof info.source, "ptrace");
	snprintf(info.boot_id, sizeof info.boot_id, "00000000-0000-0000-0000-000000000001");
	if (mock->modules.size && strlen(mock->modules.data[0]->path) < sizeof info.exe)
		strcpy(info.exe, mock->modules.data[0]->path);
	return snapshot_notes_add_info(image, &info, err) ||
	       snapshot_notes_add_layout(image, err) ||
	       snapshot_notes_add_threads(image, names, count, err);
}

static int compare_segments(const void *left, const void *right)
{
	const struct mock_segment *a = left, *b = right;
	return a->start < b->start ? -1 : a->start > b->start;
}

static int build_image(struct mock_snapshot *mock, struct core_image *image,
		       struct hs_error *err)
{
	qsort(mock->segments.data, mock->segments.size, sizeof *mock->segments.data,
	      compare_segments);
	if (add_notes(mock, image, err) != 0)
		return -1;
	for (size_t i = 0; i < mock->modules.size; i++) {
		const struct mock_module *module = mock->modules.data[i];
		if (snapshot_notes_add_module(image, module->base, NULL, 0, module->path, err))
			return -1;
	}
	for (size_t i = 0; i < mock->segments.size; i++) {
		const struct mock_segment *segment = &mock->segments.data[i];
		struct core_segment stored = {PT_LOAD, segment->flags, segment->start,
					      segment->size, segment->size, PAGE, segment->bytes,
					      NULL};
		if (core_image_add_segment(image, &stored, err) != 0)
			return -1;
	}
	return 0;
}

int mock_snapshot_write(struct mock_snapshot *mock, const char *name, char *path,
			size_t path_size, struct hs_error *err)
{
	if (mock->mistake.code != HS_ERR_NONE) {
		*err = mock->mistake;
		return -1;
	}
	for (size_t i = 0; i < mock->modules.size; i++)
		if (write_module_file(mock, mock->modules.data[i], err) != 0)
			return -1;
	if ((size_t)snprintf(path, path_size, "%s/%s", mock->directory, name) >= path_size)
		return hs_error_set_code(err, HS_ERR_INVALID, "mock snapshot: path too long");
	struct core_image image;
	core_image_init(&image);
	struct seekable_stats stats;
	int result = build_image(mock, &image, err);
	if (result == 0)
		result = remember_file(mock, path, err);
	if (result == 0)
		result = snapshot_file_write(&image, path, NULL, NULL, &stats, err);
	core_image_free(&image);
	return result;
}

struct analysis *mock_snapshot_analyse(struct mock_snapshot *mock, const char *name,
				       struct hs_error *err)
{
	char path[4096];
	if (mock_snapshot_write(mock, name, path, sizeof path, err) != 0)
		return NULL;
	struct analysis_options options = {0};
	struct analysis *analysis = analysis_open(path, &options, err);
	if (analysis && analysis_build_graph(analysis, err) != 0) {
		analysis_close(analysis);
		return NULL;
	}
	return analysis;
}

/* ---- glibc's malloc -------------------------------------------------------------------------- */

#define CHUNK_HEADER 16u
#define MIN_CHUNK 32u
#define PREV_INUSE 1u

void mock_glibc_init(struct mock_glibc *glibc, struct mock_snapshot *mock, int minor,
		     uint64_t libc_base, uint64_t heap_start, uint64_t heap_size)
{
	memset(glibc, 0, sizeof *glibc);
	glibc->mock = mock;
	glibc_layout_builtin(minor, &glibc->layout);
	glibc->libc = mock_module_add(mock, "libc.so.6", libc_base);
	if (glibc->libc == NULL)
		return;
	/* what glibc_heap.c reads glibc's version from */
	char banner[128];
	snprintf(banner, sizeof banner,
		 "GNU C Library (mock) stable release version 2.%d.", minor);
	mock_module_add_text(glibc->libc, banner);
	uint64_t data_size = (glibc->layout.state_size + 0x100 + PAGE - 1) & ~(uint64_t)(PAGE - 1);
	mock_segment_add(mock, libc_base, data_size, PF_R | PF_W, glibc->libc);
	glibc->main_arena = libc_base + 0x100;
	mock_symbol_add(glibc->libc, "main_arena", glibc->main_arena, glibc->layout.state_size,
			true);
	glibc->heap_start = heap_start;
	glibc->heap_end = heap_start + heap_size;
	glibc->next_chunk = heap_start;
	mock_segment_add(mock, heap_start, heap_size, PF_R | PF_W, NULL);
}

uint64_t mock_malloc(struct mock_glibc *glibc, uint64_t request)
{
	/* request2size */
	uint64_t size = (request + 8 + 15) & ~(uint64_t)15;
	if (size < MIN_CHUNK)
		size = MIN_CHUNK;
	uint64_t chunk = glibc->next_chunk;
	if (glibc->finished) {
		mistake(glibc->mock, "malloc(%llu) after mock_glibc_finish",
			(unsigned long long)request);
		return 0;
	}
	if (chunk + size + MIN_CHUNK > glibc->heap_end) {
		mistake(glibc->mock, "malloc(%llu): the heap is full", (unsigned long long)request);
		return 0;
	}
	mock_write_u64(glibc->mock, chunk + 8, size | PREV_INUSE);
	glibc->next_chunk = chunk + size;
	return chunk + CHUNK_HEADER;
}

void mock_free(struct mock_glibc *glibc, uint64_t pointer)
{
	if (glibc->finished) {
		mistake(glibc->mock, "free(0x%llx) after mock_glibc_finish",
			(unsigned long long)pointer);
		return;
	}
	if (glibc->freed_count == MOCK_FREED_MAX) {
		mistake(glibc->mock, "more than %d chunks freed", MOCK_FREED_MAX);
		return;
	}
	glibc->freed[glibc->freed_count++] = pointer - CHUNK_HEADER;
}

static uint64_t chunk_size(struct mock_glibc *glibc, uint64_t chunk)
{
	return mock_read_u64(glibc->mock, chunk + 8) & ~(uint64_t)7;
}

/* The head of bin `bin` (an index into bins[], even): a fake chunk whose fd and bk are
 * bins[bin] and bins[bin + 1]. */
static uint64_t bin_head(const struct mock_glibc *glibc, unsigned bin)
{
	return glibc->main_arena + glibc->layout.state_bins + 8ull * bin - 16;
}

void mock_glibc_finish(struct mock_glibc *glibc)
{
	struct mock_snapshot *mock = glibc->mock;
	uint64_t top = glibc->next_chunk;
	glibc->finished = true;
	mock_write_u64(mock, top + 8, (glibc->heap_end - top) | PREV_INUSE);
	const struct glibc_layout *layout = &glibc->layout;
	for (unsigned bin = 0; bin + 1 < layout->bin_count; bin += 2) {
		mock_write_u64(mock, bin_head(glibc, bin) + 16, bin_head(glibc, bin));
		mock_write_u64(mock, bin_head(glibc, bin) + 24, bin_head(glibc, bin));
	}
	/* the unsorted bin: the last chunk freed first, as free() puts each at its front */
	uint64_t unsorted = bin_head(glibc, 0);
	for (size_t i = 0; i < glibc->freed_count; i++) {
		uint64_t chunk = glibc->freed[i], size = chunk_size(glibc, chunk);
		uint64_t next = chunk + size;
		for (size_t k = 0; k < glibc->freed_count; k++)
			if (glibc->freed[k] == next)
				mistake(mock, "free chunks 0x%llx and 0x%llx touch",
					(unsigned long long)chunk, (unsigned long long)next);
		if (next == top)
			mistake(mock, "free chunk 0x%llx touches the top chunk",
				(unsigned long long)chunk);
		mock_write_u64(mock, next, size); /* prev_size */
		mock_write_u64(mock, next + 8, mock_read_u64(mock, next + 8) & ~(uint64_t)PREV_INUSE);
		uint64_t first = mock_read_u64(mock, unsorted + 16);
		mock_write_u64(mock, chunk + 16, first);    /* fd */
		mock_write_u64(mock, chunk + 24, unsorted); /* bk */
		mock_write_u64(mock, first + 24, chunk);
		mock_write_u64(mock, unsorted + 16, chunk);
	}
	mock_write_u64(mock, glibc->main_arena + layout->state_top, top);
	mock_write_u64(mock, glibc->main_arena + layout->state_next, glibc->main_arena);
	mock_write_u64(mock, glibc->main_arena + layout->state_system_mem,
		       glibc->heap_end - glibc->heap_start);
}
