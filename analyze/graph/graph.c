/* Building and analysing the object graph (see graph.h). */
#include "graph.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/graph/dominators.h"
#include "common/visible_text.h"
#include "common/array_grow.h"
#include "common/big_array.h"

#define STACK_RED_ZONE 128u    /* below the stack pointer, still the thread's (x86-64 ABI) */
#define TLS_BELOW (64u << 10)  /* static TLS lies below the thread pointer */
#define TLS_ABOVE (4u << 10)   /* the thread control block above it */
#define SCAN_CHUNK (1u << 20)
#define DEAD_STACK_TAIL (64u << 10) /* where a thread descriptor sits in its stack mapping */

/* ---- edges ----------------------------------------------------------------------------------- */

struct builder {
	struct graph *graph;
	const struct type_names *types;
	struct address_space *space;
	struct symbols *symbols;
	struct warnings *warnings;
	uint64_t lowest; /* no allocation starts below: most words are cheaply not pointers */
	size_t root_capacity;
	size_t rows;		 /* nodes whose rows are complete */
	/* the runtimes' models (none for a C program); each allocation is at most one's object */
	const struct graph_model *models;
	size_t model_count;
	/* per allocation, what the models say of it, merged (NULL when none says anything): header
	   bytes before where its object starts, and whether memory roots do not reach it */
	const uint8_t *header_bytes;
	const uint8_t *not_from_memory_roots;
	uint8_t *merged; /* what the two above point into when several models were merged */
	/* the ranges the models read themselves, all models' */
	struct graph_range *claimed;
	size_t claimed_count;
	bool root_open;	       /* a model's root has been begun and its row not ended */
	/* scanning memory the runtime does not model: module data, stacks, registers, TLS,
	   mappings, and heap blocks that are none of its objects */
	bool in_memory_roots;
	uint8_t *chunk; /* SCAN_CHUNK bytes: memory read for scanning */
	bool too_many;	/* more edges than the graph holds */
};

struct graph_emitter {
	struct builder *builder;
};

static int add_edge(struct builder *builder, uint32_t target, uint32_t offset)
{
	struct graph *graph = builder->graph;
	if (graph->edge_count >= UINT32_MAX - 1) {
		builder->too_many = true; /* rows and the dominators count edges in 32 bits */
		return -1;
	}
	if (graph->edge_count == graph->targets_capacity ||
	    graph->edge_count == graph->offsets_capacity) {
		uint32_t *targets = big_array_grow(graph->targets, &graph->targets_capacity,
						   sizeof *targets, graph->edge_count + 1);
		if (targets == NULL)
			return -1;
		graph->targets = targets;
		uint32_t *offsets = big_array_grow(graph->offsets, &graph->offsets_capacity,
						   sizeof *offsets, graph->edge_count + 1);
		if (offsets == NULL)
			return -1;
		graph->offsets = offsets;
	}
	graph->targets[graph->edge_count] = target;
	graph->offsets[graph->edge_count] = offset;
	graph->edge_count++;
	big_array_filling(graph->targets, graph->targets_capacity, sizeof *graph->targets,
			  graph->edge_count);
	big_array_filling(graph->offsets, graph->offsets_capacity, sizeof *graph->offsets,
			  graph->edge_count);
	return 0;
}

/* The live allocation holding `word`, as a node, or GRAPH_NONE; a word in a runtime's header of
 * the allocation (CPython's GC links) is not a reference to it. */
static uint32_t node_at(const struct builder *builder, uint64_t word)
{
	if (word < builder->lowest)
		return GRAPH_NONE;
	const struct heap *heap = builder->graph->heap;
	const struct allocation *allocation = heap_find(heap, word);
	if (allocation == NULL)
		return GRAPH_NONE;
	size_t index = (size_t)(allocation - heap->allocations);
	/* a runtime's object is referred to by its start, after its header: a pointer into its
	   header (CPython's GC links) or its inside (a type's tp_name, its own slot tables) is no
	   reference to it */
	const uint8_t *header_bytes = builder->header_bytes;
	const uint8_t *not_from_memory_roots = builder->not_from_memory_roots;
	if (header_bytes && not_from_memory_roots && not_from_memory_roots[index] &&
	    !(not_from_memory_roots[index] & GRAPH_RUNTIME_PART) &&
	    word != allocation->address + header_bytes[index])
		return GRAPH_NONE;
	if (header_bytes && word - allocation->address < header_bytes[index])
		return GRAPH_NONE;
	if (builder->in_memory_roots && not_from_memory_roots && not_from_memory_roots[index])
		return GRAPH_NONE;
	return allocation->state == ALLOCATION_LIVE ? (uint32_t)index : GRAPH_NONE;
}

/* Adds an edge for every aligned word of bytes[0..size) that points into an allocation. */
static int scan_words(struct builder *builder, const uint8_t *bytes, size_t size,
		      uint64_t base_offset)
{
	for (size_t at = 0; at + 8 <= size; at += 8) {
		uint64_t word;
		memcpy(&word, bytes + at, 8);
		uint32_t target = node_at(builder, word);
		if (target != GRAPH_NONE &&
		    add_edge(builder, target, (uint32_t)(base_offset + at)) != 0)
			return -1;
	}
	return 0;
}

