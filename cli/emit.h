/* The report emitter, after jemalloc's (include/jemalloc/internal/emitter.h): a report is written
 * by one sequence of calls, and the emitter, made for one format, renders each call or ignores it.
 * Three back ends: aligned text (bold and red only when colour is asked), GitHub-flavoured
 * markdown, and JSON through formats/json.h. The document's structure (objects, arrays, keys and
 * values) is what the JSON back end writes and the others skip; headings, tables and prose are
 * what the human back ends write and JSON skips. Where text and markdown differ in what they say,
 * the report says so with the calls only one of them renders (emit_text, emit_markdown), as
 * jemalloc's emitter_table_printf. */
#ifndef HEAPSNAP_EMIT_H
#define HEAPSNAP_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "formats/json.h"

enum emit_format { EMIT_TEXT, EMIT_MARKDOWN, EMIT_JSON };

/* Colours, for emit_paint: text with colour only. */
#define EMIT_BOLD "\033[1m"
#define EMIT_RED "\033[31m"
#define EMIT_RESET "\033[0m"

/* A column of a table. In text each cell is right-aligned to `width` (left-aligned when
 * negative; 0: not padded) after `gap` (the row's indent for the first column); in markdown
 * `width` only says the alignment (right when positive), and a `code` cell is written in
 * backticks. */
struct emit_column {
	const char *title;
	int width;
	const char *gap;
	bool code;	    /* markdown: in backticks, escaped for a table cell */
	const char *colour; /* text with colour: the cell painted so */
};

struct emitter {
	enum emit_format format;
	FILE *out;
	bool colour;
	struct json_writer json;
	const struct emit_column *columns; /* the table being written */
	size_t column_count;
	bool table_shown; /* in this format */
};

void emitter_init(struct emitter *e, FILE *out, enum emit_format format, bool colour);
static inline bool emit_is(const struct emitter *e, enum emit_format format)
{
	return e->format == format;
}

/* The document: in JSON its outer object and the newline that ends it. */
void emit_begin(struct emitter *e);
void emit_end(struct emitter *e);

/* ---- the structure: JSON only. `key` is the member's name, NULL for an array's element. ---- */
void emit_object_begin(struct emitter *e, const char *key);
void emit_object_end(struct emitter *e);
void emit_array_begin(struct emitter *e, const char *key);
void emit_array_end(struct emitter *e);
void emit_string(struct emitter *e, const char *key, const char *value);
void emit_uint(struct emitter *e, const char *key, uint64_t value);
void emit_int(struct emitter *e, const char *key, int64_t value);
void emit_double(struct emitter *e, const char *key, double value);
void emit_bool(struct emitter *e, const char *key, bool value);
void emit_null(struct emitter *e, const char *key);
/* `value`, or null when it is NULL. */
void emit_string_or_null(struct emitter *e, const char *key, const char *value);

/* ---- a fact both kinds of reader get: the member KEY: VALUE in JSON; in text and markdown,
 * `human` (a printf format with one %s: "  live  %12s allocations") given the value as people
 * read it ("1,234", "1.5 MiB"). ---- */
void emit_kv_count(struct emitter *e, const char *key, uint64_t value, const char *human);
void emit_kv_bytes(struct emitter *e, const char *key, uint64_t value, const char *human);

/* ---- prose: the human formats only ---- */
void emit_human(struct emitter *e, const char *format, ...) __attribute__((format(printf, 2, 3)));
void emit_text(struct emitter *e, const char *format, ...) __attribute__((format(printf, 2, 3)));
void emit_markdown(struct emitter *e, const char *format, ...)
	__attribute__((format(printf, 2, 3)));
/* Markdown: `text` in backticks, escaped so it cannot end a table cell or the code; text: as it
 * is. */
void emit_code(struct emitter *e, const char *text);
/* `code` in text with colour, else "" (for the emit_text calls that paint part of a line). */
const char *emit_paint(const struct emitter *e, const char *code);
/* A section's title: text "\nTITLE\n" (bold with colour), markdown "\n#### TITLE\n\n". The two
 * can word it differently (text ends its titles with a colon and says more). */
void emit_heading(struct emitter *e, const char *text_title, const char *markdown_title);

/* ---- tables: the human formats only, and of those the ones in `formats` (EMIT_ONLY bits: a
 * table one format draws and the other says in prose). emit_table_begin writes the header (text:
 * the titles aligned as the cells; markdown: the titles and the alignment row);
 * emit_table_columns sets the columns without one (text lists without titles). ---- */
#define EMIT_ONLY(format) (1u << (format))
#define EMIT_HUMAN (EMIT_ONLY(EMIT_TEXT) | EMIT_ONLY(EMIT_MARKDOWN))
void emit_table_columns(struct emitter *e, unsigned formats, const struct emit_column *columns,
			size_t count);
void emit_table_begin(struct emitter *e, unsigned formats, const struct emit_column *columns,
		      size_t count);
/* One cell per column; an empty cell is left blank in markdown ("| |"). */
void emit_table_row(struct emitter *e, const char *const *cells);

#endif
