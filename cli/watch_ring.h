/* The snapshots `heapsnap watch` keeps on disk: the first of the run (what every later one is
 * compared with) and the latest N, never more than a byte limit in all; the oldest of the others
 * is removed first. Only files the watch itself wrote are ever removed. */
#ifndef HEAPSNAP_WATCH_RING_H
#define HEAPSNAP_WATCH_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct watch_ring_entry {
	char *path;
	uint64_t bytes;
};

struct watch_ring {
	struct watch_ring_entry *entries; /* [0] the first of the run, then the oldest kept */
	size_t count;
	size_t keep;	   /* the latest ones kept beside the first */
	uint64_t max_bytes; /* 0: no limit */
	uint64_t bytes;	   /* of the entries */
	size_t removed;	   /* snapshots removed so far */
};

/* An empty ring keeping the first and the latest `keep` (at least 1) within `max_bytes`. */
int watch_ring_init(struct watch_ring *ring, size_t keep, uint64_t max_bytes,
		    struct hs_error *err);
void watch_ring_free(struct watch_ring *ring);

/* Adds the snapshot just written at `path` (`bytes` long), then removes the oldest but the first
 * while more than `keep` follow it or the ring holds more than max_bytes. -1 when the first and
 * the latest alone hold more than max_bytes (both stay on disk, the error says how much), or a
 * file could not be removed. */
int watch_ring_add(struct watch_ring *ring, const char *path, uint64_t bytes,
		   struct hs_error *err);

static inline const char *watch_ring_first(const struct watch_ring *ring)
{
	return ring->count ? ring->entries[0].path : NULL;
}

static inline const char *watch_ring_latest(const struct watch_ring *ring)
{
	return ring->count ? ring->entries[ring->count - 1].path : NULL;
}

#endif
