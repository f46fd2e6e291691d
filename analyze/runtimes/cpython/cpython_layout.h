/* Where CPython keeps things, per version: the offsets heapsnap reads objects, types, dicts and
 * pymalloc's pools by. Built-in tables for 3.8 to 3.13 serve every interpreter (Debian's python3.11
 * is stripped); where the interpreter has DWARF, the same fields are read from it instead, and the
 * tests check that both agree. Sizes that are macros in CPython's sources (pool and arena sizes,
 * the pre-header of managed dicts) have no DWARF and come from the tables only. */
#ifndef HEAPSNAP_CPYTHON_LAYOUT_H
#define HEAPSNAP_CPYTHON_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/dwarf_types.h"

/* tp_flags bits (Include/object.h) */
#define PY_TPFLAGS_INLINE_VALUES (1ull << 2)  /* 3.13 */
#define PY_TPFLAGS_MANAGED_WEAKREF (1ull << 3) /* 3.12 */
#define PY_TPFLAGS_MANAGED_DICT (1ull << 4)   /* 3.11 */
#define PY_TPFLAGS_HEAPTYPE (1ull << 9)
#define PY_TPFLAGS_READY (1ull << 12)
#define PY_TPFLAGS_HAVE_GC (1ull << 14)
#define PY_TPFLAGS_TYPE_SUBCLASS (1ull << 31)

struct cpython_layout {
	int minor;
	/* pymalloc */
	uint32_t pool_size, arena_size, pool_overhead, alignment;
	/* object headers */
	uint32_t gc_header;	  /* PyGC_Head before a GC object */
	uint64_t preheader_flags; /* type flags that put two more words before the GC header */
	int32_t managed_dict;	  /* offset from the object of its managed dict pointer (< 0) */
	int32_t managed_values;	  /* 3.11: of its values pointer; 0 when none */
	/* PyTypeObject and PyHeapTypeObject */
	uint32_t tp_name, tp_basicsize, tp_itemsize, tp_flags, tp_weaklistoffset, tp_members, tp_base,
		tp_dict, tp_dictoffset, tp_bases, tp_mro, type_size;
	uint32_t ht_name, ht_qualname, ht_cached_keys, heap_type_size;
	/* str: PyASCIIObject, PyCompactUnicodeObject */
	uint32_t str_length, str_state, ascii_size, compact_utf8, compact_size;
	/* dict */
	uint32_t dict_used, dict_keys, dict_values;
	bool keys_log2;	    /* 3.11+: dk_log2_size, dk_log2_index_bytes, dk_kind */
	uint32_t keys_size; /* dk_size, or dk_log2_size */
	uint32_t keys_nentries, keys_indices;
	uint32_t values_array; /* where PyDictValues' values[] starts */
	/* containers */
	uint32_t var_size; /* ob_size of a PyVarObject */
	uint32_t list_items, list_allocated, tuple_items;
	uint32_t set_used, set_mask, set_table, set_smalltable;
	uint32_t bytearray_bytes;
	uint32_t code_zombieframe; /* up to 3.10: a dead frame kept for reuse; 0 after */
	/* C containers (Modules/_collectionsmodule.c, _functoolsmodule.c, Objects/odictobject.c):
	   a deque's items in a chain of blocks; an OrderedDict's nodes, each holding a key; an
	   lru_cache wrapper's cache dict and the linked list elements of a bounded cache, whose
	   links are borrowed */
	uint32_t deque_leftblock, deque_rightblock, deque_leftindex, deque_rightindex;
	uint32_t deque_numfreeblocks, deque_freeblocks; /* 3.11+: blocks kept for reuse; 0 before */
	uint32_t deque_size, block_data, block_rightlink;
	uint32_t odict_first, odict_fast_nodes, odict_size, odict_node_key, odict_node_next;
	uint32_t lru_cache, lru_elem_prev, lru_elem_next, lru_elem_key, lru_elem_result;

	/* threads and frames: _PyRuntime.interpreters.main -> threads -> frames */
	uint32_t runtime_main_interpreter, interpreter_threads;
	uint32_t thread_next, thread_id, thread_native_id; /* native id 3.11+, else 0 */
	uint32_t thread_frame;	     /* PyFrameObject * (3.8-3.10), _PyCFrame * (3.11, 3.12),
					_PyInterpreterFrame * (3.13) */
	uint32_t cframe_current;     /* 3.11, 3.12: _PyCFrame.current_frame */
	uint32_t thread_datastack;   /* 3.11+: the first _PyStackChunk; 0 before */
	uint32_t iframe_code, iframe_previous, iframe_stacktop, iframe_owner, iframe_localsplus;
	uint32_t code_name, code_qualname; /* qualname 3.11+ */
	uint32_t code_nlocalsplus, code_localsplusnames; /* 3.11+ */
	uint32_t code_nlocals, code_varnames;		 /* 3.8-3.10 */
	uint32_t frame_back, frame_code, frame_localsplus; /* PyFrameObject, 3.8-3.10 */
	uint32_t chunk_size, chunk_top;
	/* the method cache: borrowed pointers to whatever attribute lookups last found (a static
	   `method_cache` up to 3.9; in the interpreter after) */
	uint32_t type_cache, type_cache_size;
	/* the cyclic collector's state: in _PyRuntime (3.8) or the interpreter (3.9+) */
	bool gc_in_runtime;
	uint32_t gc_state, gc_generations, gc_generation_size;
	/* 3.12+: _PyRuntime.allocators (struct _pymem_allocators), where the allocator each domain
	   calls is (pymalloc, malloc, 3.13's mimalloc, under the debug hooks or not); 0 before */
	uint32_t runtime_allocators;
};

/* The built-in layout of CPython 3.minor; false for versions outside 3.8 to 3.13. */
bool cpython_layout_builtin(int minor, struct cpython_layout *layout);

/* Fills what DWARF holds over a built-in layout; false when the DWARF lacks the interpreter's
 * structs (then `layout` is unchanged). */
bool cpython_layout_from_dwarf(struct dwarf_types *types, struct cpython_layout *layout);

/* 3.13's _Py_DebugOffsets (at the start of _PyRuntime, for debuggers): where the version that is
 * running keeps its threads and frames, read from the process over the built-in table; false when
 * the cookie or the version does not match. `bytes` is the start of _PyRuntime. */
bool cpython_layout_from_debug_offsets(const uint8_t *bytes, size_t size, uint64_t version_hex,
				       struct cpython_layout *layout);

/* Compares two layouts field by field: writes the first `max` differences as "name: a != b"
 * lines into out, returns how many fields differ. */
size_t cpython_layout_compare(const struct cpython_layout *a, const struct cpython_layout *b,
			      char *out, size_t out_size);

#endif
