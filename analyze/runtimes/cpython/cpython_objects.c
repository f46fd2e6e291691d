/* Finding and typing CPython objects (see cpython_objects.h). */
#include "cpython_objects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array_grow.h"
#include "common/hash_map.h"
#include "common/bytes.h"

#define MAX_REFCOUNT (1ull << 40) /* immortal objects (3.12+) count below 2^32 */
#define MAX_TYPE_NAME 200
#define TYPE_INVALID (-1)

/* ---- reading objects ------------------------------------------------------------------------- */

static bool read_u64(struct address_space *space, uint64_t addr, uint64_t *out)
{
	return address_space_read_u64(space, addr, out);
}

/* Appends the UTF-8 encoding of code point c to out[*used], if it fits. */
static void put_utf8(char *out, size_t out_size, size_t *used, uint32_t c)
{
	char bytes[4];
	size_t n;
	if (c < 0x80) {
		bytes[0] = (char)c;
		n = 1;
	} else if (c < 0x800) {
		bytes[0] = (char)(0xC0 | c >> 6);
		bytes[1] = (char)(0x80 | (c & 0x3F));
		n = 2;
	} else if (c < 0x10000) {
		bytes[0] = (char)(0xE0 | c >> 12);
		bytes[1] = (char)(0x80 | (c >> 6 & 0x3F));
		bytes[2] = (char)(0x80 | (c & 0x3F));
		n = 3;
	} else {
		bytes[0] = (char)(0xF0 | c >> 18);
		bytes[1] = (char)(0x80 | (c >> 12 & 0x3F));
		bytes[2] = (char)(0x80 | (c >> 6 & 0x3F));
		bytes[3] = (char)(0x80 | (c & 0x3F));
		n = 4;
	}
	if (*used + n < out_size) {
		memcpy(out + *used, bytes, n);
		*used += n;
	}
}

bool cpython_container_length(struct address_space *space, const struct cpython_layout *layout,
			      const struct python_objects *objects, const struct heap *heap,
			      size_t index, uint64_t *length)
{
	if (objects->bits == NULL || !(objects->bits[index] & PYOBJ_OBJECT) ||
	    objects->type[index] >= objects->type_count)
		return false;
	uint32_t offset;
	const struct python_type *type = &objects->types[objects->type[index]];
	switch (type->kind) {
	case PYTHON_LIST:
	case PYTHON_TUPLE:
		offset = layout->var_size;
		break;
	case PYTHON_DICT:
		offset = layout->dict_used;
		break;
	case PYTHON_SET:
		offset = layout->set_used;
		break;
	default:
		if (type->model != PYTHON_MODEL_DEQUE)
			return false;
		offset = layout->var_size;
		break;
	}
	uint64_t value;
	if (!address_space_read_u64(space, python_object_address(objects, heap, index) + offset,
				    &value) ||
	    value > (1ull << 40))
		return false;
	*length = value;
	return true;
}

bool cpython_str_read(struct address_space *space, const struct cpython_layout *layout,
		      uint64_t addr, char *out, size_t out_size)
{
	if (out_size == 0)
		return false;
	out[0] = '\0';
	uint8_t header[96];
	if (addr == 0 || layout->compact_size > sizeof header ||
	    address_space_read(space, addr, header, layout->compact_size, NULL) != 0)
		return false;
	uint64_t length = u64_at(header, layout->str_length);
	uint32_t state;
	memcpy(&state, header + layout->str_state, sizeof state);
	unsigned kind = state >> 2 & 7, compact = state >> 5 & 1, ascii = state >> 6 & 1;
	if (!compact || (kind != 1 && kind != 2 && kind != 4) || length > (1u << 30))
		return false;
	uint64_t data = addr + (ascii ? layout->ascii_size : layout->compact_size);
	size_t wanted = length * kind < 4 * out_size ? (size_t)(length * kind) : 4 * out_size;
	uint8_t *bytes = malloc(wanted + 1);
	if (bytes == NULL || address_space_read(space, data, bytes, wanted, NULL) != 0) {
		free(bytes);
		return false;
	}
	size_t used = 0;
	for (size_t i = 0; i + kind <= wanted && used + 1 < out_size; i += kind) {
		uint32_t c = kind == 1 ? bytes[i]
			     : kind == 2 ? (uint32_t)(bytes[i] | bytes[i + 1] << 8)
					 : (uint32_t)(bytes[i] | bytes[i + 1] << 8 | bytes[i + 2] << 16 |
						      (uint32_t)bytes[i + 3] << 24);
		put_utf8(out, out_size, &used, c);
	}
	out[used] = '\0';
	free(bytes);
	return true;
}

bool cpython_keys_read(struct address_space *space, const struct cpython_layout *layout,
		       uint64_t keys, struct cpython_keys *out)
{
	uint8_t header[48];
	if (keys == 0 || layout->keys_indices > sizeof header ||
	    address_space_read(space, keys, header, layout->keys_indices, NULL) != 0)
		return false;
	uint64_t size, index_bytes;
	bool general = true;
	if (layout->keys_log2) {
		unsigned log2_size = header[layout->keys_size],
			 log2_index_bytes = header[layout->keys_size + 1];
		if (log2_size > 40 || log2_index_bytes > 43)
			return false;
		size = 1ull << log2_size;
		index_bytes = 1ull << log2_index_bytes;
		general = header[layout->keys_size + 2] == 0; /* DICT_KEYS_GENERAL */
	} else {
		size = u64_at(header, layout->keys_size);
		if (size == 0 || size > (1ull << 40))
			return false;
		index_bytes = size * (size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffff ? 4 : 8);
	}
	out->count = u64_at(header, layout->keys_nentries);
	if (out->count > size)
		return false;
	/* unicode entries (key, value) from 3.11; general ones (hash, key, value) */
	out->entries = keys + layout->keys_indices + index_bytes;
	out->entry_size = general ? 24 : 16;
	out->key_offset = general ? 8 : 0;
	out->value_offset = general ? 16 : 8;
	return true;
}

bool cpython_dict_each(struct address_space *space, const struct cpython_layout *layout,
		       uint64_t addr,
		       int (*visit)(void *context, uint64_t key, uint64_t value), void *context)
{
	uint64_t keys, values;
	struct cpython_keys table;
	if (!read_u64(space, addr + layout->dict_keys, &keys) ||
	    !read_u64(space, addr + layout->dict_values, &values) ||
	    !cpython_keys_read(space, layout, keys, &table))
		return false;
	uint64_t nentries = table.count, entries = table.entries, entry_size = table.entry_size;
	uint64_t key_offset = table.key_offset, value_offset = table.value_offset;
	uint8_t entry[24];
	for (uint64_t i = 0; i < nentries; i++) {
		if (address_space_read(space, entries + i * entry_size, entry, (size_t)entry_size,
				       NULL) != 0)
			return false;
		uint64_t key = u64_at(entry, (size_t)key_offset), value = 0;
		if (key == 0)
			continue; /* a deleted entry */
		if (values != 0) {
			/* a split table: the values live apart, indexed like the entries */
			if (!read_u64(space, values + layout->values_array + i * 8, &value))
				return false;
		} else {
			value = u64_at(entry, (size_t)value_offset);
		}
		if (value != 0 && visit(context, key, value) != 0)
			break;
	}
	return true;
}

