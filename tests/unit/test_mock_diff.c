/* The diff of two synthetic snapshots of one process (mock_snapshot.h), checked against numbers
 * worked out by hand: AFTER is BEFORE with REQUESTS more Request objects, a list held by the
 * global `pending` (0 in BEFORE). Both heaps, in the order their chunks lie:
 *
 *     global all_items -> Item -> Item -> Item     3 x 40 bytes (chunks of 48)
 *                         Item -> buffer           24 bytes (chunk of 32)
 *     leaked, reached by no root in either         104 bytes (chunk of 112)
 *     a chunk freed: 72 bytes, in the unsorted bin
 *     AFTER only: global pending -> Request -> Request -> ...   REQUESTS x 56 bytes (chunks of 64)
 *     AFTER only: a <-> b, reached by no root                  2 x 88 bytes (chunks of 96)
 *
 * So the diff finds REQUESTS new Requests (REQUESTS x 56 bytes, all retained by the list's head)
 * by the path from `pending`, a new leak (the cycle of two), and nothing new, freed or leaked
 * among the rest: the blocks of BEFORE keep their addresses, as a process's blocks do between two
 * snapshots. */
#include <string.h>

#include "analyze/graph/paths.h"
#include "analyze/reports/diff.h"
#include "mock_snapshot.h"
#include "test_util.h"

#define PROGRAM 0x555555554000ull
#define ITEM_VTABLE (PROGRAM + 0x100)
#define REQUEST_VTABLE (PROGRAM + 0x200)
#define ALL_ITEMS (PROGRAM + 0x3010)
#define PENDING (PROGRAM + 0x3018)
#define LIBC 0x7ffff7dc0000ull
#define HEAP 0x555555560000ull
#define HEAP_SIZE 0x21000ull
#define REQUESTS 5

/* The process with `requests` Requests pending, and with `new_cycle` the leaked pair;
 * *first_request gets the head of the Requests' list. */
static struct analysis *build(struct mock_snapshot *mock, unsigned requests, bool new_cycle,
			      const char *name, uint64_t *first_request)
{
	struct mock_module *program = mock_module_add(mock, "program", PROGRAM);
	mock_segment_add(mock, PROGRAM, 0x1000, PF_R, program);
	mock_segment_add(mock, PROGRAM + 0x3000, 0x1000, PF_R | PF_W, program);
	uint64_t item = mock_class_add(program, "Item", ITEM_VTABLE);
	uint64_t request = mock_class_add(program, "Request", REQUEST_VTABLE);
	mock_symbol_add(program, "all_items", ALL_ITEMS, 8, false);
	mock_symbol_add(program, "pending", PENDING, 8, false);
	struct mock_glibc glibc;
	mock_glibc_init(&glibc, mock, 36, LIBC, HEAP, HEAP_SIZE);
	uint64_t items[3];
	for (size_t i = 0; i < 3; i++)
		items[i] = mock_malloc(&glibc, 40);
	uint64_t buffer = mock_malloc(&glibc, 24);
	uint64_t freed = mock_malloc(&glibc, 72);
	mock_malloc(&glibc, 104); /* leaked */
	mock_free(&glibc, freed);
	for (size_t i = 0; i < 3; i++) {
		mock_write_u64(mock, items[i], item);
		mock_write_u64(mock, items[i] + 8, i < 2 ? items[i + 1] : 0);
	}
	mock_write_u64(mock, items[0] + 16, buffer);
	mock_write_u64(mock, ALL_ITEMS, items[0]);
	uint64_t next = 0;
	for (unsigned i = 0; i < requests; i++) {
		uint64_t made = mock_malloc(&glibc, 56);
		mock_write_u64(mock, made, request);
		mock_write_u64(mock, made + 8, next); /* pushed on the list's front */
		next = made;
	}
	mock_write_u64(mock, PENDING, next);
	*first_request = next;
	if (new_cycle) {
		uint64_t a = mock_malloc(&glibc, 88), b = mock_malloc(&glibc, 88);
		mock_write_u64(mock, a + 32, b);
		mock_write_u64(mock, b + 48, a);
	}
	mock_glibc_finish(&glibc);
	struct hs_error err;
	struct analysis *analysis = mock_snapshot_analyse(mock, name, &err);
	CHECK(analysis != NULL, "%s: %s", name, err.message);
	return analysis;
}

static const struct diff_type *type_of(const struct heap_diff *diff, const char *type,
				       uint64_t size)
{
	for (size_t i = 0; i < diff->type_count; i++)
		if (type ? diff->types[i].type && strcmp(diff->types[i].type, type) == 0
			 : diff->types[i].type == NULL && diff->types[i].size == size)
			return &diff->types[i];
	return NULL;
}

static void check_unchanged(const struct diff_type *type, const char *name, uint64_t count,
			    uint64_t bytes)
{
	CHECK(type != NULL, "%s: not in the diff", name);
	if (type == NULL)
		return;
	CHECK(type->count_before == count && type->count_after == count &&
		      type->bytes_before == bytes && type->bytes_after == bytes,
	      "%s: %llu -> %llu objects", name, (unsigned long long)type->count_before,
	      (unsigned long long)type->count_after);
	CHECK(type->new_count == 0 && type->freed_count == 0 && type->new_bytes == 0 &&
		      type->freed_bytes == 0,
	      "%s: %llu new, %llu freed", name, (unsigned long long)type->new_count,
	      (unsigned long long)type->freed_count);
}

