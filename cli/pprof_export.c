/* The pprof heap profile of a snapshot (see pprof_export.h). One pass over the allocations
 * counts objects and bytes by (stack key, type): the stack key is a path shape's number or a
 * site's; then each key's stack is made once, its frames interned as locations, and put in a trie
 * of stacks (outermost frame first), whose nodes are the samples: keys whose stacks read alike
 * (shapes that differ only in a masked value) add up in one sample. */
#include "cli/pprof_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/hash_map.h"
#include "formats/pprof.h"
#include "formats/snapshot_file.h"

#define UNREACHABLE_FRAME "(unreachable)"
#define UNSITED_FRAME "(no site recorded)"
#define STACK_MAX (PATH_ELEMENTS_MAX > HEAPSNAP_SITE_FRAMES ? PATH_ELEMENTS_MAX : HEAPSNAP_SITE_FRAMES)

/* What one sample counts: a stack (a shape's or a site's number; UINT32_MAX: none) and a type
 * (1 + its number in the analysis's names, or 0 and the size of an untyped allocation). */
struct tally_key {
	uint32_t stack;
	uint32_t type;
	uint64_t size;
};

struct tally_value {
	uint64_t objects, bytes;
	size_t example; /* an allocation of the group: its type's name */
};

static inline uint64_t tally_key_hash(struct tally_key key)
{
	uint64_t x = ((uint64_t)key.stack << 32 | key.type) * 0x9E3779B97F4A7C15ull ^
		     key.size * 0xC2B2AE3D27D4EB4Full;
	return x ^ x >> 31;
}

static inline bool tally_key_eq(struct tally_key a, struct tally_key b)
{
	return a.stack == b.stack && a.type == b.type && a.size == b.size;
}

DEFINE_HASH_MAP(tallies, struct tally_key, struct tally_value, tally_key_hash, tally_key_eq)

/* A node of the trie of stacks: a location below its parent node (its number + 1; 0: the
 * outermost frame). A stack is the node of its leaf. */
struct stack_step {
	uint64_t parent, location;
};

struct stack_total {
	uint64_t objects, bytes;
	bool sampled; /* a stack some allocations have: a sample */
};

static inline uint64_t stack_step_hash(struct stack_step key)
{
	uint64_t x = key.parent * 0x9E3779B97F4A7C15ull ^ key.location * 0xC2B2AE3D27D4EB4Full;
	return x ^ x >> 29;
}

static inline bool stack_step_eq(struct stack_step a, struct stack_step b)
{
	return a.parent == b.parent && a.location == b.location;
}

DEFINE_HASH_MAP(stack_trie, struct stack_step, struct stack_total, stack_step_hash, stack_step_eq)

/* The key of allocation `i` by its stack. */
static struct tally_key key_of(const struct analysis *analysis, const struct path_index *paths,
			       enum pprof_stacks stacks, size_t i)
{
	uint32_t type = analysis->types.of ? analysis->types.of[i] : 0;
	struct tally_key key = {.type = type, .size = type ? 0 : analysis->heap.allocations[i].size};
	if (stacks == PPROF_STACKS_PATHS) {
		key.stack = path_shape_number(paths, i);
	} else {
		uint32_t site = allocation_site(&analysis->sites, i);
		key.stack = site ? site : UINT32_MAX;
	}
	return key;
}

static int count_allocations(struct tallies *tallies, const struct analysis *analysis,
			     const struct path_index *paths, const uint8_t *only,
			     enum pprof_stacks stacks, struct hs_error *err)
{
	const struct heap *heap = &analysis->heap;
	const uint8_t *owned = analysis->types.owned;
	for (size_t i = 0; i < heap->count; i++) {
		if (heap->allocations[i].state != ALLOCATION_LIVE || (only && !only[i]))
			continue;
		bool added;
		struct tallies_entry *entry =
			tallies_insert(tallies, key_of(analysis, paths, stacks, i), &added);
		if (entry == NULL)
			return hs_error_nomem(err, "counting the heap for the profile");
		if (added)
			entry->value.example = i;
		/* a block of an object adds bytes to its owner's type, not one more object */
		entry->value.objects += !(owned && owned[i]);
		entry->value.bytes += heap->allocations[i].size;
	}
	return 0;
}

/* The frames of a path shape's stack into `frames`, leaf first: the root last. (Their text is
 * in `scratch`.) */
static size_t path_frames(const struct path_index *paths, uint32_t shape, struct path_shape *scratch,
			  const char **frames)
{
	if (shape == PATH_NO_SHAPE) {
		frames[0] = UNREACHABLE_FRAME;
		return 1;
	}
	path_shape_render(paths, shape, scratch);
	for (size_t k = 0; k < scratch->element_count; k++)
		frames[k] = scratch->elements[scratch->element_count - 1 - k];
	return scratch->element_count;
}

