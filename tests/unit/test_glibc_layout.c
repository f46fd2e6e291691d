/* The built-in glibc malloc layouts must be those libc's own DWARF describes, for the glibc on
 * this machine (its debug file from libc6-dbg): the heuristic walker relies on the table. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "analyze/dwarf_types.h"
#include "analyze/allocators/glibc_layout.h"
#include "formats/elf_build_id.h"
#include "test_util.h"

#include <gnu/libc-version.h>

int main(void)
{
	uint8_t build_id[ELF_BUILD_ID_MAX];
	size_t size = elf_build_id_from_file("/lib/x86_64-linux-gnu/libc.so.6", build_id);
	CHECK(size > 1, "libc has a build-id");
	char path[512];
	int at = snprintf(path, sizeof path, "/usr/lib/debug/.build-id/%02x/", build_id[0]);
	for (size_t i = 1; i < size; i++)
		at += snprintf(path + at, sizeof path - (size_t)at, "%02x", build_id[i]);
	snprintf(path + at, sizeof path - (size_t)at, ".debug");
	struct hs_error err;
	struct dwarf_types *types = dwarf_types_open(path, NULL, &err);
	CHECK(types != NULL, "libc's debug file (libc6-dbg): %s", err.message);
	if (types == NULL)
		return TEST_EXIT();
	int minor = 0;
	sscanf(gnu_get_libc_version(), "2.%d", &minor);
	struct glibc_layout builtin, dwarf;
	glibc_layout_builtin(minor, &builtin);
	CHECK(glibc_layout_from_dwarf(types, minor, &dwarf), "layouts from DWARF");
	CHECK(memcmp(&builtin, &dwarf, sizeof builtin) == 0, "built-in layout differs from DWARF");
#define SAME(field)                                                                               \
	CHECK(builtin.field == dwarf.field, #field ": built-in %llu, DWARF %llu",                 \
	      (unsigned long long)builtin.field, (unsigned long long)dwarf.field)
	SAME(state_size);
	SAME(state_fastbins);
	SAME(state_top);
	SAME(state_bins);
	SAME(state_next);
	SAME(state_system_mem);
	SAME(fastbin_count);
	SAME(bin_count);
	SAME(heap_info_size);
	SAME(par_sbrk_base);
	SAME(par_n_mmaps);
	SAME(par_mmapped_mem);
	SAME(tcache_size);
	SAME(tcache_entries);
	SAME(tcache_count_width);
	dwarf_types_close(types);
	return TEST_EXIT();
}
