/* Where the objects of a type, or of one retaining path, were allocated, as the reports show it
 * when the snapshot records sites: a line per site in text and markdown ("1,000  conn_new
 * (server.c:41) <- accept_loop (server.c:90)"), the main sites of a type with their counts, then
 * how many more sites and how many objects have none ("300 with no recorded site"); in JSON each
 * site with its stack. summary and heapdiff share it. */
#ifndef HEAPSNAP_SITE_REPORT_H
#define HEAPSNAP_SITE_REPORT_H

#include <stddef.h>

#include "analyze/analysis.h"
#include "analyze/graph/paths.h"
#include "analyze/site_breakdown.h"
#include "cli/emit.h"

#define SITES_SHOWN 3 /* per type (and per path) in text and markdown */
#define SITE_FRAMES_SHOWN 2 /* frames of a site's stack in text and markdown */

/* The first `frames` frames of a site: "conn_new (server.c:41) <- accept_loop (server.c:90)";
 * "?" when it could not be described. */
void site_frames_text(const struct site_description *site, size_t frames, char *out, size_t size);

/* A site's members in JSON: "site", "function", "file", "line", "stack". */
void site_json_members(struct emitter *e, const struct site_description *site);

/* A group's sites in JSON, in the object being written: "sites" [{site members, COUNT_KEY,
 * BYTES_KEY}] (the first SITE_BREAKDOWN_DESCRIBED), "sites_more" {"sites", COUNT_KEY,
 * BYTES_KEY} and "without_site" {COUNT_KEY, BYTES_KEY}; nothing when they were not counted. */
void site_json_group(struct emitter *e, const struct group_sites *sites, const char *count_key,
		     const char *bytes_key);

/* A path's sites in JSON, in its retainer object: "sites" [{site members, "count"}],
 * "sites_more" {"sites", "count"}, "without_site" {"count"}; nothing without sites (or
 * `analysis`). */
void site_json_path(struct emitter *e, const struct path_shape *shape,
		    const struct analysis *analysis);

/* Text and markdown (emit_human): `lead` ("1,000 new struct conn") after `lead_indent`, then
 * its sites a line each after `indent`; when all its objects come from one site, one line:
 * "1,000 new struct conn, allocated at SITE". */
void site_lines_group(struct emitter *e, const char *lead_indent, const char *lead,
		      const struct group_sites *sites, const char *indent);

/* Text and markdown (emit_human): a path's sites, a line each after `indent` (none without
 * `analysis`). */
void site_lines_path(struct emitter *e, const struct path_shape *shape,
		     const struct analysis *analysis, const char *indent);

/* When the sites were sampled (INFO's sites_sample_bytes): JSON "sites_sample_bytes"; text and
 * markdown a line after `indent` saying the counts at sites are a sample. Nothing otherwise. */
void site_json_sampling(struct emitter *e, const struct allocation_sites *sites);
void site_lines_sampling(struct emitter *e, const struct allocation_sites *sites,
			 const char *indent);

#endif
