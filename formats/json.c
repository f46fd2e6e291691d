/* The JSON writer (see json.h). */
#include "json.h"

#include <inttypes.h>
#include <math.h>

void json_init(struct json_writer *json, FILE *out)
{
	json->out = out;
	json->depth = 0;
	json->first[0] = true;
	json->after_key = false;
}

/* Writes the comma that separates this value from the previous one, if any. */
static void separate(struct json_writer *json)
{
	if (json->after_key) {
		json->after_key = false;
		return;
	}
	if (!json->first[json->depth])
		fputc(',', json->out);
	json->first[json->depth] = false;
}

static void open_nested(struct json_writer *json, char bracket)
{
	separate(json);
	fputc(bracket, json->out);
	if (json->depth + 1 < JSON_MAX_DEPTH)
		json->depth++;
	json->first[json->depth] = true;
}

static void close_nested(struct json_writer *json, char bracket)
{
	if (json->depth > 0)
		json->depth--;
	fputc(bracket, json->out);
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

/* Writes a JSON string. Bytes that are not valid UTF-8 (a path or a name from a process may hold
 * any byte) are written as the code points of the same value, so the document stays valid. */
static void write_escaped(FILE *out, const char *value)
{
	fputc('"', out);
	for (const unsigned char *at = (const unsigned char *)value; *at; at++) {
		if (*at >= 0x80) {
			size_t length = utf8_sequence(at);
			if (length == 0) {
				fprintf(out, "\\u%04x", *at);
			} else {
				fwrite(at, 1, length, out);
				at += length - 1;
			}
			continue;
		}
		switch (*at) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (*at < 0x20 || *at == 0x7f)
				fprintf(out, "\\u%04x", *at);
			else
				fputc(*at, out);
		}
	}
	fputc('"', out);
}

void json_key(struct json_writer *json, const char *key)
{
	separate(json);
	write_escaped(json->out, key);
	fputc(':', json->out);
	json->after_key = true;
}

void json_string(struct json_writer *json, const char *value)
{
	separate(json);
	write_escaped(json->out, value ? value : "");
}

void json_uint(struct json_writer *json, uint64_t value)
{
	separate(json);
	fprintf(json->out, "%" PRIu64, value);
}

void json_int(struct json_writer *json, int64_t value)
{
	separate(json);
	fprintf(json->out, "%" PRId64, value);
}

void json_double(struct json_writer *json, double value)
{
	separate(json);
	if (isfinite(value))
		fprintf(json->out, "%.17g", value);
	else
		fputs("null", json->out);
}

void json_bool(struct json_writer *json, bool value)
{
	separate(json);
	fputs(value ? "true" : "false", json->out);
}

void json_null(struct json_writer *json)
{
	separate(json);
	fputs("null", json->out);
}

void json_finish(struct json_writer *json) { fputc('\n', json->out); }
