/* CPython objects in a walked heap: which allocations are Python objects, of which type, where
 * the object starts in its block (after the GC header and, from 3.11, the managed-dict
 * pre-header), whether the cyclic collector tracks it; and the blocks that belong to an object
 * (a list's item array, a dict's keys and values, a set's table, a bytearray's buffer) named
 * after their owner. A block is a Python object when the word after its reference count points to
 * a valid type object (one whose own type is `type` or a metatype) and the type's flags put the
 * object exactly there; types are read once each and cached. Heap types are named
 * `module.QualName`, as their `__module__` and `__qualname__` say.
 *
 * Damage: where a list, tuple, dict or set holds an item that points at a heap block no object
 * was found in, the object there is damaged. A type pointer that leads to no type leaves it
 * untyped; an impossible reference count or broken collector links hid an object whose type is
 * good, and it is typed after all. Containers whose tables are impossible are walked as far as
 * they go, and a broken collector list is walked back from its end. Each is warned about by its
 * address (a bounded number of each kind) and counted in python_objects.damage. */
#ifndef HEAPSNAP_CPYTHON_OBJECTS_H
#define HEAPSNAP_CPYTHON_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/address_space.h"
#include "analyze/runtimes/cpython/cpython.h"
#include "analyze/heap.h"
#include "analyze/symbols.h"
#include "analyze/types.h"
#include "common/error.h"
#include "common/warnings.h"

enum python_kind {
	PYTHON_OTHER,
	PYTHON_OBJECT, /* `object` itself: instances of classes with no built-in base but it */
	PYTHON_TYPE,
	PYTHON_STR,
	PYTHON_BYTES,
	PYTHON_INT,
	PYTHON_LIST,
	PYTHON_TUPLE,
	PYTHON_DICT,
	PYTHON_SET,
	PYTHON_BYTEARRAY,
	PYTHON_MODULE,
	PYTHON_CODE,
	PYTHON_WEAKREF, /* weak references and proxies: their referent is no reference */
};

/* C types whose instances hold objects where no member says (their items in blocks or nodes
 * of their own, links that are borrowed), modelled by their structs (cpython_layout.h). */
enum python_model {
	PYTHON_MODEL_NONE,
	PYTHON_MODEL_DEQUE,	   /* collections.deque: items in blocks (its parts) */
	PYTHON_MODEL_ORDERED_DICT, /* collections.OrderedDict: a node per key (its parts) */
	PYTHON_MODEL_LRU_CACHE,	   /* functools._lru_cache_wrapper: its cache; list links */
	PYTHON_MODEL_LRU_ELEMENT,  /* functools._lru_list_elem: key, result; list links */
};

/* Whether the edges of the kind read its whole struct (a list's items pointer, a dict's tables),
 * so that a subclass's own fields start after it; object, code and the rest are read as fields. */
static inline bool python_kind_reads_struct(enum python_kind kind)
{
	return kind != PYTHON_OTHER && kind != PYTHON_OBJECT && kind != PYTHON_CODE;
}

struct python_type {
	uint64_t address;
	const char *name; /* interned in the analysis' type names */
	uint64_t flags, basicsize, itemsize, dictoffset, weaklistoffset;
	enum python_kind kind;	 /* of its nearest built-in base (a static type) */
	enum python_model model; /* of the nearest base that has one (the type itself first) */
	/* where the words of its instances that the kind's model does not read start: the end of
	   that built-in base's struct (16 for object, and for kinds with no model of their
	   struct); up to basicsize they are the type's own fields (a C type's struct, slots) */
	uint64_t own_fields;
};

/* Per-allocation bits */
#define PYOBJ_OBJECT 0x01  /* a Python object starts in this block */
#define PYOBJ_TRACKED 0x02 /* ... and the cyclic collector tracks it */
#define PYOBJ_OWNED 0x04   /* a block that belongs to another object */
#define PYOBJ_IMMORTAL 0x08 /* 3.12+: an immortal object (a root, never freed) */
#define PYOBJ_HEADER_SHIFT 4 /* bits 4-5: bytes before the object, in 16-byte units */
#define PYOBJ_GENERATION_SHIFT 6 /* bits 6-7: the collector's generation + 1 (0: none found) */

/* The generation (0 to 2) whose list a tracked object is in, or -1. */
static inline int python_object_generation(uint8_t bits)
{
	return (int)(bits >> PYOBJ_GENERATION_SHIFT & 3) - 1;
}