bool cpython_deque_each_block(struct address_space *space, const struct cpython_layout *layout,
			      uint64_t addr,
			      int (*visit)(void *context, uint64_t block, uint64_t first,
					   uint64_t end),
			      void *context)
{
	uint64_t count, left, right, first, last;
	uint64_t per_block = (layout->block_rightlink - layout->block_data) / 8;
	if (layout->deque_size == 0 || !read_u64(space, addr + layout->var_size, &count) ||
	    !read_u64(space, addr + layout->deque_leftblock, &left) ||
	    !read_u64(space, addr + layout->deque_rightblock, &right) ||
	    !read_u64(space, addr + layout->deque_leftindex, &first) ||
	    !read_u64(space, addr + layout->deque_rightindex, &last) || count > (1ull << 40) ||
	    first >= per_block || last >= per_block)
		return false;
	/* the blocks its items span (an empty deque keeps one) */
	uint64_t blocks = (first + count + per_block - 1) / per_block;
	uint64_t block = left;
	for (uint64_t n = 0; n <= blocks && block != 0; n++) {
		uint64_t end = block == right ? last + 1 : per_block;
		if (visit(context, block, block == left ? first : 0, end) != 0 || block == right)
			return true;
		if (!read_u64(space, block + layout->block_rightlink, &block))
			return false;
	}
	return false;
}

bool cpython_ordered_dict_each_node(struct address_space *space,
				    const struct cpython_layout *layout, uint64_t addr,
				    int (*visit)(void *context, uint64_t node, uint64_t key),
				    void *context)
{
	uint64_t used, node, key;
	if (layout->odict_size == 0 || !read_u64(space, addr + layout->dict_used, &used) ||
	    !read_u64(space, addr + layout->odict_first, &node))
		return false;
	/* a node per key, and a few more where a key left the dict behind the OrderedDict's back
	   (dict.__delitem__): the node stays until the OrderedDict notices */
	for (uint64_t n = 0; node != 0; n++) {
		if (n > used + 4096 || !read_u64(space, node + layout->odict_node_key, &key))
			return false;
		if (visit(context, node, key) != 0)
			return true;
		if (!read_u64(space, node + layout->odict_node_next, &node))
			return false;
	}
	return true;
}

/* ---- types ----------------------------------------------------------------------------------- */

static inline uint64_t type_address_hash(uint64_t address)
{
	return (address >> 3) * 0x9E3779B97F4A7C15ull >> 20;
}

static inline bool type_address_eq(uint64_t a, uint64_t b)
{
	return a == b;
}

/* each type object's address, read once: its index in objects->types, or TYPE_INVALID */
DEFINE_HASH_MAP(type_map, uint64_t, int32_t, type_address_hash, type_address_eq)

struct finder {
	struct python_objects *objects;
	bool debug_hooks; /* blocks start with the debug hooks' headers (python -X dev, a debug build) */
	struct address_space *space;
	const struct cpython_info *python;
	const struct cpython_layout *layout;
	const struct heap *heap;
	struct type_names *names;
	struct type_map types_seen;
	size_t type_capacity;
	/* blocks objects point to, made their parts once every object the walk found is known */
	struct pending_part {
		uint32_t owner;
		uint64_t pointer;
	} *pending;
	size_t pending_count, pending_capacity;
	bool out_of_memory;
	/* damage: the live blocks the walk found no object in nor named otherwise, by address
	   (the only blocks a container's item can be a damaged object in), each with whether a
	   reference to it was checked already (each damaged object is warned about once); objects
	   found through references, whose own items are checked in turn */
	struct warnings *warnings;
	struct suspect {
		uint64_t address;
		uint32_t index;
		bool checked;
	} *suspects;
	size_t suspect_count;
	/* a bit per hash of each address a suspect's object can start at: most items are turned
	   away by one load */
	uint64_t *suspect_filter;
	uint64_t suspect_filter_mask;
	/* the containers are read in address order through a window, as the walk reads blocks */
	struct address_cursor *cursor;
	const struct snapshot_region *region;
	uint32_t *found_late;
	size_t found_late_count, found_late_capacity;
};

/* Reads a C string (a static type's tp_name) into out; false unless printable and terminated. */
static bool read_c_name(struct address_space *space, uint64_t addr, char *out, size_t out_size)
{
	for (size_t i = 0; i < out_size; i++) {
		char c;
		if (address_space_read(space, addr + i, &c, 1, NULL) != 0)
			return false;
		out[i] = c;
		if (c == '\0')
			return i > 0;
		if ((unsigned char)c < 0x20 || c == 0x7f)
			return false;
	}
	return false;
}

struct find_key {
	struct address_space *space;
	const struct cpython_layout *layout;
	const char *wanted;
	uint64_t value;
};

static int match_key(void *context, uint64_t key, uint64_t value)
{
	struct find_key *find = context;
	char name[64];
	if (cpython_str_read(find->space, find->layout, key, name, sizeof name) &&
	    strcmp(name, find->wanted) == 0) {
		find->value = value;
		return 1;
	}
	return 0;
}

/* A heap type's name: `__module__` from its dict, then its qualified name. */
static bool heap_type_name(struct finder *finder, const uint8_t *type, char *out, size_t out_size)
{
	const struct cpython_layout *layout = finder->layout;
	char qualname[MAX_TYPE_NAME], module[MAX_TYPE_NAME] = "";
	if (!cpython_str_read(finder->space, layout, u64_at(type, layout->ht_qualname), qualname,
			      sizeof qualname) ||
	    qualname[0] == '\0')
		return false;
	struct find_key find = {finder->space, layout, "__module__", 0};
	uint64_t dict = u64_at(type, layout->tp_dict);
	if (dict)
		cpython_dict_each(finder->space, layout, dict, match_key, &find);
	if (find.value)
		cpython_str_read(finder->space, layout, find.value, module, sizeof module);
	if (module[0] && strcmp(module, "builtins") != 0)
		snprintf(out, out_size, "%.96s.%.96s", module, qualname);
	else
		snprintf(out, out_size, "%s", qualname);
	return true;
}

static enum python_kind kind_of(const char *name)
{
	static const struct {
		const char *name;
		enum python_kind kind;
	} kinds[] = {{"type", PYTHON_TYPE},   {"str", PYTHON_STR},	   {"bytes", PYTHON_BYTES},
		     {"int", PYTHON_INT},     {"list", PYTHON_LIST},	   {"tuple", PYTHON_TUPLE},
		     {"dict", PYTHON_DICT},   {"set", PYTHON_SET},	   {"frozenset", PYTHON_SET},
		     {"bytearray", PYTHON_BYTEARRAY}, {"module", PYTHON_MODULE},
		     {"object", PYTHON_OBJECT}, {"code", PYTHON_CODE},
		     /* 3.8 to 3.10 named them so; 3.11 "weakref.ReferenceType" and the like */
		     {"weakref", PYTHON_WEAKREF}, {"weakproxy", PYTHON_WEAKREF},
		     {"weakcallableproxy", PYTHON_WEAKREF}, {"weakref.ReferenceType", PYTHON_WEAKREF},
		     {"weakref.ProxyType", PYTHON_WEAKREF},
		     {"weakref.CallableProxyType", PYTHON_WEAKREF}};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i].name, name) == 0)
			return kinds[i].kind;
	return PYTHON_OTHER;
}

