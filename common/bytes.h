/* Little-endian numbers read from bytes copied out of a snapshot or a process (a block's header,
 * an object's fields), at any offset, aligned or not: the one family of readers. By memcpy, which
 * the compiler turns into one load, rather than through a cast pointer: a misaligned one is
 * undefined behaviour, and breaks strict aliasing. The host's order is the target's (snapshots
 * are of x86-64 processes, read on x86-64), so no byte is swapped. */
#ifndef HEAPSNAP_BYTES_H
#define HEAPSNAP_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "bytes.h reads little-endian numbers "
							  "in the host's order");

static inline uint16_t u16_at(const uint8_t *bytes, size_t offset)
{
	uint16_t value;
	memcpy(&value, bytes + offset, sizeof value);
	return value;
}

static inline uint32_t u32_at(const uint8_t *bytes, size_t offset)
{
	uint32_t value;
	memcpy(&value, bytes + offset, sizeof value);
	return value;
}

static inline uint64_t u64_at(const uint8_t *bytes, size_t offset)
{
	uint64_t value;
	memcpy(&value, bytes + offset, sizeof value);
	return value;
}

#endif
