/* Memory the kernel hands out for the first time is slow here: it zeroes each page, and under a
 * hypervisor the host backs it too (3 to 4 s per GiB measured on these VMs, against 0.05 s to
 * write it again). The analysis touches about twice a heap's size of new memory, so this helper
 * thread faults it in ahead of it, on another core, with MADV_POPULATE_WRITE (which never changes
 * what a page holds, so it is safe on memory in use): the part of malloc's heap the program has
 * not used yet (the front ends have malloc take memory from the kernel well ahead of need, see
 * cli_prepare_memory), and the next part of the big arrays being filled (prefault_ahead). A
 * speed-up only: without it (before prefault_start, or where the kernel refuses) nothing
 * changes. */
#ifndef HEAPSNAP_PREFAULT_H
#define HEAPSNAP_PREFAULT_H

#include <stddef.h>

/* Starts the helper; 0 on success, -1 when it could not start (the analysis then goes on
 * without it). */
int prefault_start(void);
/* Asks the helper to fault in [address, address + length) soon; nothing when it is not running. */
void prefault_ahead(void *address, size_t length);
/* Stops the helper and waits for it. */
void prefault_stop(void);

#endif
