/* C types from DWARF, propagated from typed roots into the heap: a global `struct conn *all_conns`
 * names the allocation it points at `struct conn`; that struct's pointer members (`next`,
 * `handler`, `buf`) name the allocations they point at in turn (`struct conn`, `struct handler`,
 * `char[]`), breadth-first. An allocation a `struct T *` points at that holds several T is an
 * array, `struct T[]`. When two paths disagree, the more specific type wins (a struct over a
 * character buffer; the larger struct over the smaller) and the conflict is counted. Only
 * allocations nothing named yet (not C++ objects, not the allocator's own) are typed. */
#include "c_types.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/dwarf_types.h"
#include "common/array_grow.h"
#include "common/clock.h"

#define LAYOUT_CACHE 256

struct pending {
	size_t allocation;
	const char *type; /* interned "struct X" */
};

#define CONFLICTS_NAMED 3

struct propagation {
	const struct heap *heap;
	struct address_space *space;
	struct type_names *names;
	struct dwarf_types *types; /* of the module whose variables seed this round */
	uint64_t bias;
	struct pending *queue;
	size_t head, tail, capacity;
	size_t conflicts;
	/* the pairs of types that met most, to name in the warning */
	struct type_conflict {
		char kept[112], other[112];
		size_t count;
	} conflict_pairs[CONFLICTS_NAMED];
	struct {
		char name[96];
		struct dwarf_struct layout;
		bool found;
	} *layouts;
	size_t layout_count;
};

/* "struct conn *" -> "struct conn"; "char *" -> "char[]"; "struct entry * *" -> "struct entry *[]"
 * (a table of pointers, each followed); anything else: no type. */
static bool pointee(const char *spelled, char *out, size_t out_size)
{
	size_t length = strlen(spelled);
	if (length < 3 || strcmp(spelled + length - 2, " *") != 0)
		return false;
	if (strncmp(spelled, "struct ", 7) == 0 && strchr(spelled, '*') == spelled + length - 1) {
		snprintf(out, out_size, "%.*s", (int)(length - 2), spelled);
		return true;
	}
	if (strncmp(spelled, "struct ", 7) == 0 && length > 11 &&
	    strcmp(spelled + length - 4, " * *") == 0 && strchr(spelled, '*') == spelled + length - 3) {
		snprintf(out, out_size, "%.*s *[]", (int)(length - 4), spelled);
		return true;
	}
	if (strcmp(spelled, "char *") == 0 || strcmp(spelled, "unsigned char *") == 0) {
		snprintf(out, out_size, "char[]");
		return true;
	}
	return false;
}

/* A table of pointers named by pointee ("struct entry *[]"): its element type, "struct entry". */
static bool pointer_table(const char *type, char *element, size_t element_size)
{
	size_t length = strlen(type);
	if (length < 12 || strncmp(type, "struct ", 7) != 0 || strcmp(type + length - 4, " *[]") != 0)
		return false;
	snprintf(element, element_size, "%.*s", (int)(length - 4), type);
	return true;
}

/* A spelled type whose base is a typedef of a struct, spelled with the struct's tag:
 * "redisDb *" -> "struct redisDb *", "robj * *" -> "struct redisObject * *", "dictEntry * *[2]"
 * -> "struct dictEntry * *[2]"; anything else is copied. (C code names most of its structs
 * through typedefs: their pointers are followed as "struct X *" ones are.) */
static void canonical(struct dwarf_types *types, const char *spelled, char *out, size_t out_size)
{
	static const char *const keywords[] = {"struct", "union", "enum", "unsigned", "signed",
					       "char", "short", "int", "long", "float", "double",
					       "void", "_Bool", "function", "?"};
	size_t base = strcspn(spelled, " [");
	char name[96], tag[96];
	bool typedef_name = base > 0 && base < sizeof name &&
			    (spelled[base] == '\0' || spelled[base] == '[' ||
			     strncmp(spelled + base, " *", 2) == 0);
	if (typedef_name) {
		memcpy(name, spelled, base);
		name[base] = '\0';
		for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
			if (strcmp(name, keywords[i]) == 0)
				typedef_name = false;
	}
	if (typedef_name && dwarf_types_typedef_struct(types, name, tag, sizeof tag) &&
	    (size_t)snprintf(out, out_size, "struct %s%s", tag, spelled + base) < out_size)
		return;
	snprintf(out, out_size, "%s", spelled);
}