/* Scans [start, end) of the address space, a chunk at a time; unreadable parts are skipped. */
static int scan_range(struct builder *builder, uint64_t start, uint64_t end)
{
	uint8_t *chunk = builder->chunk;
	start = (start + 7) & ~7ull;
	for (uint64_t at = start; at < end; at += SCAN_CHUNK) {
		size_t size = end - at < SCAN_CHUNK ? (size_t)(end - at) : SCAN_CHUNK;
		if (address_space_read(builder->space, at, chunk, size, NULL) != 0)
			continue;
		if (scan_words(builder, chunk, size, at - start) != 0)
			return -1;
	}
	return 0;
}

static void end_row(struct builder *builder)
{
	struct graph *graph = builder->graph;
	graph->starts[++builder->rows] = (uint32_t)graph->edge_count;
	big_array_filling(graph->starts, graph->starts_capacity, sizeof *graph->starts,
			  builder->rows);
}

/* Whether a member can hold a reference: a pointer, or an aggregate (scanned whole); integers,
 * floats, enums and character arrays cannot. */
static bool member_may_point(const struct dwarf_member *member)
{
	const char *type = member->type;
	size_t length = strlen(type);
	if (length >= 2 && strcmp(type + length - 2, " *") == 0)
		return true;
	if (strncmp(type, "char[", 5) == 0 || strncmp(type, "unsigned char[", 14) == 0)
		return false;
	return strncmp(type, "struct ", 7) == 0 || strncmp(type, "union ", 6) == 0 ||
	       strchr(type, '[') != NULL || strcmp(type, "?") == 0;
}

/* The struct's last member when it is a flexible array (`unsigned char data[]`, as redis's
 * raxNode keeps its children's pointers in), or NULL. */
static const struct dwarf_member *flexible_member(const struct dwarf_struct *layout)
{
	if (layout->member_count == 0)
		return NULL;
	const struct dwarf_member *last = &layout->members[layout->member_count - 1];
	size_t length = strlen(last->type);
	return last->size == 0 && length > 2 && strcmp(last->type + length - 2, "[]") == 0 ? last
											    : NULL;
}

/* Precise edges of a struct (or array of structs) of known layout. */
static int scan_struct(struct builder *builder, const uint8_t *bytes, size_t size,
		       const struct dwarf_struct *layout)
{
	/* a struct ending in a flexible array is one struct, the rest of its block that array, of
	   no type DWARF gives: scanned as an untyped block is */
	const struct dwarf_member *flexible = flexible_member(layout);
	for (size_t element = 0; element + layout->size <= size; element += layout->size) {
		for (size_t m = 0; m < layout->member_count; m++) {
			const struct dwarf_member *member = &layout->members[m];
			if (!member_may_point(member) || member == flexible)
				continue;
			uint64_t from = member->offset, to = from + (member->size ? member->size : 8);
			from = (from + 7) & ~7ull;
			if (to > layout->size)
				to = layout->size;
			if (to > from &&
			    scan_words(builder, bytes + element + from, (size_t)(to - from),
				       element + from) != 0)
				return -1;
		}
		if (flexible) {
			size_t from = ((size_t)flexible->offset + 7) & ~(size_t)7;
			return from < size ? scan_words(builder, bytes + from, size - from, from) : 0;
		}
	}
	return 0;
}

/* The layout of a node's type when it is a C struct (or an array of them), or NULL. */
static const struct dwarf_struct *node_layout(const struct builder *builder, size_t node)
{
	if (builder->types == NULL || builder->types->of == NULL)
		return NULL;
	const char *type = types_name(builder->types, node);
	if (type == NULL || strncmp(type, "struct ", 7) != 0)
		return NULL;
	char base[112];
	size_t length = strlen(type);
	bool array = length > 2 && strcmp(type + length - 2, "[]") == 0;
	snprintf(base, sizeof base, "%.*s", (int)(array ? length - 2 : length), type);
	const struct dwarf_struct *layout = types_layout(builder->types, base);
	return layout && layout->size > 0 ? layout : NULL;
}

/* ---- a runtime model's edges and roots --------------------------------------------------------- */

uint32_t graph_emit_label(struct graph_emitter *emitter, const char *text)
{
	struct graph *graph = emitter->builder->graph;
	if (graph->labels.count >= GRAPH_LABEL_INDEX)
		return GRAPH_NONE; /* (the label's number must fit beside the flags) */
	char visible[512]; /* (a label may be the process's text: a key, an attribute's name) */
	if (has_control_characters(text))
		text = visible_text(text, visible, sizeof visible);
	uint32_t number = string_table_intern(&graph->labels, text);
	return number == UINT32_MAX ? GRAPH_NONE : number;
}