/* The model of a C type by its tp_name, when its instances are big enough to be one (a Python
 * class could take the name, not the struct). */
static enum python_model model_of(const struct cpython_layout *layout, const char *name,
				  uint64_t basicsize)
{
	const struct {
		const char *name;
		enum python_model model;
		uint64_t size;
	} models[] = {
		{"collections.deque", PYTHON_MODEL_DEQUE, layout->deque_size},
		{"collections.OrderedDict", PYTHON_MODEL_ORDERED_DICT, layout->odict_size},
		{"functools._lru_cache_wrapper", PYTHON_MODEL_LRU_CACHE, layout->lru_cache + 8},
		{"functools._lru_list_elem", PYTHON_MODEL_LRU_ELEMENT,
		 layout->lru_elem_result + 8}};
	for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
		if (strcmp(models[i].name, name) == 0)
			return models[i].size > 8 && basicsize >= models[i].size
				       ? models[i].model
				       : PYTHON_MODEL_NONE;
	return PYTHON_MODEL_NONE;
}

static int32_t type_index(struct finder *finder, uint64_t address, int depth);

/* Reads and validates a type object; its index in objects->types, or TYPE_INVALID. */
static int32_t read_type(struct finder *finder, uint64_t address, int depth)
{
	const struct cpython_layout *layout = finder->layout;
	uint8_t type[1024];
	if ((address & 7) || address < 4096 || layout->heap_type_size > sizeof type ||
	    address_space_read(finder->space, address, type, layout->type_size, NULL) != 0)
		return TYPE_INVALID;
	uint64_t refcount = u64_at(type, 0), metatype = u64_at(type, 8);
	uint64_t flags = u64_at(type, layout->tp_flags);
	uint64_t basicsize = u64_at(type, layout->tp_basicsize);
	uint64_t itemsize = u64_at(type, layout->tp_itemsize);
	if (refcount - 1 >= MAX_REFCOUNT || basicsize < 16 || basicsize > (1u << 20) ||
	    itemsize > (1u << 20))
		return TYPE_INVALID;
	if (metatype != finder->python->type_type && address != finder->python->type_type) {
		/* a metaclass: itself a valid type, and a subclass of type */
		int32_t meta = type_index(finder, metatype, depth + 1);
		if (meta == TYPE_INVALID ||
		    !(finder->objects->types[meta].flags & PY_TPFLAGS_TYPE_SUBCLASS))
			return TYPE_INVALID;
	}
	char name[MAX_TYPE_NAME];
	bool heap_type = flags & PY_TPFLAGS_HEAPTYPE;
	if (heap_type) {
		if (address_space_read(finder->space, address, type, layout->heap_type_size, NULL) !=
			    0 ||
		    !heap_type_name(finder, type, name, sizeof name))
			return TYPE_INVALID;
	} else if (!read_c_name(finder->space, u64_at(type, layout->tp_name), name, sizeof name)) {
		return TYPE_INVALID;
	}
	/* 3.8 and 3.9 never ready the type of lru_cache's list elements: a static type with a
	   model is taken by its name and size */
	if (!(flags & PY_TPFLAGS_READY) &&
	    (heap_type || model_of(layout, name, basicsize) == PYTHON_MODEL_NONE))
		return TYPE_INVALID;
	/* up the bases, the type itself first: the model of the nearest C type that has one, and
	   the built-in kind of the first static type that has one (its struct's end is where the
	   words of the type's own fields start) */
	enum python_kind kind = PYTHON_OTHER;
	enum python_model model = PYTHON_MODEL_NONE;
	uint64_t own_fields = 16;
	const uint8_t *at = type;
	uint8_t base_type[512];
	for (int steps = 0; steps < 64 && kind == PYTHON_OTHER; steps++) {
		char at_name[64];
		uint64_t at_flags = u64_at(at, layout->tp_flags);
		if (read_c_name(finder->space, u64_at(at, layout->tp_name), at_name,
				sizeof at_name)) {
			if (model == PYTHON_MODEL_NONE)
				model = model_of(layout, at_name, basicsize);
			if (!(at_flags & PY_TPFLAGS_HEAPTYPE) &&
			    (kind = kind_of(at_name)) != PYTHON_OTHER &&
			    python_kind_reads_struct(kind))
				own_fields = u64_at(at, layout->tp_basicsize);
		}
		uint64_t base = u64_at(at, layout->tp_base);
		if (base == 0 || layout->type_size > sizeof base_type ||
		    address_space_read(finder->space, base, base_type, layout->type_size, NULL) != 0)
			break;
		at = base_type;
	}
	/* a subclass of int, tuple or bytes has no fields of its own before the items (its dict
	   comes after them), and one of object no more than its struct */
	if (own_fields > basicsize || (itemsize && python_kind_reads_struct(kind)))
		own_fields = basicsize;
	struct python_objects *objects = finder->objects;
	void *grown = array_grow(objects->types, &finder->type_capacity, objects->type_count,
				 sizeof *objects->types, 256);
	if (grown == NULL)
		return TYPE_INVALID;
	objects->types = grown;
	struct python_type *entry = &objects->types[objects->type_count];
	*entry = (struct python_type){.address = address, .flags = flags, .basicsize = basicsize,
				      .itemsize = itemsize, .kind = kind, .model = model,
				      .own_fields = own_fields,
				      .dictoffset = u64_at(type, layout->tp_dictoffset),
				      .weaklistoffset = u64_at(type, layout->tp_weaklistoffset)};
	entry->name = types_intern(finder->names, name);
	if (entry->name == NULL)
		return TYPE_INVALID;
	return (int32_t)objects->type_count++;
}

/* The cached index of the type at address, reading it on first sight; TYPE_INVALID when it is
 * not a type object. */
static int32_t type_index(struct finder *finder, uint64_t address, int depth)
{
	if (address == 0 || depth > 4)
		return TYPE_INVALID;
	const struct type_map_entry *seen = type_map_search(&finder->types_seen, address);
	if (seen)
		return seen->value;
	int32_t index = read_type(finder, address, depth);
	/* (read_type may have remembered it already, through a base type: the last word wins) */
	struct type_map_entry *entry = type_map_insert(&finder->types_seen, address, NULL);
	if (entry == NULL)
		return TYPE_INVALID;
	entry->value = index;
	return index;
}

/* ---- objects --------------------------------------------------------------------------------- */

/* Whether the two words at `head` are a GC header: an untracked object's (no next, no previous but
 * flags), or a tracked one's, whose next object's previous link points back at it. In a non-PIE
 * python, pointers to static objects and to the brk heap are small enough to pass for reference
 * counts, and an array of pointers can look like an object; the back link tells them apart. */
static bool gc_header_consistent(struct finder *finder, uint64_t head, uint64_t next, uint64_t prev)
{
	next &= ~(uint64_t)3;
	if (next == 0)
		return prev <= 3;
	uint64_t back;
	return (next & 7) == 0 && next >= 4096 && read_u64(finder->space, next + 8, &back) &&
	       (back & ~(uint64_t)3) == head;
}

