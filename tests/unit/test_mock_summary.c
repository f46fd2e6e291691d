/* The summary of a synthetic glibc heap (mock_snapshot.h), checked against numbers worked out by
 * hand from its layout: the glibc walker's live and free chunks, the types (a C++ class by its
 * vtable, the rest by size), what the one root retains, the blocks no root reaches and the cycle
 * among them, and the retaining path of a block two steps from its root. The heap, in the order
 * its chunks lie (malloc(n) gives a chunk of n + 8 bytes, rounded up to 16):
 *
 *     global all_items -> Item a -> Item b -> Item c     3 x 40 bytes (chunks of 48)
 *                         Item a -> buffer               24 bytes (chunk of 32)
 *     x <-> y, reached by no root                        2 x 56 bytes (chunks of 64)
 *     leaked, reached by no root, pointing nowhere       104 bytes (chunk of 112)
 *     two chunks freed: 200 and 24 bytes, in the unsorted bin
 *     the top chunk: the rest of the 0x21000-byte heap
 *
 * An Item is {vtable pointer, next, detail, 16 bytes}. Then, each in a process of a few lines: a
 * block held from a thread's stack, C structs typed from the program's DWARF, and a layout malloc
 * could not have made. */
#include <string.h>

#include "analyze/graph/cycles.h"
#include "analyze/graph/paths.h"
#include "analyze/reports/summary.h"
#include "mock_snapshot.h"
#include "test_util.h"

#define PROGRAM 0x555555554000ull
#define ITEM_VTABLE (PROGRAM + 0x100)
#define ALL_ITEMS (PROGRAM + 0x3010)
#define LIBC 0x7ffff7dc0000ull
#define HEAP 0x555555560000ull
#define HEAP_SIZE 0x21000ull

struct blocks {
	uint64_t a, buffer, freed_big, b, x, freed_small, c, y, leaked;
};

static struct analysis *build(struct mock_snapshot *mock, struct blocks *blocks)
{
	struct mock_module *program = mock_module_add(mock, "program", PROGRAM);
	mock_segment_add(mock, PROGRAM, 0x1000, PF_R, program);
	mock_segment_add(mock, PROGRAM + 0x3000, 0x1000, PF_R | PF_W, program);
	uint64_t item = mock_class_add(program, "Item", ITEM_VTABLE);
	mock_symbol_add(program, "all_items", ALL_ITEMS, 8, false);
	struct mock_glibc glibc;
	mock_glibc_init(&glibc, mock, 36, LIBC, HEAP, HEAP_SIZE);
	struct blocks *k = blocks;
	k->a = mock_malloc(&glibc, 40);
	k->buffer = mock_malloc(&glibc, 24);
	k->freed_big = mock_malloc(&glibc, 200);
	k->b = mock_malloc(&glibc, 40);
	k->x = mock_malloc(&glibc, 56);
	k->freed_small = mock_malloc(&glibc, 24);
	k->c = mock_malloc(&glibc, 40);
	k->y = mock_malloc(&glibc, 56);
	k->leaked = mock_malloc(&glibc, 104);
	mock_free(&glibc, k->freed_big);
	mock_free(&glibc, k->freed_small);
	uint64_t items[] = {k->a, k->b, k->c};
	for (size_t i = 0; i < 3; i++) {
		mock_write_u64(mock, items[i], item);
		mock_write_u64(mock, items[i] + 8, i < 2 ? items[i + 1] : 0);
	}
	mock_write_u64(mock, k->a + 16, k->buffer);
	mock_write_u64(mock, ALL_ITEMS, k->a);
	mock_write_u64(mock, k->x, k->y);
	mock_write_u64(mock, k->y + 8, k->x);
	mock_glibc_finish(&glibc);
	struct hs_error err;
	struct analysis *analysis = mock_snapshot_analyse(mock, "summary.snap", &err);
	CHECK(analysis != NULL, "%s", err.message);
	return analysis;
}

static size_t allocation_at(const struct analysis *analysis, uint64_t address)
{
	const struct allocation *found = heap_find(&analysis->heap, address);
	return found && found->address == address ? (size_t)(found - analysis->heap.allocations)
						  : SIZE_MAX;
}

