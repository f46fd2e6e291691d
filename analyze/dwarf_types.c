/* The libdwarf wrapper (see dwarf_types.h). Written against libdwarf 20210528; the calls whose
 * signature changed in libdwarf 0.x go through the LIBDWARF_* macros below. */
#include "dwarf_types.h"

#include <dwarf.h>
#include <fcntl.h>
#include <libdwarf.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/array_grow.h"
#include "common/open_file.h"
#include "common/string_table.h"

/* Calls below pass no Dwarf_Error: a failing call then goes to this handler, which does nothing
 * (the call still returns DW_DLV_ERROR), instead of libdwarf's default, which aborts. */
static void ignore_dwarf_error(Dwarf_Error error, Dwarf_Ptr argument)
{
	(void)error;
	(void)argument;
}

#if defined(DW_LIBDWARF_VERSION_MAJOR) /* libdwarf 0.x */
#define LIBDWARF_INIT(fd, dbg, error)                                                         \
	dwarf_init_b((fd), DW_GROUPNUMBER_ANY, ignore_dwarf_error, NULL, (dbg), (error))
#define LIBDWARF_FINISH(dbg) dwarf_finish(dbg)
#else
#define LIBDWARF_INIT(fd, dbg, error)                                                         \
	dwarf_init_b((fd), DW_DLC_READ, DW_GROUPNUMBER_ANY, ignore_dwarf_error, NULL, (dbg),  \
		     (error))
#define LIBDWARF_FINISH(dbg) dwarf_finish((dbg), NULL)
#endif

/* libdwarf keeps some state of its own across Dwarf_Debug handles and promises no thread safety;
 * heapdiff opens snapshots in parallel threads, so every call into it is made under one lock
 * (recursive: each_variable's callback may look up more). */
static pthread_mutex_t libdwarf_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

#define NO_OFFSET ((Dwarf_Off)-1)
/* Set in an indexed offset whose DIE is in the supplementary file (offsets stay below 2^63). */
#define SUPPLEMENTARY_OFFSET ((Dwarf_Off)1 << 63)

/* DIEs by name: the names interned, each number's DIE offset beside (NO_OFFSET: none) */
struct name_table {
	struct string_table names;
	Dwarf_Off *offsets; /* by name number */
	size_t capacity;
};

struct dwarf_types {
	int fd;
	Dwarf_Debug dbg;
	/* the dwz supplementary file (.gnu_debugaltlink): DIEs and strings several debug files
	   share, which dbg's DW_FORM_GNU_ref_alt and DW_FORM_GNU_strp_alt point into; -1 and NULL
	   when there is none */
	int supplementary_fd;
	Dwarf_Debug supplementary;
	bool indexed;
	struct name_table structs, variables;
	struct name_table typedefs; /* typedef names: many C structs are only named by a typedef */
	/* the line table, read at the first lookup: rows by address (line 0: a sequence's end) */
	bool lines_read;
	struct line_row {
		uint64_t address;
		uint32_t line, file; /* file: index into files */
	} *lines;
	size_t line_count;
	struct string_table files; /* the line table's file names, numbered */
};

/* The first complete definition of a name wins. */
static void table_add(struct name_table *table, const char *name, Dwarf_Off offset)
{
	size_t count = table->names.count;
	uint32_t number = string_table_intern(&table->names, name);
	if (number == UINT32_MAX || number < count)
		return;
	size_t before = table->offsets ? table->capacity : 0;
	Dwarf_Off *grown = array_grow(table->offsets, &table->capacity, number,
				      sizeof *table->offsets, 1024);
	if (grown == NULL)
		return; /* (out of memory: the name is not found, see table_find) */
	for (size_t i = before; i < table->capacity; i++)
		grown[i] = NO_OFFSET;
	table->offsets = grown;
	table->offsets[number] = offset;
}

/* The DIE offset of `name`; false when the name is not in the table. */
static bool table_find(const struct name_table *table, const char *name, Dwarf_Off *offset)
{
	uint32_t number = string_table_find(&table->names, name);
	if (number == UINT32_MAX || table->offsets == NULL || number >= table->capacity ||
	    table->offsets[number] == NO_OFFSET)
		return false;
	*offset = table->offsets[number];
	return true;
}

static void table_free(struct name_table *table)
{
	string_table_free(&table->names);
	free(table->offsets);
}