static const struct dwarf_struct *layout_of(struct propagation *p, const char *type)
{
	if (strncmp(type, "struct ", 7) != 0 || strchr(type, '*') != NULL)
		return NULL;
	for (size_t i = 0; i < p->layout_count; i++)
		if (strcmp(p->layouts[i].name, type) == 0)
			return p->layouts[i].found ? &p->layouts[i].layout : NULL;
	if (p->layout_count == LAYOUT_CACHE)
		return NULL;
	size_t i = p->layout_count++;
	snprintf(p->layouts[i].name, sizeof p->layouts[i].name, "%s", type);
	p->layouts[i].found = dwarf_types_struct(p->types, type + 7, &p->layouts[i].layout) &&
			      p->layouts[i].layout.size > 0;
	if (p->layouts[i].found) {
		types_add_layout(p->names, type, &p->layouts[i].layout);
		/* (the copy the propagation follows: its members' typedefs spelled as structs) */
		struct dwarf_struct *layout = &p->layouts[i].layout;
		for (size_t m = 0; m < layout->member_count; m++) {
			char spelled[sizeof layout->members[m].type];
			snprintf(spelled, sizeof spelled, "%s", layout->members[m].type);
			canonical(p->types, spelled, layout->members[m].type,
				  sizeof layout->members[m].type);
		}
	}
	return p->layouts[i].found ? &p->layouts[i].layout : NULL;
}

/* How specific a type name is, for resolving conflicts. */
static uint64_t specificity(struct propagation *p, const char *type)
{
	if (type == NULL)
		return 0;
	if (strcmp(type, "char[]") == 0)
		return 1;
	const struct dwarf_struct *layout = layout_of(p, type);
	return 2 + (layout ? layout->size : 0);
}

/* Counts one block reached as `kept` and as `other`, for the warning to name the pairs that met
 * most (a full table keeps its first pairs: the counts of the others still add to the total). */
static void note_conflict(struct propagation *p, const char *kept, const char *other)
{
	for (size_t i = 0; i < CONFLICTS_NAMED; i++) {
		struct type_conflict *pair = &p->conflict_pairs[i];
		if (pair->count == 0) {
			snprintf(pair->kept, sizeof pair->kept, "%s", kept);
			snprintf(pair->other, sizeof pair->other, "%s", other);
		} else if (strcmp(pair->kept, kept) != 0 || strcmp(pair->other, other) != 0) {
			continue;
		}
		pair->count++;
		return;
	}
}

/* Names the allocation `pointer` points at the start of; queues it for its own members. */
static int reach(struct propagation *p, uint64_t pointer, const char *type)
{
	const struct allocation *target = heap_find(p->heap, pointer);
	if (target == NULL || target->address != pointer || target->state != ALLOCATION_LIVE)
		return 0;
	size_t index = (size_t)(target - p->heap->allocations);
	const char *name = type;
	char array[112];
	const struct dwarf_struct *layout = layout_of(p, type);
	/* an array when it holds two or more, beyond malloc's rounding: malloc(size) gives at
	 * most size + 15 usable bytes, and never fewer than 24 */
	const struct dwarf_member *last = layout && layout->member_count
						  ? &layout->members[layout->member_count - 1] : NULL;
	bool flexible = last && last->size == 0 && strchr(last->type, '[') != NULL;
	if (layout && !flexible && target->size >= 2 * layout->size &&
	    target->size > layout->size + 15 && target->size > 24) {
		snprintf(array, sizeof array, "%s[]", type);
		name = array;
	}
	const char *current = types_name(p->names, index);
	if (current != NULL) {
		if (strcmp(current, name) == 0)
			return 0; /* already typed and queued */
		if (strncmp(current, "struct ", 7) != 0 && strcmp(current, "char[]") != 0)
			return 0; /* named otherwise (a C++ class, the allocator's): keep that */
		p->conflicts++;
		bool keep_current = specificity(p, current) >= specificity(p, type);
		note_conflict(p, keep_current ? current : name, keep_current ? name : current);
		if (keep_current)
			return 0;
	}
	if (types_set(p->names, index, name) != 0)
		return -1;
	char element[112];
	if (layout == NULL && !pointer_table(type, element, sizeof element))
		return 0;
	void *grown = array_grow(p->queue, &p->capacity, p->tail, sizeof *p->queue, 1024);
	if (grown == NULL)
		return -1;
	p->queue = grown;
	p->queue[p->tail++] = (struct pending){index, types_name(p->names, index)};
	return 0;
}

