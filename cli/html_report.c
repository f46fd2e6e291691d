/* The HTML report page (see html_report.h): the page's frame, the report's JSON embedded safely
 * in it, and the stylesheet and script (cli/html/report.css and report.js, made into C strings at
 * build time by scripts/embed_text). */
#include "html_report.h"

#include <stdbool.h>
#include <stdlib.h>

#include "html_assets.h" /* made at build time */

/* The JSON inside <script type="application/json">: '<', '>' and '&' only occur in JSON strings,
 * where their \u escapes mean the same, so nothing in a value can end the script element or open
 * a comment. */
static void write_embedded_json(FILE *out, const char *json, size_t length)
{
	for (size_t i = 0; i < length; i++) {
		char character = json[i];
		if (character == '<')
			fputs("\\u003c", out);
		else if (character == '>')
			fputs("\\u003e", out);
		else if (character == '&')
			fputs("\\u0026", out);
		else
			fputc(character, out);
	}
}

int html_report_write(FILE *out, enum html_report_kind kind, const char *json, size_t length)
{
	const char *title = kind == HTML_REPORT_DIFF ? "heapdiff report" : "heapsnap summary";
	fprintf(out,
		"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		/* nothing may be fetched: the page is whole as it is */
		"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		"style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		"<meta name=\"color-scheme\" content=\"light dark\">\n"
		"<meta name=\"generator\" content=\"heapsnap %s\">\n<title>%s</title>\n<style>\n",
		HEAPSNAP_VERSION, title);
	fputs(html_report_css, out);
	fprintf(out,
		"</style>\n</head>\n<body data-kind=\"%s\">\n<main id=\"report\">\n<noscript><p>This "
		"report is drawn by the script in this file; with scripts off, its data is the JSON "
		"in the element #report-data of the page's source.</p></noscript>\n</main>\n"
		"<script type=\"application/json\" id=\"report-data\">\n",
		kind == HTML_REPORT_DIFF ? "diff" : "summary");
	write_embedded_json(out, json, length);
	fputs("</script>\n<script>\n", out);
	fputs(html_report_js, out);
	fputs("</script>\n</body>\n</html>\n", out);
	return ferror(out) ? -1 : 0;
}

int html_report_from_json(FILE *out, enum html_report_kind kind,
			  void (*write_json)(FILE *json_out, void *context), void *context)
{
	char *json = NULL;
	size_t length = 0;
	FILE *memory = open_memstream(&json, &length);
	if (memory == NULL)
		return -1;
	write_json(memory, context);
	bool failed = ferror(memory) != 0;
	if (fclose(memory) != 0 || failed) {
		free(json);
		return -1;
	}
	int status = html_report_write(out, kind, json, length);
	free(json);
	return status;
}
