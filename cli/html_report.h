/* The HTML reports (`heapdiff --format html`, `heapsnap summary --format html`): one
 * self-contained page, no network, no external script or font. The page carries the report's JSON
 * (the same document `--format json` prints, so values are masked exactly as there) and renders it
 * in the browser with inline CSS, JS and SVG: header and footer, sortable tables with bars,
 * retaining paths as graphs, an icicle of retained bytes, cycles as rings; light and dark, and
 * readable printed. */
#ifndef HEAPSNAP_HTML_REPORT_H
#define HEAPSNAP_HTML_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum html_report_kind { HTML_REPORT_DIFF, HTML_REPORT_SUMMARY };

/* Writes the page, its data written by `write_json(json_out, context)` (a heapsnap.diff/1 or
 * heapsnap.summary/1 document) into it as it is made; `with_sites` (the snapshot records
 * allocation sites): the page also draws where objects were allocated (cli/html/sites.js). -1
 * when writing failed (errno says why). */
int html_report_write(FILE *out, enum html_report_kind kind, bool with_sites,
		      void (*write_json)(FILE *json_out, void *context), void *context);

#endif
