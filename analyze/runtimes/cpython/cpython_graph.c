/* CPython's graph model (see cpython_graph.h). */
#include "cpython_graph.h"

#include "analyze/runtimes/cpython/cpython_fields.h"
#include "analyze/runtimes/cpython/cpython_threads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array_grow.h"
#include "common/bytes.h"
#include "common/vector.h"

#define SMALL_DICT 32		/* dicts this small show their keys on edges */
#define MAX_ITEMS (1u << 28)	/* more items than this is a corrupt object */
#define MAX_REFCOUNT (1ull << 40) /* a higher reference count is damaged */
#define MEMBER_OBJECT 6		/* T_OBJECT in a PyMemberDef */
#define MEMBER_OBJECT_EX 16	/* T_OBJECT_EX */
#define MEMBER_DEF_SIZE 40	/* PyMemberDef: name, type, offset, flags, doc */
#define MEMBERS_MAX 64

#define OWN_FIELDS_MAX 8192	/* bytes of a type's own fields read by their labels */
/* a field's label: a reference, but no edge (held_references) */
#define FIELD_HELD (GRAPH_NONE - 1)

/* What is known of each type for its instances' edges, computed on first use. */
struct type_model {
	bool ready;
	uint32_t member_count;
	struct {
		uint32_t offset, label;
	} members[MEMBERS_MAX]; /* T_OBJECT members up the base chain: slots, C members */
	/* per word of its own fields (python_type.own_fields onwards): the label of the reference
	   it may hold (a member's name, else its offset, "+24"), or GRAPH_NONE where it holds none
	   (its dict and weak references, done apart; a borrowed link; what its model reads) */
	uint32_t *field_labels;
	uint32_t field_count;
	uint32_t *key_labels;	/* ".name" of each entry of the type's cached (shared) keys */
	uint32_t key_count;
};

#define OBJECT_HELD 1
#define OBJECT_ROOT_DICT 2

struct cpython_graph {
	struct address_space *space;
	const struct cpython_info *python;
	const struct cpython_layout *layout;
	const struct python_objects *objects;
	const struct heap *heap;
	uint8_t *header_bytes;
	/* per allocation: OBJECT_HELD for each Python object (held through reference counts),
	   OBJECT_ROOT_DICT too for the dicts whose entries are roots (a module's globals, a class's
	   attributes) */
	uint8_t *objects_map;
	/* per allocation: each object's reference count (at most UINT32_MAX), read with its edges,
	   so that nothing reads the objects again for it; then what is left of it once the
	   references found are taken away */
	uint32_t *refcounts;
	struct type_model *types; /* parallel to objects->types */
	uint8_t *bytes;		  /* the object being read */
	size_t bytes_capacity;
	/* the allocation whose edges are being emitted, as the graph read it (NULL: not in one
	   piece): its words are read from here rather than from the snapshot again */
	const uint8_t *block;
	uint64_t block_address, block_size;
	size_t next_part; /* the graph asks for objects in order: where their parts are, onwards */
	struct graph_emitter *emitter;
	struct cpython_fields *fields; /* names of C types' fields (may be NULL) */
	struct python_stack_chunk chunks[256]; /* the threads' frame stacks */
	struct graph_range claimed[256];
	size_t chunk_count;
	/* labels interned once */
	uint32_t item, set_member, dict_label, class_label, table, key, mro, bases, base, storage;
	bool out_of_memory; /* preparing a type's model */
	/* references C structs hold that are no edges (held_edges): the objects they point to */
	uint64_t *held;
	size_t held_count, held_capacity;
};

/* A word at addr: from the allocation being emitted when it holds it, else from the snapshot. */
static bool read_word(struct cpython_graph *model, uint64_t addr, uint64_t *out)
{
	if (model->block && addr >= model->block_address &&
	    addr - model->block_address + 8 <= model->block_size) {
		memcpy(out, model->block + (addr - model->block_address), 8);
		return true;
	}
	return address_space_read_u64(model->space, addr, out);
}

/* Reads size bytes at addr into model->bytes; NULL when unreadable. */
static const uint8_t *read_bytes(struct cpython_graph *model, uint64_t addr, size_t size)
{
	if (size > model->bytes_capacity) {
		void *grown = realloc(model->bytes, size);
		if (grown == NULL)
			return NULL;
		model->bytes = grown;
		model->bytes_capacity = size;
	}
	if (address_space_read(model->space, addr, model->bytes, size, NULL) != 0)
		return NULL;
	return model->bytes;
}

static uint32_t attribute_label(struct graph_emitter *emitter, const char *name)
{
	char text[80];
	snprintf(text, sizeof text, ".%.70s", name);
	return graph_emit_label(emitter, text);
}

/* ---- dicts ----------------------------------------------------------------------------------- */

struct dict_visit {
	struct cpython_graph *model;
	/* AS_ROOT_DICT: a dict whose entries are roots gives its keys, not its values: each value
	   is held by its root, which counts as the reference (the dict's own edge would make every
	   global shared with whatever holds the module, and so retained by no root) */
	enum { AS_ITEMS, AS_ATTRIBUTES, AS_ROOTS, AS_ROOT_DICT } mode;
	bool show_keys;
	const char *root_prefix; /* "module __main__" */
	int result;
};

/* The value of a small int object, for a label; false when not an int that fits. */
static bool read_small_int(struct cpython_graph *model, uint64_t addr, long long *value)
{
	uint64_t words[4];
	if (address_space_read(model->space, addr, words, sizeof words, NULL) != 0)
		return false;
	uint64_t tag = words[2];
	uint32_t digit = (uint32_t)(words[3] & 0x3fffffff);
	long long ndigits, sign;
	if (model->layout->minor >= 12) {
		ndigits = (long long)(tag >> 3);
		sign = (tag & 3) == 2 ? -1 : 1;
	} else {
		ndigits = (long long)tag < 0 ? -(long long)tag : (long long)tag;
		sign = (long long)tag < 0 ? -1 : 1;
	}
	if (ndigits > 1)
		return false;
	*value = ndigits == 0 ? 0 : sign * (long long)digit;
	return true;
}

