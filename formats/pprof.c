/* The pprof profile builder and encoder (see pprof.h). Field numbers are profile.proto's. A
 * function is keyed by its name and file, a location by its function and line; both are numbered
 * from 1 in the order made (0 means "none" in the format). */
#include "formats/pprof.h"

#include <stdlib.h>
#include <string.h>

#include "common/array_grow.h"
#include "common/hash_map.h"
#include "formats/gzip_file.h"

enum {
	PROFILE_SAMPLE_TYPE = 1,
	PROFILE_SAMPLE = 2,
	PROFILE_MAPPING = 3,
	PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5,
	PROFILE_STRING_TABLE = 6,
	PROFILE_TIME_NANOS = 9,
	PROFILE_COMMENT = 13,
	PROFILE_DEFAULT_SAMPLE_TYPE = 14,
	VALUE_TYPE_TYPE = 1,
	VALUE_TYPE_UNIT = 2,
	SAMPLE_LOCATION_ID = 1,
	SAMPLE_VALUE = 2,
	MAPPING_ID = 1,
	MAPPING_FILENAME = 5,
	MAPPING_HAS_FUNCTIONS = 7,
	MAPPING_HAS_FILENAMES = 8,
	MAPPING_HAS_LINE_NUMBERS = 9,
	LOCATION_ID = 1,
	LOCATION_MAPPING_ID = 2,
	LOCATION_LINE = 4,
	LINE_FUNCTION_ID = 1,
	LINE_LINE = 2,
	FUNCTION_ID = 1,
	FUNCTION_NAME = 2,
	FUNCTION_SYSTEM_NAME = 3,
	FUNCTION_FILENAME = 4,
};

struct string_pair {
	uint64_t first, second;
};

static inline uint64_t string_pair_hash(struct string_pair key)
{
	uint64_t x = key.first * 0x9E3779B97F4A7C15ull ^ key.second * 0xC2B2AE3D27D4EB4Full;
	return x ^ x >> 29;
}

static inline bool string_pair_eq(struct string_pair a, struct string_pair b)
{
	return a.first == b.first && a.second == b.second;
}

/* functions by (name, file) and locations by (function id, line): an entry's id is its place + 1 */
DEFINE_HASH_MAP(pprof_pairs, struct string_pair, char, string_pair_hash, string_pair_eq)
struct pprof_function_map {
	struct pprof_pairs pairs;
};
struct pprof_location_map {
	struct pprof_pairs pairs;
};

static int intern(struct pprof_profile *profile, const char *text, uint32_t *out,
		  struct hs_error *err)
{
	*out = string_table_intern(&profile->strings, text);
	if (*out == UINT32_MAX)
		return hs_error_nomem(err, "building the profile's string table");
	return 0;
}

int pprof_init(struct pprof_profile *profile, const char *const (*types)[2], size_t count,
	       const char *default_type, const char *program, int64_t time_nanos,
	       struct hs_error *err)
{
	*profile = (struct pprof_profile){.time_nanos = time_nanos};
	profile->functions = calloc(1, sizeof *profile->functions);
	profile->locations = calloc(1, sizeof *profile->locations);
	if (profile->functions == NULL || profile->locations == NULL) {
		pprof_free(profile);
		return hs_error_nomem(err, "starting a profile");
	}
	uint32_t empty;
	if (intern(profile, "", &empty, err) != 0) /* the format's string 0 */
		goto failed;
	if (count > PPROF_SAMPLE_TYPES_MAX) {
		hs_error_set(err, "a profile of %zu sample types, more than %d: a bug in heapsnap",
			     count, PPROF_SAMPLE_TYPES_MAX);
		goto failed;
	}
	for (size_t i = 0; i < count; i++)
		if (intern(profile, types[i][0], &profile->sample_types[i][0], err) != 0 ||
		    intern(profile, types[i][1], &profile->sample_types[i][1], err) != 0)
			goto failed;
	profile->sample_type_count = count;
	if (intern(profile, default_type, &profile->default_sample_type, err) != 0 ||
	    intern(profile, program, &profile->program, err) != 0)
		goto failed;
	return 0;
failed:
	pprof_free(profile);
	return -1;
}

void pprof_free(struct pprof_profile *profile)
{
	string_table_free(&profile->strings);
	if (profile->functions)
		pprof_pairs_free(&profile->functions->pairs);
	if (profile->locations)
		pprof_pairs_free(&profile->locations->pairs);
	free(profile->functions);
	free(profile->locations);
	protobuf_free(&profile->samples);
	protobuf_free(&profile->scratch);
	free(profile->comments);
	*profile = (struct pprof_profile){0};
}

/* The id of the entry with `key` in `pairs`, made when new; 0 when out of memory. */
static uint64_t pair_id(struct pprof_pairs *pairs, struct string_pair key)
{
	const struct pprof_pairs_entry *entry = pprof_pairs_insert(pairs, key, NULL);
	return entry ? (uint64_t)(entry - pairs->entries) + 1 : 0;
}

uint64_t pprof_location(struct pprof_profile *profile, const char *function, const char *file,
			int64_t line)
{
	uint32_t name = string_table_intern(&profile->strings, function);
	uint32_t filename = string_table_intern(&profile->strings, file);
	if (name == UINT32_MAX || filename == UINT32_MAX)
		return 0;
	uint64_t function_id = pair_id(&profile->functions->pairs, (struct string_pair){name, filename});
	if (function_id == 0)
		return 0;
	return pair_id(&profile->locations->pairs, (struct string_pair){function_id, (uint64_t)line});
}