/* Opens one file's DWARF; false (nothing to free) when libdwarf cannot read it. */
static bool open_dwarf(const char *path, int *fd, Dwarf_Debug *dbg)
{
	*fd = open_regular_file(path);
	Dwarf_Error error = NULL;
	if (*fd >= 0 && LIBDWARF_INIT(*fd, dbg, &error) == DW_DLV_OK)
		return true;
	/* a failed init allocates its error, with no Dwarf_Debug to free it with */
	if (error != NULL)
		dwarf_dealloc(NULL, error, DW_DLA_ERROR);
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	*dbg = NULL;
	return false;
}

static struct dwarf_types *open_locked(const char *path, const char *supplementary,
				       struct hs_error *err)
{
	struct dwarf_types *types = calloc(1, sizeof *types);
	if (types == NULL) {
		hs_error_nomem(err, "reading DWARF of %s", path);
		return NULL;
	}
	types->supplementary_fd = -1;
	if (!open_dwarf(path, &types->fd, &types->dbg)) {
		hs_error_set(err, "%s has no DWARF debug information that libdwarf can read", path);
		free(types);
		return NULL;
	}
	/* tied, libdwarf reads the supplementary file's strings itself; its DIEs are followed
	   here (referenced_die) */
	if (supplementary != NULL &&
	    open_dwarf(supplementary, &types->supplementary_fd, &types->supplementary) &&
	    dwarf_set_tied_dbg(types->dbg, types->supplementary, NULL) != DW_DLV_OK) {
		LIBDWARF_FINISH(types->supplementary);
		close(types->supplementary_fd);
		types->supplementary_fd = -1;
		types->supplementary = NULL;
	}
	return types;
}

static void close_locked(struct dwarf_types *types)
{
	if (types == NULL)
		return;
	LIBDWARF_FINISH(types->dbg);
	close(types->fd);
	if (types->supplementary) {
		LIBDWARF_FINISH(types->supplementary);
		close(types->supplementary_fd);
	}
	table_free(&types->structs);
	table_free(&types->variables);
	table_free(&types->typedefs);
	string_table_free(&types->files);
	free(types->lines);
	free(types);
}

static bool die_name(Dwarf_Debug dbg, Dwarf_Die die, char *out, size_t out_size)
{
	char *name = NULL;
	if (dwarf_diename(die, &name, NULL) != DW_DLV_OK || name == NULL)
		return false;
	size_t length = strlen(name);
	if (length >= out_size)
		length = out_size - 1;
	memcpy(out, name, length);
	out[length] = '\0';
	dwarf_dealloc(dbg, name, DW_DLA_STRING);
	return true;
}

static bool die_unsigned(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half attribute, uint64_t *out)
{
	Dwarf_Attribute attr = NULL;
	if (dwarf_attr(die, attribute, &attr, NULL) != DW_DLV_OK)
		return false;
	Dwarf_Unsigned value = 0;
	bool ok = dwarf_formudata(attr, &value, NULL) == DW_DLV_OK;
	if (!ok) {
		/* DWARF 5's DW_FORM_implicit_const (a value kept in the abbreviation, as gcc writes
		   sizes shared by many DIEs) is signed data to older libdwarf */
		Dwarf_Signed signed_value = 0;
		ok = dwarf_formsdata(attr, &signed_value, NULL) == DW_DLV_OK && signed_value >= 0;
		value = (Dwarf_Unsigned)signed_value;
	}
	dwarf_dealloc(dbg, attr, DW_DLA_ATTR);
	*out = value;
	return ok;
}

static bool die_flag(Dwarf_Die die, Dwarf_Half attribute)
{
	Dwarf_Bool present = 0;
	return dwarf_hasattr(die, attribute, &present, NULL) == DW_DLV_OK && present;
}

/* The DIE a reference attribute (DW_AT_type, DW_AT_specification) of `die` (of `dbg`) names,
 * and in *out_dbg the file it is in: a dwz reference (DW_FORM_GNU_ref_alt, DWARF 5's ref_sup)
 * points into the supplementary file tied to dbg. */