static int visit_entry(void *context, uint64_t key, uint64_t value)
{
	struct dict_visit *visit = context;
	struct cpython_graph *model = visit->model;
	struct graph_emitter *emitter = model->emitter;
	char name[72], text[192];
	bool named = cpython_str_read(model->space, model->layout, key, name, sizeof name);
	if (visit->mode == AS_ROOTS) {
		if (!named)
			return 0;
		snprintf(text, sizeof text, "%s.%s", visit->root_prefix, name);
		visit->result = graph_emit_root(emitter, ROOT_RUNTIME, text, false) ||
				graph_emit_edge(emitter, value, GRAPH_NONE);
		return visit->result;
	}
	if (visit->mode == AS_ROOT_DICT && named) {
		visit->result = graph_emit_edge(emitter, key, model->key);
		return visit->result;
	}
	uint32_t label = model->item;
	if (visit->mode == AS_ATTRIBUTES && named) {
		label = attribute_label(emitter, name);
	} else if (visit->show_keys) {
		long long number;
		if (named) {
			snprintf(text, sizeof text, "['%s']", name);
			label = graph_emit_label(emitter, text);
		} else if (read_small_int(model, key, &number)) {
			snprintf(text, sizeof text, "[%lld]", number);
			label = graph_emit_label(emitter, text);
		}
	}
	if (visit->mode == AS_ATTRIBUTES) /* the dict holds them: the instance shows them */
		visit->result = graph_emit_view_edge(emitter, value, label);
	else
		visit->result = graph_emit_edge(emitter, key, model->key) ||
				graph_emit_edge(emitter, value, label);
	return visit->result;
}

/* The edges of a dict: its tables, its keys, its values labelled as `mode` says. */
static int dict_edges(struct cpython_graph *model, uint64_t dict, int mode)
{
	const struct cpython_layout *layout = model->layout;
	uint64_t keys = 0, values = 0, entries = 0;
	if (!address_space_read_u64(model->space, dict + layout->dict_keys, &keys) ||
	    !address_space_read_u64(model->space, dict + layout->dict_values, &values))
		return 0;
	address_space_read_u64(model->space, keys + layout->keys_nentries, &entries);
	struct dict_visit visit = {.model = model, .mode = mode, .show_keys = entries <= SMALL_DICT};
	if (graph_emit_edge(model->emitter, keys, model->table) != 0 ||
	    graph_emit_edge(model->emitter, values, model->table) != 0)
		return -1;
	cpython_dict_each(model->space, layout, dict, visit_entry, &visit);
	return visit.result;
}

/* ---- instances ------------------------------------------------------------------------------- */

/* The keys of a dict keys object (a class's shared keys), in entry order, up to max; their
 * number. */
static size_t keys_entry_keys(struct cpython_graph *model, uint64_t keys, uint64_t *out, size_t max)
{
	struct cpython_keys table;
	if (!cpython_keys_read(model->space, model->layout, keys, &table))
		return 0;
	size_t count = 0;
	for (uint64_t i = 0; i < table.count && count < max; i++) {
		uint64_t key = 0;
		address_space_read_u64(model->space,
				       table.entries + i * table.entry_size + table.key_offset, &key);
		out[count++] = key;
	}
	return count;
}

/* The fields of a modelled C type that are not references as they come: borrowed links, and
 * those the model reads itself ([*skip_from, *skip_to)); and those it names. */
struct model_field {
	uint32_t offset;
	const char *label; /* NULL: no reference */
	bool held;	   /* (with no label) a reference, but no edge */
};

static size_t model_fields(const struct cpython_layout *layout, enum python_model python_model,
			   struct model_field *fields, uint64_t *skip_from, uint64_t *skip_to)
{
	*skip_from = *skip_to = 0;
	switch (python_model) {
	case PYTHON_MODEL_DEQUE: /* its length, blocks and indices: its items are read apart */
		*skip_from = layout->var_size;
		*skip_to = layout->deque_size;
		return 0;
	case PYTHON_MODEL_ORDERED_DICT: /* its nodes (its instance dict is its __dict__) */
		*skip_from = layout->odict_first;
		*skip_to = layout->odict_size;
		return 0;
	/* a bounded cache's entries are values of its cache dict and links of a list rooted in the
	   wrapper: the list holds a reference to each (its `next` links; `prev` is borrowed), but
	   the way to an entry is through the cache */
	case PYTHON_MODEL_LRU_CACHE:
		fields[0] = (struct model_field){layout->lru_elem_prev, NULL, false};
		fields[1] = (struct model_field){layout->lru_elem_next, NULL, true};
		fields[2] = (struct model_field){layout->lru_cache, ".cache", false};
		return 3;
	case PYTHON_MODEL_LRU_ELEMENT:
		fields[0] = (struct model_field){layout->lru_elem_prev, NULL, false};
		fields[1] = (struct model_field){layout->lru_elem_next, NULL, true};
		fields[2] = (struct model_field){layout->lru_elem_key, ".key", false};
		fields[3] = (struct model_field){layout->lru_elem_result, ".result", false};
		return 4;
	case PYTHON_MODEL_NONE:
		break;
	}
	return 0;
}

/* The labels of a type's own fields: a C type's struct past its built-in base's, a class's
 * slots; -1 when out of memory. */