/* Under CPython's debug hooks (PYTHONMALLOC=pymalloc_debug or malloc_debug, python -X dev, every
 * debug build) a block starts with a header of 16 bytes: the size asked for (big-endian), the
 * domain's letter ('r', 'm' or 'o') and seven PYMEM_FORBIDDENBYTEs (0xfd); the memory handed out
 * comes after it. A block pymalloc passes on to the raw domain (over 512 bytes) has two, the
 * object domain's inside the raw one's. */
static bool is_debug_header(const uint8_t *bytes)
{
	if (bytes[8] != 'r' && bytes[8] != 'm' && bytes[8] != 'o')
		return false;
	for (int k = 9; k < 16; k++)
		if (bytes[k] != 0xfd)
			return false;
	return true;
}

/* The bytes the debug hooks' headers take at the start of a block: 0, 16 or 32. */
static uint32_t debug_header_bytes(const struct finder *finder, const uint8_t *block, size_t size)
{
	uint32_t bytes = 0;
	while (finder->debug_hooks && bytes < 32 && bytes + 16 <= size && is_debug_header(block + bytes))
		bytes += 16;
	return bytes;
}

/* Whether the process runs under the debug hooks: most of a sample of live blocks start with
 * their header. */
#define DEBUG_HOOKS_SAMPLE 2000
static bool uses_debug_hooks(struct address_space *space, const struct heap *heap)
{
	size_t sampled = 0, marked = 0;
	size_t step = heap->count / DEBUG_HOOKS_SAMPLE + 1;
	for (size_t i = 0; i < heap->count && sampled < DEBUG_HOOKS_SAMPLE; i += step) {
		const struct allocation *allocation = &heap->allocations[i];
		uint8_t head[16];
		if (allocation->state != ALLOCATION_LIVE || allocation->size < 32 ||
		    address_space_read(space, allocation->address, head, sizeof head, NULL) != 0)
			continue;
		sampled++;
		marked += is_debug_header(head);
	}
	return sampled >= 16 && marked * 2 >= sampled;
}

/* Tries the object headers a block can have: none, the GC header, and the GC header after the
 * managed-dict pre-header. */
static void find_object(struct finder *finder, size_t index, const uint8_t *block, size_t size)
{
	uint64_t heap_address = finder->heap->allocations[index].address;
	const struct cpython_layout *layout = finder->layout;
	struct python_objects *objects = finder->objects;
	/* (the bits keep at most 48 bytes of headers) */
	uint32_t debug = debug_header_bytes(finder, block, size);
	for (uint32_t header = debug; header <= debug + 32 && header <= 48 && header + 16 <= size;
	     header += 16) {
		uint64_t refcount = u64_at(block, header), type = u64_at(block, header + 8);
		if (refcount - 1 >= MAX_REFCOUNT || (type & 7) || type < 4096)
			continue;
		int32_t t = type_index(finder, type, 0);
		if (t == TYPE_INVALID)
			continue;
		const struct python_type *python_type = &objects->types[t];
		uint32_t expected = debug +
				    ((python_type->flags & PY_TPFLAGS_HAVE_GC) ? layout->gc_header : 0) +
				    ((python_type->flags & layout->preheader_flags) ? 16 : 0);
		if (expected != header)
			continue;
		uint64_t head = heap_address + header - layout->gc_header;
		if ((python_type->flags & PY_TPFLAGS_HAVE_GC) &&
		    !gc_header_consistent(finder, head, u64_at(block, header - 16),
					  u64_at(block, header - 8)))
			continue;
		/* str's basicsize is that of a non-compact str, bigger than most compact ones */
		if (python_type->kind != PYTHON_STR && header + python_type->basicsize > size)
			continue;
		uint8_t bits = PYOBJ_OBJECT | (uint8_t)(header / 16 << PYOBJ_HEADER_SHIFT);
		/* 3.12+: the low half of the count is negative as an int32 (_Py_IsImmortal) */
		if (layout->minor >= 12 && (int32_t)(uint32_t)refcount < 0) {
			bits |= PYOBJ_IMMORTAL;
			objects->immortal_count++;
		} else if ((python_type->flags & PY_TPFLAGS_HAVE_GC) &&
			   u64_at(block, header - layout->gc_header) != 0) {
			/* (immortal objects the collector tracks sit in its permanent generation,
			   which gc.get_objects() leaves out) */
			bits |= PYOBJ_TRACKED;
			objects->tracked_count++;
		}
		objects->bits[index] = bits;
		objects->type[index] = (uint32_t)t;
		objects->object_count++;
		return;
	}
}

/* Names a block an object points to as part of that object, unless it is an object itself. */
static void own(struct finder *finder, size_t owner, uint64_t pointer)
{
	if (pointer == 0)
		return;
	const struct heap *heap = finder->heap;
	const struct allocation *block = heap_find(heap, pointer);
	if (block == NULL || block->state != ALLOCATION_LIVE)
		return;
	size_t index = (size_t)(block - heap->allocations);
	if (index == owner || finder->objects->bits[index] || finder->names->of[index])
		return;
	struct python_objects *objects = finder->objects;
	void *grown = array_grow(objects->parts, &objects->part_capacity, objects->part_count,
				 sizeof *objects->parts, 1024);
	if (grown == NULL) {
		finder->out_of_memory = true;
		return;
	}
	objects->parts = grown;
	objects->parts[objects->part_count++] = (struct python_part){(uint32_t)owner,
								     (uint32_t)index};
	objects->bits[index] = PYOBJ_OWNED;
	objects->type[index] = objects->type[owner];
}

static int compare_parts(const void *a, const void *b)
{
	const struct python_part *x = a, *y = b;
	if (x->owner != y->owner)
		return x->owner < y->owner ? -1 : 1;
	return (x->part > y->part) - (x->part < y->part);
}

/* Makes the blocks noted since pending[first] their owners' parts. */
static size_t own_pending(struct finder *finder, size_t first)
{
	for (size_t i = first; i < finder->pending_count; i++)
		own(finder, finder->pending[i].owner, finder->pending[i].pointer);
	return finder->pending_count;
}

size_t cpython_first_part(const struct python_objects *objects, size_t owner)
{
	size_t low = 0, high = objects->part_count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (objects->parts[middle].owner < owner)
			low = middle + 1;
		else
			high = middle;
	}
	return low < objects->part_count && objects->parts[low].owner == owner
		       ? low
		       : objects->part_count;
}

/* A word of the object in allocation `index`, `offset` bytes from the object's start (negative:
 * in its headers): from `block`, the first `block_size` bytes of the allocation read already,
 * when it holds it. */
static bool object_word(struct finder *finder, size_t index, const uint8_t *block,
			size_t block_size, int64_t offset, uint64_t *out)
{
	int64_t at = 16 * (int64_t)((finder->objects->bits[index] >> PYOBJ_HEADER_SHIFT) & 3) + offset;
	if (at >= 0 && (uint64_t)at + 8 <= block_size) {
		*out = u64_at(block, (size_t)at);
		return true;
	}
	return read_u64(finder->space, python_object_address(finder->objects, finder->heap, index) +
					       (uint64_t)offset,
			out);
}

/* Notes a block the object in allocation `owner` points to, to be made its part (own) once
 * every object is known. */
