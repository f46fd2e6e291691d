/* The ring of snapshots `heapsnap watch` keeps (watch_ring.h). */
#include "cli/watch_ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int watch_ring_init(struct watch_ring *ring, size_t keep, uint64_t max_bytes,
		    struct hs_error *err)
{
	memset(ring, 0, sizeof *ring);
	ring->keep = keep ? keep : 1;
	ring->max_bytes = max_bytes;
	/* the first, `keep` latest, and the one just added before the oldest leaves */
	ring->entries = calloc(ring->keep + 2, sizeof *ring->entries);
	if (ring->entries == NULL)
		return hs_error_nomem(err, "the list of %zu snapshots to keep", ring->keep);
	return 0;
}

void watch_ring_free(struct watch_ring *ring)
{
	for (size_t i = 0; ring->entries && i < ring->count; i++)
		free(ring->entries[i].path);
	free(ring->entries);
	memset(ring, 0, sizeof *ring);
}

/* Removes entry 1, the oldest after the first, from the disk and the ring. */
static int remove_oldest(struct watch_ring *ring, struct hs_error *err)
{
	struct watch_ring_entry *oldest = &ring->entries[1];
	if (unlink(oldest->path) != 0 && errno != ENOENT)
		return hs_error_set_errno(err, errno,
					  "cannot remove the old snapshot %s (to keep the ring within "
					  "--keep and --max-disk): remove it by hand or fix the "
					  "directory's permissions",
					  oldest->path);
	ring->bytes -= oldest->bytes;
	free(oldest->path);
	memmove(&ring->entries[1], &ring->entries[2], (ring->count - 2) * sizeof *ring->entries);
	ring->count--;
	ring->removed++;
	return 0;
}

static bool over_limit(const struct watch_ring *ring)
{
	return ring->count > ring->keep + 1 || (ring->max_bytes && ring->bytes > ring->max_bytes);
}

int watch_ring_add(struct watch_ring *ring, const char *path, uint64_t bytes,
		   struct hs_error *err)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return hs_error_nomem(err, "the name of snapshot %s", path);
	ring->entries[ring->count++] = (struct watch_ring_entry){copy, bytes};
	ring->bytes += bytes;
	while (ring->count > 2 && over_limit(ring))
		if (remove_oldest(ring, err) != 0)
			return -1;
	if (ring->max_bytes && ring->bytes > ring->max_bytes && ring->count == 1)
		return hs_error_set(err,
				    "the first snapshot (%s) takes %llu bytes, more than --max-disk "
				    "allows (%llu): give a larger --max-disk; it is kept",
				    path, (unsigned long long)bytes,
				    (unsigned long long)ring->max_bytes);
	if (ring->max_bytes && ring->bytes > ring->max_bytes)
		return hs_error_set(err,
				    "the first snapshot (%s) and the latest (%s) take %llu bytes "
				    "together, more than --max-disk allows (%llu): give a larger "
				    "--max-disk; both are kept",
				    ring->entries[0].path, path, (unsigned long long)ring->bytes,
				    (unsigned long long)ring->max_bytes);
	return 0;
}
