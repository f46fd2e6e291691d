/* A small streaming JSON writer for the report encoders: it tracks commas and nesting so callers
 * only say what to write, and escapes every string (process memory can hold any byte). */
#ifndef HEAPSNAP_JSON_H
#define HEAPSNAP_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

struct json_writer {
	FILE *out;
	int depth;
	bool first[JSON_MAX_DEPTH];
	bool after_key;
};

void json_init(struct json_writer *json, FILE *out);
void json_object_begin(struct json_writer *json);
void json_object_end(struct json_writer *json);
void json_array_begin(struct json_writer *json);
void json_array_end(struct json_writer *json);
void json_key(struct json_writer *json, const char *key);
void json_string(struct json_writer *json, const char *value);
void json_uint(struct json_writer *json, uint64_t value);
void json_int(struct json_writer *json, int64_t value);
void json_double(struct json_writer *json, double value);
void json_bool(struct json_writer *json, bool value);
void json_null(struct json_writer *json);
/* Ends the document with a newline. */
void json_finish(struct json_writer *json);

#endif
