/* Retaining paths as a mermaid flowchart or a Graphviz digraph (see path_graph.h). */
#include "path_graph.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/hash_map.h"

#define NONE UINT32_MAX

enum node_kind { KIND_ROOT, KIND_STEP, KIND_TYPE, KINDS };

struct node {
	enum node_kind kind;
	uint32_t parent; /* a step: the node before it (paths share a step while they agree) */
	uint32_t number; /* within its kind, from 1: the id */
	char label[sizeof ((struct path_shape *)0)->elements[0]];
};

struct edge {
	uint32_t from, to;
	uint64_t count;
};

/* A node's key: the same kind, parent and label are one node. */
struct node_key {
	enum node_kind kind;
	uint32_t parent;
	const char *label;
};

static inline struct node_key node_key(const struct node *node)
{
	return (struct node_key){node->kind, node->parent, node->label};
}

static inline uint64_t node_hash(struct node_key key)
{
	return hash_bytes(key.label, ((uint64_t)key.kind << 32) ^ key.parent);
}

static inline bool node_eq(struct node_key a, struct node_key b)
{
	return a.kind == b.kind && a.parent == b.parent && strcmp(a.label, b.label) == 0;
}

DEFINE_HASH_TABLE(node_table, struct node, struct node_key, node_key, node_hash, node_eq)

struct edge_key {
	uint32_t from, to;
};

static inline struct edge_key edge_key(const struct edge *edge)
{
	return (struct edge_key){edge->from, edge->to};
}

static inline uint64_t edge_hash(struct edge_key key)
{
	uint64_t mixed = ((uint64_t)key.from << 32 | key.to) * 0x9e3779b97f4a7c15ull;
	return mixed ^ mixed >> 29;
}

static inline bool edge_eq(struct edge_key a, struct edge_key b)
{
	return a.from == b.from && a.to == b.to;
}

DEFINE_HASH_TABLE(edge_table, struct edge, struct edge_key, edge_key, edge_hash, edge_eq)

/* Nodes and edges in the order made: the ids number them so, and they are written so. */
struct path_graph {
	struct node_table nodes;
	struct edge_table edges;
	uint32_t kind_count[KINDS];
};

struct path_graph *path_graph_new(void)
{
	return calloc(1, sizeof(struct path_graph));
}

void path_graph_free(struct path_graph *graph)
{
	if (graph == NULL)
		return;
	node_table_free(&graph->nodes);
	edge_table_free(&graph->edges);
	free(graph);
}

bool path_graph_empty(const struct path_graph *graph)
{
	return graph->nodes.count == 0;
}

/* The node of this kind, parent and label, made when new; NONE when out of memory. */
static uint32_t node_of(struct path_graph *graph, enum node_kind kind, uint32_t parent,
			const char *label)
{
	bool added;
	struct node *node = node_table_insert(&graph->nodes, (struct node_key){kind, parent, label},
					      &added);
	if (node == NULL)
		return NONE;
	if (added) {
		node->kind = kind;
		node->parent = parent;
		node->number = ++graph->kind_count[kind];
		snprintf(node->label, sizeof node->label, "%s", label);
	}
	return (uint32_t)(node - graph->nodes.entries);
}

static bool add_edge(struct path_graph *graph, uint32_t from, uint32_t to, uint64_t count)
{
	bool added;
	struct edge *edge = edge_table_insert(&graph->edges, (struct edge_key){from, to}, &added);
	if (edge == NULL)
		return false;
	if (added)
		*edge = (struct edge){from, to, 0};
	edge->count += count;
	return true;
}

int path_graph_add(struct path_graph *graph, const struct path_shape *shape)
{
	if (shape->element_count == 0)
		return 0;
	/* (made in the path's order, so that ids number roots, steps and types as they come) */
	size_t last = shape->element_count - 1;
	uint32_t previous = NONE;
	for (size_t e = 0; e <= last; e++) {
		enum node_kind kind = e == last ? KIND_TYPE : e == 0 ? KIND_ROOT : KIND_STEP;
		uint32_t next = node_of(graph, kind, kind == KIND_STEP ? previous : NONE,
					shape->elements[e]);
		if (next == NONE || (previous != NONE && !add_edge(graph, previous, next, shape->count)))
			return -1;
		previous = next;
	}
	return 0;
}

/* ---- spelling ---- */

/* What both syntaxes take as it is, in a quoted label. */
static bool plain(uint32_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && c < 0x80 && strchr(" _.,:*()[]{}/'=+-?!@$%^~", (int)c) != NULL);
}

/* Mermaid: entity codes (#quot;, #60;), which it decodes in labels after parsing; so '#' too. */
static void mermaid_escape(char *out, size_t size, uint32_t c)
{
	snprintf(out, size, c == '"' ? "#quot;" : "#%" PRIu32 ";", c);
}

/* DOT, in a double-quoted string: a backslash before what would end the string or start an
 * escape sequence (\n, \N), HTML entities (which Graphviz decodes in labels) for the rest, so
 * the output is ASCII whatever the input's encoding. */
static void dot_escape(char *out, size_t size, uint32_t c)
{
	if (c == '"' || c == '\\')
		snprintf(out, size, "\\%c", (char)c);
	else
		snprintf(out, size, "&#%" PRIu32 ";", c);
}

/* The next code point of UTF-8 `text`, advancing it; a byte that starts no valid sequence
 * (overlong, surrogate, truncated) comes back as INVALID | byte. */