/* Follows what a value of the spelled type `type` (`size` bytes) at `address` points at: a
 * pointer ("struct X *", "char *", "struct X * *") or an array of them ("struct X *[64]"). */
static int follow_value(struct propagation *p, uint64_t address, const char *type, uint64_t size)
{
	char target[112];
	uint64_t pointer;
	if (pointee(type, target, sizeof target)) {
		if (address_space_read_u64(p->space, address, &pointer) && reach(p, pointer, target) != 0)
			return -1;
		return 0;
	}
	size_t length = strlen(type);
	const char *bracket = strchr(type, '[');
	if (bracket && type[length - 1] == ']' && bracket > type + 2) {
		char element[112];
		snprintf(element, sizeof element, "%.*s", (int)(bracket - type), type);
		if (pointee(element, target, sizeof target))
			for (uint64_t at = 0; at + 8 <= size; at += 8)
				if (address_space_read_u64(p->space, address + at, &pointer) &&
				    reach(p, pointer, target) != 0)
					return -1;
	}
	return 0;
}

/* Follows the pointer members of a struct of `layout` at `address`. */
static int follow_members(struct propagation *p, uint64_t address, const struct dwarf_struct *layout)
{
	for (size_t m = 0; m < layout->member_count; m++) {
		const struct dwarf_member *member = &layout->members[m];
		if (follow_value(p, address + member->offset, member->type, member->size) != 0)
			return -1;
	}
	return 0;
}

static int drain(struct propagation *p)
{
	while (p->head < p->tail) {
		struct pending item = p->queue[p->head++];
		if (types_name(p->names, item.allocation) != item.type)
			continue; /* renamed since: the new type was queued too */
		const char *type = item.type;
		char base[112];
		const struct allocation *table = &p->heap->allocations[item.allocation];
		if (pointer_table(type, base, sizeof base)) { /* every pointer of the table */
			uint64_t pointer;
			for (uint64_t at = 0; at + 8 <= table->size; at += 8)
				if (address_space_read_u64(p->space, table->address + at, &pointer) &&
				    reach(p, pointer, base) != 0)
					return -1;
			continue;
		}
		size_t length = strlen(type);
		if (length > 2 && strcmp(type + length - 2, "[]") == 0) {
			snprintf(base, sizeof base, "%.*s", (int)(length - 2), type);
			type = base;
		}
		const struct dwarf_struct *layout = layout_of(p, type);
		if (layout == NULL)
			continue;
		const struct allocation *allocation = &p->heap->allocations[item.allocation];
		/* every element of an array, or the one struct (a struct ending in a flexible
		   array is never an array) */
		const struct dwarf_member *last = layout->member_count
							  ? &layout->members[layout->member_count - 1] : NULL;
		uint64_t step = last && last->size == 0 && strchr(last->type, '[') != NULL
					? allocation->size : layout->size;
		for (uint64_t at = 0; at + layout->size <= allocation->size; at += step)
			if (follow_members(p, allocation->address + at, layout) != 0)
				return -1;
	}
	return 0;
}

