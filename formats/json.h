/* A small streaming JSON writer for the report encoders: it tracks commas and nesting so callers
 * only say what to write, and escapes every string (process memory can hold any byte). */
#ifndef HEAPSNAP_JSON_H
#define HEAPSNAP_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

struct json_writer {
	FILE *out; /* NULL: written into `memory` */
	struct json_memory {
		char *bytes;
		size_t length, capacity;
		bool out_of_memory; /* something was not written */
	} memory;
	int depth;
	bool first[JSON_MAX_DEPTH];
	bool after_key;
};

void json_init(struct json_writer *json, FILE *out);
/* A writer into memory (json->memory), for a caller that formats in parts (in threads, or many
 * small documents) and writes them out itself; json_memory_clear empties it (what was written
 * out), json_free_memory releases it. */
void json_init_memory(struct json_writer *json);
void json_memory_clear(struct json_writer *json);
void json_free_memory(struct json_writer *json);
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
/* Ends the document with a newline; what is written next is a new document (JSON lines). */
void json_finish(struct json_writer *json);

#endif
