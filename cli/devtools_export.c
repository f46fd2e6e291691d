/* The DevTools heap snapshot writer (see devtools_export.h). The format's rules, as DevTools'
 * HeapSnapshotLoader and memlab's parser read it: every number in "nodes" and "edges" is an
 * unsigned 32-bit integer; a node is NODE_FIELDS numbers, its edges follow those of the nodes
 * before it, and an edge's to_node is its target's ordinal times NODE_FIELDS; element edges
 * carry an index, the others a string's number; "strings" comes last. memlab scans the arrays
 * with a parser that skips only spaces and newlines, so nothing else separates the numbers. */
#include "cli/devtools_export.h"

#include <stdlib.h>
#include <string.h>

#include "analyze/graph/paths.h"
#include "common/hash_map.h"
#include "common/string_table.h"
#include "formats/json.h"

enum { NODE_FIELDS = 6, EDGE_FIELDS = 3 };
/* positions in meta's node_types[0] and edge_types[0] below */
enum { NODE_ARRAY = 1, NODE_OBJECT = 3, NODE_NATIVE = 8, NODE_SYNTHETIC = 9 };
enum { EDGE_ELEMENT = 1, EDGE_PROPERTY = 2, EDGE_INTERNAL = 3 };

static const char meta[] =
	"{\"snapshot\":{\"meta\":{"
	"\"node_fields\":[\"type\",\"name\",\"id\",\"self_size\",\"edge_count\",\"detachedness\"],"
	"\"node_types\":[[\"hidden\",\"array\",\"string\",\"object\",\"code\",\"closure\",\"regexp\","
	"\"number\",\"native\",\"synthetic\",\"concatenated string\",\"sliced string\",\"symbol\","
	"\"bigint\",\"object shape\"],\"string\",\"number\",\"number\",\"number\",\"number\"],"
	"\"edge_fields\":[\"type\",\"name_or_index\",\"to_node\"],"
	"\"edge_types\":[[\"context\",\"element\",\"property\",\"internal\",\"hidden\",\"shortcut\","
	"\"weak\"],\"string_or_number\",\"node\"],"
	"\"trace_function_info_fields\":[\"function_id\",\"name\",\"script_name\",\"script_id\","
	"\"line\",\"column\"],"
	"\"trace_node_fields\":[\"id\",\"function_info_index\",\"count\",\"size\",\"children\"],"
	"\"sample_fields\":[\"timestamp_us\",\"last_assigned_id\"],"
	"\"location_fields\":[\"object_index\",\"script_id\",\"line\",\"column\"]},";

/* V8's ids for its own root and for "(GC roots)"; heap objects get odd ids (as V8's JavaScript
 * objects), roots even ones (as its native objects), so the two never meet. */
#define ROOT_ID 1u
#define UNREACHABLE_ID 3u
#define NO_ORDINAL UINT32_MAX

/* How the edges with one graph label are written. */
struct edge_name {
	uint8_t type;	  /* EDGE_* */
	bool by_position; /* an element numbered by its place among its node's edges ("[*]") */
	uint32_t name_or_index;
};

/* A heap node's name by what it is made of: its type (interned: one pointer per name) and
 * whether a part, or, untyped, its size. */
struct name_key {
	const char *type;
	uint64_t size;
};