static int prepare_own_fields(struct cpython_graph *model, struct type_model *type,
			      const struct python_type *python_type)
{
	uint64_t from = python_type->own_fields, to = python_type->basicsize;
	if (to > from + OWN_FIELDS_MAX)
		to = from + OWN_FIELDS_MAX;
	if (to < from + 8)
		return 0;
	type->field_count = (uint32_t)((to - from) / 8);
	type->field_labels = malloc(type->field_count * sizeof *type->field_labels);
	if (type->field_labels == NULL) {
		type->field_count = 0;
		return -1;
	}
	struct model_field fields[4];
	uint64_t skip_from, skip_to;
	size_t field_count = model_fields(model->layout, python_type->model, fields, &skip_from,
					  &skip_to);
	for (uint32_t i = 0; i < type->field_count; i++) {
		uint64_t at = from + (uint64_t)i * 8;
		uint32_t label = GRAPH_NONE;
		const struct model_field *field = NULL;
		for (size_t f = 0; f < field_count; f++)
			if (fields[f].offset == at)
				field = &fields[f];
		for (uint32_t m = 0; m < type->member_count && label == GRAPH_NONE; m++)
			if (type->members[m].offset == at)
				label = type->members[m].label;
		char text[104];
		const char *name = NULL; /* a label to intern */
		if (at == python_type->weaklistoffset || at == python_type->dictoffset ||
		    (at >= skip_from && at < skip_to)) {
			label = GRAPH_NONE; /* no reference, or one read apart */
		} else if (field) {
			name = field->label;
			label = field->held ? FIELD_HELD : GRAPH_NONE;
		} else if (label == GRAPH_NONE) {
			const char *field_name = cpython_field_name(model->fields, python_type->name,
								    python_type->address, at);
			if (field_name)
				snprintf(text, sizeof text, ".%s", field_name);
			else
				snprintf(text, sizeof text, "+%llu", (unsigned long long)at);
			name = text;
		}
		if (name && (label = graph_emit_label(model->emitter, name)) == GRAPH_NONE)
			return -1;
		type->field_labels[i] = label;
	}
	return 0;
}

/* The T_OBJECT members of a type and its bases (slots, and C members such as a function's
 * __globals__), the labels of its own fields, and the names of its cached keys. */
static void prepare_type(struct cpython_graph *model, uint32_t index)
{
	struct type_model *type = &model->types[index];
	type->ready = true;
	const struct python_type *python_type = &model->objects->types[index];
	const struct cpython_layout *layout = model->layout;
	uint64_t at = python_type->address;
	for (int depth = 0; at != 0 && depth < 32; depth++) {
		uint64_t members = 0, flags = 0, base = 0;
		address_space_read_u64(model->space, at + layout->tp_members, &members);
		address_space_read_u64(model->space, at + layout->tp_flags, &flags);
		address_space_read_u64(model->space, at + layout->tp_base, &base);
		for (int m = 0; members != 0 && m < 256 && type->member_count < MEMBERS_MAX; m++) {
			uint8_t def[MEMBER_DEF_SIZE];
			if (address_space_read(model->space, members + (uint64_t)m * MEMBER_DEF_SIZE, def,
					       sizeof def, NULL) != 0 ||
			    u64_at(def, 0) == 0)
				break;
			int32_t kind;
			memcpy(&kind, def + 8, sizeof kind);
			uint64_t offset = u64_at(def, 16);
			char name[64];
			if ((kind != MEMBER_OBJECT && kind != MEMBER_OBJECT_EX) || offset >= (1u << 20))
				continue;
			/* a C string: read a little and cut at the NUL */
			if (address_space_read(model->space, u64_at(def, 0), name, sizeof name - 1,
					       NULL) != 0)
				continue;
			name[sizeof name - 1] = '\0';
			uint32_t label = attribute_label(model->emitter, name);
			type->members[type->member_count].offset = (uint32_t)offset;
			type->members[type->member_count].label = label;
			type->member_count++;
		}
		if (!(flags & PY_TPFLAGS_HEAPTYPE))
			break;
		at = base;
	}
	if (prepare_own_fields(model, type, python_type) != 0)
		model->out_of_memory = true;
	/* the keys a class's instances share: their values are indexed like these entries */
	uint64_t flags = python_type->flags, keys = 0;
	if ((flags & PY_TPFLAGS_HEAPTYPE) &&
	    address_space_read_u64(model->space, python_type->address + layout->ht_cached_keys,
				   &keys) &&
	    keys != 0) {
		uint64_t nentries = 0;
		address_space_read_u64(model->space, keys + layout->keys_nentries, &nentries);
		if (nentries > 4096)
			return;
		type->key_labels = calloc(nentries + 1, sizeof *type->key_labels);
		uint64_t *names = calloc(nentries + 1, sizeof *names);
		if (type->key_labels == NULL || names == NULL) {
			free(names);
			return;
		}
		size_t count = keys_entry_keys(model, keys, names, nentries);
		for (size_t i = 0; i < nentries; i++) {
			char name[72];
			type->key_labels[i] = model->item;
			if (i < count &&
			    cpython_str_read(model->space, layout, names[i], name, sizeof name))
				type->key_labels[i] = attribute_label(model->emitter, name);
		}
		free(names);
		type->key_count = (uint32_t)nentries;
	}
}

/* Values kept apart from a dict, indexed like the type's cached keys. */
static int values_edges(struct cpython_graph *model, const struct type_model *type,
			uint64_t values, uint64_t count)
{
	if (count > type->key_count)
		count = type->key_count;
	uint64_t chunk[64];
	for (uint64_t first = 0; first < count; first += 64) {
		size_t take = count - first < 64 ? (size_t)(count - first) : 64;
		if (address_space_read(model->space, values + first * 8, chunk, take * 8, NULL) != 0)
			return 0;
		for (size_t i = 0; i < take; i++)
			if (chunk[i] != 0 &&
			    graph_emit_edge(model->emitter, chunk[i], type->key_labels[first + i]) != 0)
				return -1;
	}
	return 0;
}