static void check_diff(const struct analysis *before, const struct analysis *after,
		       uint64_t first_request)
{
	char why[256] = "";
	CHECK(diff_same_process(before, after, why, sizeof why), "not one process: %s", why);
	struct heap_diff diff;
	struct hs_error err;
	if (heap_diff_build(before, NULL, after, false, &diff, &err) != 0) {
		CHECK(false, "%s", err.message);
		return;
	}
	const struct diff_type *requests = type_of(&diff, "Request", 0);
	CHECK(requests != NULL, "no Request in the diff");
	if (requests) {
		CHECK(requests->count_before == 0 && requests->count_after == REQUESTS,
		      "Requests %llu -> %llu", (unsigned long long)requests->count_before,
		      (unsigned long long)requests->count_after);
		CHECK(requests->new_count == REQUESTS && requests->new_bytes == REQUESTS * 56,
		      "%llu new Requests, %llu bytes", (unsigned long long)requests->new_count,
		      (unsigned long long)requests->new_bytes);
		CHECK(diff_delta_bytes(requests) == REQUESTS * 56, "delta %lld",
		      (long long)diff_delta_bytes(requests));
		/* the list's head retains the rest: each new byte counted once */
		CHECK(requests->new_retained == REQUESTS * 56, "new retained %llu",
		      (unsigned long long)requests->new_retained);
		CHECK(requests->freed_count == 0 && requests->new_unreachable == 0,
		      "%llu freed, %llu unreachable", (unsigned long long)requests->freed_count,
		      (unsigned long long)requests->new_unreachable);
	}
	check_unchanged(type_of(&diff, "Item", 0), "Item", 3, 120);
	check_unchanged(type_of(&diff, NULL, 24), "size 24", 1, 24);
	check_unchanged(type_of(&diff, NULL, 104), "size 104 (leaked)", 1, 104);
	const struct diff_type *pair = type_of(&diff, NULL, 88);
	CHECK(pair && pair->count_before == 0 && pair->new_count == 2 && pair->new_bytes == 176 &&
		      pair->new_unreachable == 2,
	      "the new leaked pair");
	CHECK(diff.type_count == 5, "%zu types in the diff", diff.type_count);
	CHECK(diff.types[0].type && strcmp(diff.types[0].type, "Request") == 0,
	      "the most grown type first");
	CHECK(diff.objects_before == 5 && diff.objects_after == 5 + REQUESTS + 2,
	      "objects %llu -> %llu", (unsigned long long)diff.objects_before,
	      (unsigned long long)diff.objects_after);
	CHECK(diff.bytes_before == 248 && diff.bytes_after == 248 + REQUESTS * 56 + 176,
	      "bytes %llu -> %llu", (unsigned long long)diff.bytes_before,
	      (unsigned long long)diff.bytes_after);
	/* the leaked 104 bytes were there before: the pair alone is newly unreachable */
	CHECK(diff.unreachable_objects == 2 && diff.unreachable_bytes == 176 &&
		      diff.cycle_count == 1,
	      "%llu new unreachable, %zu cycles", (unsigned long long)diff.unreachable_objects,
	      diff.cycle_count);
	if (diff.cycle_count == 1)
		CHECK(diff.cycles[0].objects == 2 && diff.cycles[0].bytes == 176 &&
			      strcmp(diff.cycles[0].text, "size 88 -> size 88 -> size 88") == 0,
		      "cycle '%s'", diff.cycles[0].text);

	/* the new blocks' paths: the list's head, then the four down the list */
	struct path_index *index = path_index_build(&after->graph, &after->heap, &after->types,
						    after->same_type_dominated, false, &err);
	CHECK(index != NULL, "%s", err.message);
	const struct allocation *head = heap_find(&after->heap, first_request);
	const char *request = head ? analysis_type(after, (size_t)(head - after->heap.allocations))
				   : NULL; /* (interned) */
	struct path_shape shapes[4];
	size_t count = index && request ? paths_of_type(index, request, 0, diff.is_new,
							diff.new_same_type_dominated, shapes, 4)
					: 0;
	CHECK(count == 2 && shapes[0].count == REQUESTS - 1 && shapes[1].count == 1,
	      "%zu shapes of new Requests", count);
	if (count == 2) {
		CHECK(shapes[0].element_count == 3 &&
			      strcmp(shapes[0].elements[0], "global pending") == 0 &&
			      strcmp(shapes[0].elements[1], "Request (repeated)") == 0 &&
			      strcmp(shapes[0].elements[2], "Request") == 0,
		      "down the list: '%s' '%s'", shapes[0].elements[0], shapes[0].elements[1]);
		CHECK(shapes[1].element_count == 2 &&
			      strcmp(shapes[1].elements[0], "global pending") == 0 &&
			      strcmp(shapes[1].elements[1], "Request") == 0,
		      "the head: %zu steps", shapes[1].element_count);
		CHECK(shapes[1].retained == REQUESTS * 56 && shapes[0].retained == 0,
		      "retained %llu and %llu", (unsigned long long)shapes[1].retained,
		      (unsigned long long)shapes[0].retained);
	}
	path_index_free(index);
	heap_diff_free(&diff);
}

int main(void)
{
	struct mock_snapshot *first = mock_snapshot_new(NULL);
	struct mock_snapshot *second = first ? mock_snapshot_new(mock_snapshot_directory(first))
					     : NULL;
	CHECK(first && second, "no mock snapshot");
	uint64_t none, first_request = 0;
	struct analysis *before = first ? build(first, 0, false, "before.snap", &none) : NULL;
	struct analysis *after =
		second ? build(second, REQUESTS, true, "after.snap", &first_request) : NULL;
	if (before && after)
		check_diff(before, after, first_request);
	analysis_close(before);
	analysis_close(after);
	mock_snapshot_free(second);
	mock_snapshot_free(first);
	return TEST_EXIT();
}