/* A typed root: a variable whose type points into the heap, or holds pointers that do. */
static int seed(void *context, const struct dwarf_variable *variable)
{
	struct propagation *p = context;
	uint64_t address = variable->address + p->bias;
	char type[128];
	canonical(p->types, variable->type, type, sizeof type);
	if (follow_value(p, address, type, variable->type_size) != 0)
		return 1;
	/* a struct in static storage: its pointer members */
	if (strncmp(type, "struct ", 7) == 0 && strchr(type, '*') == NULL &&
	    strchr(type, '[') == NULL) {
		const struct dwarf_struct *layout = layout_of(p, type);
		if (layout && follow_members(p, address, layout) != 0)
			return 1;
	}
	return 0;
}

/* One module's variables, as read from its DWARF (kept open for the struct layouts). */
struct module_variables {
	char *file;		   /* its debug file (or the module itself), NULL: none here */
	char *supplementary;	   /* the debug file's dwz supplementary file, NULL: none */
	uint64_t bias;
	struct dwarf_types *types; /* NULL: no DWARF */
	struct dwarf_variable *variables;
	size_t count, capacity;
	bool out_of_memory;
	/* the C library's or the dynamic loader's: conflicts among their own structures (NSS
	   modules, time zone tables) are theirs, nothing the program's report should warn of */
	bool system_library;
};

struct c_types_reading {
	pthread_t thread;
	bool started;
	double seconds; /* how long the reading took, on its thread */
	struct module_variables *modules;
	size_t module_count;
};

static int collect_variable(void *context, const struct dwarf_variable *variable)
{
	struct module_variables *module = context;
	void *grown = array_grow(module->variables, &module->capacity, module->count,
				 sizeof *module->variables, 256);
	if (grown == NULL) {
		module->out_of_memory = true;
		return 1;
	}
	module->variables = grown;
	module->variables[module->count++] = *variable;
	return 0;
}

static void read_module(struct module_variables *module)
{
	struct hs_error ignored;
	if (module->file == NULL || (module->types = dwarf_types_open(module->file, module->supplementary,
							&ignored)) == NULL)
		return; /* no DWARF: nothing to type from this module */
	dwarf_types_each_variable(module->types, collect_variable, module);
}

static void *read_modules(void *argument)
{
	struct c_types_reading *reading = argument;
	double start = monotonic_seconds();
	for (size_t i = 0; i < reading->module_count; i++)
		read_module(&reading->modules[i]);
	reading->seconds = monotonic_seconds() - start;
	return NULL;
}

/* The modules' files and biases, taken here (on the caller's thread: symbols are not shared). */
static struct c_types_reading *reading_new(struct symbols *symbols)
{
	struct c_types_reading *reading = calloc(1, sizeof *reading);
	size_t count = symbols_module_count(symbols);
	if (reading == NULL || (reading->modules = calloc(count + 1, sizeof *reading->modules)) == NULL) {
		free(reading);
		return NULL;
	}
	reading->module_count = count;
	for (size_t i = 0; i < count; i++) {
		struct module_symbols *module = symbols_module_at(symbols, i);
		const char *file = module_symbols_debug_file(module);
		if (file == NULL)
			file = module_symbols_file(module);
		if (file == NULL)
			continue; /* not here: its types are not known */
		reading->modules[i].bias = module_symbols_bias(module);
		const char *path = module_symbols_module(module)->path, *slash = strrchr(path, '/');
		const char *name = slash ? slash + 1 : path;
		reading->modules[i].system_library = strncmp(name, "libc.so", 7) == 0 ||
						     strncmp(name, "libc-2.", 7) == 0 ||
						     strncmp(name, "ld-linux", 8) == 0;
		const char *supplementary = module_symbols_supplementary_file(module);
		if ((reading->modules[i].file = strdup(file)) == NULL ||
		    (supplementary &&
		     (reading->modules[i].supplementary = strdup(supplementary)) == NULL)) {
			c_types_read_free(reading);
			return NULL;
		}
	}
	return reading;
}

