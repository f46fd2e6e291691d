/* CPython layouts per version (see cpython_layout.h). The figures come from each version's
 * Include/ headers and Objects/obmalloc.c on x86-64 (release builds, no free threading). */
#include "cpython_layout.h"

#include <stdio.h>
#include <string.h>

/* pymalloc's pools and arenas, and the headers before an object. */
static void builtin_heap(int minor, struct cpython_layout *layout)
{
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
}

/* PyTypeObject and PyHeapTypeObject. */
static void builtin_types(int minor, struct cpython_layout *layout)
{
	/* PyTypeObject only grew at its end: the members read here never moved */
	layout->tp_name = 24;
	layout->tp_basicsize = 32;
	layout->tp_itemsize = 40;
	layout->tp_flags = 168;
	layout->tp_weaklistoffset = 208;
	layout->tp_members = 240;
	layout->tp_base = 256;
	layout->tp_dict = 264;
	layout->tp_dictoffset = 288;
	layout->tp_bases = 336;
	layout->tp_mro = 344;
	static const uint32_t type_sizes[] = {416, 408, 408, 408, 416, 416};
	static const uint32_t ht_names[] = {848, 840, 848, 848, 856, 856};
	static const uint32_t heap_type_sizes[] = {880, 880, 888, 904, 920, 928};
	layout->type_size = type_sizes[minor - 8];
	layout->ht_name = ht_names[minor - 8];
	layout->ht_qualname = layout->ht_name + 16;
	layout->ht_cached_keys = layout->ht_name + 24;
	layout->heap_type_size = heap_type_sizes[minor - 8];
}

/* The built-in objects read: str, dict, list, tuple, set, bytearray, code. */
static void builtin_objects(int minor, struct cpython_layout *layout)
{
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
	layout->set_used = 24;
	layout->set_mask = 32;
	layout->set_table = 40;
	layout->set_smalltable = 64;
	layout->bytearray_bytes = 32;
	layout->code_zombieframe = minor <= 10 ? 128 : 0;
}

/* The C containers: deque, OrderedDict, lru_cache. */
static void builtin_c_containers(int minor, struct cpython_layout *layout)
{
	/* 3.11 gave each deque its own cache of free blocks */
	layout->deque_leftblock = 24;
	layout->deque_rightblock = 32;
	layout->deque_leftindex = 40;
	layout->deque_rightindex = 48;
	layout->deque_numfreeblocks = minor >= 11 ? 72 : 0;
	layout->deque_freeblocks = minor >= 11 ? 80 : 0;
	layout->deque_size = minor >= 11 ? 216 : 80;
	layout->block_data = 8;
	layout->block_rightlink = 520; /* 64 items */
	layout->odict_first = 48;
	layout->odict_fast_nodes = 64;
	layout->odict_size = 112;
	layout->odict_node_key = 0;
	layout->odict_node_next = 16;
	layout->lru_cache = 72;
	layout->lru_elem_prev = 16;
	layout->lru_elem_next = 24;
	layout->lru_elem_key = 40;
	layout->lru_elem_result = 48;
}

/* The interpreter's state: the method cache, the collector's, the allocators', and its threads
 * with their frames (PyFrameObject up to 3.10, _PyInterpreterFrame after). */
