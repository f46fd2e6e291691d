/* A test tool: compares the CPython layouts heapsnap reads from an interpreter's DWARF with its
 * built-in table for that version.
 *     cpython_layout_check LIBPYTHON MINOR
 * Prints the differences; exit 0 when none, 1 when some differ or the DWARF lacks a struct. */
#include <stdio.h>
#include <stdlib.h>

#include "analyze/runtimes/cpython/cpython_layout.h"
#include "analyze/dwarf_types.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: cpython_layout_check LIBPYTHON MINOR\n");
		return 2;
	}
	int minor = atoi(argv[2]);
	struct cpython_layout builtin, from_dwarf;
	if (!cpython_layout_builtin(minor, &builtin)) {
		fprintf(stderr, "no built-in layout for 3.%d\n", minor);
		return 1;
	}
	struct hs_error err;
	struct dwarf_types *types = dwarf_types_open(argv[1], NULL, &err);
	if (types == NULL) {
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	/* from_dwarf starts from zeros: every field compared must come from the DWARF */
	cpython_layout_builtin(minor, &from_dwarf);
	struct cpython_layout zero = {0};
	zero.minor = minor;
	zero.alignment = builtin.alignment;
	from_dwarf = zero;
	bool found = cpython_layout_from_dwarf(types, &from_dwarf);
	dwarf_types_close(types);
	if (!found) {
		fprintf(stderr, "%s: the DWARF lacks some of CPython's structs\n", argv[1]);
		return 1;
	}
	char differences[4096];
	size_t count = cpython_layout_compare(&builtin, &from_dwarf, differences, sizeof differences);
	printf("%s: 3.%d, %zu fields differ (built-in != DWARF)\n%s", argv[1], minor, count,
	       differences);
	return count == 0 ? 0 : 1;
}
