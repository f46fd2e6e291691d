/* Damage, blocks and look-ups shared by the walkers of stripped allocators (see walk_report.h). */
#include "walk_report.h"

#include <stdarg.h>
#include <stdio.h>

void walk_damage(struct walk_report *report, uint64_t address, const char *format, ...)
{
	heap_note_damage(report->heap, address, 0);
	if (report->heap->damage.spots > WALK_DAMAGE_SHOWN) {
		report->unshown++;
		return;
	}
	char message[320];
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(message, sizeof message, format, arguments);
	va_end(arguments);
	warnings_add(report->warnings, "%s: %s", report->allocator, message);
}

void walk_report_finish(struct walk_report *report)
{
	if (report->unshown)
		warnings_add(report->warnings,
		             "%s: %llu more damaged structures like the ones above",
		             report->allocator, (unsigned long long)report->unshown);
}

int walk_add_block(struct walk_report *report, uint64_t address, uint64_t size,
                   enum allocation_state state, enum allocation_place place, int arena,
                   uint64_t first_word, struct hs_error *err)
{
	struct allocation allocation = {.address = address,
	                                .size = size,
	                                .state = state,
	                                .place = place,
	                                .arena = (uint64_t)arena,
	                                .first_word = first_word};
	if (heap_add(report->heap, &allocation) != 0)
		return hs_error_nomem(err, "listing %s's blocks", report->allocator);
	return 0;
}

struct allocation *walk_block_at(struct heap *heap, uint64_t address)
{
	return walk_block_among(heap->allocations, heap->count, address);
}

struct allocation *walk_block_among(struct allocation *allocations, size_t count,
				    uint64_t address)
{
	size_t low = 0, high = count;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		struct allocation *allocation = &allocations[mid];
		if (allocation->address < address)
			low = mid + 1;
		else if (allocation->address > address)
			high = mid;
		else
			return allocation;
	}
	return NULL;
}