struct node_name {
	uint32_t name; /* in the strings */
	uint64_t hash; /* of the name, for ids */
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t name_key_hash(struct name_key key)
{
	return mix64((uint64_t)(uintptr_t)key.type ^ key.size);
}

static inline bool name_key_eq(struct name_key a, struct name_key b)
{
	return a.type == b.type && a.size == b.size;
}

DEFINE_HASH_MAP(node_names, struct name_key, struct node_name, name_key_hash, name_key_eq)

struct output {
	FILE *out;
	size_t used;
	char buffer[1 << 16];
};

struct writer {
	const struct analysis *analysis;
	const struct graph *graph;
	bool show_values;
	struct devtools_export_stats *stats;
	struct output *output;
	struct string_table strings;
	struct edge_name *labels; /* per graph label */
	/* which heap nodes are live (a bit each) and, per 64 of them, how many live ones come
	   before: a node's ordinal in a few MiB that stay in cache, where an array of ordinals
	   would be 4 bytes a node read at random for each edge */
	uint64_t *live;
	uint32_t *live_before;
	uint32_t heap_base; /* the ordinal of the first heap node, after the synthetic ones */
	/* ids given so far: open addressing, 0 for an empty slot. Written by hand, not a
	   hash_map.h table: a slot is the id itself (a table would add an array of entries, and a
	   second cache miss per node, on tens of millions of nodes), the slots a batch will probe
	   are prefetched before it is written (write_nodes), and it is sized once, up front. */
	uint32_t *ids;
	size_t ids_size;
	/* a heap node's name and the hash that goes into its id, by type (or, untyped, by size):
	   naming each of millions of nodes afresh would dominate */
	struct node_names names;
};

static void output_flush(struct output *output)
{
	fwrite(output->buffer, 1, output->used, output->out);
	output->used = 0;
}

static void output_text(struct output *output, const char *text)
{
	size_t length = strlen(text);
	if (output->used + length > sizeof output->buffer)
		output_flush(output);
	if (length > sizeof output->buffer) {
		fwrite(text, 1, length, output->out);
		return;
	}
	memcpy(output->buffer + output->used, text, length);
	output->used += length;
}

/* Writes `separator` (unless 0) and `value` in decimal: the arrays are hundreds of millions of
 * numbers, and printf's formatting would be most of the export's time. */
static void output_number(struct output *output, char separator, uint64_t value)
{
	if (output->used + 24 > sizeof output->buffer)
		output_flush(output);
	if (separator)
		output->buffer[output->used++] = separator;
	char digits[20];
	size_t count = 0;
	do {
		digits[count++] = (char)('0' + value % 10);
		value /= 10;
	} while (value);
	while (count)
		output->buffer[output->used++] = digits[--count];
}

/* The id a node whose identity hashes to `key` tries at `attempt`: odd (`odd`) or even. */
static uint32_t candidate_id(uint64_t key, unsigned attempt, bool odd)
{
	uint32_t id = (uint32_t)(mix64(key + attempt) >> 32);
	return odd ? id | 1u : id & ~1u;
}

static size_t id_slot(const struct writer *writer, uint32_t id)
{
	return mix64(id) & (writer->ids_size - 1);
}

/* A node's id from the hash of what identifies it: odd (`odd`) or even, never 0, 1 or 3, and
 * not given before in this snapshot (on a collision, the next hash in a chain that depends on
 * `key` alone). */
static uint32_t take_id(struct writer *writer, uint64_t key, bool odd)
{
	size_t mask = writer->ids_size - 1;
	for (unsigned attempt = 0;; attempt++) {
		uint32_t id = candidate_id(key, attempt, odd);
		if (id == 0 || id == ROOT_ID || id == UNREACHABLE_ID)
			continue;
		size_t slot = id_slot(writer, id);
		while (writer->ids[slot] && writer->ids[slot] != id)
			slot = (slot + 1) & mask;
		if (writer->ids[slot] == id) {
			/* (roots of one name meet here by design: only objects are counted) */
			if (attempt == 0 && odd)
				writer->stats->id_collisions++;
			continue;
		}
		writer->ids[slot] = id;
		return id;
	}
}

static int intern(struct writer *writer, const char *text, uint32_t *out, struct hs_error *err)
{
	*out = string_table_intern(&writer->strings, text);
	if (*out == UINT32_MAX)
		return hs_error_nomem(err, "naming the snapshot's nodes");
	return 0;
}

/* How a label of the graph ("._conn", "[*]", "['alice']", "(key)", "+24") is written: an
 * attribute as a property by its name, an item as an element, the rest as internal edges by
 * the label itself; a value read from memory (a dict's key) masked unless show_values. */
static int name_label(struct writer *writer, const char *label, struct edge_name *out,
		      struct hs_error *err)
{
	char text[512];
	if (writer->show_values)
		snprintf(text, sizeof text, "%s", label);
	else
		path_mask_values(label, text, sizeof text);
	*out = (struct edge_name){.type = EDGE_INTERNAL};
	if (strcmp(text, "[*]") == 0 || strcmp(text, "{*}") == 0) {
		*out = (struct edge_name){.type = EDGE_ELEMENT, .by_position = true};
		return 0;
	}
	if (text[0] == '[' && text[1] >= '0' && text[1] <= '9') {
		char *end;
		unsigned long long index = strtoull(text + 1, &end, 10);
		if (strcmp(end, "]") == 0 && index <= UINT32_MAX) {
			*out = (struct edge_name){.type = EDGE_ELEMENT, .name_or_index = (uint32_t)index};
			return 0;
		}
	}
	const char *name = text;
	if (text[0] == '.' && text[1]) {
		out->type = EDGE_PROPERTY;
		name = text + 1;
	} else if (text[0] == '[') {
		out->type = EDGE_PROPERTY; /* a key shown: "['alice']" */
	}
	return intern(writer, name, &out->name_or_index, err);
}

static int name_labels(struct writer *writer, struct hs_error *err)
{
	const struct string_table *labels = &writer->graph->labels;
	writer->labels = calloc(labels->count + 1, sizeof *writer->labels);
	if (writer->labels == NULL)
		return hs_error_nomem(err, "naming the snapshot's edges");
	for (size_t i = 0; i < labels->count; i++)
		if (name_label(writer, labels->strings[i], &writer->labels[i], err) != 0)
			return -1;
	return 0;
}

static bool is_live(const struct writer *writer, size_t i)
{
	return writer->live[i / 64] >> (i % 64) & 1;
}

/* The ordinal of heap node `i`, NO_ORDINAL when it is a free allocation's. */
static uint32_t heap_ordinal(const struct writer *writer, size_t i)
{
	if (!is_live(writer, i))
		return NO_ORDINAL;
	uint64_t below = writer->live[i / 64] & ((UINT64_C(1) << (i % 64)) - 1);
	return writer->heap_base + writer->live_before[i / 64] + (uint32_t)__builtin_popcountll(below);
}

/* The ordinal of graph node `node`: the synthetic root for the super-root, then the roots, then
 * the heap's live allocations. */
static uint32_t ordinal_of(const struct writer *writer, uint32_t node)
{
	const struct graph *graph = writer->graph;
	if (node == graph->super_root)
		return 0;
	if (node >= graph->heap_nodes)
		return (uint32_t)(1 + (node - graph->heap_nodes));
	return heap_ordinal(writer, node);
}

/* Numbers the live allocations' nodes and counts the unreachable ones. */
static int number_nodes(struct writer *writer, struct hs_error *err)
{
	const struct graph *graph = writer->graph;
	size_t words = graph->heap_nodes / 64 + 1;
	writer->live = calloc(words, sizeof *writer->live);
	writer->live_before = malloc(words * sizeof *writer->live_before);
	if (writer->live == NULL || writer->live_before == NULL)
		return hs_error_nomem(err, "numbering the snapshot's nodes");
	uint64_t next = graph->root_count + 2; /* the root, the roots, "(unreachable)" */
	writer->heap_base = (uint32_t)next;
	for (size_t i = 0; i < graph->heap_nodes; i++) {
		if (i % 64 == 0)
			writer->live_before[i / 64] = (uint32_t)(next - writer->heap_base);
		uint32_t node = graph_allocation_node(graph, i);
		if (node == GRAPH_NONE)
			continue;
		writer->live[i / 64] |= UINT64_C(1) << (i % 64);
		writer->stats->unreachable += !graph_reachable(graph, node);
		/* to_node is ordinal * NODE_FIELDS, a 32-bit number */
		if (++next > UINT32_MAX / NODE_FIELDS)
			return hs_error_set(err, "the heap has more objects than a DevTools heap snapshot "
						 "can number (%u)", UINT32_MAX / NODE_FIELDS);
	}
	writer->stats->nodes = next;
	writer->ids_size = 1024;
	while (writer->ids_size < next * 2)
		writer->ids_size *= 2;
	writer->ids = calloc(writer->ids_size, sizeof *writer->ids);
	if (writer->ids == NULL)
		return hs_error_nomem(err, "numbering the snapshot's nodes");
	writer->ids[mix64(ROOT_ID) & (writer->ids_size - 1)] = ROOT_ID;
	size_t slot = mix64(UNREACHABLE_ID) & (writer->ids_size - 1);
	while (writer->ids[slot])
		slot = (slot + 1) & (writer->ids_size - 1);
	writer->ids[slot] = UNREACHABLE_ID;
	return 0;
}

static void write_node(struct writer *writer, bool first, unsigned type, uint32_t name,
		       uint32_t id, uint64_t self_size, uint64_t edge_count)
{
	struct output *output = writer->output;
	if (self_size > UINT32_MAX) {
		writer->stats->oversized++;
		self_size = UINT32_MAX;
	}
	output_number(output, first ? 0 : ',', type);
	output_number(output, ',', name);
	output_number(output, ',', id);
	output_number(output, ',', self_size);
	output_number(output, ',', edge_count);
	output_text(output, ",0\n");
}

static uint32_t row_edges(const struct graph *graph, uint32_t row)
{
	return graph->starts[row + 1] - graph->starts[row];
}

/* Whether heap node `i` is a block that belongs to an object (a list's items, a dict's table):
 * the summary counts its bytes with its owner's type, but not as one more object. */
static bool is_part(const struct writer *writer, size_t i)
{
	const struct type_names *types = &writer->analysis->types;
	return types->owned && types->owned[i];
}

/* Heap node `i`'s name and the hash of it that goes into its id: its type; "(part of TYPE)" for
 * a block of an object (so DevTools counts TYPE's objects as the summary does); "size 64" when
 * untyped. */
static int heap_node_name(struct writer *writer, size_t i, uint32_t *name, uint64_t *hash,
			  struct hs_error *err)
{
	const char *type = analysis_type(writer->analysis, i);
	/* the key: the type, and whether a part; or, untyped, the size */
	struct name_key key = {type, type ? is_part(writer, i) : writer->graph->heap->allocations[i].size};
	const struct node_names_entry *known = node_names_search(&writer->names, key);
	if (known == NULL) {
		char text[256];
		if (type == NULL)
			snprintf(text, sizeof text, "size %llu", (unsigned long long)key.size);
		else
			snprintf(text, sizeof text, key.size ? "(part of %s)" : "%s", type);
		struct node_name named = {.hash = hash_bytes(text, 0)};
		if (intern(writer, text, &named.name, err) != 0)
			return -1;
		struct node_names_entry *entry = node_names_insert(&writer->names, key, NULL);
		if (entry == NULL) {
			hs_error_nomem(err, "naming the snapshot's nodes");
			return -1;
		}
		entry->value = named;
		known = entry;
	}
	*name = known->value.name;
	*hash = known->value.hash;
	return 0;
}

/* A live allocation's node type: an object of a known type, the part of one (as V8's backing
 * stores: "array"), or a block of memory ("native"). */
static unsigned heap_node_type(const struct writer *writer, size_t i)
{
	if (analysis_type(writer->analysis, i) == NULL)
		return NODE_NATIVE;
	return is_part(writer, i) ? NODE_ARRAY : NODE_OBJECT;
}

static int write_nodes(struct writer *writer, struct hs_error *err)
{
	const struct graph *graph = writer->graph;
	uint32_t name;
	if (intern(writer, "", &name, err) != 0)
		return -1;
	write_node(writer, true, NODE_SYNTHETIC, name, ROOT_ID, 0,
		   row_edges(graph, graph->super_root) + 1);
	for (size_t r = 0; r < graph->root_count; r++) {
		if (intern(writer, graph->roots[r].name, &name, err) != 0)
			return -1;
		uint32_t id = take_id(writer, hash_bytes(graph->roots[r].name, 0x726f6f74), false);
		write_node(writer, false, NODE_SYNTHETIC, name, id, 0,
			   row_edges(graph, (uint32_t)(graph->heap_nodes + r)));
	}
	if (intern(writer, "(unreachable)", &name, err) != 0)
		return -1;
	write_node(writer, false, NODE_SYNTHETIC, name, UNREACHABLE_ID, 0,
		   writer->stats->unreachable);
	/* in batches: the ids' table is read at random, one cache miss a node unless the slots of
	   a batch are fetched together before they are looked at */
	struct {
		size_t index;
		uint32_t name;
		uint64_t key;
	} batch[1024];
	for (size_t i = 0; i < graph->heap_nodes;) {
		size_t count = 0;
		for (; i < graph->heap_nodes && count < sizeof batch / sizeof batch[0]; i++) {
			if (!is_live(writer, i))
				continue;
			uint64_t hash;
			if (heap_node_name(writer, i, &batch[count].name, &hash, err) != 0)
				return -1;
			const struct allocation *allocation = &graph->heap->allocations[i];
			/* heapdiff's identity of an object: its address, type and size */
			batch[count].key = mix64(allocation->address) ^ mix64(hash ^ allocation->size);
			batch[count].index = i;
			__builtin_prefetch(&writer->ids[id_slot(writer, candidate_id(batch[count].key,
										       0, true))]);
			count++;
		}
		for (size_t k = 0; k < count; k++) {
			size_t index = batch[k].index;
			write_node(writer, false, heap_node_type(writer, index), batch[k].name,
				   take_id(writer, batch[k].key, true),
				   graph->heap->allocations[index].size,
				   row_edges(graph, (uint32_t)index));
		}
	}
	return 0;
}

static void write_edge(struct writer *writer, unsigned type, uint32_t name_or_index,
		       uint32_t target)
{
	struct output *output = writer->output;
	output_number(output, writer->stats->edges++ ? ',' : 0, type);
	output_number(output, ',', name_or_index);
	output_number(output, ',', (uint64_t)target * NODE_FIELDS);
	output_text(output, "\n");
}

/* How a pointer found at byte `offset` of heap node `node` is named: in a C struct whose layout
 * is known, a property named by its member ("next", "[*].detail" in an array of structs), as
 * heapsnap's paths name the step; else an element numbered by the offset ("[24]"). */
static int name_pointer(struct writer *writer, uint32_t node, uint32_t offset,
			struct edge_name *out, struct hs_error *err)
{
	*out = (struct edge_name){.type = EDGE_ELEMENT, .name_or_index = offset};
	const char *type = analysis_type(writer->analysis, node);
	char base[112], member[128];
	/* (the types paths look up layouts for: others have none, and asking costs a lookup) */
	if (type == NULL || strncmp(type, "struct ", 7) != 0 ||
	    !path_member_at(&writer->analysis->heap, &writer->analysis->types, node, offset, base,
			    sizeof base, member, sizeof member) ||
	    strchr(member, '.') == NULL)
		return 0;
	out->type = EDGE_PROPERTY;
	return intern(writer, member[0] == '.' ? member + 1 : member, &out->name_or_index, err);
}

/* The edges of graph node `row`: a labelled edge as its label says, a heap node's pointer
 * found by its place as name_pointer says, a root's as an element numbered by its place among
 * the root's edges. */
static int write_row(struct writer *writer, uint32_t row, struct hs_error *err)
{
	const struct graph *graph = writer->graph;
	uint32_t position = 0;
	for (uint64_t e = graph->starts[row]; e < graph->starts[row + 1]; e++, position++) {
		uint32_t target = ordinal_of(writer, graph->targets[e]);
		if (target == NO_ORDINAL)
			return hs_error_set(err, "the graph has an edge to a free allocation "
						 "(node %u): a bug in heapsnap",
					    graph->targets[e]);
		uint32_t offset = graph->offsets[e];
		struct edge_name name = {.type = EDGE_ELEMENT, .by_position = true};
		if (offset & GRAPH_LABEL)
			name = writer->labels[offset & GRAPH_LABEL_INDEX];
		else if (row < graph->heap_nodes && name_pointer(writer, row, offset, &name, err) != 0)
			return -1;
		write_edge(writer, name.type, name.by_position ? position : name.name_or_index,
			   target);
	}
	return 0;
}

static int write_edges(struct writer *writer, struct hs_error *err)
{
	const struct graph *graph = writer->graph;
	if (write_row(writer, graph->super_root, err) != 0)
		return -1;
	write_edge(writer, EDGE_ELEMENT, row_edges(graph, graph->super_root),
		   (uint32_t)(graph->root_count + 1));
	for (size_t r = 0; r < graph->root_count; r++)
		if (write_row(writer, (uint32_t)(graph->heap_nodes + r), err) != 0)
			return -1;
	uint32_t position = 0;
	for (size_t i = 0; i < graph->heap_nodes; i++)
		if (is_live(writer, i) && !graph_reachable(graph, (uint32_t)i))
			write_edge(writer, EDGE_ELEMENT, position++, heap_ordinal(writer, i));
	for (size_t i = 0; i < graph->heap_nodes; i++)
		if (is_live(writer, i) && write_row(writer, (uint32_t)i, err) != 0)
			return -1;
	return 0;
}

static void write_strings(struct writer *writer)
{
	output_flush(writer->output);
	struct json_writer json;
	json_init(&json, writer->output->out);
	json_array_begin(&json);
	for (size_t i = 0; i < writer->strings.count; i++)
		json_string(&json, writer->strings.strings[i]);
	json_array_end(&json);
}

int devtools_export_write(FILE *out, const struct analysis *analysis, bool show_values,
			  struct devtools_export_stats *stats, struct hs_error *err)
{
	*stats = (struct devtools_export_stats){0};
	struct writer *writer = calloc(1, sizeof *writer);
	struct output *output = malloc(sizeof *output);
	if (writer == NULL || output == NULL) {
		free(writer);
		free(output);
		return hs_error_nomem(err, "starting the export");
	}
	*writer = (struct writer){.analysis = analysis, .graph = &analysis->graph,
				  .show_values = show_values, .stats = stats, .output = output};
	*output = (struct output){.out = out};
	const struct graph *graph = writer->graph;
	uint64_t edge_count = 0; /* the graph's, the root's to "(unreachable)", and its */
	uint32_t dummy;
	/* V8's first string; DevTools reads nothing into it */
	int result = intern(writer, "<dummy>", &dummy, err);
	if (result == 0)
		result = number_nodes(writer, err);
	if (result == 0)
		result = name_labels(writer, err);
	edge_count = (uint64_t)graph->starts[graph->node_count] + 1 + stats->unreachable;
	if (result == 0) {
		output_text(output, meta);
		output_text(output, "\"node_count\":");
		output_number(output, 0, stats->nodes);
		output_text(output, ",\"edge_count\":");
		output_number(output, 0, edge_count);
		output_text(output, ",\"trace_function_count\":0},\n\"nodes\":[");
		result = write_nodes(writer, err);
	}
	/* the ids are needed no more: their memory goes back before the edges are walked */
	free(writer->ids);
	writer->ids = NULL;
	if (result == 0) {
		output_text(output, "],\n\"edges\":[");
		result = write_edges(writer, err);
	}
	/* DevTools trusts edge_count to slice the edges among the nodes */
	if (result == 0 && stats->edges != edge_count)
		result = hs_error_set(err, "wrote %llu edges where the graph counted %llu: a bug in "
					   "heapsnap", (unsigned long long)stats->edges,
				      (unsigned long long)edge_count);
	if (result == 0) {
		output_text(output, "],\n\"trace_function_infos\":[],\"trace_tree\":[],\"samples\":[],"
				    "\"locations\":[],\n\"strings\":");
		stats->strings = writer->strings.count;
		write_strings(writer);
		fputs("}\n", out);
	}
	free(writer->live);
	free(writer->live_before);
	free(writer->labels);
	string_table_free(&writer->strings);
	node_names_free(&writer->names);
	free(writer);
	free(output);
	return result;
}
