/* The names of the fields of CPython's types implemented in C, for the graph's edges: a
 * function's func_code, an asyncio Task's task_coro, rather than "function+48". tp_members names
 * only the fields a type exposes; the others are named from the DWARF of the module that defines
 * the type object (the interpreter, or an extension module such as _asyncio), through a table
 * that gives each type's C struct; without that DWARF (a stripped interpreter, as Debian's, or
 * --no-debuginfo), from a built-in table of the common types' pointer fields per version
 * (cpython_field_table.c, generated from pyenv's builds). Elsewhere a field keeps its offset. */
#ifndef HEAPSNAP_CPYTHON_FIELDS_H
#define HEAPSNAP_CPYTHON_FIELDS_H

#include <stdbool.h>
#include <stdint.h>

#include "analyze/symbols.h"

struct cpython_fields;

/* A row of the built-in table: a type's pointer fields in one minor version ("16:func_globals
 * 24:func_builtins ..."); the table ends with a row whose type is NULL. */
struct cpython_field_row {
	int minor;
	const char *type, *fields;
};
extern const struct cpython_field_row cpython_field_table[];

/* For the interpreter of minor version 3.`minor`; with `use_dwarf` false, the built-in table only.
 * Reads nothing yet: each type's struct is looked up on first use. NULL when out of memory. */
struct cpython_fields *cpython_fields_new(struct symbols *symbols, int minor, bool use_dwarf);
void cpython_fields_free(struct cpython_fields *fields);

/* The name of the field at `offset` of the instances of the type named `type_name` whose type
 * object is at `type_address` ("func_code", or "task_fut_waiter+8" inside a larger member), or
 * NULL when not known. Valid until cpython_fields_free. */
const char *cpython_field_name(struct cpython_fields *fields, const char *type_name,
			       uint64_t type_address, uint64_t offset);

#endif
