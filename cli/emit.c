/* The report emitter's three back ends (see emit.h): each call renders in the formats it belongs
 * to and returns at once in the others, so a report is one sequence of calls. */
#include "emit.h"

#include <stdarg.h>

#include "cli/cli.h"

void emitter_init(struct emitter *e, FILE *out, enum emit_format format, bool colour)
{
	*e = (struct emitter){.format = format, .out = out, .colour = colour && format == EMIT_TEXT};
	json_init(&e->json, out);
}

void emit_begin(struct emitter *e)
{
	if (e->format == EMIT_JSON)
		json_object_begin(&e->json);
}

void emit_end(struct emitter *e)
{
	if (e->format != EMIT_JSON)
		return;
	json_object_end(&e->json);
	json_finish(&e->json);
}

/* ---- JSON ---- */

/* The member's key, when it is one; false when the format is not JSON. */
static bool json_member(struct emitter *e, const char *key)
{
	if (e->format != EMIT_JSON)
		return false;
	if (key)
		json_key(&e->json, key);
	return true;
}

void emit_object_begin(struct emitter *e, const char *key)
{
	if (json_member(e, key))
		json_object_begin(&e->json);
}

void emit_object_end(struct emitter *e)
{
	if (e->format == EMIT_JSON)
		json_object_end(&e->json);
}

void emit_array_begin(struct emitter *e, const char *key)
{
	if (json_member(e, key))
		json_array_begin(&e->json);
}

void emit_array_end(struct emitter *e)
{
	if (e->format == EMIT_JSON)
		json_array_end(&e->json);
}

void emit_string(struct emitter *e, const char *key, const char *value)
{
	if (json_member(e, key))
		json_string(&e->json, value);
}

void emit_uint(struct emitter *e, const char *key, uint64_t value)
{
	if (json_member(e, key))
		json_uint(&e->json, value);
}

void emit_int(struct emitter *e, const char *key, int64_t value)
{
	if (json_member(e, key))
		json_int(&e->json, value);
}

void emit_double(struct emitter *e, const char *key, double value)
{
	if (json_member(e, key))
		json_double(&e->json, value);
}

void emit_bool(struct emitter *e, const char *key, bool value)
{
	if (json_member(e, key))
		json_bool(&e->json, value);
}

void emit_null(struct emitter *e, const char *key)
{
	if (json_member(e, key))
		json_null(&e->json);
}

void emit_string_or_null(struct emitter *e, const char *key, const char *value)
{
	if (value)
		emit_string(e, key, value);
	else
		emit_null(e, key);
}

/* ---- both ---- */

/* (`human` is the caller's format with one %s, as emit.h says) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
void emit_kv_count(struct emitter *e, const char *key, uint64_t value, const char *human)
{
	char text[32];
	if (json_member(e, key)) {
		json_uint(&e->json, value);
		return;
	}
	cli_format_count(value, text, sizeof text);
	fprintf(e->out, human, text);
}

void emit_kv_bytes(struct emitter *e, const char *key, uint64_t value, const char *human)
{
	char text[32];
	if (json_member(e, key)) {
		json_uint(&e->json, value);
		return;
	}
	cli_format_bytes(value, text, sizeof text);
	fprintf(e->out, human, text);
}
#pragma GCC diagnostic pop

/* ---- prose ---- */

void emit_human(struct emitter *e, const char *format, ...)
{
	if (e->format == EMIT_JSON)
		return;
	va_list args;
	va_start(args, format);
	vfprintf(e->out, format, args);
	va_end(args);
}

void emit_text(struct emitter *e, const char *format, ...)
{
	if (e->format != EMIT_TEXT)
		return;
	va_list args;
	va_start(args, format);
	vfprintf(e->out, format, args);
	va_end(args);
}

void emit_markdown(struct emitter *e, const char *format, ...)
{
	if (e->format != EMIT_MARKDOWN)
		return;
	va_list args;
	va_start(args, format);
	vfprintf(e->out, format, args);
	va_end(args);
}

/* Backticks around it; what would end the cell ('|') or the code ('`') escaped or replaced, and a
 * newline made a space (a table row is one line). */
static void markdown_code(FILE *out, const char *text)
{
	fputc('`', out);
	for (; *text; text++) {
		if (*text == '|')
			fputs("\\|", out);
		else if (*text == '`')
			fputc('\'', out);
		else if (*text == '\n')
			fputc(' ', out);
		else
			fputc(*text, out);
	}
	fputc('`', out);
}

void emit_code(struct emitter *e, const char *text)
{
	if (e->format == EMIT_MARKDOWN)
		markdown_code(e->out, text);
	else if (e->format == EMIT_TEXT)
		fputs(text, e->out);
}

const char *emit_paint(const struct emitter *e, const char *code)
{
	return e->colour ? code : "";
}

void emit_heading(struct emitter *e, const char *text_title, const char *markdown_title)
{
	if (e->format == EMIT_TEXT)
		fprintf(e->out, "\n%s%s%s\n", emit_paint(e, EMIT_BOLD), text_title,
			emit_paint(e, EMIT_RESET));
	else if (e->format == EMIT_MARKDOWN)
		fprintf(e->out, "\n#### %s\n\n", markdown_title);
}

/* ---- tables ---- */

void emit_table_columns(struct emitter *e, unsigned formats, const struct emit_column *columns,
			size_t count)
{
	e->columns = columns;
	e->column_count = count;
	e->table_shown = e->format != EMIT_JSON && (formats & EMIT_ONLY(e->format));
}

static void text_cell(const struct emitter *e, const struct emit_column *column, const char *cell,
		      bool paint)
{
	const char *colour = paint && column->colour ? emit_paint(e, column->colour) : "";
	fprintf(e->out, "%s%s", column->gap ? column->gap : "", colour);
	if (column->width)
		fprintf(e->out, "%*s", column->width, cell);
	else
		fputs(cell, e->out);
	fputs(colour[0] ? emit_paint(e, EMIT_RESET) : "", e->out);
}

static void markdown_cell(const struct emitter *e, const struct emit_column *column,
			  const char *cell)
{
	fputs("| ", e->out);
	if (column->code) {
		markdown_code(e->out, cell);
		fputc(' ', e->out);
	} else if (cell[0]) {
		fprintf(e->out, "%s ", cell);
	}
}

void emit_table_begin(struct emitter *e, unsigned formats, const struct emit_column *columns,
		      size_t count)
{
	emit_table_columns(e, formats, columns, count);
	if (!e->table_shown)
		return;
	if (e->format == EMIT_TEXT) {
		for (size_t i = 0; i < count; i++)
			text_cell(e, &columns[i], columns[i].title, false);
		fputc('\n', e->out);
		return;
	}
	for (size_t i = 0; i < count; i++)
		fprintf(e->out, "| %s ", columns[i].title);
	fputs("|\n", e->out);
	for (size_t i = 0; i < count; i++)
		fputs(columns[i].width > 0 ? "|---:" : "|---", e->out);
	fputs("|\n", e->out);
}

void emit_table_row(struct emitter *e, const char *const *cells)
{
	if (!e->table_shown)
		return;
	for (size_t i = 0; i < e->column_count; i++)
		if (e->format == EMIT_TEXT)
			text_cell(e, &e->columns[i], cells[i], true);
		else
			markdown_cell(e, &e->columns[i], cells[i]);
	fputs(e->format == EMIT_TEXT ? "\n" : "|\n", e->out);
}