/* The attributes of an instance, wherever this version keeps them. */
static int attribute_edges(struct cpython_graph *model, uint32_t type_index, uint64_t object)
{
	const struct python_type *python_type = &model->objects->types[type_index];
	const struct type_model *type = &model->types[type_index];
	const struct cpython_layout *layout = model->layout;
	struct graph_emitter *emitter = model->emitter;
	uint64_t word = 0;
	if ((python_type->flags & PY_TPFLAGS_MANAGED_DICT) && layout->managed_dict) {
		uint64_t at = object + (uint64_t)(int64_t)layout->managed_dict;
		if (!read_word(model, at, &word))
			return 0;
		if (layout->minor == 12 && (word & 1)) {
			/* 3.12: the values, less one (the low bit tags them), no dict made yet */
			return graph_emit_edge(emitter, word + 1, model->table) ||
			       values_edges(model, type, word + 1, type->key_count);
		}
		if (word != 0 && (graph_emit_edge(emitter, word, model->dict_label) != 0 ||
				  dict_edges(model, word, AS_ATTRIBUTES) != 0))
			return -1;
		if (layout->managed_values &&
		    read_word(model, object + (uint64_t)(int64_t)layout->managed_values, &word) &&
		    word != 0)
			return graph_emit_edge(emitter, word, model->table) ||
			       values_edges(model, type, word, type->key_count);
		if (python_type->flags & PY_TPFLAGS_INLINE_VALUES) {
			/* 3.13: values inline after the object, valid while no dict took them */
			uint8_t header[8];
			uint64_t values = object + python_type->basicsize;
			if (address_space_read(model->space, values, header, sizeof header, NULL) == 0 &&
			    header[3] != 0)
				return values_edges(model, type, values + layout->values_array,
						    header[0]);
		}
		return 0;
	}
	int64_t dictoffset = (int64_t)python_type->dictoffset;
	if (dictoffset < 0) {
		/* after the items of a variable-size object (a subclass of int, tuple or bytes):
		   counted back from its end, as _PyObject_GetDictPtr does */
		uint64_t items = 0;
		if (!read_word(model, object + layout->var_size, &items))
			return 0;
		if (python_type->kind == PYTHON_INT && layout->minor >= 12)
			items >>= 3; /* 3.12: lv_tag, the digits' count shifted past the sign */
		else if ((int64_t)items < 0)
			items = (uint64_t)(-(int64_t)items);
		uint64_t end = (python_type->basicsize + items * python_type->itemsize + 7) & ~7ull;
		dictoffset += (int64_t)end;
	}
	if (dictoffset > 0 && read_word(model, object + (uint64_t)dictoffset, &word) &&
	    word != 0)
		return graph_emit_edge(emitter, word, model->dict_label) ||
		       dict_edges(model, word, AS_ATTRIBUTES);
	return 0;
}

/* A word of an object scanned without a model: labelled by the member it is, if one is known. */
static int scan_object(struct cpython_graph *model, const struct type_model *type,
		       const struct python_type *python_type, const uint8_t *bytes, size_t size,
		       uint64_t header, size_t from)
{
	for (size_t at = from; at + 8 <= size; at += 8) {
		if (at == python_type->weaklistoffset ||
		    (python_type->dictoffset > 0 && at == python_type->dictoffset))
			continue; /* weak references are not references; the dict is done apart */
		uint32_t label = GRAPH_NONE;
		for (uint32_t m = 0; m < type->member_count; m++)
			if (type->members[m].offset == at)
				label = type->members[m].label;
		uint64_t word = u64_at(bytes, at);
		if (label != GRAPH_NONE) {
			if (graph_emit_edge(model->emitter, word, label) != 0)
				return -1;
		} else if (graph_emit_scan(model->emitter, bytes + at, 8, header + at, GRAPH_NONE) !=
			   0) {
			return -1;
		}
	}
	return 0;
}

/* ---- C types --------------------------------------------------------------------------------- */

struct container_items {
	struct cpython_graph *model;
	int result;
};

static int deque_items(void *context, uint64_t block, uint64_t first, uint64_t end)
{
	struct container_items *items = context;
	struct cpython_graph *model = items->model;
	uint64_t words[64];
	if (end > first + 64)
		end = first + 64;
	if (end <= first ||
	    address_space_read(model->space, block + model->layout->block_data + first * 8, words,
			       (size_t)(end - first) * 8, NULL) != 0)
		return 0;
	items->result = graph_emit_scan(model->emitter, (const uint8_t *)words,
					(size_t)(end - first) * 8, 0, model->item);
	return items->result;
}

static int ordered_dict_key(void *context, uint64_t node, uint64_t key)
{
	struct container_items *items = context;
	(void)node;
	items->result = graph_emit_edge(items->model->emitter, key, items->model->key);
	return items->result;
}

/* The references in an object's own fields (a C type's struct past its built-in base's, a class's
 * slots), in its members elsewhere, in the items of a C type of variable size, and in what a C
 * container's model reads: a deque's items (`[*]`), an OrderedDict's nodes' keys. */