/* The walk: every chunk laid out, live or free, with malloc's usable sizes. */
static void check_heap(const struct analysis *analysis, const struct blocks *blocks)
{
	const struct heap *heap = &analysis->heap;
	CHECK(heap->allocator_count == 1 && strcmp(heap->allocators[0].version, "2.36") == 0,
	      "glibc version '%s'", heap->allocators[0].version);
	CHECK(heap->arena_count == 1 && strcmp(heap->arenas[0].kind, "main") == 0, "%zu arenas",
	      heap->arena_count);
	if (heap->arena_count != 1)
		return;
	const struct heap_arena *arena = &heap->arenas[0];
	CHECK(arena->address == LIBC + 0x100, "main_arena at 0x%llx",
	      (unsigned long long)arena->address);
	CHECK(arena->live_count == 7, "%llu live blocks", (unsigned long long)arena->live_count);
	CHECK(arena->live_bytes == 3 * 40 + 24 + 2 * 56 + 104, "%llu live bytes",
	      (unsigned long long)arena->live_bytes);
	/* the top chunk starts past the nine chunks: 3 x 48 + 2 x 32 + 208 + 2 x 64 + 112 */
	uint64_t top_chunk = HEAP_SIZE - 656;
	CHECK(arena->free_count == 3, "%llu free chunks (two freed, the top)",
	      (unsigned long long)arena->free_count);
	CHECK(arena->top_bytes == top_chunk - 8, "top %llu", (unsigned long long)arena->top_bytes);
	CHECK(arena->free_bytes == 200 + 24 + top_chunk - 8, "%llu free bytes",
	      (unsigned long long)arena->free_bytes);
	size_t freed = allocation_at(analysis, blocks->freed_big);
	CHECK(freed != SIZE_MAX && heap->allocations[freed].state == ALLOCATION_FREE &&
		      heap->allocations[freed].place == PLACE_FREE_LIST &&
		      heap->allocations[freed].size == 200,
	      "the freed 200-byte chunk");
	CHECK(heap->damage.spots == 0, "%llu damaged spots", (unsigned long long)heap->damage.spots);
	CHECK(analysis->warnings.count == 0, "%zu warnings, the first: %s", analysis->warnings.count,
	      analysis->warnings.count ? analysis->warnings.items[0] : "");
}

static const struct type_group *group_of(const struct type_group *groups, size_t count,
					 const char *type, uint64_t size)
{
	for (size_t i = 0; i < count; i++)
		if (type ? groups[i].type && strcmp(groups[i].type, type) == 0
			 : groups[i].type == NULL && groups[i].size == size)
			return &groups[i];
	return NULL;
}

static void check_summary(const struct analysis *analysis)
{
	struct heap_summary summary;
	struct hs_error err;
	CHECK(heap_summary_build(analysis, &summary, &err) == 0, "%s", err.message);
	const struct type_group *items = group_of(summary.types, summary.type_count, "Item", 0);
	CHECK(items && items->count == 3 && items->bytes == 120, "3 Items of 40 bytes");
	/* the first Item retains the others and the buffer: a type's retained bytes count each
	   byte once */
	CHECK(items && items->retained == 144, "Items retain %llu",
	      items ? (unsigned long long)items->retained : 0ull);
	const struct type_group *buffers = group_of(summary.types, summary.type_count, NULL, 24);
	CHECK(buffers && buffers->count == 1 && buffers->bytes == 24, "one untyped 24-byte block");
	CHECK(summary.type_count == 2, "%zu types reached (Item, size 24)", summary.type_count);
	CHECK(summary.reachable_bytes == 144, "reachable %llu",
	      (unsigned long long)summary.reachable_bytes);
	CHECK(summary.unreachable_objects == 3 && summary.unreachable_bytes == 216,
	      "unreachable: %llu blocks, %llu bytes", (unsigned long long)summary.unreachable_objects,
	      (unsigned long long)summary.unreachable_bytes);
	const struct type_group *pair =
		group_of(summary.unreachable, summary.unreachable_count, NULL, 56);
	CHECK(pair && pair->count == 2 && pair->bytes == 112, "the unreachable pair");
	const struct root_group *root = NULL;
	for (size_t i = 0; i < summary.root_count; i++)
		if (strcmp(summary.roots[i].name, "global all_items") == 0)
			root = &summary.roots[i];
	CHECK(root && root->retained == 144 && root->holds == 144 && root->objects == 1,
	      "global all_items retains %llu", root ? (unsigned long long)root->retained : 0ull);
	CHECK(summary.cycle_count == 1 && summary.cycles[0].count == 1 &&
		      summary.cycles[0].objects == 2 && summary.cycles[0].bytes == 112,
	      "%zu cycle shapes", summary.cycle_count);
	if (summary.cycle_count == 1)
		CHECK(strcmp(summary.cycles[0].text, "size 56 -> size 56 -> size 56") == 0, "cycle '%s'",
		      summary.cycles[0].text);
	heap_summary_free(&summary);
}