#define INVALID (1u << 31)
static uint32_t next_code_point(const unsigned char **text)
{
	static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
	const unsigned char *at = *text;
	uint32_t c = at[0];
	size_t length = c < 0x80		? 1
			: (c & 0xe0) == 0xc0 ? 2
			: (c & 0xf0) == 0xe0 ? 3
			: (c & 0xf8) == 0xf0 ? 4
					       : 0;
	*text = at + 1;
	if (length == 0)
		return INVALID | c;
	uint32_t point = length == 1 ? c : c & (0x7fu >> length);
	for (size_t k = 1; k < length; k++) {
		if ((at[k] & 0xc0) != 0x80)
			return INVALID | c;
		point = point << 6 | (at[k] & 0x3f);
	}
	if (length > 1 &&
	    (point < least[length] || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)))
		return INVALID | c;
	*text = at + length;
	return point;
}

typedef void escape_fn(char *out, size_t size, uint32_t c);

/* `label` spelled for a syntax: control characters and bytes that are not UTF-8 as visible
 * escapes (\n, \t, \x01), then whatever is not plain escaped the syntax's way. */
static void spell(escape_fn *escape, const char *label, char *out, size_t size)
{
	size_t used = 0;
	out[0] = '\0';
	for (const unsigned char *at = (const unsigned char *)label; *at;) {
		uint32_t c = next_code_point(&at);
		uint32_t points[4] = {c};
		size_t count = 1;
		if (c & INVALID || c < 0x20 || c == 0x7f) {
			char visible[8];
			snprintf(visible, sizeof visible, c == '\n' ? "\\n" : c == '\t' ? "\\t" : "\\x%02x",
				 (unsigned)(c & 0xff));
			for (count = 0; visible[count]; count++)
				points[count] = (unsigned char)visible[count];
		}
		for (size_t k = 0; k < count; k++) {
			char piece[16] = {(char)points[k]};
			if (!plain(points[k]))
				escape(piece, sizeof piece, points[k]);
			size_t length = strlen(piece);
			if (used + length + 1 > size)
				return;
			memcpy(out + used, piece, length + 1);
			used += length;
		}
	}
}

static const char *const id_prefix[KINDS] = {"root", "step", "type"};

/* Mermaid's shapes: a root as a subroutine box, a step as a box, a type as a stadium. */
static void mermaid_node(FILE *out, enum node_kind kind, const char *id, const char *label)
{
	static const char *const open[KINDS] = {"[[", "[", "(["}, *const close[KINDS] = {"]]", "]", "])"};
	fprintf(out, "  %s%s\"%s\"%s\n", id, open[kind], label, close[kind]);
}

static void mermaid_edge(FILE *out, const char *from, const char *to, const char *count)
{
	fprintf(out, "  %s -->|\"%s\"| %s\n", from, count, to);
}

static void dot_node(FILE *out, enum node_kind kind, const char *id, const char *label)
{
	static const char *const style[KINDS] = {
		"shape=box, style=bold", "shape=box",
		"shape=ellipse, style=filled, fillcolor=\"#f4d6a0\""};
	fprintf(out, "  %s [%s, label=\"%s\"];\n", id, style[kind], label);
}

static void dot_edge(FILE *out, const char *from, const char *to, const char *count)
{
	fprintf(out, "  %s -> %s [label=\"%s\"];\n", from, to, count);
}

/* One syntax: how labels are escaped and nodes and edges written, and what surrounds them. */
static const struct syntax {
	const char *begin; /* printf: the graph's name */
	const char *end;
	escape_fn *escape;
	void (*node)(FILE *out, enum node_kind kind, const char *id, const char *label);
	void (*edge)(FILE *out, const char *from, const char *to, const char *count);
} syntaxes[] = {
	[PATH_GRAPH_MERMAID] = {"flowchart LR\n", "", mermaid_escape, mermaid_node, mermaid_edge},
	[PATH_GRAPH_DOT] = {"digraph %s {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n"
			    "  edge [fontname=\"monospace\"];\n",
			    "}\n", dot_escape, dot_node, dot_edge},
};

static void node_id(const struct node *node, char *out, size_t size)
{
	snprintf(out, size, "%s%" PRIu32, id_prefix[node->kind], node->number);
}

void path_graph_write(FILE *out, const struct path_graph *graph, enum path_graph_syntax which,
		      const char *name)
{
	const struct syntax *syntax = &syntaxes[which];
	/* a label of 127 bytes, each spelled in at most 4 * 6 ("\x01" as "#92;#120;#48;#49;") */
	char label[128 * 24], count[32], from[24], to[24];
	fprintf(out, syntax->begin, name);
	for (size_t i = 0; i < graph->nodes.count; i++) {
		const struct node *node = &graph->nodes.entries[i];
		spell(syntax->escape, node->label, label, sizeof label);
		node_id(node, from, sizeof from);
		syntax->node(out, node->kind, from, label);
	}
	for (size_t i = 0; i < graph->edges.count; i++) {
		const struct edge *edge = &graph->edges.entries[i];
		node_id(&graph->nodes.entries[edge->from], from, sizeof from);
		node_id(&graph->nodes.entries[edge->to], to, sizeof to);
		cli_format_count(edge->count, count, sizeof count);
		syntax->edge(out, from, to, count);
	}
	fputs(syntax->end, out);
}
