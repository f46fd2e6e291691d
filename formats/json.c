/* The JSON writer (see json.h). A report writes its JSON from one thread, so the stream is
 * written unlocked (stdio's locked calls, one a byte, cost more than the formatting), and strings
 * go out in runs of the bytes that need no escape. */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void json_init(struct json_writer *json, FILE *out)
{
	json->out = out;
	json->memory = (struct json_memory){0};
	json->depth = 0;
	json->first[0] = true;
	json->after_key = false;
}

void json_init_memory(struct json_writer *json)
{
	json_init(json, NULL);
}

void json_memory_clear(struct json_writer *json)
{
	json->memory.length = 0;
}

void json_free_memory(struct json_writer *json)
{
	free(json->memory.bytes);
	json->memory = (struct json_memory){0};
}

static void put_slow(struct json_writer *json, const void *bytes, size_t size)
{
	struct json_memory *memory = &json->memory;
	if (memory->length + size > memory->capacity) {
		size_t capacity = memory->capacity ? memory->capacity : 4096;
		while (capacity < memory->length + size)
			capacity *= 2;
		char *grown = realloc(memory->bytes, capacity);
		if (grown == NULL) {
			memory->out_of_memory = true;
			return;
		}
		memory->bytes = grown;
		memory->capacity = capacity;
	}
	memcpy(memory->bytes + memory->length, bytes, size);
	memory->length += size;
}

/* Writes bytes to the stream, or into memory. */
static inline void put(struct json_writer *json, const void *bytes, size_t size)
{
	struct json_memory *memory = &json->memory;
	if (json->out)
		fwrite_unlocked(bytes, 1, size, json->out);
	else if (memory->length + size <= memory->capacity) {
		memcpy(memory->bytes + memory->length, bytes, size);
		memory->length += size;
	} else
		put_slow(json, bytes, size);
}

static inline void put_byte(struct json_writer *json, char byte)
{
	if (json->out)
		fputc_unlocked(byte, json->out);
	else
		put(json, &byte, 1);
}

static void put_text(struct json_writer *json, const char *text)
{
	put(json, text, strlen(text));
}

/* Writes the comma that separates this value from the previous one, if any. */
static void separate(struct json_writer *json)
{
	if (json->after_key) {
		json->after_key = false;
		return;
	}
	if (!json->first[json->depth])
		put_byte(json, ',');
	json->first[json->depth] = false;
}

static void open_nested(struct json_writer *json, char bracket)
{
	separate(json);
	put_byte(json, bracket);
	if (json->depth + 1 < JSON_MAX_DEPTH)
		json->depth++;
	json->first[json->depth] = true;
}

static void close_nested(struct json_writer *json, char bracket)
{
	if (json->depth > 0)
		json->depth--;
	put_byte(json, bracket);
}

void json_object_begin(struct json_writer *json) { open_nested(json, '{'); }
void json_object_end(struct json_writer *json) { close_nested(json, '}'); }
void json_array_begin(struct json_writer *json) { open_nested(json, '['); }
void json_array_end(struct json_writer *json) { close_nested(json, ']'); }

/* Length of the valid UTF-8 sequence starting at `at`, or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *at)
{
	size_t length;
	uint32_t minimum, code;
	if (at[0] < 0x80)
		return 1;
	if ((at[0] & 0xE0) == 0xC0)
		length = 2, minimum = 0x80, code = at[0] & 0x1F;
	else if ((at[0] & 0xF0) == 0xE0)
		length = 3, minimum = 0x800, code = at[0] & 0x0F;
	else if ((at[0] & 0xF8) == 0xF0)
		length = 4, minimum = 0x10000, code = at[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < length; i++) {
		if ((at[i] & 0xC0) != 0x80)
			return 0; /* also stops at the terminating NUL */
		code = code << 6 | (at[i] & 0x3F);
	}
	if (code < minimum || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
		return 0;
	return length;
}

/* Whether a byte below 0x80 is written as it is inside a JSON string. */
static bool plain(unsigned char byte)
{
	return byte >= 0x20 && byte != 0x7f && byte != '"' && byte != '\\';
}

/* Writes a JSON string. Bytes that are not valid UTF-8 (a path or a name from a process may hold
 * any byte) are written as the code points of the same value, so the document stays valid. */
static void write_escaped(struct json_writer *json, const char *value)
{
	put_byte(json, '"');
	const unsigned char *at = (const unsigned char *)value;
	char escape[8];
	while (*at) {
		const unsigned char *run = at;
		while (*at && *at < 0x80 && plain(*at))
			at++;
		if (at > run)
			put(json, run, (size_t)(at - run));
		if (*at == '\0')
			break;
		if (*at >= 0x80) {
			size_t length = utf8_sequence(at);
			if (length == 0) {
				snprintf(escape, sizeof escape, "\\u%04x", *at);
				put_text(json, escape);
				length = 1;
			} else {
				put(json, at, length);
			}
			at += length;
			continue;
		}
		switch (*at) {
		case '"': put_text(json, "\\\""); break;
		case '\\': put_text(json, "\\\\"); break;
		case '\n': put_text(json, "\\n"); break;
		case '\r': put_text(json, "\\r"); break;
		case '\t': put_text(json, "\\t"); break;
		default: /* the other control bytes, and DEL */
			snprintf(escape, sizeof escape, "\\u%04x", *at);
			put_text(json, escape);
		}
		at++;
	}
	put_byte(json, '"');
}

/* Writes the decimal digits of `value`: as printf's %llu would, without its parsing. */
static void write_digits(struct json_writer *json, uint64_t value)
{
	char digits[20];
	size_t at = sizeof digits;
	do {
		digits[--at] = (char)('0' + value % 10);
		value /= 10;
	} while (value);
	put(json, digits + at, sizeof digits - at);
}

void json_key(struct json_writer *json, const char *key)
{
	separate(json);
	write_escaped(json, key);
	put_byte(json, ':');
	json->after_key = true;
}

void json_string(struct json_writer *json, const char *value)
{
	separate(json);
	write_escaped(json, value ? value : "");
}

void json_uint(struct json_writer *json, uint64_t value)
{
	separate(json);
	write_digits(json, value);
}

void json_int(struct json_writer *json, int64_t value)
{
	separate(json);
	if (value < 0) {
		put_byte(json, '-');
		write_digits(json, (uint64_t)0 - (uint64_t)value);
	} else {
		write_digits(json, (uint64_t)value);
	}
}

void json_double(struct json_writer *json, double value)
{
	separate(json);
	char text[32];
	if (isfinite(value))
		snprintf(text, sizeof text, "%.17g", value);
	put_text(json, isfinite(value) ? text : "null");
}

void json_bool(struct json_writer *json, bool value)
{
	separate(json);
	put_text(json, value ? "true" : "false");
}

void json_null(struct json_writer *json)
{
	separate(json);
	put_text(json, "null");
}

void json_finish(struct json_writer *json)
{
	put_byte(json, '\n');
	json->depth = 0; /* a next document starts afresh (JSON lines) */
	json->first[0] = true;
	json->after_key = false;
}
