/* FNV-1a, the one hash of short texts and headers: hash tables' keys, path shapes' signatures, a
 * snapshot's layout digest. Each caller chooses its starting value (a signature's must never
 * change: reports in bug trackers cite them). Not for security. */
#ifndef HEAPSNAP_FNV_H
#define HEAPSNAP_FNV_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_PRIME 1099511628211ull

/* `hash` continued over `size` bytes. */
static inline uint64_t fnv1a_bytes(uint64_t hash, const void *bytes, size_t size)
{
	const uint8_t *at = bytes;
	for (size_t i = 0; i < size; i++)
		hash = (hash ^ at[i]) * FNV1A_PRIME;
	return hash;
}

/* `hash` continued over a NUL-terminated text (none for NULL). */
static inline uint64_t fnv1a_text(uint64_t hash, const char *text)
{
	for (; text && *text; text++)
		hash = (hash ^ (uint8_t)*text) * FNV1A_PRIME;
	return hash;
}

#endif
