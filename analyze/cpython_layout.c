/* CPython layouts per version (see cpython_layout.h). The figures come from each version's
 * Include/ headers and Objects/obmalloc.c on x86-64 (release builds, no free threading). */
#include "cpython_layout.h"

#include <stdio.h>
#include <string.h>

bool cpython_layout_builtin(int minor, struct cpython_layout *layout)
{
	if (minor < 8 || minor > 13)
		return false;
	memset(layout, 0, sizeof *layout);
	layout->minor = minor;
	/* 3.10 made pools 16 KiB and arenas 1 MiB (with the radix tree) on 64-bit */
	layout->pool_size = minor >= 10 ? 16384 : 4096;
	layout->arena_size = minor >= 10 ? (1u << 20) : (256u << 10);
	layout->pool_overhead = 48;
	layout->alignment = 16;

	layout->gc_header = 16;
	if (minor == 11) {
		layout->preheader_flags = PY_TPFLAGS_MANAGED_DICT;
		layout->managed_dict = -24;
		layout->managed_values = -32;
	} else if (minor >= 12) {
		layout->preheader_flags = PY_TPFLAGS_MANAGED_DICT | PY_TPFLAGS_MANAGED_WEAKREF;
		layout->managed_dict = -24; /* 3.12: tagged, a values pointer when the low bit is set */
	}

	/* PyTypeObject only grew at its end: the members read here never moved */
	layout->tp_name = 24;
	layout->tp_basicsize = 32;
	layout->tp_itemsize = 40;
	layout->tp_flags = 168;
	layout->tp_members = 240;
	layout->tp_base = 256;
	layout->tp_dict = 264;
	layout->tp_dictoffset = 288;
	layout->tp_mro = 344;
	static const uint32_t type_sizes[] = {416, 408, 408, 408, 416, 416};
	static const uint32_t ht_names[] = {848, 840, 848, 848, 856, 856};
	static const uint32_t heap_type_sizes[] = {880, 880, 888, 904, 920, 928};
	layout->type_size = type_sizes[minor - 8];
	layout->ht_name = ht_names[minor - 8];
	layout->ht_qualname = layout->ht_name + 16;
	layout->ht_cached_keys = layout->ht_name + 24;
	layout->heap_type_size = heap_type_sizes[minor - 8];

	/* 3.12 dropped the wstr members */
	layout->str_length = 16;
	layout->str_state = 32;
	layout->ascii_size = minor >= 12 ? 40 : 48;
	layout->compact_utf8 = layout->ascii_size + 8;
	layout->compact_size = minor >= 12 ? 56 : 72;

	layout->dict_used = 16;
	layout->dict_keys = 32;
	layout->dict_values = 40;
	layout->keys_log2 = minor >= 11;
	layout->keys_size = 8;
	layout->keys_nentries = minor >= 11 ? 24 : 32;
	layout->keys_indices = minor >= 11 ? 32 : 40;
	layout->values_array = minor >= 13 ? 8 : 0;

	layout->var_size = 16;
	layout->list_items = 24;
	layout->list_allocated = 32;
	layout->tuple_items = 24;
	layout->set_mask = 32;
	layout->set_table = 40;
	layout->set_smalltable = 64;
	layout->bytearray_bytes = 32;
	return true;
}

/* Sets *field to the offset of `member` in `layout`; false when absent. */
static bool member_offset(const struct dwarf_struct *layout, const char *member, uint32_t *field)
{
	const struct dwarf_member *found = dwarf_struct_member(layout, member);
	if (found == NULL)
		return false;
	*field = (uint32_t)found->offset;
	return true;
}