static bool referenced_die(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half attribute,
			   Dwarf_Debug *out_dbg, Dwarf_Die *out)
{
	Dwarf_Attribute attr = NULL;
	if (dwarf_attr(die, attribute, &attr, NULL) != DW_DLV_OK)
		return false;
	Dwarf_Off offset = 0;
	Dwarf_Half form = 0;
	int status = dwarf_global_formref(attr, &offset, NULL);
	if (status == DW_DLV_OK)
		status = dwarf_whatform(attr, &form, NULL);
	dwarf_dealloc(dbg, attr, DW_DLA_ATTR);
	*out_dbg = dbg;
	if (status == DW_DLV_OK &&
	    (form == DW_FORM_GNU_ref_alt || form == DW_FORM_ref_sup4 || form == DW_FORM_ref_sup8) &&
	    (dwarf_get_tied_dbg(dbg, out_dbg, NULL) != DW_DLV_OK || *out_dbg == NULL))
		return false; /* into a supplementary file that is not here */
	return status == DW_DLV_OK && dwarf_offdie_b(*out_dbg, offset, 1, out, NULL) == DW_DLV_OK;
}

/* A definition that completes an earlier declaration carries its name there (DW_AT_specification),
 * as a global declared in a header and defined in one file does. */
static bool specification_name(Dwarf_Debug dbg, Dwarf_Die die, char *out, size_t out_size)
{
	Dwarf_Debug at = NULL;
	Dwarf_Die declaration = NULL;
	if (!referenced_die(dbg, die, DW_AT_specification, &at, &declaration))
		return false;
	bool named = die_name(at, declaration, out, out_size);
	dwarf_dealloc(at, declaration, DW_DLA_DIE);
	return named;
}

/* The next compile unit's DIE (NULL when it cannot be read); false past the last unit, after
 * which the next call starts again from the first. */
static bool next_unit(Dwarf_Debug dbg, Dwarf_Die *unit)
{
	Dwarf_Unsigned next = 0;
	Dwarf_Half cu_type = 0;
	*unit = NULL;
	if (dwarf_next_cu_header_d(dbg, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &next,
				   &cu_type, NULL) != DW_DLV_OK)
		return false;
	if (dwarf_siblingof_b(dbg, NULL, 1, unit, NULL) != DW_DLV_OK)
		*unit = NULL;
	return true;
}

/* Indexes the complete definitions at the top level of every unit of `dbg`, their offsets
 * marked with `flag`. */
static void index_units(struct dwarf_types *types, Dwarf_Debug dbg, Dwarf_Off flag)
{
	Dwarf_Die unit;
	while (next_unit(dbg, &unit)) {
		if (unit == NULL)
			continue;
		Dwarf_Die child = NULL;
		if (dwarf_child(unit, &child, NULL) == DW_DLV_OK) {
			while (child != NULL) {
				Dwarf_Half tag = 0;
				char name[256];
				Dwarf_Off offset = 0;
				if (dwarf_tag(child, &tag, NULL) == DW_DLV_OK &&
				    (tag == DW_TAG_structure_type || tag == DW_TAG_variable ||
				     tag == DW_TAG_typedef) &&
				    !die_flag(child, DW_AT_declaration) &&
				    (die_name(dbg, child, name, sizeof name) ||
				     (tag == DW_TAG_variable &&
				      specification_name(dbg, child, name, sizeof name))) &&
				    dwarf_dieoffset(child, &offset, NULL) == DW_DLV_OK) {
					if (tag == DW_TAG_structure_type)
						table_add(&types->structs, name, offset | flag);
					else if (tag == DW_TAG_typedef)
						table_add(&types->typedefs, name, offset | flag);
					else if (die_flag(child, DW_AT_location))
						table_add(&types->variables, name, offset | flag);
				}
				Dwarf_Die sibling = NULL;
				int status = dwarf_siblingof_b(dbg, child, 1, &sibling, NULL);
				dwarf_dealloc(dbg, child, DW_DLA_DIE);
				child = status == DW_DLV_OK ? sibling : NULL;
			}
		}
		dwarf_dealloc(dbg, unit, DW_DLA_DIE);
	}
}

/* Indexes the file's definitions, then those dwz moved to the supplementary file (partial units
 * the file's units import). */
static void build_index(struct dwarf_types *types)
{
	types->indexed = true;
	index_units(types, types->dbg, 0);
	if (types->supplementary)
		index_units(types, types->supplementary, SUPPLEMENTARY_OFFSET);
}

