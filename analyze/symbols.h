/* The modules of a snapshot and their symbols: ELF symbol tables (.symtab and .dynsym) read with
 * libelf, from the module's file or, better, from its separate debug file, found by build-id
 * (DEBUG_DIR/.build-id/xx/yyyy.debug) or by .gnu_debuglink, as gdb finds them, or else fetched
 * from the debuginfod servers (debuginfod.h). A file whose
 * build-id differs from the one recorded at capture is not used (a warning says so). Loaded once
 * per module, on first use. */
#ifndef HEAPSNAP_SYMBOLS_H
#define HEAPSNAP_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/debuginfod.h"
#include "common/error.h"
#include "common/warnings.h"
#include "formats/snapshot.h"

#define SYMBOLS_DEFAULT_DEBUG_DIR "/usr/lib/debug"

struct symbols;
struct module_symbols;
struct dwarf_types;

/* `files` says where the modules' files are looked for (NULL: here, and under the captured
 * process's root while it runs). */
struct module_files;
struct symbols *symbols_new(struct snapshot *snapshot, const char *debug_dir,
			    struct module_files *files, struct warnings *warnings);
void symbols_free(struct symbols *symbols);
/* Asks the debuginfod servers `options` names for what this machine lacks: a module's debug info
 * when none is here, its file when the file is not (through `files`, which must outlive the
 * symbols). Before any module is loaded. */
void symbols_use_debuginfod(struct symbols *symbols, const struct debug_fetch_options *options);
/* After every module is loaded: the one warning about modules debuginfod left unnamed. */
void symbols_warn_unfetched(struct symbols *symbols);

/* Where a module's names (its DWARF) came from. */
enum debug_source {
	DEBUG_SOURCE_NONE,
	DEBUG_SOURCE_LOCAL_FILE,    /* the module's file itself has .debug_info */
	DEBUG_SOURCE_DEBUG_PACKAGE, /* a separate debug file here (by build-id or debuglink) */
	DEBUG_SOURCE_DEBUGINFOD,    /* fetched from a debuginfod server, or its cache */
};
/* "none", "local file", "debug package", "debuginfod" */
const char *debug_source_name(enum debug_source source);

/* The module whose file name (the last path component) starts with `prefix` ("libc.so",
 * "libpython3"), or NULL. */
struct module_symbols *symbols_find_module(struct symbols *symbols, const char *prefix);
/* Whether the heap may hold C++ objects whose class heapsnap can name from their vtable: some
 * module defines a vtable, or needs the C++ runtime (whose vtables it may then use); the C++
 * runtime itself and the modules in `except` (an allocator written in C++, or linked to the C++
 * runtime for its operator new) do not count. Loads every module's symbols. */
bool symbols_may_name_cxx_objects(struct symbols *symbols,
				  struct module_symbols *const *except, size_t except_count);
const struct snapshot_module *module_symbols_module(const struct module_symbols *module);
/* Load bias: what to add to the file's addresses to get the process's. */
uint64_t module_symbols_bias(struct module_symbols *module);
/* The separate debug file when one was found (for DWARF), else the module's own file if it has
 * DWARF, else NULL. */
const char *module_symbols_debug_file(struct module_symbols *module);
/* The dwz supplementary file the debug file links to, when it was found, else NULL. */
const char *module_symbols_supplementary_file(struct module_symbols *module);
/* Opens the module's DWARF (its debug file, with its dwz supplementary file); NULL with err set
 * when it has none here. The caller closes it (dwarf_types_close). */
struct dwarf_types *module_symbols_open_types(struct module_symbols *module,
					     struct hs_error *err);
/* Where a loaded module's names came from (symbols_module_at loads it); *url: the debuginfod server it was fetched from
 * in this run, NULL when it came from the cache (or not from debuginfod). */
enum debug_source module_symbols_debug_source(struct module_symbols *module, const char **url);
/* Where the module's file was found on this machine (its build-id the recorded one), or NULL
 * when it was not (or the module is not loaded yet). */
const char *module_symbols_file(struct module_symbols *module);

/* The run-time address of a symbol of this module, by exact name. */
bool module_symbols_lookup(struct module_symbols *module, const char *name, uint64_t *address,
			   uint64_t *size);

/* Whether the module defines `name` as a global symbol (not a static of one of its files). */
bool module_symbols_exports(struct module_symbols *module, const char *name);

/* Every module, loaded (its symbols read, its debug file found). */
size_t symbols_module_count(const struct symbols *symbols);
struct module_symbols *symbols_module_at(struct symbols *symbols, size_t index);

/* Where the memory image of the module mapped from `path` ends (its .bss included), or 0 when
 * unknown: the anonymous mapping after a module holds its .bss only up to there. */
uint64_t symbols_module_image_end(struct symbols *symbols, const char *path);

/* The module that maps a run-time address (loaded), or NULL. */
struct module_symbols *symbols_module_of(struct symbols *symbols, uint64_t address);

/* The symbol covering a run-time address, in whichever module maps it: its name and the offset
 * into it. False when no module maps addr or no symbol covers it. */
bool symbols_lookup_address(struct symbols *symbols, uint64_t address, const char **module_path,
			    const char **name, uint64_t *offset);

/* The writable section of the module holding a run-time address (".data", ".bss", its .bss
 * after the file's last mapping included) and the offset into it: what names data that no
 * symbol covers, in a stripped executable; `near` (when given) the nearest symbol of that
 * section before it (what .dynsym still says), when it ends at most a page before it, or NULL. False when no module's
 * section holds it. */
bool symbols_lookup_section(struct symbols *symbols, uint64_t address, const char **module_path,
			    const char **section, uint64_t *offset, const char **near);

/* The same, also saying whether the symbol is local to its file (a static). */
bool symbols_lookup_address_local(struct symbols *symbols, uint64_t address,
				  const char **module_path, const char **name, uint64_t *offset,
				  bool *local);

#endif
