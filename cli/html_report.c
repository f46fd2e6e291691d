/* The HTML report page (see html_report.h): the page's frame, the report's JSON embedded safely
 * in it, and the stylesheet and script (cli/html/report.css and report.js, made into C strings at
 * build time by scripts/embed_text), with sites.css and sites.js for a report with sites. */
#include "html_report.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "html_assets.h" /* made at build time */

/* The JSON inside <script type="application/json">, written through as it is made (a large heap's
 * report is not held in memory): '<', '>' and '&' only occur in JSON strings, where their \u
 * escapes mean the same, so nothing in a value can end the script element or open a comment. */
static ssize_t write_escaped(void *cookie, const char *buffer, size_t size)
{
	FILE *out = cookie;
	for (size_t i = 0; i < size; i++) {
		if (buffer[i] == '<')
			fputs("\\u003c", out);
		else if (buffer[i] == '>')
			fputs("\\u003e", out);
		else if (buffer[i] == '&')
			fputs("\\u0026", out);
		else
			fputc(buffer[i], out);
	}
	return ferror(out) ? -1 : (ssize_t)size;
}

/* The script; with sites, sites.js inside report.js's function, after it has drawn the page and
 * before it says so (its last statement): sites.js uses its helpers and adds to what it drew. A
 * page without sites gets report.js alone, as it always did. */
static void write_script(FILE *out, bool with_sites)
{
	static const char drawn[] = "\tdocument.body.dataset.rendered = \"true\";\n";
	const char *end = with_sites ? strstr(html_report_js, drawn) : NULL;
	if (end == NULL) {
		fputs(html_report_js, out);
		return;
	}
	fwrite(html_report_js, 1, (size_t)(end - html_report_js), out);
	fputs(html_sites_js, out);
	fputs(end, out);
}

int html_report_write(FILE *out, enum html_report_kind kind, bool with_sites,
		      void (*write_json)(FILE *json_out, void *context), void *context)
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
	if (with_sites)
		fputs(html_sites_css, out);
	fprintf(out,
		"</style>\n</head>\n<body data-kind=\"%s\">\n<main id=\"report\">\n<noscript><p>This "
		"report is drawn by the script in this file; with scripts off, its data is the JSON "
		"in the element #report-data of the page's source.</p></noscript>\n</main>\n"
		"<script type=\"application/json\" id=\"report-data\">\n",
		kind == HTML_REPORT_DIFF ? "diff" : "summary");
	cookie_io_functions_t escaping = {.write = write_escaped};
	FILE *json = fopencookie(out, "w", escaping);
	if (json == NULL)
		return -1;
	write_json(json, context);
	bool failed = ferror(json) != 0;
	failed = fclose(json) != 0 || failed;
	fputs("</script>\n<script>\n", out);
	write_script(out, with_sites);
	fputs("</script>\n</body>\n</html>\n", out);
	return failed || ferror(out) ? -1 : 0;
}