int graph_emit_edge(struct graph_emitter *emitter, uint64_t address, uint32_t label)
{
	uint32_t target = node_at(emitter->builder, address);
	if (target == GRAPH_NONE)
		return 0;
	return add_edge(emitter->builder, target, label == GRAPH_NONE ? 0 : label | GRAPH_LABEL);
}

int graph_emit_view_edge(struct graph_emitter *emitter, uint64_t address, uint32_t label)
{
	uint32_t target = node_at(emitter->builder, address);
	if (target == GRAPH_NONE)
		return 0;
	if (label == GRAPH_NONE && (label = graph_emit_label(emitter, "")) == GRAPH_NONE)
		return -1;
	return add_edge(emitter->builder, target, label | GRAPH_LABEL | GRAPH_VIEW);
}

void graph_emit_references_left(struct graph_emitter *emitter, uint32_t *counts)
{
	const struct builder *builder = emitter->builder;
	const struct graph *graph = builder->graph;
	for (size_t row = 0; row < builder->rows; row++) {
		if (row >= graph->heap_nodes && graph->roots[row - graph->heap_nodes].view)
			continue;
		for (uint64_t e = graph->starts[row]; e < graph->starts[row + 1]; e++) {
			uint32_t target = graph->targets[e];
			if (target < graph->heap_nodes && counts[target] > 0 &&
			    (graph->offsets[e] & (GRAPH_LABEL | GRAPH_VIEW)) !=
				    (GRAPH_LABEL | GRAPH_VIEW))
				counts[target]--;
		}
	}
}

uint32_t graph_emit_node_of(struct graph_emitter *emitter, size_t index)
{
	return graph_allocation_node(emitter->builder->graph, index);
}

int graph_emit_scan(struct graph_emitter *emitter, const uint8_t *bytes, size_t size,
		    uint64_t base, uint32_t label)
{
	if (label == GRAPH_NONE)
		return scan_words(emitter->builder, bytes, size, base);
	for (size_t at = 0; at + 8 <= size; at += 8) {
		uint64_t word;
		memcpy(&word, bytes + at, 8);
		if (graph_emit_edge(emitter, word, label) != 0)
			return -1;
	}
	return 0;
}

static int begin_root(struct builder *builder, enum root_kind kind, const char *name);

int graph_emit_root(struct graph_emitter *emitter, enum root_kind kind, const char *name,
		    bool view)
{
	struct builder *builder = emitter->builder;
	if (builder->root_open)
		end_row(builder);
	builder->root_open = true;
	if (begin_root(builder, kind, name) != 0)
		return -1;
	builder->graph->roots[builder->graph->root_count - 1].view = view;
	return 0;
}

static int scan_heap_nodes(struct builder *builder)
{
	struct graph_emitter emitter = {builder};
	struct graph *graph = builder->graph;
	struct address_cursor cursor;
	address_cursor_init(&cursor, builder->space);
	struct snapshot *snapshot = address_space_snapshot(builder->space);
	const struct snapshot_region *region = NULL;
	int result = 0;
	for (size_t node = 0; node < graph->heap_nodes && result == 0; node++) {
		const struct allocation *allocation = &graph->heap->allocations[node];
		/* a free block, or the allocator's own, are nodes without edges: what the
		   allocator's own holds are free blocks or stale words (a jemalloc tcache's stacks
		   keep pointers to regions handed out again since) */
		if (allocation->state != ALLOCATION_LIVE || allocation->place == PLACE_METADATA) {
			end_row(builder);
			continue;
		}
		uint64_t start = allocation->address, size = allocation->size ? allocation->size : 1;
		if (region == NULL || start < region->start || start >= region->end)
			region = snapshot_find_region(snapshot, start);
		const uint8_t *bytes =
			region ? address_cursor_view(&cursor, start, (size_t)size, region->end) : NULL;
		int modelled = 0; /* the first model that knows the allocation gives its edges */
		for (size_t m = 0; m < builder->model_count && modelled == 0; m++)
			if (builder->models[m].edges)
				modelled = builder->models[m].edges(builder->models[m].context, node,
								    bytes, &emitter);
		if (modelled != 0) {
			result = modelled < 0 ? -1 : 0;
			end_row(builder);
			continue;
		}
		/* a block the runtime's model does not know (a C structure of the interpreter, a
		   parser's arena, a buffer) holds the runtime's objects the way memory roots do: its
		   references are counted in the objects' reference counts, and the stale pointers such
		   blocks keep (an arena's old nodes) must not keep garbage alive */
		builder->in_memory_roots = builder->model_count > 0;
		const struct dwarf_struct *layout = bytes ? node_layout(builder, node) : NULL;
		if (layout)
			result = scan_struct(builder, bytes, (size_t)size, layout);
		else if (bytes)
			result = scan_words(builder, bytes, (size_t)size, 0);
		else
			result = scan_range(builder, start, start + size);
		builder->in_memory_roots = false;
		end_row(builder);
	}
	address_cursor_free(&cursor);
	return result;
}

/* ---- roots ----------------------------------------------------------------------------------- */