static void builtin_interpreter(int minor, struct cpython_layout *layout)
{
	static const uint32_t main_interpreter[] = {40, 40, 40, 48, 48, 640};
	static const uint32_t threads[] = {8, 8, 8, 16, 72, 7344};
	static const uint32_t thread_ids[] = {176, 176, 176, 152, 136, 152};
	static const uint32_t native_ids[] = {0, 0, 0, 160, 144, 160};
	static const uint32_t frames[] = {24, 24, 24, 56, 56, 72};
	static const uint32_t datastacks[] = {0, 0, 0, 296, 232, 232};
	int k = minor - 8;
	static const uint32_t gc_states[] = {344, 616, 616, 648, 112, 7400};
	static const uint32_t type_caches[] = {0, 0, 15216, 9056, 275392, 84656};
	layout->type_cache = type_caches[k];
	layout->type_cache_size = 4096 * 24;
	layout->gc_in_runtime = minor == 8;
	layout->gc_state = gc_states[k];
	layout->gc_generations = 24;
	layout->gc_generation_size = 24;
	layout->runtime_main_interpreter = main_interpreter[k];
	layout->runtime_allocators = minor == 12 ? 88 : minor == 13 ? 696 : 0;
	layout->interpreter_threads = threads[k];
	layout->thread_next = 8;
	layout->thread_id = thread_ids[k];
	layout->thread_native_id = native_ids[k];
	layout->thread_frame = frames[k];
	layout->cframe_current = minor == 11 ? 8 : 0;
	layout->thread_datastack = datastacks[k];
	if (minor >= 11) {
		layout->iframe_code = minor == 11 ? 32 : 0;
		layout->iframe_previous = minor == 11 ? 48 : 8;
		layout->iframe_stacktop = 64;
		layout->iframe_owner = minor == 11 ? 69 : 70;
		layout->iframe_localsplus = 72;
		layout->code_name = 120;
		layout->code_qualname = 128;
		layout->code_nlocalsplus = minor == 11 ? 76 : 72;
		layout->code_localsplusnames = 96;
		layout->chunk_size = 8;
		layout->chunk_top = 16;
	} else {
		layout->code_name = 112;
		layout->code_nlocals = 28;
		layout->code_varnames = 72;
		layout->frame_back = 24;
		layout->frame_code = 32;
		layout->frame_localsplus = minor == 10 ? 352 : 360;
	}
}