static void note_owned(struct finder *finder, size_t owner, uint64_t pointer)
{
	if (pointer == 0)
		return;
	void *grown = array_grow(finder->pending, &finder->pending_capacity, finder->pending_count,
				 sizeof *finder->pending, 4096);
	if (grown == NULL) {
		finder->out_of_memory = true;
		return;
	}
	finder->pending = grown;
	finder->pending[finder->pending_count++] = (struct pending_part){(uint32_t)owner, pointer};
}

struct owned_by {
	struct finder *finder;
	size_t owner;
};

static int note_deque_block(void *context, uint64_t block, uint64_t first, uint64_t end)
{
	struct owned_by *owned = context;
	(void)first, (void)end;
	note_owned(owned->finder, owned->owner, block);
	return 0;
}

static int note_ordered_dict_node(void *context, uint64_t node, uint64_t key)
{
	struct owned_by *owned = context;
	(void)key;
	note_owned(owned->finder, owned->owner, node);
	return 0;
}

/* The blocks a C container owns beyond its built-in kind's: a deque's blocks (those its items
 * are in, and from 3.11 those it keeps for reuse), an OrderedDict's nodes and its array of them. */
static void find_model_owned(struct finder *finder, size_t index, enum python_model model)
{
	const struct cpython_layout *layout = finder->layout;
	uint64_t object = python_object_address(finder->objects, finder->heap, index), word = 0;
	struct owned_by owned = {finder, index};
	if (model == PYTHON_MODEL_DEQUE) {
		cpython_deque_each_block(finder->space, layout, object, note_deque_block, &owned);
		uint64_t spare = 0, blocks[16];
		if (layout->deque_freeblocks &&
		    read_u64(finder->space, object + layout->deque_numfreeblocks, &spare) &&
		    spare <= 16 &&
		    address_space_read(finder->space, object + layout->deque_freeblocks, blocks,
				       (size_t)spare * 8, NULL) == 0)
			for (uint64_t i = 0; i < spare; i++)
				note_owned(finder, index, blocks[i]);
	} else if (model == PYTHON_MODEL_ORDERED_DICT) {
		if (read_u64(finder->space, object + layout->odict_fast_nodes, &word))
			note_owned(finder, index, word);
		cpython_ordered_dict_each_node(finder->space, layout, object,
					       note_ordered_dict_node, &owned);
	}
}

/* The blocks an object owns, by its built-in kind: read from the bytes of it the walk has (most
 * of them), and noted. */
static void find_owned(struct finder *finder, size_t index, const uint8_t *block, size_t size)
{
	const struct cpython_layout *layout = finder->layout;
	const struct python_objects *objects = finder->objects;
	const struct python_type *type = &objects->types[objects->type[index]];
	uint64_t word = 0;
#define WORD(offset, out) object_word(finder, index, block, size, (int64_t)(offset), (out))
	switch (type->kind) {
	case PYTHON_LIST:
		if (WORD(layout->list_items, &word))
			note_owned(finder, index, word);
		break;
	case PYTHON_DICT: {
		uint64_t keys = 0, refcount = 0;
		if (WORD(layout->dict_keys, &keys) && read_u64(finder->space, keys, &refcount) &&
		    refcount == 1)
			note_owned(finder, index, keys); /* not shared with other dicts */
		if (WORD(layout->dict_values, &word))
			note_owned(finder, index, word);
		break;
	}
	case PYTHON_SET: {
		uint64_t object = python_object_address(objects, finder->heap, index);
		if (WORD(layout->set_table, &word) && word != object + layout->set_smalltable)
			note_owned(finder, index, word);
		break;
	}
	case PYTHON_BYTEARRAY:
		if (WORD(layout->bytearray_bytes, &word))
			note_owned(finder, index, word);
		break;
	case PYTHON_CODE:
		/* a dead frame kept for the next call: its stale locals are no references */
		if (layout->code_zombieframe && WORD(layout->code_zombieframe, &word))
			note_owned(finder, index, word);
		break;
	case PYTHON_TYPE: {
		uint64_t flags = 0;
		if (WORD(layout->tp_flags, &flags) && (flags & PY_TPFLAGS_HEAPTYPE) &&
		    WORD(layout->ht_cached_keys, &word))
			note_owned(finder, index, word); /* the keys its instances' dicts share */
		break;
	}
	default:
		break;
	}
	/* an instance's managed dict values (3.11; in 3.12 stored less one, the low bit a tag) */
	if (type->flags & PY_TPFLAGS_MANAGED_DICT) {
		if (layout->managed_values && WORD((int64_t)layout->managed_values, &word))
			note_owned(finder, index, word);
		else if (layout->minor == 12 && WORD((int64_t)layout->managed_dict, &word) &&
			 (word & 1))
			note_owned(finder, index, word + 1);
	}
	if (type->model != PYTHON_MODEL_NONE)
		find_model_owned(finder, index, type->model);
#undef WORD
}

/* Which generation's list each tracked object is in: each list is walked from its head, a link
 * per object (the first word of its block, read during the walk, when the GC header starts it). */
static void find_generations(struct finder *finder)
{
	const struct cpython_layout *layout = finder->layout;
	const struct heap *heap = finder->heap;
	struct python_objects *objects = finder->objects;
	uint64_t state = finder->python->runtime;
	if (!layout->gc_in_runtime &&
	    !read_u64(finder->space, state + layout->runtime_main_interpreter, &state))
		return;
	state += layout->gc_state + layout->gc_generations;
	for (int generation = 0; generation < 3; generation++) {
		uint64_t head = state + (uint64_t)generation * layout->gc_generation_size, at = 0;
		if (!read_u64(finder->space, head, &at))
			continue;
		uint64_t last = head, steps = 0;
		for (; (at & ~3ull) != head && steps <= objects->tracked_count + 16; steps++) {
			at &= ~3ull;
			const struct allocation *block = heap_find(heap, at);
			uint64_t next;
			if (block == NULL) {
				/* an object outside the heap (a static one) */
				if (!read_u64(finder->space, at, &next))
					break;
			} else {
				size_t index = (size_t)(block - heap->allocations);
				if (objects->bits[index] & PYOBJ_OBJECT)
					objects->bits[index] |= (uint8_t)((generation + 1)
									  << PYOBJ_GENERATION_SHIFT);
				if (at == block->address)
					next = block->first_word;
				else if (!read_u64(finder->space, at, &next))
					break;
			}
			last = at;
			at = next;
		}
		if ((at & ~3ull) == head || steps > objects->tracked_count + 16)
			continue;
		/* a broken link: the rest of the list is walked back from its end (the previous
		   links), up to the objects the forward walk marked */
		objects->damage.gc_links++;
		if (last == head)
			warnings_add(finder->warnings,
				     "python: the collector's generation %d list is broken at its head "
				     "(its next link 0x%llx); it is walked back from its end",
				     generation, (unsigned long long)at);
		else
			warnings_add(finder->warnings,
				     "python: the collector's generation %d list is broken after the "
				     "object at 0x%llx (its next link 0x%llx); the rest of it is walked "
				     "back from its end",
				     generation, (unsigned long long)(last + layout->gc_header),
				     (unsigned long long)at);
		if (!read_u64(finder->space, head + 8, &at))
			continue;
		for (steps = 0; (at & ~3ull) != head && steps <= objects->tracked_count + 16;
		     steps++) {
			at &= ~3ull;
			const struct allocation *block = heap_find(heap, at);
			if (block == NULL) {
				if (!read_u64(finder->space, at + 8, &at))
					break;
				continue;
			}
			size_t index = (size_t)(block - heap->allocations);
			if (python_object_generation(objects->bits[index]) >= 0)
				break; /* where the forward walk was */
			if (objects->bits[index] & PYOBJ_OBJECT)
				objects->bits[index] |= (uint8_t)((generation + 1)
								  << PYOBJ_GENERATION_SHIFT);
			if (!read_u64(finder->space, at + 8, &at))
				break;
		}
	}
}