static void check_paths(const struct analysis *analysis, const struct blocks *blocks)
{
	struct hs_error err;
	struct path_index *index = path_index_build(&analysis->graph, &analysis->heap, &analysis->types,
						    analysis->same_type_dominated, false, &err);
	CHECK(index != NULL, "%s", err.message);
	if (index == NULL)
		return;
	struct path_shape shape;
	size_t buffer = allocation_at(analysis, blocks->buffer);
	CHECK(buffer != SIZE_MAX && path_of_allocation(index, buffer, &shape), "no path to buffer");
	if (buffer != SIZE_MAX && path_of_allocation(index, buffer, &shape)) {
		CHECK(shape.element_count == 3, "%zu steps", shape.element_count);
		CHECK(strcmp(shape.elements[0], "global all_items") == 0, "root '%s'",
		      shape.elements[0]);
		CHECK(strcmp(shape.elements[1], "Item") == 0, "through '%s'", shape.elements[1]);
		CHECK(strcmp(shape.elements[2], "size 24") == 0, "to '%s'", shape.elements[2]);
	}
	/* the Items: the list's head, and the two down the list, whose shape shows the chain once */
	struct path_shape shapes[4];
	size_t a = allocation_at(analysis, blocks->a);
	const char *item = a != SIZE_MAX ? analysis_type(analysis, a) : NULL; /* (interned) */
	size_t count = item ? paths_of_type(index, item, 0, NULL, NULL, shapes, 4) : 0;
	CHECK(count == 2 && shapes[0].count == 2 && shapes[1].count == 1, "%zu Item paths", count);
	if (count == 2) {
		CHECK(shapes[0].element_count == 3 &&
			      strcmp(shapes[0].elements[0], "global all_items") == 0 &&
			      strcmp(shapes[0].elements[1], "Item (repeated)") == 0 &&
			      strcmp(shapes[0].elements[2], "Item") == 0,
		      "down the list: '%s' '%s'", shapes[0].elements[1], shapes[0].elements[2]);
		CHECK(shapes[1].element_count == 2 && strcmp(shapes[1].elements[1], "Item") == 0,
		      "the head: %zu steps", shapes[1].element_count);
	}
	size_t x = allocation_at(analysis, blocks->x);
	CHECK(x != SIZE_MAX && !path_of_allocation(index, x, &shape), "a path to unreachable x");
	path_index_free(index);
}

/* A block held from a thread's stack only, in a process of a few lines: the stack is a root by the
 * thread's name, from its stack pointer up. */
static void check_stack_root(void)
{
	struct mock_snapshot *mock = mock_snapshot_new(NULL);
	if (mock == NULL)
		return;
	struct mock_module *program = mock_module_add(mock, "program", PROGRAM);
	mock_segment_add(mock, PROGRAM, 0x1000, PF_R, program);
	struct mock_glibc glibc;
	mock_glibc_init(&glibc, mock, 36, LIBC, HEAP, HEAP_SIZE);
	uint64_t held = mock_malloc(&glibc, 88), stack = 0x7ffffffde000ull;
	mock_glibc_finish(&glibc);
	mock_segment_add(mock, stack, 0x1000, PF_R | PF_W, NULL);
	mock_thread_add(mock, 4242, "main", stack + 0xf00, 0, 0);
	mock_write_u64(mock, stack + 0xf08, held);
	mock_write_u64(mock, stack + 0x100, held + 88); /* below the stack pointer: not a root */
	struct hs_error err;
	struct analysis *analysis = mock_snapshot_analyse(mock, "stack.snap", &err);
	CHECK(analysis != NULL, "%s", err.message);
	struct heap_summary summary;
	if (analysis && heap_summary_build(analysis, &summary, &err) == 0) {
		CHECK(summary.root_count >= 1 &&
			      strcmp(summary.roots[0].name, "thread 4242 (main) stack") == 0 &&
			      summary.roots[0].retained == 88,
		      "first root '%s'", summary.root_count ? summary.roots[0].name : "");
		CHECK(summary.reachable_bytes == 88 && summary.unreachable_objects == 0,
		      "reachable %llu", (unsigned long long)summary.reachable_bytes);
		heap_summary_free(&summary);
	}
	analysis_close(analysis);
	mock_snapshot_free(mock);
}

/* C structs from the program's DWARF: the blocks a typed global reaches through pointer members
 * are named by their struct, two structs of one size apart, and a member that is an integer is
 * not a reference even when its value is a block's address:
 *
 *     struct node { struct node *next; struct leaf *leaf; long value; };   (24 bytes)
 *     struct leaf { long a, b, c; };                                       (24 bytes)
 *     struct node *head -> node -> node; the first node's leaf -> leaf;
 *     the first node's value holds the address of a 40-byte block nothing points at */
