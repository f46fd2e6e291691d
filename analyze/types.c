/* Allocation types (see types.h). */
#include "types.h"

#include "analyze/allocators/allocator.h"
#include "common/visible_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The C++ runtime's demangler (libstdc++'s, declared here to keep this file C). */
extern char *__cxa_demangle(const char *mangled, char *buffer, size_t *length, int *status);

uint32_t types_intern_id(struct type_names *names, const char *name)
{
	char visible[512]; /* (a name is the process's text: no control character passes) */
	if (has_control_characters(name))
		name = visible_text(name, visible, sizeof visible);
	uint32_t number = string_table_intern(&names->names, name);
	return number == UINT32_MAX ? 0 : number + 1;
}

const char *types_intern(struct type_names *names, const char *name)
{
	uint32_t id = types_intern_id(names, name);
	return id ? names->names.strings[id - 1] : NULL;
}

int types_set(struct type_names *names, size_t allocation, const char *name)
{
	uint32_t id = types_intern_id(names, name);
	if (id == 0)
		return -1;
	names->of[allocation] = id;
	return 0;
}

/* A cache of what a first word names: vtable pointers repeat across all objects of a class. */
struct vptr_entry {
	uint64_t vptr;
	uint32_t name; /* an id for `of`, 0: not a vtable */
};

bool types_demangle(const char *symbol, char *out, size_t size)
{
	if (strncmp(symbol, "_Z", 2) != 0)
		return false;
	int status = 0;
	char *demangled = __cxa_demangle(symbol, NULL, NULL, &status);
	bool done = demangled != NULL && status == 0;
	if (done)
		snprintf(out, size, "%s", demangled);
	free(demangled);
	return done;
}

static uint32_t class_of(struct type_names *names, struct symbols *symbols, uint64_t vptr)
{
	const char *module, *symbol;
	uint64_t offset;
	if (!symbols_lookup_address(symbols, vptr, &module, &symbol, &offset) ||
	    strncmp(symbol, "_ZTV", 4) != 0 || offset < 16)
		return 0;
	int status = 0;
	char *demangled = __cxa_demangle(symbol, NULL, NULL, &status);
	if (demangled == NULL || status != 0) {
		free(demangled);
		return 0;
	}
	/* "vtable for Shape" -> "Shape" */
	const char *prefix = "vtable for ";
	const char *name = strncmp(demangled, prefix, strlen(prefix)) == 0
				   ? demangled + strlen(prefix)
				   : demangled;
	uint32_t id = types_intern_id(names, name);
	free(demangled);
	return id;
}

int types_assign(struct type_names *names, const struct heap *heap, struct symbols *symbols,
		 bool name_cxx_objects, struct hs_error *err)
{
	memset(names, 0, sizeof *names);
	names->of = calloc(heap->count + 1, sizeof *names->of);
	size_t cache_size = 4096;
	struct vptr_entry *cache = calloc(cache_size, sizeof *cache);
	if (names->of == NULL || cache == NULL) {
		free(cache);
		return hs_error_nomem(err, "naming allocations");
	}
	/* the allocators' own blocks (glibc's per-thread tcache structure, the block of a
	   jemalloc thread's cache bins), named by the allocator of each */
	uint32_t metadata[HEAP_ALLOCATORS_MAX] = {0};
	for (size_t i = 0; i < heap->allocator_count; i++)
		if (heap->allocators[i].allocator->metadata_type)
			metadata[i] =
				types_intern_id(names, heap->allocators[i].allocator->metadata_type);
	for (size_t i = 0; i < heap->count; i++) {
		const struct allocation *allocation = &heap->allocations[i];
		if (allocation->state != ALLOCATION_LIVE)
			continue;
		if (allocation->place == PLACE_METADATA) {
			if (allocation->arena < heap->arena_count &&
			    heap->arenas[allocation->arena].allocator < heap->allocator_count)
				names->of[i] = metadata[heap->arenas[allocation->arena].allocator];
			continue;
		}
		uint64_t word = allocation->first_word;
		if (!name_cxx_objects || word < 4096 || (word & 7) || allocation->size < 8)
			continue;
		/* a direct-mapped cache: most first words are not vtable pointers, and the ones
		 * that are repeat */
		struct vptr_entry *entry = &cache[(word >> 3) * 0x9E3779B97F4A7C15ull >> 52];
		if (entry->vptr != word) {
			entry->vptr = word;
			entry->name = class_of(names, symbols, word);
		}
		names->of[i] = entry->name;
	}
	free(cache);
	return 0;
}

int types_add_layout(struct type_names *names, const char *type, const struct dwarf_struct *layout)
{
	if (types_layout(names, type))
		return 0;
	void *grown = realloc(names->layouts, (names->layout_count + 1) * sizeof *names->layouts);
	if (grown == NULL)
		return -1;
	names->layouts = grown;
	names->layouts[names->layout_count] = *layout;
	snprintf(names->layouts[names->layout_count].name,
		 sizeof names->layouts[names->layout_count].name, "%s", type);
	names->layout_count++;
	return 0;
}

const struct dwarf_struct *types_layout(const struct type_names *names, const char *type)
{
	for (size_t i = 0; i < names->layout_count; i++)
		if (strcmp(names->layouts[i].name, type) == 0)
			return &names->layouts[i];
	return NULL;
}

void types_free(struct type_names *names)
{
	free(names->layouts);
	string_table_free(&names->names);
	free(names->of);
	free(names->owned);
	memset(names, 0, sizeof *names);
}