/* ---- damage ---------------------------------------------------------------------------------- */

#define DAMAGE_WARNINGS_MAX 20 /* of each kind; then one "and K more" */
#define MAX_ITEMS (1ull << 28) /* more items than this is a damaged container */

/* Where a reference to an object was found, for the warning when the object is damaged. */
struct referrer {
	const char *container_kind; /* "list" */
	uint64_t container;
	uint64_t item; /* its index, or UINT64_MAX where it has none (a dict's key or value) */
};

static void describe_referrer(const struct referrer *from, char *out, size_t size)
{
	if (from->item != UINT64_MAX)
		snprintf(out, size, "item %llu of the %s at 0x%llx", (unsigned long long)from->item,
			 from->container_kind, (unsigned long long)from->container);
	else
		snprintf(out, size, "in the %s at 0x%llx", from->container_kind,
			 (unsigned long long)from->container);
}

static uint64_t suspect_hash(uint64_t address)
{
	return (address >> 4) * 0x9E3779B97F4A7C15ull >> 32;
}

/* A pointer a container holds as an item: an object. When it points at the start of a heap
 * block (past the headers its type would have) that the walk did not find an object in, the
 * object is damaged: a type pointer that leads to no type leaves it untyped; an impossible
 * reference count or broken collector links are what hid a well-typed object, which is typed
 * after all. Each is warned about once. */
static void check_reference(struct finder *finder, uint64_t pointer, const struct referrer *from)
{
	const struct heap *heap = finder->heap;
	struct python_objects *objects = finder->objects;
	const struct cpython_layout *layout = finder->layout;
	if (pointer == 0 || (pointer & 15) || finder->suspect_count == 0)
		return;
	uint64_t bit = suspect_hash(pointer) & finder->suspect_filter_mask;
	if (!(finder->suspect_filter[bit / 64] >> (bit % 64) & 1))
		return;
	/* the last suspect block at or below the pointer: a search in a table far smaller than
	   the heap's (most items are objects the walk found) */
	size_t low = 0, high = finder->suspect_count;
	while (high - low > 1) {
		size_t middle = low + (high - low) / 2;
		if (finder->suspects[middle].address <= pointer)
			low = middle;
		else
			high = middle;
	}
	struct suspect *suspect = &finder->suspects[low];
	size_t index = suspect->index;
	const struct allocation *block = &heap->allocations[index];
	uint64_t header = pointer - block->address;
	uint8_t start[32];
	uint32_t debug = 0;
	if (finder->debug_hooks && block->size >= 32 &&
	    address_space_read(finder->space, block->address, start, sizeof start, NULL) == 0)
		debug = debug_header_bytes(finder, start, sizeof start);
	if (pointer < block->address || suspect->checked || header > debug + 32 || header > 48 ||
	    header < debug || (header & 15) ||
	    header + 16 > block->size)
		return;
	suspect->checked = true;
	uint64_t words[2];
	if (address_space_read(finder->space, pointer, words, sizeof words, NULL) != 0)
		return;
	uint64_t refcount = words[0], type_pointer = words[1];
	int32_t t = (type_pointer & 7) || type_pointer < 4096 ? TYPE_INVALID
							       : type_index(finder, type_pointer, 0);
	char where[128];
	if (t == TYPE_INVALID) {
		if (++objects->damage.untyped <= DAMAGE_WARNINGS_MAX) {
			describe_referrer(from, where, sizeof where);
			warnings_add(finder->warnings,
				     "python: the object at 0x%llx (%s) has a damaged type pointer "
				     "0x%llx; it is left untyped",
				     (unsigned long long)pointer, where,
				     (unsigned long long)type_pointer);
		}
		return;
	}
	const struct python_type *type = &objects->types[t];
	bool gc = type->flags & PY_TPFLAGS_HAVE_GC;
	uint32_t expected = debug + (gc ? layout->gc_header : 0) +
			    ((type->flags & layout->preheader_flags) ? 16 : 0);
	if (expected != header)
		return; /* not where such an object starts: leave the block as it is */
	uint64_t gc_next = 0, gc_prev = 0;
	bool bad_links = gc && (!read_u64(finder->space, pointer - 16, &gc_next) ||
				!read_u64(finder->space, pointer - 8, &gc_prev) ||
				!gc_header_consistent(finder, pointer - 16, gc_next, gc_prev));
	bool bad_count = refcount - 1 >= MAX_REFCOUNT &&
			 !(layout->minor >= 12 && (int32_t)(uint32_t)refcount < 0);
	if (!bad_links && !bad_count)
		return; /* hidden by something else (its size): not known to be damaged */
	describe_referrer(from, where, sizeof where);
	if (bad_count && ++objects->damage.reference_counts <= DAMAGE_WARNINGS_MAX)
		warnings_add(finder->warnings,
			     "python: the object at 0x%llx (%s) has an impossible reference count "
			     "%llu; it is typed %s from its type pointer",
			     (unsigned long long)pointer, where, (unsigned long long)refcount,
			     type->name);
	if (bad_links && ++objects->damage.gc_links <= DAMAGE_WARNINGS_MAX)
		warnings_add(finder->warnings,
			     "python: the object at 0x%llx (%s) has broken collector links (next "
			     "0x%llx, previous 0x%llx); it is typed %s from its type pointer",
			     (unsigned long long)pointer, where, (unsigned long long)gc_next,
			     (unsigned long long)gc_prev, type->name);
	uint8_t bits = PYOBJ_OBJECT | (uint8_t)(header / 16 << PYOBJ_HEADER_SHIFT);
	if (gc && !bad_links && gc_next != 0) {
		bits |= PYOBJ_TRACKED;
		objects->tracked_count++;
	}
	objects->bits[index] = bits;
	objects->type[index] = (uint32_t)t;
	objects->object_count++;
	void *grown = array_grow(finder->found_late, &finder->found_late_capacity,
				 finder->found_late_count, sizeof *finder->found_late, 64);
	if (grown == NULL) {
		finder->out_of_memory = true;
		return;
	}
	finder->found_late = grown;
	finder->found_late[finder->found_late_count++] = (uint32_t)index;
}

/* Reads a container's words: through the finder's window when it has one (the containers in
 * address order), else from the address space. */
