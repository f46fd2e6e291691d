/* A test tool over the analysis library, so tests can compare what it finds with gdb:
 *     lookup SNAPSHOT [--debug-dir DIR] symbol MODULE_PREFIX NAME   -> 0xADDRESS
 *     lookup SNAPSHOT [--debug-dir DIR] address 0xADDRESS           -> MODULE NAME+OFFSET
 *     lookup SNAPSHOT [--debug-dir DIR] variable MODULE_PREFIX NAME -> 0xADDRESS TYPE SIZE FILE
 *     lookup SNAPSHOT [--debug-dir DIR] read 0xADDRESS LENGTH       -> hex bytes (address space)
 * Warnings go to stderr. Exit 1 when not found. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/address_space.h"
#include "analyze/dwarf_types.h"
#include "analyze/symbols.h"

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	const char *debug_dir = NULL;
	int at = 2;
	if (strcmp(argv[at], "--debug-dir") == 0) {
		debug_dir = argv[at + 1];
		at += 2;
	}
	struct hs_error err;
	struct snapshot *snapshot = snapshot_open(argv[1], 0, &err);
	if (snapshot == NULL) {
		fprintf(stderr, "%s\n", err.message);
		return 2;
	}
	struct warnings warnings = {0};
	struct symbols *symbols = symbols_new(snapshot, debug_dir, NULL, &warnings);
	struct address_space *space = address_space_new(snapshot, &warnings, &err);
	int status = 1;
	const char *what = argv[at];
	if (strcmp(what, "symbol") == 0 && at + 2 < argc) {
		struct module_symbols *module = symbols_find_module(symbols, argv[at + 1]);
		uint64_t address;
		if (module && module_symbols_lookup(module, argv[at + 2], &address, NULL)) {
			printf("0x%llx\n", (unsigned long long)address);
			status = 0;
		}
	} else if (strcmp(what, "address") == 0 && at + 1 < argc) {
		const char *module, *name;
		uint64_t offset;
		if (symbols_lookup_address(symbols, strtoull(argv[at + 1], NULL, 0), &module, &name,
					   &offset)) {
			printf("%s %s+%llu\n", module, name, (unsigned long long)offset);
			status = 0;
		}
	} else if (strcmp(what, "variable") == 0 && at + 2 < argc) {
		struct module_symbols *module = symbols_find_module(symbols, argv[at + 1]);
		const char *file = module ? module_symbols_debug_file(module) : NULL;
		if (file == NULL && module)
			file = module_symbols_module(module)->path;
		struct dwarf_types *types = file ? dwarf_types_open(file, NULL, &err) : NULL;
		struct dwarf_variable variable;
		if (types && dwarf_types_variable(types, argv[at + 2], &variable)) {
			printf("0x%llx %s|%llu|%s\n",
			       (unsigned long long)(variable.address + module_symbols_bias(module)),
			       variable.type, (unsigned long long)variable.type_size, variable.file);
			status = 0;
		}
		dwarf_types_close(types);
	} else if (strcmp(what, "read") == 0 && at + 2 < argc) {
		size_t length = strtoull(argv[at + 2], NULL, 0);
		unsigned char *bytes = malloc(length ? length : 1);
		if (address_space_read(space, strtoull(argv[at + 1], NULL, 0), bytes, length, &err) == 0) {
			for (size_t i = 0; i < length; i++)
				printf("%02x", bytes[i]);
			printf("\n");
			status = 0;
		} else {
			fprintf(stderr, "%s\n", err.message);
		}
		free(bytes);
	}
	for (size_t i = 0; i < warnings.count; i++)
		fprintf(stderr, "warning: %s\n", warnings.items[i]);
	address_space_free(space);
	symbols_free(symbols);
	warnings_free(&warnings);
	snapshot_close(snapshot);
	return status;
}
