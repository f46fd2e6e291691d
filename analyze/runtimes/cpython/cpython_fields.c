/* The names of C types' fields from DWARF (see cpython_fields.h). */
#include "cpython_fields.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/dwarf_types.h"

/* The C struct (a typedef or a struct tag, as dwarf_types_struct takes them) of the instances
 * of each type, by tp_name: the built-in types and the standard library's whose objects hold
 * references in fields no tp_members names. */
static const struct {
	const char *type, *c_struct;
} c_structs[] = {
	{"function", "PyFunctionObject"},
	{"method", "PyMethodObject"},
	{"cell", "PyCellObject"},
	{"code", "PyCodeObject"},
	{"frame", "PyFrameObject"},
	{"generator", "PyGenObject"},
	{"coroutine", "PyCoroObject"},
	{"async_generator", "PyAsyncGenObject"},
	{"builtin_function_or_method", "PyCFunctionObject"},
	{"classmethod", "classmethod"},
	{"staticmethod", "staticmethod"},
	{"property", "propertyobject"},
	{"module", "PyModuleObject"},
	{"method-wrapper", "wrapperobject"},
	{"getset_descriptor", "PyGetSetDescrObject"},
	{"member_descriptor", "PyMemberDescrObject"},
	{"method_descriptor", "PyMethodDescrObject"},
	{"classmethod_descriptor", "PyMethodDescrObject"},
	{"wrapper_descriptor", "PyWrapperDescrObject"},
	{"mappingproxy", "mappingproxyobject"},
	{"super", "superobject"},
	{"enumerate", "enumobject"},
	{"weakref", "PyWeakReference"},
	{"weakref.ReferenceType", "PyWeakReference"},
	{"_asyncio.Task", "TaskObj"},
	{"_asyncio.Future", "FutureObj"},
	{"_io.TextIOWrapper", "textio"},
	{"_io.BufferedReader", "buffered"},
	{"_io.BufferedWriter", "buffered"},
	{"_io.BufferedRandom", "buffered"},
	{"_io.FileIO", "fileio"},
	{"_socket.socket", "PySocketSockObject"},
	{"socket.socket", "PySocketSockObject"},
	{"_thread.RLock", "rlockobject"},
	{"_thread.lock", "lockobject"},
};

/* A type whose struct was looked up: its layout, when found */
struct known_type {
	uint64_t address;
	bool found;
	struct dwarf_struct layout;
};

/* A module's DWARF, opened once */
struct module_dwarf {
	struct module_symbols *module;
	struct dwarf_types *types; /* NULL: none */
};

struct cpython_fields {
	struct symbols *symbols;
	int minor;
	bool use_dwarf;
	struct known_type *types;
	size_t type_count;
	struct module_dwarf *modules;
	size_t module_count;
	char name[96]; /* the last name given */
};

struct cpython_fields *cpython_fields_new(struct symbols *symbols, int minor, bool use_dwarf)
{
	struct cpython_fields *fields = calloc(1, sizeof *fields);
	if (fields) {
		fields->symbols = symbols;
		fields->minor = minor;
		fields->use_dwarf = use_dwarf;
	}
	return fields;
}

/* The layout the built-in table gives (pointer fields only, each 8 bytes); false when it has no
 * row for the type in this version. */
static bool table_layout(int minor, const char *type_name, struct dwarf_struct *out)
{
	for (const struct cpython_field_row *row = cpython_field_table; row->type; row++) {
		if (row->minor != minor || strcmp(row->type, type_name) != 0)
			continue;
		memset(out, 0, sizeof *out);
		for (const char *at = row->fields; *at && out->member_count < DWARF_MEMBERS_MAX;) {
			struct dwarf_member *member = &out->members[out->member_count];
			int used = 0;
			unsigned long long offset;
			if (sscanf(at, "%llu:%63[^ ]%n", &offset, member->name, &used) != 2)
				break;
			member->offset = offset;
			member->size = 8;
			out->member_count++;
			at += used;
			while (*at == ' ')
				at++;
		}
		return out->member_count > 0;
	}
	return false;
}

void cpython_fields_free(struct cpython_fields *fields)
{
	if (fields == NULL)
		return;
	for (size_t i = 0; i < fields->module_count; i++)
		dwarf_types_close(fields->modules[i].types);
	free(fields->modules);
	free(fields->types);
	free(fields);
}

static const char *c_struct_of(const char *type_name)
{
	for (size_t i = 0; i < sizeof c_structs / sizeof c_structs[0]; i++)
		if (strcmp(c_structs[i].type, type_name) == 0)
			return c_structs[i].c_struct;
	return NULL;
}

/* The DWARF of the module that maps `address`, opened on first use; NULL when it has none. */
static struct dwarf_types *dwarf_of(struct cpython_fields *fields, uint64_t address)
{
	struct module_symbols *module = symbols_module_of(fields->symbols, address);
	if (module == NULL)
		return NULL;
	for (size_t i = 0; i < fields->module_count; i++)
		if (fields->modules[i].module == module)
			return fields->modules[i].types;
	void *grown = realloc(fields->modules, (fields->module_count + 1) * sizeof *fields->modules);
	if (grown == NULL)
		return NULL;
	fields->modules = grown;
	struct hs_error ignored;
	struct module_dwarf *entry = &fields->modules[fields->module_count++];
	entry->module = module;
	entry->types = module_symbols_open_types(module, &ignored);
	return entry->types;
}

static const struct known_type *known_type(struct cpython_fields *fields, const char *type_name,
					   uint64_t type_address)
{
	for (size_t i = 0; i < fields->type_count; i++)
		if (fields->types[i].address == type_address)
			return &fields->types[i];
	const char *c_struct = c_struct_of(type_name);
	if (c_struct == NULL)
		return NULL;
	void *grown = realloc(fields->types, (fields->type_count + 1) * sizeof *fields->types);
	if (grown == NULL)
		return NULL;
	fields->types = grown;
	struct known_type *type = &fields->types[fields->type_count++];
	memset(type, 0, sizeof *type);
	type->address = type_address;
	struct dwarf_types *types = fields->use_dwarf ? dwarf_of(fields, type_address) : NULL;
	type->found = (types && dwarf_types_struct(types, c_struct, &type->layout)) ||
		      table_layout(fields->minor, type_name, &type->layout);
	return type;
}

const char *cpython_field_name(struct cpython_fields *fields, const char *type_name,
			       uint64_t type_address, uint64_t offset)
{
	if (fields == NULL || type_name == NULL)
		return NULL;
	const struct known_type *type = known_type(fields, type_name, type_address);
	if (type == NULL || !type->found)
		return NULL;
	const struct dwarf_struct *layout = &type->layout;
	for (size_t m = 0; m < layout->member_count; m++) {
		const struct dwarf_member *member = &layout->members[m];
		if (offset < member->offset || offset >= member->offset + (member->size ? member->size : 8))
			continue;
		if (offset == member->offset)
			snprintf(fields->name, sizeof fields->name, "%s", member->name);
		else
			snprintf(fields->name, sizeof fields->name, "%s+%llu", member->name,
				 (unsigned long long)(offset - member->offset));
		return fields->name;
	}
	return NULL;
}
