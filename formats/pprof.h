/* A profile in pprof's format (github.com/google/pprof, proto/profile.proto), what `go tool
 * pprof`, Pyroscope and Parca read: sample types (a name and a unit each), samples (a stack of
 * locations, leaf first, and one value per sample type), locations (here one line each: a function
 * and a line number), functions (a name and a file), the string table every name is an index into
 * ("" at index 0), and comments. Built up in memory (stacks are few: their frames are interned,
 * samples encoded as they come), then encoded at once and written gzip-compressed, as the format
 * asks of a file. Knows nothing of heaps: the caller says what a frame and a value are. */
#ifndef HEAPSNAP_PPROF_H
#define HEAPSNAP_PPROF_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/string_table.h"
#include "formats/protobuf.h"

#define PPROF_SAMPLE_TYPES_MAX 4

struct pprof_function_map;
struct pprof_location_map;

struct pprof_profile {
	struct string_table strings;
	size_t sample_type_count;
	uint32_t sample_types[PPROF_SAMPLE_TYPES_MAX][2]; /* type and unit, in the strings */
	uint32_t default_sample_type;			  /* a type's name, in the strings */
	int64_t time_nanos;				  /* when the profile's data were taken */
	uint32_t program; /* the one mapping's file name, in the strings */
	struct pprof_function_map *functions;
	struct pprof_location_map *locations;
	struct protobuf samples; /* the Sample fields, encoded */
	struct protobuf scratch; /* one sample's message, while it is encoded */
	uint64_t *comments;	 /* strings' numbers */
	size_t comment_count, comment_capacity;
	size_t sample_count;
};

/* An empty profile of `count` sample types, each {type, unit} ("inuse_space", "bytes"), the one
 * named `default_type` shown first by readers, of `program` (the name of its one mapping, which
 * every location is in, marked as symbolized: readers look for no binary to symbolize it). */
int pprof_init(struct pprof_profile *profile, const char *const (*types)[2], size_t count,
	       const char *default_type, const char *program, int64_t time_nanos,
	       struct hs_error *err);
void pprof_free(struct pprof_profile *profile);

/* The id of the location of `function` (in `file`, "" when unknown) at `line` (0: unknown), made
 * when new; 0 when out of memory. */
uint64_t pprof_location(struct pprof_profile *profile, const char *function, const char *file,
			int64_t line);
/* A sample: its stack (`depth` location ids, the leaf first) and one value per sample type. */
int pprof_sample(struct pprof_profile *profile, const uint64_t *stack, size_t depth,
		 const int64_t *values, struct hs_error *err);
/* A free-form line readers show with the profile (`go tool pprof -comments`). */
int pprof_comment(struct pprof_profile *profile, const char *text, struct hs_error *err);

/* The profile encoded (a Profile message) into `out`. */
int pprof_encode(const struct pprof_profile *profile, struct protobuf *out, struct hs_error *err);
/* The profile encoded and written gzip-compressed to `fd`, a file named `path`. */
int pprof_write(const struct pprof_profile *profile, int fd, const char *path,
		struct hs_error *err);

#endif
