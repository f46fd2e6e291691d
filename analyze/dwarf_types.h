/* Struct layouts from DWARF: the one place heapsnap calls libdwarf. Debian 12 ships libdwarf
 * 20210528, whose API differs from libdwarf 0.x in a handful of calls (dwarf_init_b's access
 * argument, dwarf_finish's error argument, dwarf_siblingof_b/c); they are all in dwarf_types.c, so a
 * newer libdwarf needs changes in that file only.
 *
 * The first lookup indexes the names of every struct defined at the top level of every compile
 * unit; later lookups read just the DIEs they need. */
#ifndef HEAPSNAP_DWARF_TYPES_H
#define HEAPSNAP_DWARF_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define DWARF_MEMBERS_MAX 128

struct dwarf_member {
	char name[64];
	uint64_t offset;
	uint64_t size;	/* 0 when unknown (a flexible array) */
	char type[96];	/* as C spells it: "struct conn *", "char *", "int" */
};

struct dwarf_struct {
	char name[64];
	uint64_t size;
	struct dwarf_member members[DWARF_MEMBERS_MAX];
	size_t member_count;
};

struct dwarf_types;

/* Opens the DWARF of the file at `path`, with the dwz supplementary file its .gnu_debugaltlink
 * names (found by the caller; NULL: none, and then what dwz moved there is not seen). */
struct dwarf_types *dwarf_types_open(const char *path, const char *supplementary,
				     struct hs_error *err);
void dwarf_types_close(struct dwarf_types *types);

/* The layout of `struct NAME` (a complete definition), or of the struct a typedef NAME names. */
bool dwarf_types_struct(struct dwarf_types *types, const char *name, struct dwarf_struct *out);

/* The tag of the struct the typedef NAME names, through further typedefs (NAME itself for an
 * anonymous struct): "robj" -> "redisObject". False when NAME is no typedef of a struct. */
bool dwarf_types_typedef_struct(struct dwarf_types *types, const char *name, char *out,
				size_t out_size);

/* A variable with static storage defined at the top level of a compile unit (a global, or a
 * file-level static). */
struct dwarf_variable {
	char name[128];
	uint64_t address;   /* in the file: add the module's load bias */
	char type[128];     /* as C spells it: "struct conn *", "char[64]", "long" */
	uint64_t type_size; /* bytes, 0 when unknown */
	char file[128];	    /* the compile unit's source file name */
};

/* Looks up a variable by name (the first definition found). */
bool dwarf_types_variable(struct dwarf_types *types, const char *name, struct dwarf_variable *out);

/* Calls visit for every variable with static storage the index holds; stops when it returns
 * non-zero. */
void dwarf_types_each_variable(struct dwarf_types *types,
			       int (*visit)(void *context, const struct dwarf_variable *variable),
			       void *context);

/* The source line of an address of the file (the module's address less its load bias), from
 * the line tables: the file's path and the line number. False when no row covers it. */
bool dwarf_types_line(struct dwarf_types *types, uint64_t address, char *file, size_t file_size,
		      unsigned *line);

/* A member of a layout by name, or NULL. */
const struct dwarf_member *dwarf_struct_member(const struct dwarf_struct *layout,
					       const char *name);

#endif