static int begin_root(struct builder *builder, enum root_kind kind, const char *name)
{
	struct graph *graph = builder->graph;
	void *grown = array_grow(graph->roots, &builder->root_capacity, graph->root_count,
				 sizeof *graph->roots, 256);
	if (grown == NULL)
		return -1;
	graph->roots = grown;
	/* its row, and the super-root's after all, need room in starts */
	size_t needed = graph->heap_nodes + graph->root_count + 3;
	if (needed > graph->starts_capacity) {
		void *grown = big_array_grow(graph->starts, &graph->starts_capacity,
					     sizeof *graph->starts, needed);
		if (grown == NULL)
			return -1;
		graph->starts = grown;
	}
	struct graph_root *root = &graph->roots[graph->root_count++];
	root->kind = kind;
	root->view = false;
	/* (a root's name may hold the process's text: a global's key, a thread's name) */
	visible_text(name, root->name, sizeof root->name);
	return 0;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* Names the root a module data word belongs to: its symbol, or the module. */
static void data_root_name(struct builder *builder, uint64_t address, const char *module,
			   char *name, size_t size, enum root_kind *kind)
{
	const char *symbol_module, *symbol;
	uint64_t offset;
	bool local = false;
	if (symbols_lookup_address_local(builder->symbols, address, &symbol_module, &symbol, &offset,
					 &local)) {
		*kind = local ? ROOT_STATIC : ROOT_GLOBAL;
		char demangled[160];
		if (types_demangle(symbol, demangled, sizeof demangled))
			symbol = demangled;
		if (local)
			snprintf(name, size, "static %s (%s)", symbol, base_name(symbol_module));
		else
			snprintf(name, size, "global %s", symbol);
	} else {
		/* no symbol covers it (a stripped executable): the section and the offset say
		   where, as `objdump -h` and the binary's own build would find it again, and the
		   nearest symbol before it in that section (.dynsym's exports survive strip) */
		const char *section_module, *section, *near = NULL;
		*kind = ROOT_DATA;
		if (symbols_lookup_section(builder->symbols, address, &section_module, &section,
					   &offset, &near)) {
			char demangled[160];
			if (near && types_demangle(near, demangled, sizeof demangled))
				near = demangled;
			snprintf(name, size, "data of %s at %s+0x%llx%s%s", base_name(section_module),
				 section, (unsigned long long)offset, near ? " near " : "",
				 near ? near : "");
		} else
			snprintf(name, size, "data of %s", base_name(module));
	}
}

/* Module data: each pointer word becomes an edge of the root named after the symbol covering it;
 * consecutive words of one symbol share a root. */
static int scan_module_data(struct builder *builder, uint64_t start, uint64_t end,
			    const char *module)
{
	uint8_t *chunk = builder->chunk;
	char current[192] = "", name[192];
	for (uint64_t at = (start + 7) & ~7ull; at < end; at += SCAN_CHUNK) {
		size_t size = end - at < SCAN_CHUNK ? (size_t)(end - at) : SCAN_CHUNK;
		if (address_space_read(builder->space, at, chunk, size, NULL) != 0)
			continue;
		for (size_t k = 0; k + 8 <= size; k += 8) {
			uint64_t word;
			memcpy(&word, chunk + k, 8);
			uint32_t target = node_at(builder, word);
			if (target == GRAPH_NONE ||
			    heap_is_bookkeeping(builder->graph->heap, at + k))
				continue;
			enum root_kind kind;
			data_root_name(builder, at + k, module, name, sizeof name, &kind);
			if (strcmp(name, current) != 0) {
				if (current[0])
					end_row(builder);
				if (begin_root(builder, kind, name) != 0)
					return -1;
				snprintf(current, sizeof current, "%s", name);
			}
			if (add_edge(builder, target, (uint32_t)k) != 0)
				return -1;
		}
	}
	if (current[0])
		end_row(builder);
	return 0;
}

static bool is_module_path(struct snapshot *snapshot, const char *path)
{
	size_t count;
	const struct snapshot_module *modules = snapshot_modules(snapshot, &count);
	for (size_t i = 0; i < count; i++)
		if (strcmp(modules[i].path, path) == 0)
			return true;
	return false;
}

static uint64_t node_start(const struct graph *graph, size_t node)
{
	return graph->heap->allocations[node].address;
}

static uint64_t node_end(const struct graph *graph, size_t node)
{
	const struct allocation *allocation = &graph->heap->allocations[node];
	return allocation->address + (allocation->size ? allocation->size : 1);
}

static bool contains_allocation(const struct builder *builder, uint64_t start, uint64_t end)
{
	size_t low = 0, high = builder->graph->heap_nodes;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		if (node_end(builder->graph, mid) <= start)
			low = mid + 1;
		else
			high = mid;
	}
	return low < builder->graph->heap_nodes && node_start(builder->graph, low) < end;
}

/* Scans [start, end) but for the ranges a runtime model reads itself and the allocator's
 * bookkeeping. */
