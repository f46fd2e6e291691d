/* graph_build with the models of two runtimes in one process (analyze/graph/graph.h): each
 * allocation's edges come from the model that knows it, labelled as that model says, and only
 * those (its other words are not scanned); each model's roots are roots; each model's header
 * bytes and "not from memory roots" hold for its own objects, merged per allocation; an
 * allocation neither model knows is scanned word by word, and does not reach the objects memory
 * roots must not reach; the ranges both models claim are not scanned as a mapping of the
 * program's own. The heap is six blocks in a snapshot made here; the ground truth is the words
 * written into it. */
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <unistd.h>

#include "analyze/address_space.h"
#include "analyze/graph/graph.h"
#include "analyze/heap.h"
#include "analyze/module_files.h"
#include "analyze/symbols.h"
#include "common/warnings.h"
#include "formats/core_image.h"
#include "formats/snapshot.h"
#include "formats/snapshot_file.h"
#include "formats/snapshot_notes.h"
#include "test_util.h"

#define HEAP 0x10000000ull /* six blocks of 0x100 bytes, A0 to A5 */
#define BLOCK(i) (HEAP + 0x100ull * (i))
#define MAPPING 0x20000000ull /* memory the program mapped: two words claimed by model two */

static uint8_t heap_bytes[0x600], mapping_bytes[0x1000];

static void put(uint8_t *bytes, size_t offset, uint64_t word)
{
	memcpy(bytes + offset, &word, 8);
}

/* Model one knows A0 and A1 (A1: a 16-byte header, not reached from memory roots); model two A2
 * and A3 (A3: an 8-byte header). A4 and A5 are nobody's. */
struct model_one {
	int dummy;
};

static int one_edges(void *context, size_t index, const uint8_t *bytes,
		     struct graph_emitter *emitter)
{
	(void)context, (void)bytes;
	if (index == 0) /* A0 -> A1's object (after its header); A0's own words are not read */
		return graph_emit_edge(emitter, BLOCK(1) + 16,
				       graph_emit_label(emitter, "one.next")) == 0
			       ? 1
			       : -1;
	return index == 1 ? 1 : 0;
}

static int one_roots(void *context, struct graph_emitter *emitter)
{
	(void)context;
	return graph_emit_root(emitter, ROOT_RUNTIME, "one's root", false) ||
	       graph_emit_edge(emitter, BLOCK(0), GRAPH_NONE);
}

static int two_edges(void *context, size_t index, const uint8_t *bytes,
		     struct graph_emitter *emitter)
{
	(void)context, (void)bytes;
	if (index == 2) { /* A2 -> A3's object, and a pointer into A3's header: no edge */
		uint32_t label = graph_emit_label(emitter, "two.child");
		return graph_emit_edge(emitter, BLOCK(3) + 8, label) == 0 &&
			       graph_emit_edge(emitter, BLOCK(3) + 4, label) == 0
			       ? 1
			       : -1;
	}
	return index == 3 ? 1 : 0;
}

static int two_roots(void *context, struct graph_emitter *emitter)
{
	(void)context;
	return graph_emit_root(emitter, ROOT_RUNTIME, "two's root", false) ||
	       graph_emit_edge(emitter, BLOCK(2), GRAPH_NONE);
}

/* the edges of `node`: targets and labels ("" for an offset) */
static size_t edges_of(const struct graph *graph, uint32_t node, uint32_t *targets,
		       const char **labels, size_t max)
{
	size_t count = 0;
	for (uint32_t e = graph->starts[node]; e < graph->starts[node + 1] && count < max; e++) {
		targets[count] = graph->targets[e];
		const char *label = graph_edge_label(graph, e);
		labels[count++] = label ? label : "";
	}
	return count;
}

static int find_root(const struct graph *graph, const char *name)
{
	for (size_t r = 0; r < graph->root_count; r++)
		if (strcmp(graph->roots[r].name, name) == 0)
			return (int)r;
	return -1;
}

