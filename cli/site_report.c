/* The sites of a type or a path as the reports show them (see site_report.h). */
#include "site_report.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define WITHOUT_SITE "with no recorded site (made before recording began, or unseen)"

void site_frames_text(const struct site_description *site, size_t frames, char *out, size_t size)
{
	size_t used = 0;
	snprintf(out, size, "?");
	for (size_t depth = 0; site && depth < frames && depth < HEAPSNAP_SITE_FRAMES &&
			       site->stack[depth][0];
	     depth++)
		used += (size_t)snprintf(out + used, used < size ? size - used : 0, "%s%s",
					 depth ? " <- " : "", site->stack[depth]);
}

/* The frames to show of `count` sites: SITE_FRAMES_SHOWN, or more while two of them would read
 * the same (one function called from two lines of its caller is two sites). */
static size_t frames_to_tell(const struct site_description *const *sites, size_t count)
{
	size_t frames = SITE_FRAMES_SHOWN;
	char a[1024], b[1024];
	for (bool same = true; same && frames < HEAPSNAP_SITE_FRAMES;) {
		same = false;
		for (size_t i = 0; i < count && !same; i++)
			for (size_t k = i + 1; k < count && !same; k++) {
				site_frames_text(sites[i], frames, a, sizeof a);
				site_frames_text(sites[k], frames, b, sizeof b);
				same = strcmp(a, b) == 0;
			}
		frames += same;
	}
	return frames;
}

void site_json_members(struct emitter *e, const struct site_description *site)
{
	emit_string(e, "site", site ? site->text : "?");
	emit_string(e, "function", site ? site->function : "?");
	emit_string_or_null(e, "file", site && site->file[0] ? site->file : NULL);
	if (site && site->line)
		emit_uint(e, "line", site->line);
	else
		emit_null(e, "line");
	emit_array_begin(e, "stack");
	for (size_t depth = 0; site && depth < HEAPSNAP_SITE_FRAMES && site->stack[depth][0]; depth++)
		emit_string(e, NULL, site->stack[depth]);
	emit_array_end(e);
}

void site_json_group(struct emitter *e, const struct group_sites *sites, const char *count_key,
		     const char *bytes_key)
{
	if (!sites->counted)
		return;
	uint64_t more_count = 0, more_bytes = 0;
	emit_array_begin(e, "sites");
	for (size_t i = 0; i < sites->count; i++) {
		if (i >= SITE_BREAKDOWN_DESCRIBED) {
			more_count += sites->top[i].count;
			more_bytes += sites->top[i].bytes;
			continue;
		}
		emit_object_begin(e, NULL);
		site_json_members(e, sites->top[i].description);
		emit_uint(e, count_key, sites->top[i].count);
		emit_uint(e, bytes_key, sites->top[i].bytes);
		emit_object_end(e);
	}
	emit_array_end(e);
	emit_object_begin(e, "sites_more");
	emit_uint(e, "sites", sites->count > SITE_BREAKDOWN_DESCRIBED
				      ? sites->count - SITE_BREAKDOWN_DESCRIBED
				      : 0);
	emit_uint(e, count_key, more_count);
	emit_uint(e, bytes_key, more_bytes);
	emit_object_end(e);
	emit_object_begin(e, "without_site");
	emit_uint(e, count_key, sites->without_count);
	emit_uint(e, bytes_key, sites->without_bytes);
	emit_object_end(e);
}

/* The objects of a path at the sites it does not list. */
static uint64_t path_more_count(const struct path_shape *shape)
{
	uint64_t listed = shape->without_site;
	for (size_t i = 0; i < shape->site_count && i < PATH_SITES_MAX; i++)
		listed += shape->sites[i].count;
	return shape->count > listed ? shape->count - listed : 0;
}

void site_json_path(struct emitter *e, const struct path_shape *shape,
		    const struct analysis *analysis)
{
	if (!shape->has_sites || analysis == NULL)
		return;
	emit_array_begin(e, "sites");
	for (size_t i = 0; i < shape->site_count && i < PATH_SITES_MAX; i++) {
		emit_object_begin(e, NULL);
		site_json_members(e, allocation_sites_describe(&analysis->sites, analysis->symbols,
							       shape->sites[i].site));
		emit_uint(e, "count", shape->sites[i].count);
		emit_object_end(e);
	}
	emit_array_end(e);
	emit_object_begin(e, "sites_more");
	emit_uint(e, "sites", shape->site_count > PATH_SITES_MAX ? shape->site_count - PATH_SITES_MAX
								 : 0);
	emit_uint(e, "count", path_more_count(shape));
	emit_object_end(e);
	emit_object_begin(e, "without_site");
	emit_uint(e, "count", shape->without_site);
	emit_object_end(e);
}