/* The frames of a site's stack into `frames`, innermost (the allocator's caller) first. */
static size_t site_frames(const struct analysis *analysis, uint32_t site, const char **frames)
{
	const struct site_description *description =
		site == UINT32_MAX ? NULL
				   : allocation_sites_describe(&analysis->sites, analysis->symbols, site);
	if (description == NULL) {
		frames[0] = UNSITED_FRAME;
		return 1;
	}
	size_t depth = 0;
	while (depth < HEAPSNAP_SITE_FRAMES && description->stack[depth][0]) {
		frames[depth] = description->stack[depth];
		depth++;
	}
	return depth;
}

/* One tally put in the trie: its stack's frames as locations, the type the leaf. */
static int add_tally(struct stack_trie *trie, struct pprof_profile *profile,
		     const struct analysis *analysis, const struct path_index *paths,
		     enum pprof_stacks stacks, const struct tallies_entry *entry,
		     struct path_shape *scratch, struct hs_error *err)
{
	const char *frames[STACK_MAX];
	size_t depth = stacks == PPROF_STACKS_PATHS
			       ? path_frames(paths, entry->key.stack, scratch, frames)
			       : site_frames(analysis, entry->key.stack, frames);
	uint64_t stack[STACK_MAX + 1];
	char type[128];
	const char *name = analysis_type(analysis, entry->value.example);
	if (name)
		snprintf(type, sizeof type, "%s", name);
	else
		snprintf(type, sizeof type, "size %llu", (unsigned long long)entry->key.size);
	stack[0] = pprof_location(profile, type, "", 0);
	for (size_t k = 0; k < depth && stack[0]; k++) {
		stack[k + 1] = pprof_location(profile, frames[k], "", 0);
		if (stack[k + 1] == 0)
			stack[0] = 0;
	}
	struct stack_trie_entry *node = NULL;
	for (size_t k = depth + 1; k-- > 0 && stack[0];) {
		struct stack_step step = {node ? (uint64_t)(node - trie->entries) + 1 : 0, stack[k]};
		node = stack_trie_insert(trie, step, NULL);
		if (node == NULL)
			stack[0] = 0;
	}
	if (stack[0] == 0)
		return hs_error_nomem(err, "naming the profile's frames");
	node->value.objects += entry->value.objects;
	node->value.bytes += entry->value.bytes;
	node->value.sampled = true;
	return 0;
}

/* Each stack of the trie that allocations have, as a sample: its locations, leaf first. */
static int add_samples(struct pprof_profile *profile, const struct stack_trie *trie,
		       struct pprof_export_stats *stats, struct hs_error *err)
{
	for (size_t i = 0; i < trie->count; i++) {
		const struct stack_total *total = &trie->entries[i].value;
		if (!total->sampled)
			continue;
		uint64_t stack[STACK_MAX + 1];
		size_t depth = 0;
		for (uint64_t node = i + 1; node && depth < STACK_MAX + 1;
		     node = trie->entries[node - 1].key.parent)
			stack[depth++] = trie->entries[node - 1].key.location;
		int64_t values[2] = {(int64_t)total->objects, (int64_t)total->bytes};
		if (pprof_sample(profile, stack, depth, values, err) != 0)
			return -1;
		stats->samples++;
	}
	return 0;
}

/* Fills `profile` (pprof_init done by pprof_export_start) with the live allocations of
 * `analysis`, or with `only` (per allocation; NULL: all) those for which only[i] is non-zero:
 * heapdiff's new objects. `paths` is needed for PPROF_STACKS_PATHS (built over the analysis's
 * graph), unused for sites. */
static int pprof_export_fill(struct pprof_profile *profile, const struct analysis *analysis,
			     const struct path_index *paths, const uint8_t *only,
			     enum pprof_stacks stacks, struct pprof_export_stats *stats,
			     struct hs_error *err)
{
	*stats = (struct pprof_export_stats){0};
	struct tallies tallies = {0};
	struct stack_trie trie = {0};
	struct path_shape *scratch = malloc(sizeof *scratch);
	int result = scratch ? count_allocations(&tallies, analysis, paths, only, stacks, err)
			     : hs_error_nomem(err, "starting the profile");
	for (size_t t = 0; t < tallies.count && result == 0; t++) {
		const struct tallies_entry *entry = &tallies.entries[t];
		result = add_tally(&trie, profile, analysis, paths, stacks, entry, scratch, err);
		stats->objects += entry->value.objects;
		stats->bytes += entry->value.bytes;
		if (entry->key.stack != UINT32_MAX)
			continue;
		if (stacks == PPROF_STACKS_PATHS) {
			stats->unreached_objects += entry->value.objects;
			stats->unreached_bytes += entry->value.bytes;
		} else {
			stats->unsited_objects += entry->value.objects;
		}
	}
	if (result == 0)
		result = add_samples(profile, &trie, stats, err);
	stack_trie_free(&trie);
	tallies_free(&tallies);
	free(scratch);
	return result;
}

/* An empty heap profile of `analysis`'s time, its sample types inuse_objects/count and
 * inuse_space/bytes, and a first comment saying what it is (`what`: "live heap", "new objects
 * since BEFORE"). */