int main(void)
{
	char core[] = "/tmp/heapsnap-graph-models-XXXXXX";
	int fd = mkstemp(core);
	if (fd < 0)
		return 1;
	close(fd);
	/* A0's words point at A1 and A2 (not edges: model one gives A0's); A3's at A0 (not an edge:
	   model two gives A3's); A4, nobody's, points into A1 (not reached from memory roots) and
	   at A3's object (an edge); the mapping points at A5 (an edge from a mapping root) and, in
	   the range model two claims, at A4 (not scanned) */
	put(heap_bytes, 0x000 + 0x10, BLOCK(1) + 16);
	put(heap_bytes, 0x000 + 0x18, BLOCK(2));
	put(heap_bytes, 0x300 + 0x20, BLOCK(0));
	put(heap_bytes, 0x400 + 0x00, BLOCK(1) + 16);
	put(heap_bytes, 0x400 + 0x08, BLOCK(3) + 8);
	put(mapping_bytes, 0x00, BLOCK(5));
	put(mapping_bytes, 0x800, BLOCK(4));
	struct hs_error err;
	struct core_image image;
	core_image_init(&image);
	struct elf_prstatus status = {.pr_pid = 99};
	core_image_add_note(&image, "CORE", NT_PRSTATUS, &status, sizeof status, &err);
	struct snapshot_info info = {.pid = 99};
	strcpy(info.source, "import");
	snapshot_notes_add_info(&image, &info, &err);
	struct core_segment heap_segment = {PT_LOAD, PF_R | PF_W, HEAP, sizeof heap_bytes,
					    sizeof heap_bytes, 0x1000, heap_bytes, NULL};
	struct core_segment mapping_segment = {PT_LOAD, PF_R | PF_W, MAPPING, sizeof mapping_bytes,
					       sizeof mapping_bytes, 0x1000, mapping_bytes, NULL};
	core_image_add_segment(&image, &heap_segment, &err);
	core_image_add_segment(&image, &mapping_segment, &err);
	CHECK(snapshot_file_write(&image, core, NULL, NULL, NULL, &err) == 0, "%s", err.message);
	core_image_free(&image);

	struct snapshot *snapshot = snapshot_open(core, 0, &err);
	CHECK(snapshot != NULL, "open: %s", err.message);
	if (snapshot == NULL)
		return TEST_EXIT();
	struct warnings warnings = {0};
	struct address_space *space = address_space_new(snapshot, &warnings, &err);
	struct module_files files;
	module_files_init(&files, snapshot, NULL);
	address_space_set_module_files(space, &files);
	struct symbols *symbols = symbols_new(snapshot, NULL, &files, &warnings);
	struct heap heap = {0};
	for (int i = 0; i < 6; i++) {
		struct allocation block = {.address = BLOCK(i), .size = 0x100,
					   .state = ALLOCATION_LIVE, .place = PLACE_IN_USE};
		CHECK(heap_add(&heap, &block) == 0, "heap_add");
	}
	heap_finish(&heap);

	uint8_t one_headers[6] = {0, 16}, one_not_from_roots[6] = {0, 1};
	uint8_t two_headers[6] = {0, 0, 0, 8};
	uint8_t two_not_from_roots[6] = {0};
	struct graph_range claimed = {MAPPING + 0x800, MAPPING + 0x808};
	struct model_one context = {0};
	struct graph_model models[2] = {
		{.context = &context, .header_bytes = one_headers,
		 .not_from_memory_roots = one_not_from_roots, .edges = one_edges,
		 .roots = one_roots},
		{.context = &context, .header_bytes = two_headers,
		 .not_from_memory_roots = two_not_from_roots, .claimed = &claimed, .claimed_count = 1,
		 .edges = two_edges, .roots = two_roots},
	};
	struct graph graph;
	CHECK(graph_build(&graph, space, symbols, &heap, NULL, models, 2, &warnings, &err) == 0,
	      "graph_build: %s", err.message);
	uint32_t targets[16];
	const char *labels[16];
	size_t count = edges_of(&graph, 0, targets, labels, 16);
	CHECK(count == 1 && targets[0] == 1 && strcmp(labels[0], "one.next") == 0,
	      "A0: one edge, model one's, to A1 (%zu edges)", count);
	CHECK(edges_of(&graph, 1, targets, labels, 16) == 0, "A1: model one gives it no edge");
	count = edges_of(&graph, 2, targets, labels, 16);
	CHECK(count == 1 && targets[0] == 3 && strcmp(labels[0], "two.child") == 0,
	      "A2: one edge, model two's, to A3; none into A3's header (%zu edges)", count);
	CHECK(edges_of(&graph, 3, targets, labels, 16) == 0,
	      "A3: model two gives it no edge, its words are not scanned");
	count = edges_of(&graph, 4, targets, labels, 16);
	CHECK(count == 1 && targets[0] == 3 && strcmp(labels[0], "") == 0,
	      "A4, nobody's, scanned: an edge to A3's object, none to A1 (not from memory roots): "
	      "%zu edges, first to %u",
	      count, count ? targets[0] : 0);
	int one = find_root(&graph, "one's root"), two = find_root(&graph, "two's root");
	CHECK(one >= 0 && two >= 0, "both models' roots");
	if (one >= 0 && two >= 0) {
		count = edges_of(&graph, (uint32_t)(graph.heap_nodes + (size_t)one), targets, labels,
				 16);
		CHECK(count == 1 && targets[0] == 0, "one's root holds A0");
		count = edges_of(&graph, (uint32_t)(graph.heap_nodes + (size_t)two), targets, labels,
				 16);
		CHECK(count == 1 && targets[0] == 2, "two's root holds A2");
	}
	bool mapping_found = false;
	for (size_t r = 0; r < graph.root_count; r++) {
		if (graph.roots[r].kind != ROOT_MAPPING)
			continue;
		mapping_found = true;
		count = edges_of(&graph, (uint32_t)(graph.heap_nodes + r), targets, labels, 16);
		CHECK(count == 1 && targets[0] == 5,
		      "the mapping holds A5, and not A4 (in the range model two claims): %zu edges",
		      count);
	}
	CHECK(mapping_found, "the program's mapping is a root");
	graph_free(&graph);

	/* the same with model one alone: A2 is scanned as memory (its words point nowhere), and
	   A0's edge stays model one's */
	CHECK(graph_build(&graph, space, symbols, &heap, NULL, models, 1, &warnings, &err) == 0,
	      "graph_build: %s", err.message);
	count = edges_of(&graph, 0, targets, labels, 16);
	CHECK(count == 1 && targets[0] == 1, "one model: A0's edge is model one's");
	count = edges_of(&graph, 3, targets, labels, 16);
	CHECK(count == 1 && targets[0] == 0,
	      "one model: A3 is nobody's, scanned, its word pointing at A0 an edge (%zu)", count);
	graph_free(&graph);

	heap_free(&heap);
	symbols_free(symbols);
	address_space_free(space);
	snapshot_close(snapshot);
	warnings_free(&warnings);
	unlink(core);
	return TEST_EXIT();
}
