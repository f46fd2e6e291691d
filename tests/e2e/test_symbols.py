"""Symbols and types as gdb sees them in the live process: symbol -> address and address ->
symbol in the executable and in libc (whose symbols come from libc6-dbg's separate debug file),
global variables with their addresses and C types from DWARF, bytes of a mapped file that the
snapshot does not store (checked by build-id: a changed file is refused with a warning), and
separate debug files found by .gnu_debuglink and by build-id under --debug-dir."""
import functools
import os
import re
import shutil
import subprocess

from common import (KNOWN_STATE, Case, build_id, check, gdb, heapsnap, main, path,
                    start_known_state)

LOOKUP = os.environ.get("LOOKUP", "build/tests/lookup")


def lookup(snapshot, *args):
    result = subprocess.run([LOOKUP, snapshot, *args], capture_output=True, text=True)
    return result.returncode, result.stdout.strip(), result.stderr


def gdb_value(pid, expression):
    out = gdb(["-p", str(pid)], [f"p/x (unsigned long){expression}"])
    found = re.findall(r"^\$1 = (0x[0-9a-f]+)", out, re.M)
    return int(found[0], 16) if found else None


@functools.cache
def captured():
    """known_state (left running, for gdb to read live) and its snapshot, once for every case."""
    process, record = start_known_state()
    pid = record["pid"]
    snapshot = path("symbols.snap")
    heapsnap("capture", str(pid), "-o", snapshot)
    return pid, snapshot


@functools.cache
def malloc_address():
    """The address gdb gives malloc in the running target; asked once for every case."""
    pid, _ = captured()
    return gdb_value(pid, "&malloc")


@functools.cache
def stripped_captured():
    """A stripped copy of known_state whose debug file .gnu_debuglink names (left running) and its
    snapshot, with the address gdb gives known_counter; once for every case."""
    stripped = path("stripped_state")
    debug = stripped + ".debug"
    subprocess.run(["objcopy", "--only-keep-debug", KNOWN_STATE, debug], check=True)
    subprocess.run(["objcopy", "--strip-all", f"--add-gnu-debuglink={debug}", KNOWN_STATE, stripped], check=True)
    os.chmod(stripped, 0o755)
    runner, runner_record = start_known_state(executable=stripped)
    stripped_snapshot = path("stripped.snap")
    heapsnap("capture", str(runner_record["pid"]), "-o", stripped_snapshot)
    want = gdb_value(runner_record["pid"], "&known_counter")
    return stripped, debug, stripped_snapshot, want