/* The size in bytes of the type a DIE's DW_AT_type names, through typedefs, qualifiers and
 * arrays; 0 when unknown. */
static uint64_t type_size(Dwarf_Debug dbg, Dwarf_Die die, int depth)
{
	Dwarf_Die type = NULL;
	/* (from here on dbg is the type's file) */
	if (depth > 16 || !referenced_die(dbg, die, DW_AT_type, &dbg, &type))
		return 0;
	uint64_t size = 0;
	Dwarf_Half tag = 0;
	dwarf_tag(type, &tag, NULL);
	if (die_unsigned(dbg, type, DW_AT_byte_size, &size)) {
		/* a struct, base type, pointer, enum... */
	} else if (tag == DW_TAG_pointer_type || tag == DW_TAG_reference_type ||
		   tag == DW_TAG_rvalue_reference_type || tag == DW_TAG_ptr_to_member_type) {
		size = 8; /* x86-64: the only target heapsnap reads */
	} else if (tag == DW_TAG_array_type) {
		uint64_t element = type_size(dbg, type, depth + 1), count = 1;
		Dwarf_Die range = NULL;
		if (dwarf_child(type, &range, NULL) == DW_DLV_OK) {
			while (range != NULL) {
				uint64_t upper = 0, elements = 0;
				if (die_unsigned(dbg, range, DW_AT_count, &elements))
					count *= elements;
				else if (die_unsigned(dbg, range, DW_AT_upper_bound, &upper))
					count *= upper + 1;
				else
					count = 0; /* flexible array */
				Dwarf_Die sibling = NULL;
				int next = dwarf_siblingof_b(dbg, range, 1, &sibling, NULL);
				dwarf_dealloc(dbg, range, DW_DLA_DIE);
				range = next == DW_DLV_OK ? sibling : NULL;
			}
		}
		size = element * count;
	} else {
		size = type_size(dbg, type, depth + 1); /* typedef, const, volatile */
	}
	dwarf_dealloc(dbg, type, DW_DLA_DIE);
	return size;
}

static void type_name(Dwarf_Debug dbg, Dwarf_Die die, char *out, size_t out_size, int depth);

/* The DIE indexed under `name` in `table` (indexing on first use), and the file it is in. */
static bool indexed_die(struct dwarf_types *types, struct name_table *table, const char *name,
			Dwarf_Debug *dbg, Dwarf_Die *die)
{
	if (!types->indexed)
		build_index(types);
	Dwarf_Off offset;
	if (!table_find(table, name, &offset))
		return false;
	*dbg = offset & SUPPLEMENTARY_OFFSET ? types->supplementary : types->dbg;
	return dwarf_offdie_b(*dbg, offset & ~SUPPLEMENTARY_OFFSET, 1, die, NULL) == DW_DLV_OK;
}

/* The struct a typedef names, through further typedefs; a declaration is completed by its name. */
static bool typedef_struct(struct dwarf_types *types, const char *name, Dwarf_Debug *out_dbg,
			   Dwarf_Die *out)
{
	Dwarf_Debug dbg = NULL;
	Dwarf_Die die = NULL;
	if (!indexed_die(types, &types->typedefs, name, &dbg, &die))
		return false;
	for (int depth = 0; depth < 8; depth++) {
		Dwarf_Debug next_dbg = NULL;
		Dwarf_Die next = NULL;
		bool followed = referenced_die(dbg, die, DW_AT_type, &next_dbg, &next);
		dwarf_dealloc(dbg, die, DW_DLA_DIE);
		if (!followed)
			return false;
		dbg = next_dbg;
		die = next;
		Dwarf_Half tag = 0;
		dwarf_tag(die, &tag, NULL);
		if (tag == DW_TAG_typedef)
			continue;
		char struct_name[256];
		bool found = false;
		if (tag == DW_TAG_structure_type && !die_flag(die, DW_AT_declaration)) {
			*out_dbg = dbg;
			*out = die;
			return true;
		}
		if (tag == DW_TAG_structure_type && die_name(dbg, die, struct_name, sizeof struct_name))
			found = indexed_die(types, &types->structs, struct_name, out_dbg, out);
		dwarf_dealloc(dbg, die, DW_DLA_DIE);
		return found;
	}
	dwarf_dealloc(dbg, die, DW_DLA_DIE);
	return false;
}