static int scan_unclaimed(struct builder *builder, uint64_t start, uint64_t end)
{
	const struct heap *heap = builder->graph->heap;
	size_t model_claimed = builder->claimed_count;
	while (start < end) {
		uint64_t piece_end = end, next = end;
		/* the model's ranges, then the allocator's bookkeeping (jemalloc's metadata) */
		for (size_t i = 0; i < model_claimed + heap->bookkeeping_count; i++) {
			uint64_t claimed_start = i < model_claimed
							 ? builder->claimed[i].start
							 : heap->bookkeeping[i - model_claimed].start;
			uint64_t claimed_end = i < model_claimed
						       ? builder->claimed[i].end
						       : heap->bookkeeping[i - model_claimed].end;
			if (claimed_start <= start && claimed_end > start) {
				piece_end = start; /* start is inside: skip to its end */
				next = claimed_end;
				break;
			}
			if (claimed_start > start && claimed_start < piece_end) {
				piece_end = claimed_start;
				next = claimed_start;
			}
		}
		if (piece_end > start && scan_range(builder, start, piece_end) != 0)
			return -1;
		start = next > start ? next : end;
	}
	return 0;
}

/* Whether a mapping is the stack of a thread that has ended, which glibc keeps for reuse (its
 * stack cache, or, in a forked child, the stacks of the parent's other threads): its words are
 * stale, and taken for roots they would keep alive what the program lost. glibc puts a thread's
 * descriptor at the top of its stack, starting with the TCB header, whose `tcb` and `self` words
 * point at itself; a live thread's FS base is its descriptor. */
static bool is_dead_thread_stack(struct builder *builder, const struct snapshot_region *region,
				 const struct snapshot_thread *threads, size_t thread_count)
{
	uint64_t tail = region->end - region->start < DEAD_STACK_TAIL ? region->end - region->start
								       : DEAD_STACK_TAIL;
	uint64_t from = region->end - tail;
	if (tail < 64 || address_space_read(builder->space, from, builder->chunk, (size_t)tail,
					    NULL) != 0)
		return false;
	const uint8_t *bytes = builder->chunk;
	for (uint64_t at = tail; at >= 64;) {
		at -= 64; /* (descriptors are 64-byte aligned) */
		uint64_t tcb, self, address = from + at;
		memcpy(&tcb, bytes + at, 8);
		memcpy(&self, bytes + at + 16, 8);
		if (tcb != address || self != address)
			continue;
		for (size_t t = 0; t < thread_count; t++)
			if (threads[t].registers.fs_base == address)
				return false;
		return true;
	}
	return false;
}

/* The roots each model declares: its own (first, so that a shortest path names them rather
 * than the C structures that also lead there), or its late ones (after the memory's). */
static int scan_model_roots(struct builder *builder, bool late)
{
	int result = 0;
	for (size_t m = 0; m < builder->model_count && result == 0; m++) {
		int (*roots)(void *context, struct graph_emitter *emitter) =
			late ? builder->models[m].late_roots : builder->models[m].roots;
		if (roots == NULL)
			continue;
		struct graph_emitter emitter = {builder};
		result = roots(builder->models[m].context, &emitter);
		if (builder->root_open)
			end_row(builder);
		builder->root_open = false;
	}
	return result;
}

/* The snapshot's regions as the scan of memory roots goes through them: which a root has taken
 * whole, and how far a module's data reached into each. */
struct root_regions {
	struct snapshot *snapshot;
	const struct snapshot_region *regions;
	size_t count;
	bool *claimed;
	uint64_t *scanned_to;
};

/* Module data and, right after it, the module's .bss. */
static int scan_module_data_roots(struct builder *builder, struct root_regions *scan)
{
	const struct snapshot_region *regions = scan->regions;
	int result = 0;
	for (size_t i = 0; i < scan->count && result == 0; i++) {
		const struct snapshot_region *region = &regions[i];
		const char *module = region->path;
		if (module == NULL && i > 0 && regions[i - 1].path &&
		    regions[i - 1].end == region->start &&
		    is_module_path(scan->snapshot, regions[i - 1].path))
			module = regions[i - 1].path;
		if (module == NULL || !(region->flags & PF_W) || !is_module_path(scan->snapshot, module))
			continue;
		uint64_t end = region->end;
		if (region->path == NULL) {
			/* an anonymous mapping right after a module is its .bss only up to where
			 * its image ends; beyond, it is some other mapping that happens to follow */
			uint64_t image_end = symbols_module_image_end(builder->symbols, module);
			if (image_end && image_end < end)
				end = image_end > region->start ? image_end : region->start;
		}
		if (end == region->end)
			scan->claimed[i] = true;
		scan->scanned_to[i] = end;
		if (end > region->start)
			result = scan_module_data(builder, region->start, end, module);
	}
	return result;
}

/* One thread's roots: its stack from the stack pointer up, its registers, its thread-local
 * storage. */
