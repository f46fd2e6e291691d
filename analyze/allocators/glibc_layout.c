/* glibc malloc's structure layouts (see glibc_layout.h). The built-in values are those of
 * malloc/malloc.c and malloc/arena.c for x86-64. */
#include "glibc_layout.h"

#include <string.h>

void glibc_layout_builtin(int minor, struct glibc_layout *layout)
{
	memset(layout, 0, sizeof *layout);
	if (minor == 0)
		minor = 39;
	/* struct malloc_state: mutex, flags, have_fastchunks (2.27+), fastbinsY[10], top,
	 * last_remainder, bins[254], binmap[4], next, next_free, attached_threads, system_mem */
	layout->state_fastbins = minor >= 27 ? 16 : 8;
	layout->fastbin_count = 10;
	layout->state_top = layout->state_fastbins + 10 * 8;
	layout->state_bins = layout->state_top + 16;
	layout->bin_count = 254;
	layout->state_next = layout->state_bins + 254 * 8 + 16;
	layout->state_system_mem = layout->state_next + 24;
	layout->state_size = layout->state_system_mem + 16;
	/* heap_info: ar_ptr, prev, size, mprotect_size, then (2.35+) pagesize, padded to 16 */
	layout->heap_info_ar_ptr = 0;
	layout->heap_info_prev = 8;
	layout->heap_info_size_field = 16;
	layout->heap_info_size = minor >= 35 ? 48 : 32;
	/* malloc_par: sbrk_base moved when 2.35 added thp_pagesize, hp_pagesize and hp_flags */
	layout->par_n_mmaps = minor >= 35 ? 60 : 40;
	layout->par_mmapped_mem = minor >= 35 ? 80 : 56;
	layout->par_sbrk_base = minor >= 35 ? 96 : 72;
	/* tcache_perthread_struct: counts (uint16_t since 2.30, char before), then entries */
	layout->tcache_bins = 64;
	layout->tcache_count_width = minor >= 30 ? 2 : 1;
	layout->tcache_counts = 0;
	layout->tcache_entries = 64 * layout->tcache_count_width;
	layout->tcache_size = layout->tcache_entries + 64 * 8;
	layout->safe_linking = minor >= 32;
}

static bool member(const struct dwarf_struct *layout, const char *name, uint64_t *offset)
{
	const struct dwarf_member *found = dwarf_struct_member(layout, name);
	if (found)
		*offset = found->offset;
	return found != NULL;
}

bool glibc_layout_from_dwarf(struct dwarf_types *types, int minor, struct glibc_layout *layout)
{
	/* what DWARF cannot say (free-list mangling) comes from the version */
	glibc_layout_builtin(minor, layout);
	struct dwarf_struct state, info, par, tcache;
	if (!dwarf_types_struct(types, "malloc_state", &state) ||
	    !dwarf_types_struct(types, "_heap_info", &info) ||
	    !dwarf_types_struct(types, "malloc_par", &par))
		return false;
	bool ok = member(&state, "fastbinsY", &layout->state_fastbins) &&
		  member(&state, "top", &layout->state_top) &&
		  member(&state, "bins", &layout->state_bins) &&
		  member(&state, "next", &layout->state_next) &&
		  member(&state, "system_mem", &layout->state_system_mem) &&
		  member(&info, "ar_ptr", &layout->heap_info_ar_ptr) &&
		  member(&info, "prev", &layout->heap_info_prev) &&
		  member(&info, "size", &layout->heap_info_size_field) &&
		  member(&par, "sbrk_base", &layout->par_sbrk_base) &&
		  member(&par, "n_mmaps", &layout->par_n_mmaps) &&
		  member(&par, "mmapped_mem", &layout->par_mmapped_mem);
	if (!ok)
		return false;
	layout->state_size = state.size;
	layout->heap_info_size = info.size;
	const struct dwarf_member *fastbins = dwarf_struct_member(&state, "fastbinsY");
	if (fastbins->size)
		layout->fastbin_count = (unsigned)(fastbins->size / 8);
	const struct dwarf_member *bins = dwarf_struct_member(&state, "bins");
	if (bins->size)
		layout->bin_count = (unsigned)(bins->size / 8);
	if (dwarf_types_struct(types, "tcache_perthread_struct", &tcache)) {
		const struct dwarf_member *counts = dwarf_struct_member(&tcache, "counts");
		const struct dwarf_member *entries = dwarf_struct_member(&tcache, "entries");
		if (counts && entries && entries->size) {
			layout->tcache_counts = counts->offset;
			layout->tcache_entries = entries->offset;
			layout->tcache_bins = (unsigned)(entries->size / 8);
			layout->tcache_count_width = (unsigned)(counts->size / layout->tcache_bins);
			layout->tcache_size = tcache.size;
		}
	}
	return true;
}