static bool struct_locked(struct dwarf_types *types, const char *name, struct dwarf_struct *out)
{
	Dwarf_Debug dbg = NULL;
	Dwarf_Die die = NULL;
	if (!indexed_die(types, &types->structs, name, &dbg, &die) &&
	    !typedef_struct(types, name, &dbg, &die))
		return false;
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", name);
	die_unsigned(dbg, die, DW_AT_byte_size, &out->size);
	Dwarf_Die child = NULL;
	if (dwarf_child(die, &child, NULL) == DW_DLV_OK) {
		while (child != NULL) {
			Dwarf_Half tag = 0;
			struct dwarf_member member = {0};
			if (dwarf_tag(child, &tag, NULL) == DW_DLV_OK && tag == DW_TAG_member &&
			    out->member_count < DWARF_MEMBERS_MAX &&
			    die_unsigned(dbg, child, DW_AT_data_member_location, &member.offset)) {
				if (!die_name(dbg, child, member.name, sizeof member.name))
					member.name[0] = '\0'; /* an anonymous union or struct */
				member.size = type_size(dbg, child, 0);
				type_name(dbg, child, member.type, sizeof member.type, 0);
				out->members[out->member_count++] = member;
			}
			Dwarf_Die sibling = NULL;
			int status = dwarf_siblingof_b(dbg, child, 1, &sibling, NULL);
			dwarf_dealloc(dbg, child, DW_DLA_DIE);
			child = status == DW_DLV_OK ? sibling : NULL;
		}
	}
	dwarf_dealloc(dbg, die, DW_DLA_DIE);
	return true;
}

const struct dwarf_member *dwarf_struct_member(const struct dwarf_struct *layout,
					       const char *name)
{
	for (size_t i = 0; i < layout->member_count; i++)
		if (strcmp(layout->members[i].name, name) == 0)
			return &layout->members[i];
	return NULL;
}

/* Writes the C spelling of the type a DIE's DW_AT_type names. */
static void type_name(Dwarf_Debug dbg, Dwarf_Die die, char *out, size_t out_size, int depth)
{
	out[0] = '\0';
	Dwarf_Die type = NULL;
	if (depth > 8 || !die_flag(die, DW_AT_type)) {
		snprintf(out, out_size, "void");
		return;
	}
	Dwarf_Debug at = NULL; /* the type's file */
	if (!referenced_die(dbg, die, DW_AT_type, &at, &type)) {
		snprintf(out, out_size, "?");
		return;
	}
	Dwarf_Half tag = 0;
	dwarf_tag(type, &tag, NULL);
	char name[96] = "", inner[96]; /* shorter than out, so "inner *" and "inner[N]" fit */
	bool named = die_name(at, type, name, sizeof name);
	switch (tag) {
	case DW_TAG_pointer_type:
		type_name(at, type, inner, sizeof inner, depth + 1);
		snprintf(out, out_size, "%s *", inner);
		break;
	case DW_TAG_const_type:
	case DW_TAG_volatile_type:
		type_name(at, type, out, out_size, depth + 1);
		break;
	case DW_TAG_array_type: {
		type_name(at, type, inner, sizeof inner, depth + 1);
		uint64_t size = type_size(dbg, die, 0), element = type_size(at, type, 0);
		if (element && size)
			snprintf(out, out_size, "%s[%llu]", inner, (unsigned long long)(size / element));
		else
			snprintf(out, out_size, "%s[]", inner);
		break;
	}
	case DW_TAG_structure_type:
		snprintf(out, out_size, "struct %s", named ? name : "(anonymous)");
		break;
	case DW_TAG_union_type:
		snprintf(out, out_size, "union %s", named ? name : "(anonymous)");
		break;
	case DW_TAG_enumeration_type:
		snprintf(out, out_size, "enum %s", named ? name : "(anonymous)");
		break;
	case DW_TAG_subroutine_type:
		snprintf(out, out_size, "function");
		break;
	default:
		snprintf(out, out_size, "%s", named ? name : "?");
	}
	dwarf_dealloc(at, type, DW_DLA_DIE);
}