bool cpython_layout_from_dwarf(struct dwarf_types *types, struct cpython_layout *layout)
{
	static struct dwarf_struct s; /* large: not on the stack */
	struct cpython_layout out = *layout;
	bool ok = dwarf_types_struct(types, "_typeobject", &s) &&
		  member_offset(&s, "tp_name", &out.tp_name) &&
		  member_offset(&s, "tp_basicsize", &out.tp_basicsize) &&
		  member_offset(&s, "tp_itemsize", &out.tp_itemsize) &&
		  member_offset(&s, "tp_flags", &out.tp_flags) &&
		  member_offset(&s, "tp_members", &out.tp_members) &&
		  member_offset(&s, "tp_base", &out.tp_base) &&
		  member_offset(&s, "tp_dict", &out.tp_dict) &&
		  member_offset(&s, "tp_dictoffset", &out.tp_dictoffset) &&
		  member_offset(&s, "tp_mro", &out.tp_mro);
	out.type_size = (uint32_t)s.size;
	ok = ok && dwarf_types_struct(types, "_heaptypeobject", &s) &&
	     member_offset(&s, "ht_name", &out.ht_name) &&
	     member_offset(&s, "ht_qualname", &out.ht_qualname) &&
	     member_offset(&s, "ht_cached_keys", &out.ht_cached_keys);
	out.heap_type_size = (uint32_t)s.size;
	ok = ok && dwarf_types_struct(types, "PyASCIIObject", &s) &&
	     member_offset(&s, "length", &out.str_length) &&
	     member_offset(&s, "state", &out.str_state);
	out.ascii_size = (uint32_t)s.size;
	ok = ok && dwarf_types_struct(types, "PyCompactUnicodeObject", &s) &&
	     member_offset(&s, "utf8", &out.compact_utf8);
	out.compact_size = (uint32_t)s.size;
	ok = ok && dwarf_types_struct(types, "PyDictObject", &s) &&
	     member_offset(&s, "ma_used", &out.dict_used) &&
	     member_offset(&s, "ma_keys", &out.dict_keys) &&
	     member_offset(&s, "ma_values", &out.dict_values);
	ok = ok && dwarf_types_struct(types, "_dictkeysobject", &s) &&
	     member_offset(&s, "dk_nentries", &out.keys_nentries) &&
	     member_offset(&s, "dk_indices", &out.keys_indices);
	out.keys_log2 = ok && dwarf_struct_member(&s, "dk_log2_size") != NULL;
	ok = ok && member_offset(&s, out.keys_log2 ? "dk_log2_size" : "dk_size", &out.keys_size);
	/* PyDictValues exists from 3.11; before, ma_values is a plain array */
	out.values_array = 0;
	if (ok && dwarf_types_struct(types, "_dictvalues", &s))
		ok = member_offset(&s, "values", &out.values_array);
	ok = ok && dwarf_types_struct(types, "PyVarObject", &s) &&
	     member_offset(&s, "ob_size", &out.var_size);
	ok = ok && dwarf_types_struct(types, "PyListObject", &s) &&
	     member_offset(&s, "ob_item", &out.list_items) &&
	     member_offset(&s, "allocated", &out.list_allocated);
	ok = ok && dwarf_types_struct(types, "PyTupleObject", &s) &&
	     member_offset(&s, "ob_item", &out.tuple_items);
	ok = ok && dwarf_types_struct(types, "PySetObject", &s) &&
	     member_offset(&s, "mask", &out.set_mask) && member_offset(&s, "table", &out.set_table) &&
	     member_offset(&s, "smalltable", &out.set_smalltable);
	ok = ok && dwarf_types_struct(types, "PyByteArrayObject", &s) &&
	     member_offset(&s, "ob_bytes", &out.bytearray_bytes);
	/* the pool header's size, rounded to the block alignment, is where blocks start */
	ok = ok && dwarf_types_struct(types, "pool_header", &s);
	out.pool_overhead = (uint32_t)((s.size + out.alignment - 1) / out.alignment * out.alignment);
	ok = ok && dwarf_types_struct(types, "PyGC_Head", &s);
	out.gc_header = (uint32_t)s.size;
	if (ok)
		*layout = out;
	return ok;
}

size_t cpython_layout_compare(const struct cpython_layout *a, const struct cpython_layout *b,
			      char *out, size_t out_size)
{
#define FIELD(name) {#name, offsetof(struct cpython_layout, name)}
	static const struct {
		const char *name;
		size_t offset;
	} fields[] = {FIELD(pool_overhead),  FIELD(gc_header),	    FIELD(tp_name),
		      FIELD(tp_basicsize),   FIELD(tp_itemsize),    FIELD(tp_flags),
		      FIELD(tp_members),     FIELD(tp_base),	    FIELD(tp_dict),
		      FIELD(tp_dictoffset),  FIELD(tp_mro),	    FIELD(type_size),
		      FIELD(ht_name),	     FIELD(ht_qualname),    FIELD(ht_cached_keys),
		      FIELD(heap_type_size), FIELD(str_length),	    FIELD(str_state),
		      FIELD(ascii_size),     FIELD(compact_utf8),   FIELD(compact_size),
		      FIELD(dict_used),	     FIELD(dict_keys),	    FIELD(dict_values),
		      FIELD(keys_size),	     FIELD(keys_nentries),  FIELD(keys_indices),
		      FIELD(values_array),   FIELD(var_size),	    FIELD(list_items),
		      FIELD(list_allocated), FIELD(tuple_items),    FIELD(set_mask),
		      FIELD(set_table),	     FIELD(set_smalltable), FIELD(bytearray_bytes)};
#undef FIELD
	size_t differences = 0, used = 0;
	if (out_size)
		out[0] = '\0';
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		uint32_t x, y;
		memcpy(&x, (const char *)a + fields[i].offset, sizeof x);
		memcpy(&y, (const char *)b + fields[i].offset, sizeof y);
		if (x == y)
			continue;
		differences++;
		if (used < out_size) {
			int n = snprintf(out + used, out_size - used, "%s: %u != %u\n", fields[i].name,
					 x, y);
			used += n > 0 ? (size_t)n : 0;
		}
	}
	if (a->keys_log2 != b->keys_log2) {
		differences++;
		if (used < out_size)
			snprintf(out + used, out_size - used, "keys_log2: %d != %d\n", a->keys_log2,
				 b->keys_log2);
	}
	return differences;
}