bool cpython_layout_builtin(int minor, struct cpython_layout *layout)
{
	if (minor < 8 || minor > 13)
		return false;
	memset(layout, 0, sizeof *layout);
	layout->minor = minor;
	builtin_heap(minor, layout);
	builtin_types(minor, layout);
	builtin_objects(minor, layout);
	builtin_c_containers(minor, layout);
	builtin_interpreter(minor, layout);
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

/* Like member_offset, through a struct looked up by name; `nested` names a member of a member
 * ("threads.head" is looked up as threads, then head in its struct `nested_struct`). */
static bool offset_in(struct dwarf_types *types, const char *struct_name, const char *member,
		      uint32_t *field)
{
	static _Thread_local struct dwarf_struct s; /* large: not on the stack */
	return dwarf_types_struct(types, struct_name, &s) && member_offset(&s, member, field);
}

/* Threads and frames: the members differ between versions, so each is looked for by the names
 * it has had. */
static bool threads_from_dwarf(struct dwarf_types *types, struct cpython_layout *out)
{
	uint32_t interpreters = 0, main = 0, threads = 0, head = 0;
	bool ok = offset_in(types, "pyruntimestate", "interpreters", &interpreters) &&
		  offset_in(types, "pyinterpreters", "main", &main);
	out->runtime_main_interpreter = interpreters + main;
	if (offset_in(types, "_is", "threads", &threads) &&
	    offset_in(types, "pythreads", "head", &head))
		out->interpreter_threads = threads + head;
	else
		ok = ok && offset_in(types, "_is", "tstate_head", &out->interpreter_threads);
	ok = ok && offset_in(types, "_ts", "next", &out->thread_next) &&
	     offset_in(types, "_ts", "thread_id", &out->thread_id);
	out->thread_native_id = 0;
	if (out->minor >= 11)
		ok = ok && offset_in(types, "_ts", "native_thread_id", &out->thread_native_id);
	out->cframe_current = 0;
	out->thread_datastack = 0;
	if (out->minor <= 10) {
		return ok && offset_in(types, "_ts", "frame", &out->thread_frame) &&
		       offset_in(types, "PyCodeObject", "co_name", &out->code_name) &&
		       offset_in(types, "PyCodeObject", "co_nlocals", &out->code_nlocals) &&
		       offset_in(types, "PyCodeObject", "co_varnames", &out->code_varnames) &&
		       offset_in(types, "_frame", "f_back", &out->frame_back) &&
		       offset_in(types, "_frame", "f_code", &out->frame_code) &&
		       offset_in(types, "_frame", "f_localsplus", &out->frame_localsplus);
	}
	if (out->minor <= 12)
		ok = ok && offset_in(types, "_ts", "cframe", &out->thread_frame) &&
		     offset_in(types, "_PyCFrame", "current_frame", &out->cframe_current);
	else
		ok = ok && offset_in(types, "_ts", "current_frame", &out->thread_frame);
	return ok && offset_in(types, "_ts", "datastack_chunk", &out->thread_datastack) &&
	       (offset_in(types, "_PyInterpreterFrame", "f_code", &out->iframe_code) ||
		offset_in(types, "_PyInterpreterFrame", "f_executable", &out->iframe_code)) &&
	       offset_in(types, "_PyInterpreterFrame", "previous", &out->iframe_previous) &&
	       offset_in(types, "_PyInterpreterFrame", "stacktop", &out->iframe_stacktop) &&
	       offset_in(types, "_PyInterpreterFrame", "owner", &out->iframe_owner) &&
	       offset_in(types, "_PyInterpreterFrame", "localsplus", &out->iframe_localsplus) &&
	       offset_in(types, "PyCodeObject", "co_name", &out->code_name) &&
	       offset_in(types, "PyCodeObject", "co_qualname", &out->code_qualname) &&
	       offset_in(types, "PyCodeObject", "co_nlocalsplus", &out->code_nlocalsplus) &&
	       offset_in(types, "PyCodeObject", "co_localsplusnames", &out->code_localsplusnames) &&
	       offset_in(types, "_PyStackChunk", "size", &out->chunk_size) &&
	       offset_in(types, "_PyStackChunk", "top", &out->chunk_top);
}

/* The C containers' structs, each where the DWARF has it (they are in libpython, but an
 * interpreter built otherwise may lack one: then its built-in figures stay). */
static void containers_from_dwarf(struct dwarf_types *types, struct cpython_layout *out)
{
	static _Thread_local struct dwarf_struct s; /* large: not on the stack */
	struct cpython_layout found = *out;
	found.deque_numfreeblocks = found.deque_freeblocks = 0; /* (3.11+) */
	if (dwarf_types_struct(types, "dequeobject", &s) &&
	    member_offset(&s, "leftblock", &found.deque_leftblock) &&
	    member_offset(&s, "rightblock", &found.deque_rightblock) &&
	    member_offset(&s, "leftindex", &found.deque_leftindex) &&
	    member_offset(&s, "rightindex", &found.deque_rightindex)) {
		member_offset(&s, "numfreeblocks", &found.deque_numfreeblocks);
		member_offset(&s, "freeblocks", &found.deque_freeblocks);
		found.deque_size = (uint32_t)s.size;
		if (dwarf_types_struct(types, "BLOCK", &s) &&
		    member_offset(&s, "data", &found.block_data) &&
		    member_offset(&s, "rightlink", &found.block_rightlink))
			*out = found;
	}
	found = *out;
	if (dwarf_types_struct(types, "_odictobject", &s) &&
	    member_offset(&s, "od_first", &found.odict_first) &&
	    member_offset(&s, "od_fast_nodes", &found.odict_fast_nodes) &&
	    (found.odict_size = (uint32_t)s.size) != 0 &&
	    dwarf_types_struct(types, "_odictnode", &s) &&
	    member_offset(&s, "key", &found.odict_node_key) &&
	    member_offset(&s, "next", &found.odict_node_next))
		*out = found;
	found = *out;
	if (dwarf_types_struct(types, "lru_cache_object", &s) &&
	    member_offset(&s, "cache", &found.lru_cache) &&
	    dwarf_types_struct(types, "lru_list_elem", &s) &&
	    member_offset(&s, "prev", &found.lru_elem_prev) &&
	    member_offset(&s, "next", &found.lru_elem_next) &&
	    member_offset(&s, "key", &found.lru_elem_key) &&
	    member_offset(&s, "result", &found.lru_elem_result))
		*out = found;
}

bool cpython_layout_from_debug_offsets(const uint8_t *bytes, size_t size, uint64_t version_hex,
				       struct cpython_layout *layout)
{
	/* the offsets of the 3.13 struct, each a uint64_t */
	enum {
		COOKIE = 0, VERSION = 8, INTERPRETERS_HEAD = 40, THREADS_HEAD = 72, THREAD_NEXT = 168,
		THREAD_CURRENT_FRAME = 184, THREAD_ID = 192, THREAD_NATIVE_ID = 200,
		THREAD_DATASTACK = 208, INTERPRETER_GC = 80, FRAME_PREVIOUS = 232, FRAME_EXECUTABLE = 240,
		FRAME_LOCALSPLUS = 256, FRAME_OWNER = 264, CODE_NAME = 288, CODE_QUALNAME = 296,
		CODE_LOCALSPLUSNAMES = 328, END = 336
	};
	uint64_t value[END / 8];
	if (size < END || memcmp(bytes + COOKIE, "xdebugpy", 8) != 0)
		return false;
	memcpy(value, bytes, END);
	if ((value[VERSION / 8] >> 16) != (version_hex >> 16))
		return false; /* another minor version: another struct */
	for (size_t i = INTERPRETERS_HEAD / 8; i < END / 8; i++)
		if (value[i] > (1u << 20))
			return false;
	(void)value[INTERPRETERS_HEAD / 8]; /* the list head; the main interpreter is used */
	layout->interpreter_threads = (uint32_t)value[THREADS_HEAD / 8];
	layout->gc_state = (uint32_t)value[INTERPRETER_GC / 8];
	layout->thread_next = (uint32_t)value[THREAD_NEXT / 8];
	layout->thread_frame = (uint32_t)value[THREAD_CURRENT_FRAME / 8];
	layout->thread_id = (uint32_t)value[THREAD_ID / 8];
	layout->thread_native_id = (uint32_t)value[THREAD_NATIVE_ID / 8];
	layout->thread_datastack = (uint32_t)value[THREAD_DATASTACK / 8];
	layout->iframe_previous = (uint32_t)value[FRAME_PREVIOUS / 8];
	layout->iframe_code = (uint32_t)value[FRAME_EXECUTABLE / 8];
	layout->iframe_localsplus = (uint32_t)value[FRAME_LOCALSPLUS / 8];
	layout->iframe_owner = (uint32_t)value[FRAME_OWNER / 8];
	layout->code_name = (uint32_t)value[CODE_NAME / 8];
	layout->code_qualname = (uint32_t)value[CODE_QUALNAME / 8];
	layout->code_localsplusnames = (uint32_t)value[CODE_LOCALSPLUSNAMES / 8];
	return true;
}

bool cpython_layout_from_dwarf(struct dwarf_types *types, struct cpython_layout *layout)
{
	static _Thread_local struct dwarf_struct s; /* large: not on the stack */
	struct cpython_layout out = *layout;
	bool ok = dwarf_types_struct(types, "_typeobject", &s) &&
		  member_offset(&s, "tp_name", &out.tp_name) &&
		  member_offset(&s, "tp_basicsize", &out.tp_basicsize) &&
		  member_offset(&s, "tp_itemsize", &out.tp_itemsize) &&
		  member_offset(&s, "tp_flags", &out.tp_flags) &&
		  member_offset(&s, "tp_weaklistoffset", &out.tp_weaklistoffset) &&
		  member_offset(&s, "tp_bases", &out.tp_bases) &&
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
	     member_offset(&s, "used", &out.set_used) &&
	     member_offset(&s, "mask", &out.set_mask) && member_offset(&s, "table", &out.set_table) &&
	     member_offset(&s, "smalltable", &out.set_smalltable);
	ok = ok && dwarf_types_struct(types, "PyByteArrayObject", &s) &&
	     member_offset(&s, "ob_bytes", &out.bytearray_bytes);
	out.code_zombieframe = 0;
	if (ok && dwarf_types_struct(types, "PyCodeObject", &s))
		member_offset(&s, "co_zombieframe", &out.code_zombieframe);
	containers_from_dwarf(types, &out);
	ok = ok && threads_from_dwarf(types, &out);
	/* the method cache: a static up to 3.9, then in the interpreter (in its types from 3.12) */
	uint32_t in_types = 0, cache = 0;
	out.type_cache = 0;
	if (offset_in(types, "_is", "types", &in_types) &&
	    offset_in(types, "types_state", "type_cache", &cache))
		out.type_cache = in_types + cache;
	else
		offset_in(types, "_is", "type_cache", &out.type_cache);
	struct dwarf_variable method_cache;
	if (dwarf_types_struct(types, "type_cache", &s))
		out.type_cache_size = (uint32_t)s.size;
	else if (dwarf_types_variable(types, "method_cache", &method_cache))
		out.type_cache_size = (uint32_t)method_cache.type_size;
	/* 3.8 keeps it in the runtime, later versions in each interpreter */
	out.gc_in_runtime = offset_in(types, "pyruntimestate", "gc", &out.gc_state);
	ok = ok && (out.gc_in_runtime || offset_in(types, "_is", "gc", &out.gc_state)) &&
	     offset_in(types, "_gc_runtime_state", "generations", &out.gc_generations) &&
	     dwarf_types_struct(types, "gc_generation", &s);
	out.gc_generation_size = (uint32_t)s.size;
	out.runtime_allocators = 0;
	if (out.minor >= 12)
		ok = ok && offset_in(types, "pyruntimestate", "allocators", &out.runtime_allocators);
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
		      FIELD(tp_basicsize),   FIELD(tp_itemsize),    FIELD(tp_flags), FIELD(tp_weaklistoffset), FIELD(tp_bases),
		      FIELD(tp_members),     FIELD(tp_base),	    FIELD(tp_dict),
		      FIELD(tp_dictoffset),  FIELD(tp_mro),	    FIELD(type_size),
		      FIELD(ht_name),	     FIELD(ht_qualname),    FIELD(ht_cached_keys),
		      FIELD(heap_type_size), FIELD(str_length),	    FIELD(str_state),
		      FIELD(ascii_size),     FIELD(compact_utf8),   FIELD(compact_size),
		      FIELD(dict_used),	     FIELD(dict_keys),	    FIELD(dict_values),
		      FIELD(keys_size),	     FIELD(keys_nentries),  FIELD(keys_indices),
		      FIELD(values_array),   FIELD(var_size),	    FIELD(list_items),
		      FIELD(list_allocated), FIELD(tuple_items),    FIELD(set_used),       FIELD(set_mask),
		      FIELD(set_table),	     FIELD(set_smalltable), FIELD(bytearray_bytes),
		      FIELD(code_zombieframe), FIELD(runtime_main_interpreter),
		      FIELD(interpreter_threads), FIELD(thread_next), FIELD(thread_id),
		      FIELD(thread_native_id), FIELD(thread_frame), FIELD(cframe_current),
		      FIELD(thread_datastack), FIELD(iframe_code), FIELD(iframe_previous),
		      FIELD(iframe_stacktop), FIELD(iframe_owner), FIELD(iframe_localsplus),
		      FIELD(code_name), FIELD(code_qualname), FIELD(code_nlocalsplus),
		      FIELD(code_localsplusnames), FIELD(code_nlocals), FIELD(code_varnames),
		      FIELD(frame_back), FIELD(frame_code), FIELD(frame_localsplus),
		      FIELD(chunk_size), FIELD(chunk_top), FIELD(gc_state), FIELD(gc_generations),
		      FIELD(gc_generation_size), FIELD(runtime_allocators), FIELD(type_cache), FIELD(type_cache_size),
		      FIELD(deque_leftblock), FIELD(deque_rightblock), FIELD(deque_leftindex),
		      FIELD(deque_rightindex), FIELD(deque_numfreeblocks), FIELD(deque_freeblocks),
		      FIELD(deque_size), FIELD(block_data), FIELD(block_rightlink),
		      FIELD(odict_first), FIELD(odict_fast_nodes), FIELD(odict_size),
		      FIELD(odict_node_key), FIELD(odict_node_next), FIELD(lru_cache),
		      FIELD(lru_elem_prev), FIELD(lru_elem_next), FIELD(lru_elem_key),
		      FIELD(lru_elem_result)};
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
	if (a->keys_log2 != b->keys_log2 || a->gc_in_runtime != b->gc_in_runtime) {
		differences++;
		if (used < out_size)
			snprintf(out + used, out_size - used, "keys_log2, gc_in_runtime: %d %d != %d %d\n",
				 a->keys_log2, a->gc_in_runtime, b->keys_log2, b->gc_in_runtime);
	}
	return differences;
}
