/* Numbers as the reports print them. */
#ifndef HEAPSNAP_NUMBERS_H
#define HEAPSNAP_NUMBERS_H

#include <stddef.h>
#include <stdint.h>

/* `count` with thousands separated by commas: "12,345". */
void format_count(uint64_t count, char *out, size_t out_size);

/* `bytes` in binary units with three significant digits: "512 B", "1.50 KiB", "23.7 MiB". */
void format_bytes(uint64_t bytes, char *out, size_t out_size);

#endif
