/* Protocol buffers' wire encoding, written by hand for the one message family heapsnap writes
 * (pprof's profile.proto): a message is a run of fields, each a key (field number and wire type)
 * then a varint or a length-delimited run of bytes; a nested message is such a run. Messages are
 * built in a growing byte buffer, a nested one in a buffer of its own appended whole, so no length
 * has to be known before its bytes are. */
#ifndef HEAPSNAP_PROTOBUF_H
#define HEAPSNAP_PROTOBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct protobuf {
	uint8_t *bytes;
	size_t length, capacity;
	bool failed; /* out of memory at some point: the bytes are incomplete */
};

/* A varint field; int64 fields take negative numbers as their two's complement (ten bytes). */
void protobuf_varint(struct protobuf *buffer, unsigned field, uint64_t value);
/* A length-delimited field: a string, bytes, or a nested message's encoding. */
void protobuf_bytes(struct protobuf *buffer, unsigned field, const void *bytes, size_t length);
/* A packed repeated varint field (proto3's default for repeated scalars); nothing when empty. */
void protobuf_packed(struct protobuf *buffer, unsigned field, const uint64_t *values, size_t count);
/* Bytes already encoded as fields (a run of them built apart), appended as they are. */
void protobuf_raw(struct protobuf *buffer, const void *bytes, size_t length);
/* Empties the buffer, keeping its memory. */
void protobuf_clear(struct protobuf *buffer);
void protobuf_free(struct protobuf *buffer);

#endif