/* The compile unit's DW_AT_name, through the DIE's CU. */
static void unit_file(Dwarf_Debug dbg, Dwarf_Die die, char *out, size_t out_size)
{
	out[0] = '\0';
	Dwarf_Off unit_offset = 0;
	Dwarf_Die unit = NULL;
	if (dwarf_CU_dieoffset_given_die(die, &unit_offset, NULL) != DW_DLV_OK ||
	    dwarf_offdie_b(dbg, unit_offset, 1, &unit, NULL) != DW_DLV_OK)
		return;
	char name[256];
	if (die_name(dbg, unit, name, sizeof name)) {
		const char *base = strrchr(name, '/');
		base = base ? base + 1 : name;
		size_t length = strnlen(base, out_size - 1);
		memcpy(out, base, length);
		out[length] = '\0';
	}
	dwarf_dealloc(dbg, unit, DW_DLA_DIE);
}

static bool variable_locked(struct dwarf_types *types, const char *name,
			    struct dwarf_variable *out)
{
	Dwarf_Debug dbg = NULL;
	Dwarf_Die die = NULL;
	if (!indexed_die(types, &types->variables, name, &dbg, &die))
		return false;
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", name);
	bool found = false;
	Dwarf_Attribute attr = NULL;
	if (dwarf_attr(die, DW_AT_location, &attr, NULL) == DW_DLV_OK) {
		Dwarf_Unsigned length = 0;
		Dwarf_Ptr bytes = NULL;
		/* static storage: the location is DW_OP_addr followed by the 8-byte address */
		if (dwarf_formexprloc(attr, &length, &bytes, NULL) == DW_DLV_OK && length == 9 &&
		    ((const uint8_t *)bytes)[0] == DW_OP_addr) {
			memcpy(&out->address, (const uint8_t *)bytes + 1, 8);
			found = true;
		}
		dwarf_dealloc(dbg, attr, DW_DLA_ATTR);
	}
	if (found)
		unit_file(dbg, die, out->file, sizeof out->file); /* the defining unit's */
	Dwarf_Debug declaration_dbg = NULL;
	Dwarf_Die declaration = NULL;
	if (found && !die_flag(die, DW_AT_type) &&
	    referenced_die(dbg, die, DW_AT_specification, &declaration_dbg, &declaration)) {
		/* the type is on the declaration this definition completes (which dwz may have
		   moved to a partial unit of the supplementary file) */
		dwarf_dealloc(dbg, die, DW_DLA_DIE);
		dbg = declaration_dbg;
		die = declaration;
	}
	if (found) {
		type_name(dbg, die, out->type, sizeof out->type, 0);
		out->type_size = type_size(dbg, die, 0);
	}
	dwarf_dealloc(dbg, die, DW_DLA_DIE);
	return found;
}

void dwarf_types_each_variable(struct dwarf_types *types,
			       int (*visit)(void *context, const struct dwarf_variable *variable),
			       void *context)
{
	pthread_mutex_lock(&libdwarf_lock);
	if (!types->indexed)
		build_index(types);
	pthread_mutex_unlock(&libdwarf_lock);
	/* (in the order of their DIEs) */
	for (size_t i = 0; i < types->variables.names.count; i++) {
		const char *name = types->variables.names.strings[i];
		struct dwarf_variable variable;
		if (dwarf_types_variable(types, name, &variable) && visit(context, &variable))
			return;
	}
}

struct dwarf_types *dwarf_types_open(const char *path, const char *supplementary,
				     struct hs_error *err)
{
	pthread_mutex_lock(&libdwarf_lock);
	struct dwarf_types *types = open_locked(path, supplementary, err);
	pthread_mutex_unlock(&libdwarf_lock);
	return types;
}

void dwarf_types_close(struct dwarf_types *types)
{
	pthread_mutex_lock(&libdwarf_lock);
	close_locked(types);
	pthread_mutex_unlock(&libdwarf_lock);
}

bool dwarf_types_struct(struct dwarf_types *types, const char *name, struct dwarf_struct *out)
{
	pthread_mutex_lock(&libdwarf_lock);
	bool found = struct_locked(types, name, out);
	pthread_mutex_unlock(&libdwarf_lock);
	return found;
}