static int scan_thread_roots(struct builder *builder, struct root_regions *scan,
			     const struct snapshot_thread *thread)
{
	char name[192];
	const char *thread_name = thread->name[0] ? thread->name : "?";
	const struct snapshot_region *stack =
		snapshot_find_region(scan->snapshot, thread->registers.rsp);
	const char *module, *function = NULL;
	uint64_t offset;
	symbols_lookup_address(builder->symbols, thread->registers.rip, &module, &function, &offset);
	uint64_t stack_start = 0, stack_end = 0;
	if (stack) {
		scan->claimed[stack - scan->regions] = true;
		stack_start = thread->registers.rsp - STACK_RED_ZONE;
		if (stack_start < stack->start)
			stack_start = stack->start;
		stack_end = stack->end;
		if (function)
			snprintf(name, sizeof name, "thread %d (%s) stack, in %s()", thread->tid,
				 thread_name, function);
		else
			snprintf(name, sizeof name, "thread %d (%s) stack", thread->tid, thread_name);
		if (begin_root(builder, ROOT_STACK, name) != 0 ||
		    scan_range(builder, stack_start, stack_end) != 0)
			return -1;
		end_row(builder);
	}
	snprintf(name, sizeof name, "thread %d (%s) registers", thread->tid, thread_name);
	int result = begin_root(builder, ROOT_REGISTERS, name);
	const uint64_t *words = (const uint64_t *)&thread->registers;
	for (size_t k = 0; result == 0 && k < sizeof thread->registers / 8; k++) {
		uint32_t target = node_at(builder, words[k]);
		if (target != GRAPH_NONE)
			result = add_edge(builder, target, (uint32_t)(k * 8));
	}
	end_row(builder);
	uint64_t tls = thread->registers.fs_base;
	const struct snapshot_region *tls_region = snapshot_find_region(scan->snapshot, tls);
	if (result == 0 && tls_region && !(tls >= stack_start && tls < stack_end)) {
		scan->claimed[tls_region - scan->regions] = true;
		uint64_t from = tls - tls_region->start > TLS_BELOW ? tls - TLS_BELOW
								      : tls_region->start;
		uint64_t to = tls_region->end - tls > TLS_ABOVE ? tls + TLS_ABOVE : tls_region->end;
		snprintf(name, sizeof name, "thread %d (%s) TLS", thread->tid, thread_name);
		result = begin_root(builder, ROOT_TLS, name) || scan_range(builder, from, to);
		end_row(builder);
	}
	return result;
}

/* Any other writable memory the program mapped itself and no allocator owns, but the stacks
 * glibc keeps of threads that ended. */
static int scan_unclaimed_mappings(struct builder *builder, struct root_regions *scan,
				   const struct snapshot_thread *threads, size_t thread_count)
{
	char name[192];
	int result = 0;
	for (size_t i = 0; i < scan->count && result == 0; i++) {
		const struct snapshot_region *region = &scan->regions[i];
		if (scan->claimed[i] || region->path != NULL || !(region->flags & PF_W) ||
		    region->data_size == 0 || contains_allocation(builder, region->start, region->end) ||
		    is_dead_thread_stack(builder, region, threads, thread_count))
			continue;
		uint64_t start = scan->scanned_to[i] > region->start ? scan->scanned_to[i]
								      : region->start;
		snprintf(name, sizeof name, "mapping 0x%llx-0x%llx", (unsigned long long)start,
			 (unsigned long long)region->end);
		result = begin_root(builder, ROOT_MAPPING, name) ||
			 scan_unclaimed(builder, start, region->end);
		end_row(builder);
	}
	return result;
}

static int scan_roots(struct builder *builder)
{
	struct root_regions scan = {.snapshot = address_space_snapshot(builder->space)};
	size_t thread_count;
	scan.regions = snapshot_regions(scan.snapshot, &scan.count);
	const struct snapshot_thread *threads = snapshot_threads(scan.snapshot, &thread_count);
	scan.claimed = calloc(scan.count + 1, sizeof *scan.claimed);
	scan.scanned_to = calloc(scan.count + 1, sizeof *scan.scanned_to); /* by module data */
	if (scan.claimed == NULL || scan.scanned_to == NULL) {
		free(scan.claimed);
		free(scan.scanned_to);
		return -1;
	}
	int result = scan_model_roots(builder, false);
	builder->in_memory_roots = true;
	if (result == 0)
		result = scan_module_data_roots(builder, &scan);
	for (size_t t = 0; t < thread_count && result == 0; t++)
		result = scan_thread_roots(builder, &scan, &threads[t]);
	if (result == 0)
		result = scan_unclaimed_mappings(builder, &scan, threads, thread_count);
	builder->in_memory_roots = false;
	if (result == 0)
		result = scan_model_roots(builder, true);
	free(scan.claimed);
	free(scan.scanned_to);
	return result;
}

/* ---- analysis -------------------------------------------------------------------------------- */

