/* `heapsnap capture --sites DURATION`: the recording window before the capture (progress, Ctrl-C
 * ending it early) and what the window recorded, said on stderr after the capture. */
#ifndef HEAPSNAP_CLI_CAPTURE_SITES_H
#define HEAPSNAP_CLI_CAPTURE_SITES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "capture/sites_recorder.h"

/* "10s", "2m", "500ms", "1h", or seconds without a unit: into nanoseconds (*(uint64_t *)value);
 * false when not a duration from 1 ms to a day. */
bool capture_sites_parse_duration(void *value, const char *text);

/* Starts recording `pid`'s allocation sites and runs the window: returns the recorder to hand to
 * the capture, or NULL with the failure printed (exit status 2). */
struct sites_recorder *capture_sites_record(pid_t pid, uint64_t window_ns,
					    const struct sites_recorder_options *options);

/* After the capture: what the window recorded, and the warnings it calls for. */
void capture_sites_report(struct sites_recorder *recorder, uint64_t sample_bytes,
			  uint32_t max_live);

#endif