bool dwarf_types_typedef_struct(struct dwarf_types *types, const char *name, char *out,
				size_t out_size)
{
	pthread_mutex_lock(&libdwarf_lock);
	Dwarf_Debug dbg = NULL;
	Dwarf_Die die = NULL;
	bool found = typedef_struct(types, name, &dbg, &die);
	if (found) {
		if (!die_name(dbg, die, out, out_size))
			snprintf(out, out_size, "%s", name); /* typedef struct { ... } name; */
		dwarf_dealloc(dbg, die, DW_DLA_DIE);
	}
	pthread_mutex_unlock(&libdwarf_lock);
	return found;
}

bool dwarf_types_variable(struct dwarf_types *types, const char *name, struct dwarf_variable *out)
{
	pthread_mutex_lock(&libdwarf_lock);
	bool found = variable_locked(types, name, out);
	pthread_mutex_unlock(&libdwarf_lock);
	return found;
}

/* The index of a source file name among the line table's files (interned). */
static uint32_t file_number(struct dwarf_types *types, const char *name)
{
	return string_table_intern(&types->files, name);
}

static int compare_rows(const void *left, const void *right)
{
	const struct line_row *a = left, *b = right;
	if (a->address != b->address)
		return a->address < b->address ? -1 : 1;
	/* at one address a sequence's end comes before the next sequence's first row */
	return (a->line != 0) - (b->line != 0);
}

/* Every row of every compile unit's line program, sorted by address. */
static void read_lines(struct dwarf_types *types)
{
	types->lines_read = true;
	Dwarf_Debug dbg = types->dbg;
	size_t capacity = 0;
	Dwarf_Die unit;
	while (next_unit(dbg, &unit)) {
		if (unit == NULL)
			continue;
		Dwarf_Unsigned version = 0;
		Dwarf_Small table_count = 0;
		Dwarf_Line_Context context = NULL;
		if (dwarf_srclines_b(unit, &version, &table_count, &context, NULL) == DW_DLV_OK) {
			Dwarf_Line *rows = NULL;
			Dwarf_Signed count = 0;
			if (dwarf_srclines_from_linecontext(context, &rows, &count, NULL) == DW_DLV_OK) {
				for (Dwarf_Signed i = 0; i < count; i++) {
					Dwarf_Addr address = 0;
					Dwarf_Unsigned line = 0;
					Dwarf_Bool end = 0;
					char *name = NULL;
					if (dwarf_lineaddr(rows[i], &address, NULL) != DW_DLV_OK ||
					    dwarf_lineendsequence(rows[i], &end, NULL) != DW_DLV_OK)
						continue;
					if (!end && dwarf_lineno(rows[i], &line, NULL) != DW_DLV_OK)
						continue;
					uint32_t file = UINT32_MAX;
					if (!end && dwarf_linesrc(rows[i], &name, NULL) == DW_DLV_OK) {
						file = file_number(types, name);
						dwarf_dealloc(dbg, name, DW_DLA_STRING);
					}
					if (!end && (file == UINT32_MAX || line == 0))
						continue;
					struct line_row *grown =
						array_grow(types->lines, &capacity, types->line_count,
							   sizeof *types->lines, 4096);
					if (grown == NULL)
						break;
					types->lines = grown;
					types->lines[types->line_count++] = (struct line_row){
						address, end ? 0 : (uint32_t)line, end ? 0 : file};
				}
			}
			dwarf_srclines_dealloc_b(context);
		}
		dwarf_dealloc(dbg, unit, DW_DLA_DIE);
	}
	if (types->line_count)
		qsort(types->lines, types->line_count, sizeof *types->lines, compare_rows);
}

static bool line_locked(struct dwarf_types *types, uint64_t address, char *file, size_t file_size,
			unsigned *line)
{
	if (!types->lines_read)
		read_lines(types);
	size_t low = 0, high = types->line_count; /* the last row at or before address */
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (types->lines[middle].address <= address)
			low = middle + 1;
		else
			high = middle;
	}
	if (low == 0 || types->lines[low - 1].line == 0)
		return false; /* before every row, or past a sequence's end */
	const struct line_row *row = &types->lines[low - 1];
	snprintf(file, file_size, "%s", types->files.strings[row->file]);
	*line = row->line;
	return true;
}

bool dwarf_types_line(struct dwarf_types *types, uint64_t address, char *file, size_t file_size,
		      unsigned *line)
{
	pthread_mutex_lock(&libdwarf_lock);
	bool found = line_locked(types, address, file, file_size, line);
	pthread_mutex_unlock(&libdwarf_lock);
	return found;
}