static int own_edges(struct cpython_graph *model, const struct type_model *type,
		     const struct python_type *python_type, uint64_t object, const uint8_t *bytes,
		     size_t size, uint64_t header)
{
	struct graph_emitter *emitter = model->emitter;
	const struct cpython_layout *layout = model->layout;
	uint64_t from = python_type->own_fields, word = 0;
	uint64_t labelled = from + (uint64_t)type->field_count * 8;
	/* past what has labels (a struct of more than OWN_FIELDS_MAX bytes), as it comes */
	uint64_t rest = python_type->basicsize < size ? python_type->basicsize : size;
	if (type->field_count && rest > labelled &&
	    graph_emit_scan(emitter, bytes + labelled, (size_t)(rest - labelled), header + labelled,
			    GRAPH_NONE) != 0)
		return -1;
	for (uint32_t i = 0; i < type->field_count; i++) {
		uint64_t at = from + (uint64_t)i * 8;
		if (type->field_labels[i] == GRAPH_NONE)
			continue;
		if (at + 8 <= size)
			word = u64_at(bytes, (size_t)at);
		else if (!read_word(model, object + at, &word))
			continue;
		if (type->field_labels[i] == FIELD_HELD) {
			if (word == 0)
				continue;
			void *grown = array_grow(model->held, &model->held_capacity,
						 model->held_count, sizeof *model->held, 256);
			if (grown == NULL)
				return -1;
			model->held = grown;
			model->held[model->held_count++] = word;
		} else if (graph_emit_edge(emitter, word, type->field_labels[i]) != 0) {
			return -1;
		}
	}
	/* members past them: a struct sequence's fields past its items (those before are edges of
	   its tuple already, as those in its built-in base's struct are of the base's kind) */
	int64_t items = size >= layout->var_size + 8 ? (int64_t)u64_at(bytes, layout->var_size) : 0;
	uint64_t count = items < 0 ? 0 - (uint64_t)items : (uint64_t)items;
	uint64_t items_to = python_type->kind == PYTHON_TUPLE && count < size / 8
				    ? layout->tuple_items + count * 8
				    : 0;
	for (uint32_t m = 0; m < type->member_count; m++) {
		uint64_t at = type->members[m].offset;
		if (at < labelled || at < items_to)
			continue;
		if (read_word(model, object + at, &word) &&
		    graph_emit_edge(emitter, word, type->members[m].label) != 0)
			return -1;
	}
	/* pointer-sized items of a C type with no model of them (a 3.8-3.10 frame's locals) */
	if (!python_kind_reads_struct(python_type->kind) && python_type->itemsize == 8 &&
	    python_type->basicsize < size) {
		uint64_t end = count < size / 8 ? python_type->basicsize + count * 8 : size;
		if (end > size)
			end = size;
		if (end > python_type->basicsize &&
		    graph_emit_scan(emitter, bytes + python_type->basicsize,
				    (size_t)(end - python_type->basicsize), 0, model->item) != 0)
			return -1;
	}
	struct container_items each = {model, 0};
	if (python_type->model == PYTHON_MODEL_DEQUE)
		cpython_deque_each_block(model->space, layout, object, deque_items, &each);
	else if (python_type->model == PYTHON_MODEL_ORDERED_DICT)
		cpython_ordered_dict_each_node(model->space, layout, object, ordered_dict_key,
					       &each);
	return each.result;
}

/* ---- per object ------------------------------------------------------------------------------ */

static int object_edges_of_kind(void *context, size_t index, const uint8_t *block,
				struct graph_emitter *emitter);

/* An object's edges, and one to each block it owns (its list items, its dict's tables): a view,
 * as no reference count counts it, so the block is reached through its owner and counts in what
 * the owner retains. */
static int object_edges(void *context, size_t index, const uint8_t *block,
			struct graph_emitter *emitter)
{
	struct cpython_graph *model = context;
	const struct python_objects *objects = model->objects;
	int result = object_edges_of_kind(context, index, block, emitter);
	model->block = NULL; /* valid only while the graph emits this allocation */
	if (result < 0 || !(objects->bits[index] & PYOBJ_OBJECT))
		return result;
	/* parts are sorted by owner, and the graph goes through the allocations in order: the
	   first part of this one is at or after where the last one's ended */
	size_t i = model->next_part;
	if (i > 0 && objects->parts[i - 1].owner >= index) {
		i = cpython_first_part(objects, index); /* asked out of order */
	} else {
		while (i < objects->part_count && objects->parts[i].owner < index)
			i++;
	}
	for (; i < objects->part_count && objects->parts[i].owner == index; i++)
		if (graph_emit_view_edge(emitter,
					 model->heap->allocations[objects->parts[i].part].address,
					 model->storage) != 0)
			return -1;
	model->next_part = i;
	return result;
}

/* A list's item array, a table of it (a part of the list), and its items. */
static int list_edges(struct cpython_graph *model, const uint8_t *bytes)
{
	const struct cpython_layout *layout = model->layout;
	uint64_t count = u64_at(bytes, layout->var_size);
	uint64_t array_address = u64_at(bytes, layout->list_items);
	/* a damaged size (warned about): as many items as its array holds and it allocated */
	const struct allocation *array = heap_find(model->heap, array_address);
	uint64_t allocated = u64_at(bytes, layout->list_allocated);
	if (array && count > (array->address + array->size - array_address) / 8)
		count = allocated < (array->address + array->size - array_address) / 8
				? allocated
				: (array->address + array->size - array_address) / 8;
	if (count > MAX_ITEMS || array_address == 0)
		return 0;
	int result = graph_emit_edge(model->emitter, array_address, model->table);
	const uint8_t *items = read_bytes(model, array_address, (size_t)count * 8);
	if (result == 0 && items)
		result = graph_emit_scan(model->emitter, items, (size_t)count * 8, 0, model->item);
	return result;
}

/* A set's table (a part of it unless it is the small table inside the set) and its members. */
static int set_edges(struct cpython_graph *model, uint64_t object, const uint8_t *bytes)
{
	const struct cpython_layout *layout = model->layout;
	uint64_t mask = u64_at(bytes, layout->set_mask);
	uint64_t table_address = u64_at(bytes, layout->set_table);
	if (mask >= MAX_ITEMS)
		return 0;
	int result = 0;
	if (table_address != object + layout->set_smalltable)
		result = graph_emit_edge(model->emitter, table_address, model->table);
	const uint8_t *table = read_bytes(model, table_address, (size_t)(mask + 1) * 16);
	for (uint64_t i = 0; result == 0 && table && i <= mask; i++)
		result = graph_emit_edge(model->emitter, u64_at(table, (size_t)i * 16),
					 model->set_member);
	return result;
}

/* A class: its namespace, its bases and MRO by name, the rest as it comes; and the attribute
 * names its instances share (the keys it caches are a part of it). */
