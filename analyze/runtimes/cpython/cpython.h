/* Finding a CPython interpreter in a snapshot: the module that holds `_PyRuntime` (libpython, or
 * the python executable with libpython linked in, as Debian builds it), the runtime state's
 * address, and the version: from `Py_Version` (3.11 and later), else from the version string
 * Py_GetVersion() leaves in the module's data ("3.9.18 (main, ...)"), and the layouts that version's
 * structures have. The first step of reading a Python heap from outside. */
#ifndef HEAPSNAP_CPYTHON_H
#define HEAPSNAP_CPYTHON_H

#include <stdbool.h>
#include <stdint.h>

#include "analyze/address_space.h"
#include "analyze/runtimes/cpython/cpython_layout.h"
#include "analyze/symbols.h"

/* The allocator the interpreter gives its objects (PyObject_Malloc) and memory (PyMem_Malloc):
 * what _PyRuntime.allocators.standard.obj calls (3.12+), or under the debug hooks
 * (PYTHONMALLOC=..._debug) what they call in turn, told from the symbols of the functions. */
enum cpython_object_allocator {
	CPYTHON_ALLOCATOR_PYMALLOC, /* the default, and every version before 3.13 (pymalloc_heap) */
	CPYTHON_ALLOCATOR_MALLOC,   /* PYTHONMALLOC=malloc: the objects are malloc's blocks */
	CPYTHON_ALLOCATOR_MIMALLOC, /* PYTHONMALLOC=mimalloc (3.13+): CPython's bundled mimalloc */
	/* 3.13+ where the symbols cannot tell (none, --no-debuginfo, or a function they do not
	   name): pymalloc or mimalloc, to be told by which one's structures are found */
	CPYTHON_ALLOCATOR_UNKNOWN,
};

struct cpython_info {
	bool found;
	int major, minor, micro; /* micro -1 when unknown */
	char version[16];	 /* "3.11.7", or "3.9" when the micro version is unknown */
	const char *module_path;
	uint64_t runtime;   /* address of _PyRuntime */
	uint64_t type_type; /* address of PyType_Type, 0 when not found */
	bool has_layout;    /* a supported version (3.8 to 3.13): its layout is known */
	struct cpython_layout layout;
	char layout_source[24]; /* "debug info", "built-in" or "_Py_DebugOffsets" (3.13) */
	bool debuginfo_allowed; /* not --no-debuginfo: other structures may come from DWARF too */
	/* the allocator whose blocks its objects are, as the heap walk found it */
	enum cpython_object_allocator object_allocator;
};

/* Finds the interpreter and its version; with the version, the layout of its structures: from the
 * interpreter's DWARF when present (unless no_debuginfo), else from the built-in tables. */
void cpython_detect(struct symbols *symbols, struct address_space *space, bool no_debuginfo,
		    struct cpython_info *info);

enum cpython_object_allocator cpython_object_allocator(struct symbols *symbols,
						       struct address_space *space,
						       const struct cpython_info *info,
						       bool no_debuginfo);

/* The module that holds the interpreter (info->module_path), or NULL. */
struct module_symbols *cpython_module(struct symbols *symbols, const struct cpython_info *info);

/* Where the interpreter's method cache is ([*start, *end)): borrowed pointers to what attribute
 * lookups last found, not references. False when not known. */
bool cpython_method_cache(struct symbols *symbols, struct address_space *space,
			  const struct cpython_info *info, uint64_t *start, uint64_t *end);

#endif