struct python_objects {
	uint8_t *bits;	    /* per allocation (parallel to heap->allocations) */
	uint32_t *type;	    /* per allocation: index into types, or UINT32_MAX */
	struct python_type *types;
	size_t type_count;
	uint64_t object_count, tracked_count, immortal_count;
	uint64_t type_type; /* the address of `type` (PyType_Type) */
	/* damage found where an object must be (an item of a list, tuple, dict or set), each
	   warned about by its address */
	struct python_damage {
		uint64_t untyped;	   /* objects whose type pointer leads to no type: untyped */
		uint64_t containers;	   /* lists, tuples, dicts, sets whose tables are impossible */
		uint64_t reference_counts; /* objects with an impossible count, typed nonetheless */
		uint64_t gc_links;	   /* objects and collector lists whose links are broken */
	} damage;
	/* which object owns each owned block, sorted by owner (the graph gives the owner an edge
	   to it, so the block counts in what the owner retains) */
	struct python_part {
		uint32_t owner, part; /* allocation indices */
	} *parts;
	size_t part_count, part_capacity;
};

/* The first of the blocks owned by allocation `owner` in objects->parts (parts[i].owner ==
 * owner while i < part_count), or part_count when it owns none. */
size_t cpython_first_part(const struct python_objects *objects, size_t owner);

/* The object's address in allocation `index` (its block's address plus the headers). */
static inline uint64_t python_object_address(const struct python_objects *objects,
					     const struct heap *heap, size_t index)
{
	return heap->allocations[index].address +
	       16u * ((objects->bits[index] >> PYOBJ_HEADER_SHIFT) & 3u);
}

/* Types every live allocation that is a Python object, and the blocks objects own; names go into
 * `names` (only allocations it has not named already). */
int cpython_objects_find(struct python_objects *objects, struct address_space *space,
			 const struct cpython_info *python,
			 const struct heap *heap, struct type_names *names,
			 struct warnings *warnings, struct hs_error *err);
void cpython_objects_free(struct python_objects *objects);

/* The number of items of the list, tuple, dict, set or deque in allocation `index` (len() of
 * it); false for other objects or when it cannot be read. */
bool cpython_container_length(struct address_space *space, const struct cpython_layout *layout,
			      const struct python_objects *objects, const struct heap *heap,
			      size_t index, uint64_t *length);
/* Reads a str object as UTF-8 into out (NUL-terminated, cut at out_size - 1); false when addr is
 * not a readable compact str. */
bool cpython_str_read(struct address_space *space, const struct cpython_layout *layout,
		      uint64_t addr, char *out, size_t out_size);

/* Where the entries of a dict keys table are and how they are laid out. */
struct cpython_keys {
	uint64_t entries; /* address of entry 0 */
	uint64_t count;	  /* entries used so far (deleted ones included) */
	uint64_t entry_size, key_offset, value_offset;
};

/* Reads a PyDictKeysObject's header; false when it is not a readable, consistent one. */
bool cpython_keys_read(struct address_space *space, const struct cpython_layout *layout,
		       uint64_t keys, struct cpython_keys *out);

/* Calls visit for each (key, value) of the dict at addr, in insertion order; stops when it
 * returns non-zero. False when the dict cannot be read. */
bool cpython_dict_each(struct address_space *space, const struct cpython_layout *layout,
		       uint64_t addr,
		       int (*visit)(void *context, uint64_t key, uint64_t value), void *context);

/* Calls visit for each block of the deque at addr, left to right, with the indices [first, end)
 * of the items it holds (none in an empty deque's one block); stops when it returns non-zero.
 * False when the chain cannot be read or does not end at the deque's right block. */
bool cpython_deque_each_block(struct address_space *space, const struct cpython_layout *layout,
			      uint64_t addr,
			      int (*visit)(void *context, uint64_t block, uint64_t first,
					   uint64_t end),
			      void *context);

/* Calls visit for each node of the OrderedDict at addr, in order, with the key it holds; stops
 * when it returns non-zero. False when the chain cannot be read. */
bool cpython_ordered_dict_each_node(struct address_space *space,
				    const struct cpython_layout *layout, uint64_t addr,
				    int (*visit)(void *context, uint64_t node, uint64_t key),
				    void *context);

#endif