static int class_edges(struct cpython_graph *model, const uint8_t *bytes, size_t size,
		       uint64_t header)
{
	struct graph_emitter *emitter = model->emitter;
	const struct cpython_layout *layout = model->layout;
	int result = 0;
	for (size_t at = 16; result == 0 && at + 8 <= size; at += 8) {
		uint32_t label = at == layout->tp_dict	 ? model->dict_label
				 : at == layout->tp_mro	 ? model->mro
				 : at == layout->tp_bases ? model->bases
				 : at == layout->tp_base	 ? model->base
							 : GRAPH_NONE;
		result = label != GRAPH_NONE ? graph_emit_edge(emitter, u64_at(bytes, at), label)
					     : graph_emit_scan(emitter, bytes + at, 8, header + at,
							       GRAPH_NONE);
	}
	uint64_t flags = u64_at(bytes, layout->tp_flags), keys = 0;
	if (result == 0 && (flags & PY_TPFLAGS_HEAPTYPE) && layout->ht_cached_keys + 8 <= size &&
	    (keys = u64_at(bytes, layout->ht_cached_keys)) != 0) {
		uint64_t names[256];
		size_t count = keys_entry_keys(model, keys, names, 256);
		for (size_t k = 0; result == 0 && k < count; k++)
			result = graph_emit_edge(emitter, names[k], model->key);
	}
	return result;
}

/* Keeps an object's reference count: what the graph's roots are inferred from (references
 * from outside the heap). */
static void keep_refcount(struct cpython_graph *model, size_t index, const uint8_t *bytes)
{
	uint64_t refcount = u64_at(bytes, 0);
	if (model->layout->minor >= 12)
		refcount &= 0xffffffffu; /* the low half; the high one flags immortality */
	if (refcount >= MAX_REFCOUNT)
		refcount = 0; /* damaged (warned about): no sign of references from outside */
	model->refcounts[index] = refcount > UINT32_MAX ? UINT32_MAX : (uint32_t)refcount;
}

static int object_edges_of_kind(void *context, size_t index, const uint8_t *block,
				struct graph_emitter *emitter)
{
	struct cpython_graph *model = context;
	const struct python_objects *objects = model->objects;
	uint8_t bits = objects->bits[index];
	if (bits & PYOBJ_OWNED)
		return 1; /* its contents are its owner's edges */
	if (!(bits & PYOBJ_OBJECT))
		return 0;
	model->emitter = emitter;
	const struct cpython_layout *layout = model->layout;
	const struct allocation *allocation = &model->heap->allocations[index];
	uint64_t object = python_object_address(objects, model->heap, index);
	uint64_t header = object - allocation->address;
	uint32_t type_index = objects->type[index];
	const struct python_type *python_type = &objects->types[type_index];
	struct type_model *type = &model->types[type_index];
	if (!type->ready)
		prepare_type(model, type_index);
	size_t size = (size_t)(allocation->size - header);
	model->block = block;
	model->block_address = allocation->address;
	model->block_size = allocation->size;
	const uint8_t *bytes = block ? block + header : read_bytes(model, object, size);
	if (bytes == NULL)
		return 1;
	keep_refcount(model, index, bytes);
	uint64_t count = 0, word = 0;
	int result = 0;
	if (python_type->flags & PY_TPFLAGS_HEAPTYPE)
		result = graph_emit_edge(emitter, u64_at(bytes, 8), model->class_label);
	switch (python_type->kind) {
	case PYTHON_LIST:
		if (result == 0)
			result = list_edges(model, bytes);
		break;
	case PYTHON_TUPLE:
		count = u64_at(bytes, layout->var_size);
		if (result == 0 && layout->tuple_items + count * 8 <= size)
			result = graph_emit_scan(emitter, bytes + layout->tuple_items,
						 (size_t)count * 8, 0, model->item);
		break;
	case PYTHON_DICT:
		if (result == 0)
			result = dict_edges(model, object,
					    model->objects_map[index] & OBJECT_ROOT_DICT ? AS_ROOT_DICT
											 : AS_ITEMS);
		break;
	case PYTHON_SET:
		if (result == 0)
			result = set_edges(model, object, bytes);
		break;
	case PYTHON_MODULE:
		/* its namespace by name; its state (an extension's own objects) as it comes */
		if (result == 0)
			result = graph_emit_edge(emitter, u64_at(bytes, 16), model->dict_label);
		if (result == 0 && size > 24)
			result = scan_object(model, type, python_type, bytes, size, header, 24);
		break;
	case PYTHON_WEAKREF:
		/* PyWeakReference: the referent (16) is weak, the list links (40, 48) borrowed;
		   only the callback (24) is held */
		if (result == 0 && size >= 32)
			result = graph_emit_edge(emitter, u64_at(bytes, 24), GRAPH_NONE);
		break;
	case PYTHON_TYPE:
		if (result == 0)
			result = class_edges(model, bytes, size, header);
		return result < 0 ? -1 : 1;
	case PYTHON_STR:
	case PYTHON_BYTES:
	case PYTHON_INT:
	case PYTHON_BYTEARRAY:
		break; /* no references (a bytearray's buffer is a part of it) */
	default:
		break;
	}
	if (result == 0 && python_type->kind != PYTHON_MODULE) {
		/* its own fields and attributes: a subclass of a built-in container has them too */
		const uint8_t *own = block ? block + header : read_bytes(model, object, size);
		if (own)
			result = own_edges(model, type, python_type, object, own, size, header);
		if (result == 0)
			result = attribute_edges(model, type_index, object);
	}
	if (model->out_of_memory)
		return -1;
	/* the blocks it owns, which have no edges of their own */
	if (result == 0 && (python_type->flags & PY_TPFLAGS_MANAGED_DICT) && layout->managed_values &&
	    read_word(model, object + (uint64_t)(int64_t)layout->managed_values, &word))
		result = graph_emit_edge(emitter, word, model->table);
	return result < 0 ? -1 : 1;
}

