/* The protobuf wire encoder (see protobuf.h). Wire types: 0 varint, 2 length-delimited. */
#include "formats/protobuf.h"

#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_LENGTH_DELIMITED = 2, VARINT_MAX = 10 };

/* Room for `more` bytes; false (the buffer marked failed) when out of memory. */
static bool reserve(struct protobuf *buffer, size_t more)
{
	if (buffer->failed)
		return false;
	if (buffer->length + more <= buffer->capacity)
		return true;
	size_t capacity = buffer->capacity ? buffer->capacity : 256;
	while (capacity < buffer->length + more)
		capacity *= 2;
	uint8_t *grown = realloc(buffer->bytes, capacity);
	if (grown == NULL) {
		buffer->failed = true;
		return false;
	}
	buffer->bytes = grown;
	buffer->capacity = capacity;
	return true;
}

static void put_varint(struct protobuf *buffer, uint64_t value)
{
	if (!reserve(buffer, VARINT_MAX))
		return;
	do {
		uint8_t byte = value & 0x7f;
		value >>= 7;
		buffer->bytes[buffer->length++] = byte | (value ? 0x80 : 0);
	} while (value);
}

static size_t varint_size(uint64_t value)
{
	size_t size = 1;
	while (value >>= 7)
		size++;
	return size;
}

void protobuf_varint(struct protobuf *buffer, unsigned field, uint64_t value)
{
	put_varint(buffer, (uint64_t)field << 3 | WIRE_VARINT);
	put_varint(buffer, value);
}

void protobuf_bytes(struct protobuf *buffer, unsigned field, const void *bytes, size_t length)
{
	put_varint(buffer, (uint64_t)field << 3 | WIRE_LENGTH_DELIMITED);
	put_varint(buffer, length);
	protobuf_raw(buffer, bytes, length);
}

void protobuf_packed(struct protobuf *buffer, unsigned field, const uint64_t *values, size_t count)
{
	if (count == 0)
		return;
	size_t length = 0;
	for (size_t i = 0; i < count; i++)
		length += varint_size(values[i]);
	put_varint(buffer, (uint64_t)field << 3 | WIRE_LENGTH_DELIMITED);
	put_varint(buffer, length);
	for (size_t i = 0; i < count; i++)
		put_varint(buffer, values[i]);
}

void protobuf_raw(struct protobuf *buffer, const void *bytes, size_t length)
{
	if (length == 0 || !reserve(buffer, length))
		return;
	memcpy(buffer->bytes + buffer->length, bytes, length);
	buffer->length += length;
}

void protobuf_clear(struct protobuf *buffer)
{
	buffer->length = 0;
}

void protobuf_free(struct protobuf *buffer)
{
	free(buffer->bytes);
	*buffer = (struct protobuf){0};
}
