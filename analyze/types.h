/* Naming what each allocation is. In order of precision: the allocator's own structures (a glibc
 * tcache); C++ objects by their dynamic class, read from the vtable pointer in their first word
 * (the `_ZTV` symbol it points into, demangled by the C++ runtime's own demangler); and, later,
 * C structs from DWARF types propagated from typed roots. What stays unnamed is grouped by size.
 * Names are interned: equal names are the same pointer. */
#ifndef HEAPSNAP_TYPES_H
#define HEAPSNAP_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/string_table.h"

#include "analyze/dwarf_types.h"
#include "analyze/heap.h"
#include "analyze/symbols.h"
#include "common/error.h"

struct type_names {
	uint32_t *of; /* per allocation (parallel to heap->allocations): 1 + its name's number in
			 names, 0 when untyped (types_name) */
	/* per allocation, NULL when none is: a block that is part of another object (a Python
	   list's item array), named after it, counted in its bytes but not as an object */
	uint8_t *owned;
	struct string_table names;
	/* layouts of the struct types given ("struct conn"), for naming members in paths */
	struct dwarf_struct *layouts;
	size_t layout_count;
};

/* Keeps a layout for `type` ("struct conn"); the first one given for a name stays. */
int types_add_layout(struct type_names *names, const char *type, const struct dwarf_struct *layout);
/* The layout kept for `type`, or NULL. */
const struct dwarf_struct *types_layout(const struct type_names *names, const char *type);

/* Names the allocators' own blocks, and with name_cxx_objects each block whose first word is a
 * vtable pointer by its C++ class. */
int types_assign(struct type_names *names, const struct heap *heap, struct symbols *symbols,
		 bool name_cxx_objects, struct hs_error *err);
/* Sets an allocation's type by name (interned); for walkers and DWARF propagation. */
int types_set(struct type_names *names, size_t allocation, const char *name);
/* The interned copy of a name (NULL when out of memory). */
const char *types_intern(struct type_names *names, const char *name);
/* The same as an id for `of` (1 + its number in names), 0 when out of memory. */
uint32_t types_intern_id(struct type_names *names, const char *name);

/* The name of allocation `index`'s type, NULL when untyped. */
static inline const char *types_name(const struct type_names *names, size_t index)
{
	return names->of && names->of[index] ? names->names.strings[names->of[index] - 1] : NULL;
}
void types_free(struct type_names *names);

/* A C++ symbol as people write it ("SocketEngine::ref" for _ZN12SocketEngine3refE): false, out
 * untouched, when it is no mangled name. */
bool types_demangle(const char *symbol, char *out, size_t size);

#endif
