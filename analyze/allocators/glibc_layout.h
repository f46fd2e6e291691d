/* Where glibc malloc keeps what the walker reads: offsets in struct malloc_state, heap_info,
 * malloc_par and tcache_perthread_struct. Taken from libc's DWARF when its debug file is at hand,
 * otherwise from a built-in table per glibc version (2.27 to 2.39 share one malloc_state layout);
 * tests check the table against the DWARF. */
#ifndef HEAPSNAP_GLIBC_LAYOUT_H
#define HEAPSNAP_GLIBC_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "analyze/dwarf_types.h"

struct glibc_layout {
	/* struct malloc_state */
	uint64_t state_size, state_fastbins, state_top, state_bins, state_next, state_system_mem;
	unsigned fastbin_count;
	unsigned bin_count; /* entries of bins[], two per bin */
	/* struct _heap_info */
	uint64_t heap_info_size, heap_info_ar_ptr, heap_info_prev, heap_info_size_field;
	/* struct malloc_par (mp_) */
	uint64_t par_sbrk_base, par_n_mmaps, par_mmapped_mem;
	/* struct tcache_perthread_struct */
	uint64_t tcache_size, tcache_counts, tcache_entries;
	unsigned tcache_bins, tcache_count_width;
	bool safe_linking; /* free-list pointers are mangled (glibc 2.32 and later) */
};

/* Fills the layout from DWARF; false when a needed struct is missing. */
bool glibc_layout_from_dwarf(struct dwarf_types *types, int minor, struct glibc_layout *layout);
/* The built-in layout of glibc 2.MINOR (0: unknown, taken as the newest). */
void glibc_layout_builtin(int minor, struct glibc_layout *layout);

#endif