struct c_types_reading *c_types_read_start(struct symbols *symbols)
{
	struct c_types_reading *reading = reading_new(symbols);
	if (reading == NULL)
		return NULL;
	if (pthread_create(&reading->thread, NULL, read_modules, reading) != 0) {
		c_types_read_free(reading);
		return NULL;
	}
	reading->started = true;
	return reading;
}

double c_types_read_seconds(struct c_types_reading *reading)
{
	if (reading->started) {
		pthread_join(reading->thread, NULL);
		reading->started = false;
	}
	return reading->seconds;
}

void c_types_read_free(struct c_types_reading *reading)
{
	if (reading == NULL)
		return;
	if (reading->started)
		pthread_join(reading->thread, NULL);
	for (size_t i = 0; i < reading->module_count; i++) {
		struct module_variables *module = &reading->modules[i];
		free(module->file);
		free(module->supplementary);
		dwarf_types_close(module->types);
		free(module->variables);
	}
	free(reading->modules);
	free(reading);
}

int c_types_propagate(struct type_names *names, const struct heap *heap,
		      struct address_space *space, struct symbols *symbols,
		      struct c_types_reading *reading, bool quiet_conflicts,
		      struct warnings *warnings, struct hs_error *err)
{
	if (reading == NULL) {
		if ((reading = reading_new(symbols)) == NULL)
			return hs_error_nomem(err, "typing allocations");
		read_modules(reading);
	} else if (reading->started) {
		pthread_join(reading->thread, NULL);
		reading->started = false;
	}
	struct propagation p = {.heap = heap, .space = space, .names = names};
	p.layouts = calloc(LAYOUT_CACHE, sizeof *p.layouts);
	int result = p.layouts == NULL ? -1 : 0;
	for (size_t i = 0; i < reading->module_count && result == 0; i++) {
		struct module_variables *module = &reading->modules[i];
		if (module->types == NULL)
			continue;
		if (module->out_of_memory)
			result = -1;
		p.types = module->types;
		p.bias = module->bias;
		p.layout_count = 0;
		size_t conflicts_before = p.conflicts;
		struct type_conflict pairs_before[CONFLICTS_NAMED];
		memcpy(pairs_before, p.conflict_pairs, sizeof pairs_before);
		for (size_t v = 0; v < module->count && result == 0; v++)
			if (seed(&p, &module->variables[v]) != 0)
				result = -1;
		if (result == 0)
			result = drain(&p);
		if (module->system_library) { /* (its own structures' conflicts: not the program's) */
			p.conflicts = conflicts_before;
			memcpy(p.conflict_pairs, pairs_before, sizeof pairs_before);
		}
	}
	c_types_read_free(reading);
	/* (in a Python process, the conflicts are among the interpreter's own structures: nothing
	   a report on Python objects shows, so no warning there) */
	if (p.conflicts && !quiet_conflicts) {
		char pairs[CONFLICTS_NAMED * 256] = "";
		size_t length = 0, named = 0;
		for (size_t i = 0; i < CONFLICTS_NAMED && p.conflict_pairs[i].count; i++) {
			length += (size_t)snprintf(pairs + length, sizeof pairs - length,
						   "%s%s (kept) and %s, %zu", i ? "; " : "",
						   p.conflict_pairs[i].kept, p.conflict_pairs[i].other,
						   p.conflict_pairs[i].count);
			named += p.conflict_pairs[i].count;
		}
		warnings_add(warnings,
			     "C types: %zu allocations are pointed to by members of different types "
			     "(a union, a cast through void *, a generic container's pointer, or a "
			     "block freed and reused); the more specific type was kept: %s%s",
			     p.conflicts, pairs, p.conflicts > named ? "; ..." : "");
	}
	free(p.queue);
	free(p.layouts);
	if (result != 0)
		return hs_error_nomem(err, "typing allocations");
	return 0;
}