static int pprof_export_start(struct pprof_profile *profile, const struct analysis *analysis,
			      const char *what, enum pprof_stacks stacks, struct hs_error *err)
{
	static const char *const types[2][2] = {{"inuse_objects", "count"},
						{"inuse_space", "bytes"}};
	const struct snapshot_info *info = snapshot_info(analysis->snapshot);
	char process[4400], when[64], text[4600];
	cli_process_name(info, false, process, sizeof process);
	if (pprof_init(profile, types, 2, "inuse_space", process, (int64_t)info->capture_start_ns,
		       err) != 0)
		return -1;
	cli_format_time(info->capture_start_ns, when, sizeof when, false);
	snprintf(text, sizeof text, "heapsnap: %s of %s, pid %d, captured %s; stacks: %s", what,
		 process, info->pid, when,
		 stacks == PPROF_STACKS_PATHS ? "the retaining path from a root to the type"
					      : "the allocation site, the type as the leaf");
	if (pprof_comment(profile, text, err) != 0) {
		pprof_free(profile);
		return -1;
	}
	return 0;
}

/* One caveat: a comment of the profile and a warning on stderr. */
static int caveat(struct pprof_profile *profile, const char *program, const char *text,
		  struct hs_error *err)
{
	fprintf(stderr, "%s: warning: %s\n", program, text);
	char comment[1200];
	snprintf(comment, sizeof comment, "warning: %s", text);
	return pprof_comment(profile, comment, err);
}

/* The analyses' own warnings as comments (the command prints them on stderr, as always). */
static int warning_comments(struct pprof_profile *profile, const struct analysis *analysis,
			    struct hs_error *err)
{
	for (size_t i = 0; analysis && i < analysis->warnings.count; i++) {
		char comment[1200];
		snprintf(comment, sizeof comment, "warning: %s", analysis->warnings.items[i]);
		if (pprof_comment(profile, comment, err) != 0)
			return -1;
	}
	if (analysis && analysis->warnings.dropped) {
		char comment[120];
		snprintf(comment, sizeof comment, "warning: %zu more warnings not listed",
			 analysis->warnings.dropped);
		return pprof_comment(profile, comment, err);
	}
	return 0;
}

/* The report's caveats as comments of the profile, and each also on stderr as
 * "PROGRAM: warning: ...": memory no walker reads (with `before`, how it changed), what is under
 * "(unreachable)" or "(no site recorded)", and every warning of the analyses given (NULL ones
 * skipped). The warnings themselves are printed by the command as usual. */
static int pprof_export_caveats(struct pprof_profile *profile, const char *program,
				const struct analysis *before, const struct analysis *after,
				const struct pprof_export_stats *stats, struct hs_error *err)
{
	char unseen[200], text[600], bytes[32], count[32];
	cli_format_unseen(before ? &before->outside_heaps : NULL, &after->outside_heaps, unseen,
			  sizeof unseen);
	if (unseen[0]) {
		snprintf(text, sizeof text,
			 "memory no walker reads: %s; what it holds is in no sample of this profile",
			 unseen);
		if (caveat(profile, program, text, err) != 0)
			return -1;
	}
	if (stats->unreached_objects || stats->unreached_bytes) {
		cli_format_count(stats->unreached_objects, count, sizeof count);
		cli_format_bytes(stats->unreached_bytes, bytes, sizeof bytes);
		snprintf(text, sizeof text,
			 "%s objects (%s) no root reaches are under \"" UNREACHABLE_FRAME
			 "\" (Python: garbage the cyclic collector has not freed; C: leaked)",
			 count, bytes);
		if (pprof_comment(profile, text, err) != 0)
			return -1;
	}
	if (stats->unsited_objects) {
		cli_format_count(stats->unsited_objects, count, sizeof count);
		snprintf(text, sizeof text,
			 "%s objects have no allocation site recorded (made before the hook "
			 "recorded sites): under \"" UNSITED_FRAME "\"",
			 count);
		if (caveat(profile, program, text, err) != 0)
			return -1;
	}
	if (warning_comments(profile, before, err) != 0)
		return -1;
	return warning_comments(profile, after, err);
}

/* The profile, built, into the file descriptor safe_file_write hands it. */
static int write_profile(int fd, const char *path, void *context, struct hs_error *err)
{
	return pprof_write(context, fd, path, err);
}

int pprof_export_write(const struct pprof_export_request *request,
		       struct pprof_export_stats *stats, struct hs_error *err)
{
	struct pprof_profile profile;
	if (pprof_export_start(&profile, request->analysis, request->what, request->stacks, err) != 0)
		return -1;
	int result = pprof_export_fill(&profile, request->analysis, request->paths, request->only,
				       request->stacks, stats, err);
	if (result == 0)
		result = pprof_export_caveats(&profile, request->program, request->before,
					      request->analysis, stats, err);
	if (result == 0)
		result = safe_file_write(request->output, request->input, write_profile, &profile,
					 err);
	pprof_free(&profile);
	return result;
}