static bool read_container(struct finder *finder, uint64_t address, void *out, size_t size)
{
	if (finder->cursor != NULL) {
		if (finder->region == NULL || address < finder->region->start ||
		    address >= finder->region->end)
			finder->region = snapshot_find_region(address_space_snapshot(finder->space),
							      address);
		const uint8_t *bytes = finder->region ? address_cursor_view(finder->cursor, address,
									    size,
									    finder->region->end)
						      : NULL;
		if (bytes != NULL) {
			memcpy(out, bytes, size);
			return true;
		}
	}
	return address_space_read(finder->space, address, out, size, NULL) == 0;
}

static bool read_container_u64(struct finder *finder, uint64_t address, uint64_t *out)
{
	return read_container(finder, address, out, sizeof *out);
}

/* Counts a container whose tables are impossible; whether it is to be warned about (the first
 * few are). */
static bool count_container_damage(struct finder *finder)
{
	return ++finder->objects->damage.containers <= DAMAGE_WARNINGS_MAX;
}

static int check_dict_entry(void *context, uint64_t key, uint64_t value)
{
	const struct referrer *from = ((void **)context)[1];
	struct finder *finder = ((void **)context)[0];
	check_reference(finder, key, from);
	check_reference(finder, value, from);
	return 0;
}

/* A list's items, as far as its item array can be read and its size is possible. */
static void check_list(struct finder *finder, const struct python_type *type, uint64_t object,
		       struct referrer *from)
{
	const struct cpython_layout *layout = finder->layout;
	uint64_t size = 0, items = 0;
	if (!read_container_u64(finder, object + layout->var_size, &size) ||
	    !read_container_u64(finder, object + layout->list_items, &items) || size == 0)
		return;
	const struct allocation *array = heap_find(finder->heap, items);
	uint64_t room = array ? (array->address + array->size - items) / 8 : size, allocated = 0;
	/* the words past its size but in its array are stale: what it allocated bounds it
	   better than its block */
	if (read_container_u64(finder, object + layout->list_allocated, &allocated) &&
	    allocated < room)
		room = allocated;
	uint64_t walked = size < room ? size : room;
	bool readable = size <= MAX_ITEMS && items != 0 &&
			(array == NULL || array->state == ALLOCATION_LIVE);
	uint64_t *words = readable ? malloc((size_t)walked * 8 + 8) : NULL;
	if (readable && words == NULL) {
		finder->out_of_memory = true;
		return;
	}
	if (!readable ||
	    address_space_read(finder->space, items, words, (size_t)walked * 8, NULL) != 0) {
		free(words);
		if (count_container_damage(finder))
			warnings_add(finder->warnings,
				     "python: the %s at 0x%llx has a damaged item array (0x%llx, %llu "
				     "items) that cannot be read; its items are not walked",
				     type->name, (unsigned long long)object,
				     (unsigned long long)items, (unsigned long long)size);
		return;
	}
	if (walked < size && count_container_damage(finder))
		warnings_add(finder->warnings,
			     "python: the %s at 0x%llx has a damaged size %llu beyond its item "
			     "array (0x%llx, room for %llu); its first %llu items are walked",
			     type->name, (unsigned long long)object, (unsigned long long)size,
			     (unsigned long long)items, (unsigned long long)room,
			     (unsigned long long)walked);
	for (uint64_t i = 0; i < walked; i++) {
		from->item = i;
		check_reference(finder, words[i], from);
	}
	free(words);
}

/* A tuple's items, as many as its block has room for. */
static void check_tuple(struct finder *finder, const struct python_type *type, uint64_t object,
			uint64_t block_end, struct referrer *from)
{
	const struct cpython_layout *layout = finder->layout;
	uint64_t size = 0;
	if (!read_container_u64(finder, object + layout->var_size, &size) || size == 0)
		return;
	uint64_t room = (block_end - object - layout->tuple_items) / 8;
	if (size > room && count_container_damage(finder))
		warnings_add(finder->warnings,
			     "python: the %s at 0x%llx has a damaged size %llu beyond its "
			     "block (room for %llu items); its first %llu are walked",
			     type->name, (unsigned long long)object, (unsigned long long)size,
			     (unsigned long long)room, (unsigned long long)room);
	uint64_t walked = size < room ? size : room, buffer[64];
	/* the items in one read, a buffer at a time */
	for (uint64_t first = 0; first < walked; first += 64) {
		uint64_t count = walked - first < 64 ? walked - first : 64;
		if (!read_container(finder, object + layout->tuple_items + first * 8, buffer,
				    (size_t)count * 8))
			return;
		for (uint64_t i = 0; i < count; i++) {
			from->item = first + i;
			check_reference(finder, buffer[i], from);
		}
	}
}

/* A dict's keys and values, when its keys table can be read. */
static void check_dict(struct finder *finder, const struct python_type *type, uint64_t object,
		       struct referrer *from)
{
	const struct cpython_layout *layout = finder->layout;
	uint64_t keys = 0;
	struct cpython_keys table;
	void *context[2] = {finder, from};
	from->item = UINT64_MAX;
	if (!read_container_u64(finder, object + layout->dict_keys, &keys))
		return;
	if ((!cpython_keys_read(finder->space, layout, keys, &table) ||
	     !cpython_dict_each(finder->space, layout, object, check_dict_entry, context)) &&
	    count_container_damage(finder))
		warnings_add(finder->warnings,
			     "python: the %s at 0x%llx has a damaged keys table 0x%llx; its "
			     "entries are not walked",
			     type->name, (unsigned long long)object, (unsigned long long)keys);
}

/* A set's members, when its table can be read. */
static void check_set(struct finder *finder, const struct python_type *type, uint64_t object,
		      struct referrer *from)
{
	const struct cpython_layout *layout = finder->layout;
	uint64_t mask = 0, entries = 0;
	if (!read_container_u64(finder, object + layout->set_mask, &mask) ||
	    !read_container_u64(finder, object + layout->set_table, &entries))
		return;
	uint64_t *table = mask < MAX_ITEMS ? malloc((size_t)(mask + 1) * 16) : NULL;
	if (table == NULL || address_space_read(finder->space, entries, table,
						(size_t)(mask + 1) * 16, NULL) != 0) {
		free(table);
		if (count_container_damage(finder))
			warnings_add(finder->warnings,
				     "python: the %s at 0x%llx has a damaged table (0x%llx, mask "
				     "%llu); its items are not walked",
				     type->name, (unsigned long long)object,
				     (unsigned long long)entries, (unsigned long long)mask);
		return;
	}
	from->item = UINT64_MAX;
	for (uint64_t i = 0; i <= mask; i++)
		check_reference(finder, table[2 * i], from);
	free(table);
}

/* Checks the items of the list, tuple, dict or set in allocation `index`: the container's
 * tables (warned about when impossible, and walked as far as they can be), and each item. */
static void check_container(struct finder *finder, size_t index)
{
	const struct python_objects *objects = finder->objects;
	const struct heap *heap = finder->heap;
	const struct python_type *type = &objects->types[objects->type[index]];
	uint64_t object = python_object_address(objects, heap, index);
	uint64_t block_end = heap->allocations[index].address + heap->allocations[index].size;
	struct referrer from = {type->name, object, 0};
	switch (type->kind) {
	case PYTHON_LIST:
		check_list(finder, type, object, &from);
		return;
	case PYTHON_TUPLE:
		check_tuple(finder, type, object, block_end, &from);
		return;
	case PYTHON_DICT:
		check_dict(finder, type, object, &from);
		return;
	case PYTHON_SET:
		check_set(finder, type, object, &from);
		return;
	default:
		return;
	}
}