/* One line of a site list: "     1,000  conn_new (server.c:41) <- accept_loop (...)". */
static void site_line(struct emitter *e, const char *indent, uint64_t objects, const char *what)
{
	char count[32];
	cli_format_count(objects, count, sizeof count);
	emit_human(e, "%s%8s  %s\n", indent, count, what);
}

/* One line of a path's sites, the count first: "1,000 at conn_new (server.c:41) <- ...". */
static void path_line(struct emitter *e, const char *indent, uint64_t objects, const char *what)
{
	char count[32];
	cli_format_count(objects, count, sizeof count);
	emit_human(e, "%s%s %s\n", indent, count, what);
}

/* "N more sites" (after the listed ones). */
static void more_line(struct emitter *e, const char *indent, size_t sites, uint64_t objects)
{
	char text[64];
	snprintf(text, sizeof text, "at %zu more site%s", sites, sites == 1 ? "" : "s");
	site_line(e, indent, objects, text);
}

void site_lines_group(struct emitter *e, const char *lead_indent, const char *lead,
		      const struct group_sites *sites, const char *indent)
{
	char frames[1024];
	if (sites->count == 1 && sites->without_count == 0) {
		site_frames_text(sites->top[0].description, SITE_FRAMES_SHOWN, frames,
				 sizeof frames);
		emit_human(e, "%s%s, allocated at %s\n", lead_indent, lead, frames);
		return;
	}
	emit_human(e, "%s%s\n", lead_indent, lead);
	const struct site_description *shown[SITES_SHOWN] = {0};
	for (size_t i = 0; i < sites->count && i < SITES_SHOWN; i++)
		shown[i] = sites->top[i].description;
	size_t depth = frames_to_tell(shown, sites->count < SITES_SHOWN ? sites->count : SITES_SHOWN);
	uint64_t more = 0;
	for (size_t i = 0; i < sites->count; i++) {
		if (i >= SITES_SHOWN) {
			more += sites->top[i].count;
			continue;
		}
		site_frames_text(sites->top[i].description, depth, frames, sizeof frames);
		site_line(e, indent, sites->top[i].count, frames);
	}
	if (sites->count > SITES_SHOWN)
		more_line(e, indent, sites->count - SITES_SHOWN, more);
	if (sites->without_count)
		site_line(e, indent, sites->without_count, WITHOUT_SITE);
}

void site_lines_path(struct emitter *e, const struct path_shape *shape,
		     const struct analysis *analysis, const char *indent)
{
	if (!shape->has_sites || analysis == NULL)
		return;
	char frames[1024], text[1100];
	const struct site_description *shown[PATH_SITES_MAX] = {0};
	size_t count = shape->site_count < PATH_SITES_MAX ? shape->site_count : PATH_SITES_MAX;
	for (size_t i = 0; i < count; i++)
		shown[i] = allocation_sites_describe(&analysis->sites, analysis->symbols,
						     shape->sites[i].site);
	size_t depth = frames_to_tell(shown, count);
	for (size_t i = 0; i < count; i++) {
		site_frames_text(shown[i], depth, frames, sizeof frames);
		snprintf(text, sizeof text, "at %s", frames);
		path_line(e, indent, shape->sites[i].count, text);
	}
	if (shape->site_count > PATH_SITES_MAX) {
		size_t more = shape->site_count - PATH_SITES_MAX;
		snprintf(text, sizeof text, "at %zu more site%s", more, more == 1 ? "" : "s");
		path_line(e, indent, path_more_count(shape), text);
	}
	if (shape->without_site)
		path_line(e, indent, shape->without_site, "with no recorded site");
}

void site_json_sampling(struct emitter *e, const struct allocation_sites *sites)
{
	if (sites->sample_bytes)
		emit_uint(e, "sites_sample_bytes", sites->sample_bytes);
}

void site_lines_sampling(struct emitter *e, const struct allocation_sites *sites,
			 const char *indent)
{
	if (sites->sample_bytes == 0)
		return;
	char bytes[32];
	cli_format_bytes(sites->sample_bytes, bytes, sizeof bytes);
	emit_human(e,
		   "%s(sampled: one allocation per %s on average was recorded; the counts at sites\n"
		   "%s are of the sampled ones alone, the others count as without a site)\n",
		   indent, bytes, indent);
}