/* ---- roots ----------------------------------------------------------------------------------- */

struct find_name {
	struct cpython_graph *model;
	char *name;
	size_t size;
};

static int match_name(void *context, uint64_t key, uint64_t value)
{
	struct find_name *find = context;
	char key_name[16];
	if (cpython_str_read(find->model->space, find->model->layout, key, key_name,
			     sizeof key_name) &&
	    strcmp(key_name, "__name__") == 0) {
		cpython_str_read(find->model->space, find->model->layout, value, find->name,
				 find->size);
		return 1;
	}
	return 0;
}

struct frame_roots {
	struct cpython_graph *model;
	int result;
};

/* A frame's local (or a value on its stack) as a root: "thread 4242 frame serve() local conn". */
static int frame_root(void *context, const struct python_frame_value *value)
{
	struct frame_roots *roots = context;
	char name[192], thread[32];
	if (value->tid)
		snprintf(thread, sizeof thread, "thread %d", value->tid);
	else
		snprintf(thread, sizeof thread, "a thread");
	if (value->local)
		snprintf(name, sizeof name, "%s frame %s() local %s", thread, value->function,
			 value->local);
	else
		snprintf(name, sizeof name, "%s frame %s() stack", thread, value->function);
	struct graph_emitter *emitter = roots->model->emitter;
	/* up to 3.10 the frame object holds its locals; from 3.11 only the frame record does */
	bool view = roots->model->layout->minor <= 10;
	if (graph_emit_root(emitter, ROOT_RUNTIME, name, view) != 0 ||
	    graph_emit_edge(emitter, value->value, GRAPH_NONE) != 0)
		return -1;
	return 0;
}

/* Whether allocation i is an object whose dict's entries are roots: a module (its globals), or
 * a class with instances (its attributes; a class without is reached through it). Gives the
 * dict and, when `prefix` is not NULL, the roots' prefix ("module __main__"). */
static bool root_dict(struct cpython_graph *model, size_t i, uint64_t *dict, char *prefix,
		      size_t prefix_size)
{
	const struct python_objects *objects = model->objects;
	const struct cpython_layout *layout = model->layout;
	if (!(objects->bits[i] & PYOBJ_OBJECT))
		return false;
	const struct python_type *type = &objects->types[objects->type[i]];
	uint64_t object = python_object_address(objects, model->heap, i), flags = 0;
	*dict = 0;
	if (type->kind == PYTHON_MODULE) {
		if (!address_space_read_u64(model->space, object + 16, dict) || *dict == 0)
			return false;
		if (prefix) {
			char name[128];
			struct find_name find = {model, name, sizeof name};
			name[0] = '\0';
			cpython_dict_each(model->space, layout, *dict, match_name, &find);
			snprintf(prefix, prefix_size, "module %s", name[0] ? name : "?");
		}
		return true;
	}
	if (type->kind != PYTHON_TYPE ||
	    !address_space_read_u64(model->space, object + layout->tp_flags, &flags) ||
	    !(flags & PY_TPFLAGS_HEAPTYPE) ||
	    !address_space_read_u64(model->space, object + layout->tp_dict, dict) || *dict == 0)
		return false;
	/* the class's own name, as its instances are named */
	const char *class_name = NULL;
	for (size_t t = 0; t < objects->type_count && !class_name; t++)
		if (objects->types[t].address == object)
			class_name = objects->types[t].name;
	if (class_name == NULL)
		return false;
	if (prefix)
		snprintf(prefix, prefix_size, "class %s", class_name);
	return true;
}

static int python_roots(void *context, struct graph_emitter *emitter)
{
	struct cpython_graph *model = context;
	model->emitter = emitter;
	const struct python_objects *objects = model->objects;
	const struct cpython_layout *layout = model->layout;
	const struct heap *heap = model->heap;
	char prefix[160];
	/* module globals and class attributes */
	for (size_t i = 0; i < heap->count; i++) {
		uint64_t dict;
		if (!root_dict(model, i, &dict, prefix, sizeof prefix))
			continue;
		struct dict_visit visit = {.model = model, .mode = AS_ROOTS, .root_prefix = prefix};
		cpython_dict_each(model->space, layout, dict, visit_entry, &visit);
		if (visit.result != 0)
			return -1;
	}
	struct frame_roots frames = {model, 0};
	if (cpython_threads_walk(model->space, model->python, frame_root, &frames, NULL, 0, NULL) <
	    0)
		return -1;
	if (objects->immortal_count) {
		if (graph_emit_root(emitter, ROOT_RUNTIME, "immortal objects", true) != 0)
			return -1;
		for (size_t i = 0; i < heap->count; i++)
			if ((objects->bits[i] & PYOBJ_IMMORTAL) &&
			    graph_emit_edge(emitter, python_object_address(objects, heap, i),
					    GRAPH_NONE) != 0)
				return -1;
	}
	return 0;
}

/* ---- external references --------------------------------------------------------------------- */

struct external {
	uint32_t type;
	uint64_t object;
};
DEFINE_VECTOR(external_vector, struct external)

static int compare_externals(const void *left, const void *right)
{
	const struct external *a = left, *b = right;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	return a->object < b->object ? -1 : a->object > b->object;
}

/* Takes from what is left of reference counts the references C structs hold that are no edges
 * (a bounded lru_cache's list links): those that point at an object's start. */
static void held_references(struct cpython_graph *model)
{
	const struct heap *heap = model->heap;
	for (size_t i = 0; i < model->held_count; i++) {
		const struct allocation *allocation = heap_find(heap, model->held[i]);
		if (allocation == NULL)
			continue;
		size_t index = (size_t)(allocation - heap->allocations);
		if ((model->objects->bits[index] & PYOBJ_OBJECT) &&
		    python_object_address(model->objects, heap, index) == model->held[i] &&
		    model->refcounts[index] > 0)
			model->refcounts[index]--;
	}
}

