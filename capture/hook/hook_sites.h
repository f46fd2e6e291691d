/* Allocation sites, recorded by the in-process hook with HEAPSNAP_SITES=1 (see hook_sites.c). */
#ifndef HEAPSNAP_HOOK_SITES_H
#define HEAPSNAP_HOOK_SITES_H

#include <stddef.h>

#include "formats/snapshot_notes.h"

/* Non-zero once recording has started; read on every allocation. */
extern int hook_sites_on;

/* At load, with HEAPSNAP_SITES=1: maps the table and turns recording on; -1 when it cannot. */
int hook_sites_start(void);
/* `frames`: return addresses, innermost first (see heapsnap_site_note). */
void hook_sites_add(const void *address, const uint64_t frames[HEAPSNAP_SITE_FRAMES]);
void hook_sites_remove(const void *address);
/* In the fork (its malloc is the arena): every live allocation with its site, sorted by address. */
struct heapsnap_site_note *hook_sites_collect(size_t *count);

#endif