int pprof_sample(struct pprof_profile *profile, const uint64_t *stack, size_t depth,
		 const int64_t *values, struct hs_error *err)
{
	uint64_t encoded[PPROF_SAMPLE_TYPES_MAX];
	for (size_t i = 0; i < profile->sample_type_count; i++)
		encoded[i] = (uint64_t)values[i]; /* int64: a negative value as its two's complement */
	struct protobuf *scratch = &profile->scratch;
	protobuf_clear(scratch);
	protobuf_packed(scratch, SAMPLE_LOCATION_ID, stack, depth);
	protobuf_packed(scratch, SAMPLE_VALUE, encoded, profile->sample_type_count);
	if (!scratch->failed)
		protobuf_bytes(&profile->samples, PROFILE_SAMPLE, scratch->bytes, scratch->length);
	if (scratch->failed || profile->samples.failed)
		return hs_error_nomem(err, "encoding the profile's samples");
	profile->sample_count++;
	return 0;
}

int pprof_comment(struct pprof_profile *profile, const char *text, struct hs_error *err)
{
	uint32_t number;
	if (intern(profile, text, &number, err) != 0)
		return -1;
	uint64_t *grown = array_grow(profile->comments, &profile->comment_capacity,
				     profile->comment_count, sizeof *grown, 8);
	if (grown == NULL)
		return hs_error_nomem(err, "adding a comment to the profile");
	profile->comments = grown;
	profile->comments[profile->comment_count++] = number;
	return 0;
}

/* Each function and location as its message, into `out`. */
static void encode_frames(const struct pprof_profile *profile, struct protobuf *out,
			  struct protobuf *message)
{
	const struct pprof_pairs *functions = &profile->functions->pairs;
	for (size_t i = 0; i < functions->count; i++) {
		protobuf_clear(message);
		protobuf_varint(message, FUNCTION_ID, i + 1);
		protobuf_varint(message, FUNCTION_NAME, functions->entries[i].key.first);
		protobuf_varint(message, FUNCTION_SYSTEM_NAME, functions->entries[i].key.first);
		protobuf_varint(message, FUNCTION_FILENAME, functions->entries[i].key.second);
		if (!message->failed)
			protobuf_bytes(out, PROFILE_FUNCTION, message->bytes, message->length);
	}
	const struct pprof_pairs *locations = &profile->locations->pairs;
	struct protobuf line = {0};
	for (size_t i = 0; i < locations->count; i++) {
		protobuf_clear(&line);
		protobuf_varint(&line, LINE_FUNCTION_ID, locations->entries[i].key.first);
		if (locations->entries[i].key.second)
			protobuf_varint(&line, LINE_LINE, locations->entries[i].key.second);
		protobuf_clear(message);
		protobuf_varint(message, LOCATION_ID, i + 1);
		protobuf_varint(message, LOCATION_MAPPING_ID, 1);
		if (!line.failed)
			protobuf_bytes(message, LOCATION_LINE, line.bytes, line.length);
		if (!message->failed)
			protobuf_bytes(out, PROFILE_LOCATION, message->bytes, message->length);
	}
	out->failed |= line.failed || message->failed;
	protobuf_free(&line);
}

int pprof_encode(const struct pprof_profile *profile, struct protobuf *out, struct hs_error *err)
{
	struct protobuf message = {0};
	for (size_t i = 0; i < profile->sample_type_count; i++) {
		protobuf_clear(&message);
		protobuf_varint(&message, VALUE_TYPE_TYPE, profile->sample_types[i][0]);
		protobuf_varint(&message, VALUE_TYPE_UNIT, profile->sample_types[i][1]);
		if (!message.failed)
			protobuf_bytes(out, PROFILE_SAMPLE_TYPE, message.bytes, message.length);
	}
	protobuf_raw(out, profile->samples.bytes, profile->samples.length);
	protobuf_clear(&message);
	protobuf_varint(&message, MAPPING_ID, 1);
	protobuf_varint(&message, MAPPING_FILENAME, profile->program);
	protobuf_varint(&message, MAPPING_HAS_FUNCTIONS, 1);
	protobuf_varint(&message, MAPPING_HAS_FILENAMES, 1);
	protobuf_varint(&message, MAPPING_HAS_LINE_NUMBERS, 1);
	if (!message.failed)
		protobuf_bytes(out, PROFILE_MAPPING, message.bytes, message.length);
	encode_frames(profile, out, &message);
	for (size_t i = 0; i < profile->strings.count; i++) {
		const char *text = profile->strings.strings[i];
		protobuf_bytes(out, PROFILE_STRING_TABLE, text, strlen(text));
	}
	if (profile->time_nanos)
		protobuf_varint(out, PROFILE_TIME_NANOS, (uint64_t)profile->time_nanos);
	protobuf_packed(out, PROFILE_COMMENT, profile->comments, profile->comment_count);
	protobuf_varint(out, PROFILE_DEFAULT_SAMPLE_TYPE, profile->default_sample_type);
	bool failed = out->failed || message.failed;
	protobuf_free(&message);
	if (failed)
		return hs_error_nomem(err, "encoding the profile");
	return 0;
}

int pprof_write(const struct pprof_profile *profile, int fd, const char *path,
		struct hs_error *err)
{
	struct protobuf encoded = {0};
	int result = pprof_encode(profile, &encoded, err);
	if (result == 0)
		result = gzip_file_write(fd, path, encoded.bytes, encoded.length, err);
	protobuf_free(&encoded);
	return result;
}