static void check_c_types(void)
{
	struct mock_snapshot *mock = mock_snapshot_new(NULL);
	if (mock == NULL)
		return;
	struct mock_module *program = mock_module_add(mock, "program", PROGRAM);
	mock_segment_add(mock, PROGRAM, 0x1000, PF_R, program);
	mock_segment_add(mock, PROGRAM + 0x3000, 0x1000, PF_R | PF_W, program);
	struct mock_member node[] = {{"next", 0, "node"}, {"leaf", 8, "leaf"}, {"value", 16, NULL}};
	struct mock_member leaf[] = {{"a", 0, NULL}, {"b", 8, NULL}, {"c", 16, NULL}};
	mock_struct_add(program, "node", 24, node, 3);
	mock_struct_add(program, "leaf", 24, leaf, 3);
	mock_pointer_variable_add(program, "head", PROGRAM + 0x3020, "node");
	struct mock_glibc glibc;
	mock_glibc_init(&glibc, mock, 36, LIBC, HEAP, HEAP_SIZE);
	uint64_t first = mock_malloc(&glibc, 24), second = mock_malloc(&glibc, 24);
	uint64_t leaf_block = mock_malloc(&glibc, 24), lost = mock_malloc(&glibc, 40);
	mock_glibc_finish(&glibc);
	mock_write_u64(mock, PROGRAM + 0x3020, first);
	mock_write_u64(mock, first, second);
	mock_write_u64(mock, first + 8, leaf_block);
	mock_write_u64(mock, first + 16, lost);
	struct hs_error err;
	struct analysis *analysis = mock_snapshot_analyse(mock, "c_types.snap", &err);
	CHECK(analysis != NULL, "%s", err.message);
	struct heap_summary summary;
	if (analysis && heap_summary_build(analysis, &summary, &err) == 0) {
		const struct type_group *nodes =
			group_of(summary.types, summary.type_count, "struct node", 0);
		const struct type_group *leaves =
			group_of(summary.types, summary.type_count, "struct leaf", 0);
		CHECK(nodes && nodes->count == 2 && nodes->bytes == 48, "two struct nodes");
		CHECK(leaves && leaves->count == 1 && leaves->bytes == 24, "one struct leaf");
		CHECK(summary.type_count == 2, "%zu types", summary.type_count);
		CHECK(summary.unreachable_objects == 1 && summary.unreachable_bytes == 40,
		      "%llu unreachable", (unsigned long long)summary.unreachable_objects);
		CHECK(summary.root_count >= 1 && strcmp(summary.roots[0].name, "global head") == 0 &&
			      summary.roots[0].retained == 72,
		      "first root '%s'", summary.root_count ? summary.roots[0].name : "");
		heap_summary_free(&summary);
	}
	struct path_index *index = analysis ? path_index_build(&analysis->graph, &analysis->heap, &analysis->types,
						    analysis->same_type_dominated, false, &err) : NULL;
	struct path_shape shape = {0};
	size_t at = index ? allocation_at(analysis, leaf_block) : SIZE_MAX;
	CHECK(at != SIZE_MAX && path_of_allocation(index, at, &shape) && shape.element_count == 3 &&
		      strcmp(shape.elements[0], "global head") == 0 &&
		      strcmp(shape.elements[1], "struct node.leaf") == 0 &&
		      strcmp(shape.elements[2], "struct leaf") == 0,
	      "the path to the leaf: '%s'", shape.elements[1]);
	at = index ? allocation_at(analysis, second) : SIZE_MAX;
	CHECK(at != SIZE_MAX && path_of_allocation(index, at, &shape) && shape.element_count == 3 &&
		      strcmp(shape.elements[1], "struct node.next (repeated)") == 0 &&
		      strcmp(shape.elements[2], "struct node") == 0,
	      "the path to the second node: '%s'", shape.elements[1]);
	path_index_free(index);
	analysis_close(analysis);
	mock_snapshot_free(mock);
}

/* What malloc could not have left (a free chunk beside the top) is refused, not written. */
static void check_mistake(void)
{
	struct mock_snapshot *mock = mock_snapshot_new(NULL);
	if (mock == NULL)
		return;
	struct mock_glibc glibc;
	mock_glibc_init(&glibc, mock, 36, LIBC, HEAP, HEAP_SIZE);
	mock_free(&glibc, mock_malloc(&glibc, 24));
	mock_glibc_finish(&glibc);
	char path[4096];
	struct hs_error err;
	CHECK(mock_snapshot_write(mock, "wrong.snap", path, sizeof path, &err) != 0 &&
		      err.code == HS_ERR_INVALID && strstr(err.message, "top chunk") != NULL,
	      "a free chunk beside the top was written");
	mock_snapshot_free(mock);
}

int main(void)
{
	check_stack_root();
	check_c_types();
	check_mistake();
	struct mock_snapshot *mock = mock_snapshot_new(NULL);
	CHECK(mock != NULL, "no mock snapshot");
	if (mock == NULL)
		return TEST_EXIT();
	struct blocks blocks;
	struct analysis *analysis = build(mock, &blocks);
	if (analysis) {
		check_heap(analysis, &blocks);
		check_summary(analysis);
		check_paths(analysis, &blocks);
		analysis_close(analysis);
	}
	mock_snapshot_free(mock);
	return TEST_EXIT();
}