/* Without dominators: what the super-root reaches, depth-first. */
static int mark_reached(struct graph *graph)
{
	size_t capacity = 0, depth = 0;
	uint32_t *stack = array_grow(NULL, &capacity, 0, sizeof *stack, 1024);
	graph->reached = calloc(graph->node_count, 1);
	if (stack == NULL || graph->reached == NULL) {
		free(stack);
		return -1;
	}
	stack[depth++] = graph->super_root;
	graph->reached[graph->super_root] = 1;
	while (depth > 0) {
		uint32_t v = stack[--depth];
		for (uint64_t e = graph->starts[v]; e < graph->starts[v + 1]; e++) {
			uint32_t w = graph->targets[e];
			if (graph->reached[w])
				continue;
			graph->reached[w] = 1;
			if (depth == capacity) {
				void *grown = array_grow(stack, &capacity, depth, sizeof *stack, 1024);
				if (grown == NULL) {
					free(stack);
					return -1;
				}
				stack = grown;
			}
			stack[depth++] = w;
		}
	}
	free(stack);
	return 0;
}

static int analyse(struct graph *graph, bool dominators)
{
	size_t n = graph->node_count;
	if (!dominators)
		return mark_reached(graph);
	/* one array at a time, each freed before the next is made, to keep the peak low */
	graph->idom = malloc(n * sizeof *graph->idom);
	uint32_t *order = malloc(n * sizeof *order);
	size_t order_count = 0;
	struct csr_graph csr = {n, graph->starts, graph->targets};
	if (graph->idom == NULL || order == NULL ||
	    dominators_compute(&csr, graph->super_root, graph->idom, order, &order_count) != 0 ||
	    (graph->retained = malloc(n * sizeof *graph->retained)) == NULL) {
		free(order);
		return -1;
	}
	/* retained size: a node's own bytes plus those of the nodes it immediately dominates,
	 * accumulated in reverse preorder (every node after its dominator) */
	for (size_t v = 0; v < n; v++)
		graph->retained[v] = graph_node_size(graph, (uint32_t)v);
	for (size_t i = order_count; i-- > 1;) {
		uint32_t v = order[i];
		graph->retained[graph->idom[v]] += graph->retained[v];
	}
	free(order);
	return 0;
}

/* A depth-first walk of the dominator tree (children listed by counting their idom), with a
 * count per key of the nodes on the current branch: a node is dominated by one of its key exactly
 * when that count is not zero as the walk enters it. */
int graph_mark_same_key_dominated(const struct graph *graph, graph_node_key key, void *context,
				  uint8_t *marks)
{
	size_t n = graph->node_count;
	memset(marks, 0, graph->heap_nodes);
	uint32_t *first = calloc(n + 2, sizeof *first), *children = malloc((n + 1) * sizeof *children);
	struct frame {
		uint32_t node, key, next; /* next: index into children */
	} *stack = NULL;
	uint32_t *active = NULL; /* per key: nodes of that key on the current branch */
	size_t stack_capacity = 0, active_capacity = 0, depth = 0;
	int result = -1;
	if (first == NULL || children == NULL)
		goto done;
	for (size_t v = 0; v < n; v++)
		if (graph->idom[v] != GRAPH_NONE && v != graph->super_root)
			first[graph->idom[v] + 2]++;
	for (size_t v = 2; v < n + 2; v++)
		first[v] += first[v - 1];
	for (size_t v = 0; v < n; v++)
		if (graph->idom[v] != GRAPH_NONE && v != graph->super_root)
			children[first[graph->idom[v] + 1]++] = (uint32_t)v;
	/* now first[v] .. first[v + 1] are v's children */
	stack = array_grow(NULL, &stack_capacity, 0, sizeof *stack, 1024);
	if (stack == NULL)
		goto done;
	stack[depth++] = (struct frame){graph->super_root, 0, first[graph->super_root]};
	while (depth > 0) {
		struct frame *top = &stack[depth - 1];
		if (top->next == first[top->node + 1]) {
			if (top->key)
				active[top->key]--;
			depth--;
			continue;
		}
		uint32_t child = children[top->next++];
		uint32_t child_key = child < graph->heap_nodes ? key(context, child) : 0;
		if (child_key) {
			if (child_key >= active_capacity) {
				size_t capacity = active_capacity;
				void *grown = array_grow(active, &capacity, child_key, sizeof *active,
							 child_key + 1);
				if (grown == NULL)
					goto done;
				memset((uint32_t *)grown + active_capacity, 0,
				       (capacity - active_capacity) * sizeof *active);
				active = grown;
				active_capacity = capacity;
			}
			marks[child] = active[child_key] != 0;
			active[child_key]++;
		}
		if (depth == stack_capacity) {
			void *grown = array_grow(stack, &stack_capacity, depth, sizeof *stack, 1024);
			if (grown == NULL)
				goto done;
			stack = grown;
		}
		stack[depth++] = (struct frame){child, child_key, first[child]};
	}
	result = 0;
done:
	free(first);
	free(children);
	free(stack);
	free(active);
	return result;
}

/* One view of what the models say per allocation and of the ranges they claim: a single
 * model's own arrays, or the models' merged (an allocation is one model's object at most, so
 * the largest header and any "not from memory roots" is its model's word). -1: out of memory. */