class Symbols(Case):
    def test_symbol_to_address(self):
        pid, snapshot = captured()
        for module, name in (("known_state", "known_counter"), ("known_state", "known_pair"),
                             ("libc.so", "main_arena"), ("libc.so", "mp_"), ("libc.so", "malloc")):
            code, out, err = lookup(snapshot, "symbol", module, name)
            want = gdb_value(pid, f"&{name}")
            check(code == 0 and want is not None and int(out, 16) == want,
                  f"symbol {name}: heapsnap {out!r} ({err.strip()}), gdb {want and hex(want)}")

    def test_address_to_symbol(self):
        pid, snapshot = captured()
        counter = gdb_value(pid, "&known_counter")
        code, out, _ = lookup(snapshot, "address", hex(counter + 4))
        check(code == 0 and out.endswith(" known_counter+4") and out.startswith(os.path.realpath(KNOWN_STATE)[:1]),
              f"address of known_counter + 4: {out!r}")
        malloc = malloc_address()
        code, out, _ = lookup(snapshot, "address", hex(malloc + 10))
        name = out.split()[-1].split("+")[0] if code == 0 else None
        check(code == 0 and out.endswith("+10") and name and gdb_value(pid, f"&{name}") == malloc,
              f"address of malloc + 10: {out!r}")

    def test_variables(self):
        pid, snapshot = captured()
        for name in ("known_pair", "known_blocks", "known_text", "known_counter"):
            code, out, err = lookup(snapshot, "variable", "known_state", name)
            address, rest = out.split(" ", 1) if code == 0 else ("0", "||")
            type_name, size, source = rest.split("|")
            gdb_type = re.findall(r"type = (.*)", gdb(["-p", str(pid)], [f"whatis {name}"]))
            gdb_size = gdb_value(pid, f"sizeof({name})")
            check(int(address, 16) == gdb_value(pid, f"&{name}"), f"variable {name} address {address}")
            # gdb says "long" where DWARF's base type is named "long int"
            spell = lambda t: t.replace("long int", "long").replace(" ", "")
            check(gdb_type and spell(type_name) == spell(gdb_type[0]),
                  f"variable {name} type {type_name!r}, gdb {gdb_type}")
            check(int(size) == gdb_size and source == "known_state.c", f"variable {name} size {size} file {source}")

    def test_unstored_bytes_from_the_file(self):
        # bytes the snapshot does not hold: libc's code, read from the file, equal to live memory
        pid, snapshot = captured()
        malloc = malloc_address()
        live_bytes = "".join(re.findall(r"\t0x([0-9a-f]{2})\b", gdb(["-p", str(pid)], ["x/32xb malloc"])))
        code, out, err = lookup(snapshot, "read", hex(malloc), "32")
        check(code == 0 and len(live_bytes) == 64 and out == live_bytes,
              f"libc code from the file: {out} vs gdb {live_bytes} {err}")

    def test_changed_file_refused(self):
        # a copy of the executable, changed on disk after the capture: its bytes are refused
        copy = path("changed_state")
        shutil.copy(KNOWN_STATE, copy)
        changed, changed_record = start_known_state(executable=copy)
        changed_snapshot = path("changed.snap")
        heapsnap("capture", str(changed_record["pid"]), "-o", changed_snapshot)
        text = gdb_value(changed_record["pid"], "&main")
        changed.kill()
        changed.wait()
        with open(copy, "rb") as f:
            data = bytearray(f.read())
        identity = bytes.fromhex(build_id(copy))
        data[data.index(identity)] ^= 0xFF
        with open(copy, "wb") as f:
            f.write(data)
        code, out, err = lookup(changed_snapshot, "read", hex(text), "16")
        check(code != 0 and "build-id differs" in err and "changed_state" in err, f"a changed file is refused: {err!r}")

    # separate debug files: by .gnu_debuglink next to the file, and by build-id under --debug-dir
    def test_debug_file_by_debuglink(self):
        stripped, debug, stripped_snapshot, want = stripped_captured()
        code, out, _ = lookup(stripped_snapshot, "symbol", "stripped_state", "known_counter")
        check(code == 0 and int(out, 16) == want, f"symbol through .gnu_debuglink: {out!r} vs {want}")

    def test_debug_file_by_build_id(self):
        stripped, debug, stripped_snapshot, want = stripped_captured()
        identity = build_id(stripped)
        directory = path("debug-dir")
        by_id = os.path.join(directory, ".build-id", identity[:2], identity[2:] + ".debug")
        os.makedirs(os.path.dirname(by_id), exist_ok=True)
        shutil.move(debug, by_id)
        try:
            code, out, _ = lookup(stripped_snapshot, "symbol", "stripped_state", "known_counter")
            check(code == 1, "without the debug file the stripped executable has no known_counter")
            code, out, _ = lookup(stripped_snapshot, "--debug-dir", directory, "symbol", "stripped_state", "known_counter")
            check(code == 0 and int(out, 16) == want, f"symbol through --debug-dir and the build-id: {out!r}")
            code, out, _ = lookup(stripped_snapshot, "--debug-dir", directory, "variable", "stripped_state", "known_pair")
            check(code == 0 and "struct known_pair" in out, f"DWARF from the debug file: {out!r}")
        finally:
            # back beside the executable, for the .gnu_debuglink case whichever runs first
            shutil.move(by_id, debug)


if __name__ == "__main__":
    main()