/* Checks every container's items (those of objects found through them too), then says how many
 * more of each kind of damage there was than were warned about. */
static void find_damage(struct finder *finder)
{
	const struct heap *heap = finder->heap;
	struct python_objects *objects = finder->objects;
	size_t capacity = 0;
	for (size_t i = 0; i < heap->count; i++) {
		if (heap->allocations[i].state != ALLOCATION_LIVE || heap->allocations[i].size < 16 ||
		    objects->bits[i] || finder->names->of[i])
			continue;
		void *grown = array_grow(finder->suspects, &capacity, finder->suspect_count,
					 sizeof *finder->suspects, 1024);
		if (grown == NULL) {
			finder->out_of_memory = true;
			free(finder->suspects);
			return;
		}
		finder->suspects = grown;
		finder->suspects[finder->suspect_count++] =
			(struct suspect){heap->allocations[i].address, (uint32_t)i, false};
	}
	/* 16 bits per suspect, at least 64 Ki */
	uint64_t bits = 1u << 16;
	while (bits < finder->suspect_count * 16)
		bits *= 2;
	finder->suspect_filter = calloc((size_t)(bits / 64), 8);
	if (finder->suspect_filter == NULL) {
		finder->out_of_memory = true;
		free(finder->suspects);
		return;
	}
	finder->suspect_filter_mask = bits - 1;
	for (size_t n = 0; n < finder->suspect_count; n++)
		for (uint64_t header = 0; header <= (finder->debug_hooks ? 48u : 32u); header += 16) {
			uint64_t bit = suspect_hash(finder->suspects[n].address + header) & (bits - 1);
			finder->suspect_filter[bit / 64] |= 1ull << (bit % 64);
		}
	/* no block but objects: no item can be a damaged object, and the items are not read */
	struct address_cursor cursor;
	address_cursor_init(&cursor, finder->space);
	finder->cursor = &cursor;
	for (size_t i = 0; finder->suspect_count > 0 && i < heap->count; i++)
		if (objects->bits[i] & PYOBJ_OBJECT)
			check_container(finder, i);
	address_cursor_free(&cursor);
	finder->cursor = NULL; /* the objects found late are in no order */
	for (size_t n = 0; n < finder->found_late_count; n++) {
		size_t index = finder->found_late[n];
		find_owned(finder, index, NULL, 0);
		check_container(finder, index);
	}
	free(finder->suspects);
	free(finder->suspect_filter);
	free(finder->found_late);
	const struct {
		uint64_t count;
		const char *what;
	} kinds[] = {{objects->damage.untyped, "objects with a damaged type pointer"},
		     {objects->damage.containers, "containers with damaged tables"},
		     {objects->damage.reference_counts, "objects with an impossible reference count"},
		     {objects->damage.gc_links, "objects with broken collector links"}};
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
		if (kinds[k].count > DAMAGE_WARNINGS_MAX)
			warnings_add(finder->warnings, "python: and %llu more %s",
				     (unsigned long long)(kinds[k].count - DAMAGE_WARNINGS_MAX),
				     kinds[k].what);
}

int cpython_objects_find(struct python_objects *objects, struct address_space *space,
			 const struct cpython_info *python,
			 const struct heap *heap, struct type_names *names,
			 struct warnings *warnings, struct hs_error *err)
{
	memset(objects, 0, sizeof *objects);
	if (!python->found || !python->has_layout)
		return 0;
	if (python->type_type == 0) {
		warnings_add(warnings, "python: no PyType_Type symbol in %s: objects are not typed",
			     python->module_path);
		return 0;
	}
	objects->type_type = python->type_type;
	objects->bits = calloc(heap->count + 1, 1);
	objects->type = malloc((heap->count + 1) * sizeof *objects->type);
	if (objects->bits == NULL || objects->type == NULL) {
		cpython_objects_free(objects);
		return hs_error_nomem(err, "typing Python objects");
	}
	for (size_t i = 0; i < heap->count; i++)
		objects->type[i] = UINT32_MAX;
	struct finder finder = {.objects = objects, .space = space, .python = python,
				.layout = &python->layout, .heap = heap, .names = names,
				.warnings = warnings};
	finder.debug_hooks = uses_debug_hooks(space, heap);
	struct address_cursor cursor;
	address_cursor_init(&cursor, space);
	struct snapshot *snapshot = address_space_snapshot(space);
	const struct snapshot_region *region = NULL;
	for (size_t i = 0; i < heap->count; i++) {
		const struct allocation *allocation = &heap->allocations[i];
		if (allocation->state != ALLOCATION_LIVE || names->of[i] || allocation->size < 16)
			continue;
		if (region == NULL || allocation->address < region->start ||
		    allocation->address >= region->end)
			region = snapshot_find_region(snapshot, allocation->address);
		/* the headers, and the first members (a list's items, a dict's tables) */
		size_t view = finder.debug_hooks ? 112 : 80;
		size_t size = allocation->size < view ? (size_t)allocation->size : view;
		const uint8_t *block =
			region ? address_cursor_view(&cursor, allocation->address, size, region->end)
			       : NULL;
		if (block) {
			find_object(&finder, i, block, (size_t)allocation->size);
			if (objects->bits[i] & PYOBJ_OBJECT)
				find_owned(&finder, i, block, size);
		}
	}
	address_cursor_free(&cursor);
	/* the parts first: they are no damaged objects, and the search for those is shorter */
	size_t owned = own_pending(&finder, 0);
	/* where a container holds an object the walk did not find, the object is damaged */
	find_damage(&finder);
	if (own_pending(&finder, owned) > owned) /* parts of objects found late, out of order */
		qsort(objects->parts, objects->part_count, sizeof *objects->parts, compare_parts);
	uint32_t *type_ids = calloc(objects->type_count + 1, sizeof *type_ids);
	if (type_ids == NULL)
		finder.out_of_memory = true;
	for (size_t t = 0; type_ids && t < objects->type_count; t++)
		if ((type_ids[t] = types_intern_id(names, objects->types[t].name)) == 0)
			finder.out_of_memory = true;
	for (size_t i = 0; type_ids && i < heap->count; i++)
		if (objects->bits[i] & PYOBJ_OBJECT)
			names->of[i] = type_ids[objects->type[i]];
	free(type_ids);
	for (size_t i = 0; i < objects->part_count; i++)
		names->of[objects->parts[i].part] = names->of[objects->parts[i].owner];
	free(finder.pending);
	find_generations(&finder);
	type_map_free(&finder.types_seen);
	if (names->owned == NULL)
		names->owned = calloc(heap->count + 1, 1);
	if (names->owned == NULL || finder.out_of_memory) {
		cpython_objects_free(objects);
		return hs_error_nomem(err, "typing Python objects");
	}
	for (size_t i = 0; i < heap->count; i++)
		if (objects->bits[i] & PYOBJ_OWNED)
			names->owned[i] = 1;
	return 0;
}

void cpython_objects_free(struct python_objects *objects)
{
	free(objects->bits);
	free(objects->type);
	free(objects->types);
	free(objects->parts);
	memset(objects, 0, sizeof *objects);
}