/* Objects whose reference count is above the references found to them are held from outside
 * what heapsnap reads: by C code (an extension's static, a C local heapsnap could not see) or by a
 * reference an extension leaked. They are roots, as the cyclic collector takes them to be; one
 * root per type, "external references to T". */
static int external_roots(void *context, struct graph_emitter *emitter)
{
	struct cpython_graph *model = context;
	model->emitter = emitter;
	const struct python_objects *objects = model->objects;
	const struct heap *heap = model->heap;
	struct external_vector found = {0};
	int result = 0;
	graph_emit_references_left(emitter, model->refcounts);
	held_references(model);
	for (size_t i = 0; i < heap->count && result == 0; i++) {
		uint8_t bits = objects->bits[i];
		if (!(bits & PYOBJ_OBJECT) || (bits & PYOBJ_IMMORTAL) || model->refcounts[i] == 0 ||
		    graph_emit_node_of(emitter, i) == GRAPH_NONE)
			continue;
		if (!external_vector_push(&found, &(struct external){
				objects->type[i], python_object_address(objects, heap, i)})) {
			result = -1;
			break;
		}
	}
	struct external *externals = found.data;
	size_t count = found.size;
	if (count)
		qsort(externals, count, sizeof *externals, compare_externals);
	char name[192];
	for (size_t i = 0; i < count && result == 0; i++) {
		if (i == 0 || externals[i].type != externals[i - 1].type) {
			snprintf(name, sizeof name, "external references to %s",
				 objects->types[externals[i].type].name);
			result = graph_emit_root(emitter, ROOT_RUNTIME, name, true);
		}
		if (result == 0)
			result = graph_emit_edge(emitter, externals[i].object, GRAPH_NONE);
	}
	external_vector_free(&found);
	return result;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int cpython_graph_prepare(void *context, struct graph_emitter *emitter)
{
	struct cpython_graph *model = context;
	struct {
		uint32_t *label;
		const char *text;
	} labels[] = {{&model->item, "[*]"},	       {&model->set_member, "{*}"},
		      {&model->dict_label, ".__dict__"}, {&model->class_label, ".__class__"},
		      {&model->table, "(table)"},      {&model->key, "(key)"},
		      {&model->mro, ".__mro__"},       {&model->bases, ".__bases__"},
		      {&model->base, ".__base__"},    {&model->storage, "(storage)"}};
	for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
		if ((*labels[i].label = graph_emit_label(emitter, labels[i].text)) == GRAPH_NONE)
			return -1;
	return 0;
}

struct cpython_graph *cpython_graph_new(struct address_space *space,
					const struct cpython_info *python,
					const struct python_objects *objects, const struct heap *heap,
					struct cpython_fields *fields, struct graph_model *model)
{
	struct cpython_graph *graph = calloc(1, sizeof *graph);
	if (graph == NULL) {
		cpython_fields_free(fields);
		return NULL;
	}
	graph->fields = fields;
	graph->space = space;
	graph->python = python;
	graph->layout = &python->layout;
	graph->objects = objects;
	graph->heap = heap;
	graph->header_bytes = calloc(heap->count + 1, 1);
	graph->objects_map = calloc(heap->count + 1, 1);
	graph->refcounts = calloc(heap->count + 1, sizeof *graph->refcounts);
	graph->types = calloc(objects->type_count + 1, sizeof *graph->types);
	if (graph->header_bytes == NULL || graph->objects_map == NULL || graph->refcounts == NULL ||
	    graph->types == NULL) {
		cpython_graph_free(graph);
		return NULL;
	}
	for (size_t i = 0; i < heap->count; i++)
		graph->objects_map[i] = (objects->bits[i] & PYOBJ_OBJECT)  ? OBJECT_HELD
					: (objects->bits[i] & PYOBJ_OWNED) ? GRAPH_RUNTIME_PART
									   : 0;
	for (size_t i = 0; i < heap->count; i++) {
		uint64_t dict;
		if (!root_dict(graph, i, &dict, NULL, 0))
			continue;
		const struct allocation *holder = heap_find(heap, dict);
		size_t index = holder ? (size_t)(holder - heap->allocations) : 0;
		if (holder && (objects->bits[index] & PYOBJ_OBJECT) &&
		    python_object_address(objects, heap, index) == dict)
			graph->objects_map[index] |= OBJECT_ROOT_DICT;
	}
	for (size_t i = 0; i < heap->count; i++)
		if (objects->bits[i] & PYOBJ_OBJECT)
			graph->header_bytes[i] = (uint8_t)(16 * (objects->bits[i] >> PYOBJ_HEADER_SHIFT & 3));
	cpython_threads_walk(space, python, NULL, NULL, graph->chunks,
			     sizeof graph->chunks / sizeof graph->chunks[0], &graph->chunk_count);
	for (size_t i = 0; i < graph->chunk_count; i++)
		graph->claimed[i] = (struct graph_range){graph->chunks[i].start, graph->chunks[i].end};
	*model = (struct graph_model){.context = graph, .header_bytes = graph->header_bytes,
				      .not_from_memory_roots = graph->objects_map,
				      .edges = object_edges, .roots = python_roots,
				      .late_roots = external_roots,
				      .prepare = cpython_graph_prepare, .claimed = graph->claimed,
				      .claimed_count = graph->chunk_count};
	return graph;
}

void cpython_graph_free(struct cpython_graph *graph)
{
	if (graph == NULL)
		return;
	cpython_fields_free(graph->fields);
	for (size_t i = 0; graph->types && i < graph->objects->type_count; i++) {
		free(graph->types[i].key_labels);
		free(graph->types[i].field_labels);
	}
	free(graph->types);
	free(graph->header_bytes);
	free(graph->objects_map);
	free(graph->refcounts);
	free(graph->held);
	free(graph->bytes);
	free(graph);
}