static int merge_models(struct builder *builder, size_t nodes)
{
	const struct graph_model *models = builder->models;
	size_t with_headers = 0, with_roots = 0, claimed = 0;
	for (size_t m = 0; m < builder->model_count; m++) {
		with_headers += models[m].header_bytes != NULL;
		with_roots += models[m].not_from_memory_roots != NULL;
		claimed += models[m].claimed_count;
		if (models[m].header_bytes)
			builder->header_bytes = models[m].header_bytes;
		if (models[m].not_from_memory_roots)
			builder->not_from_memory_roots = models[m].not_from_memory_roots;
	}
	if (with_headers > 1 || with_roots > 1) {
		builder->merged = calloc(2 * nodes + 1, 1);
		if (builder->merged == NULL)
			return -1;
		uint8_t *headers = builder->merged, *not_from_roots = builder->merged + nodes;
		for (size_t m = 0; m < builder->model_count; m++)
			for (size_t i = 0; i < nodes; i++) {
				if (models[m].header_bytes && models[m].header_bytes[i] > headers[i])
					headers[i] = models[m].header_bytes[i];
				if (models[m].not_from_memory_roots &&
				    models[m].not_from_memory_roots[i])
					not_from_roots[i] |= models[m].not_from_memory_roots[i] &
								     GRAPH_RUNTIME_PART
								     ? GRAPH_RUNTIME_PART
								     : 1;
			}
		builder->header_bytes = with_headers ? headers : NULL;
		builder->not_from_memory_roots = with_roots ? not_from_roots : NULL;
	}
	if (claimed > 0) {
		builder->claimed = malloc(claimed * sizeof *builder->claimed);
		if (builder->claimed == NULL)
			return -1;
		for (size_t m = 0; m < builder->model_count; m++)
			for (size_t i = 0; i < models[m].claimed_count; i++)
				builder->claimed[builder->claimed_count++] = models[m].claimed[i];
	}
	return 0;
}

int graph_build(struct graph *graph, struct address_space *space, struct symbols *symbols,
		const struct heap *heap, const struct type_names *types,
		const struct graph_model *models, size_t model_count, struct warnings *warnings,
		struct hs_error *err)
{
	memset(graph, 0, sizeof *graph);
	graph->heap = heap;
	struct builder builder = {.graph = graph, .space = space, .symbols = symbols,
				  .warnings = warnings, .types = types, .models = models,
				  .model_count = model_count};
	size_t nodes = heap->count;
	if (nodes >= GRAPH_NONE / 2)
		return hs_error_set(err, "%zu allocations are more than the graph can hold", nodes);
	graph->heap_nodes = nodes;
	/* rows for heap nodes now; begin_root makes room for the roots' */
	graph->starts = big_array_grow(NULL, &graph->starts_capacity, sizeof *graph->starts,
				       nodes + 3);
	builder.chunk = malloc(SCAN_CHUNK);
	int result = -1;
	if (builder.chunk == NULL || graph->starts == NULL || merge_models(&builder, nodes) != 0)
		goto done;
	builder.lowest = nodes ? heap->allocations[0].address : UINT64_MAX;
	graph->starts[0] = 0;
	struct graph_emitter emitter = {&builder};
	for (size_t m = 0; m < model_count; m++)
		if (models[m].prepare && models[m].prepare(models[m].context, &emitter) != 0)
			goto done;
	if (scan_heap_nodes(&builder) != 0 || scan_roots(&builder) != 0)
		goto done;
	/* the super-root points at every root */
	graph->super_root = (uint32_t)(nodes + graph->root_count);
	graph->node_count = nodes + graph->root_count + 1;
	for (size_t r = 0; r < graph->root_count; r++)
		if (add_edge(&builder, (uint32_t)(nodes + r), 0) != 0)
			goto done;
	end_row(&builder);
	result = 0;
done:
	free(builder.chunk);
	free(builder.merged);
	free(builder.claimed);
	if (result != 0) {
		graph_free(graph);
		if (builder.too_many)
			return hs_error_set(err, "the heap holds more than 4 billion references: more "
						 "than the object graph can hold");
		return hs_error_nomem(err, "building the object graph");
	}
	return 0;
}

int graph_analyse(struct graph *graph, bool dominators, struct hs_error *err)
{
	if (analyse(graph, dominators) != 0) {
		graph_free(graph);
		return hs_error_nomem(err, "analysing the object graph");
	}
	return 0;
}

void graph_free(struct graph *graph)
{
	free(graph->roots);
	big_array_free(graph->starts, graph->starts_capacity, sizeof *graph->starts);
	big_array_free(graph->targets, graph->targets_capacity, sizeof *graph->targets);
	big_array_free(graph->offsets, graph->offsets_capacity, sizeof *graph->offsets);
	string_table_free(&graph->labels);
	free(graph->idom);
	free(graph->retained);
	free(graph->reached);
	memset(graph, 0, sizeof *graph);
}
