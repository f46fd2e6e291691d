"""gcore's core of a process imports into a snapshot without losing a segment or a note: the
decompressed snapshot has every program header and byte of the core, every note in order (plus
heapsnap's), and gdb reads the same globals, threads and backtraces from both."""
import functools
import json
import os
import re
import subprocess

from common import (build_id, Case, check, decompress, gdb, heapsnap, main, path,
                    start_known_state, KNOWN_STATE)


def loads(core):
    out = subprocess.run(["readelf", "-lW", core], capture_output=True, text=True).stdout
    return [l.split() for l in out.splitlines() if l.strip().startswith("LOAD")]


def notes(core):
    out = subprocess.run(["readelf", "-nW", core], capture_output=True, text=True).stdout
    return [tuple(l.split()[:2]) for l in out.splitlines()
            if re.match(r"^\s+(CORE|LINUX|GDB|HEAPSNAP)\s+0x", l)]


def segment_bytes(core):
    """{vaddr: bytes} of every LOAD segment with contents, read straight from the file."""
    result = {}
    with open(core, "rb") as f:
        for fields in loads(core):
            offset, vaddr, filesz = int(fields[1], 16), int(fields[2], 16), int(fields[4], 16)
            f.seek(offset)
            result[vaddr] = f.read(filesz)
    return result


@functools.cache
def imported():
    """known_state (left running) dumped by gcore, the core imported, and the snapshot decompressed
    back into a core; once for every case."""
    process, record = start_known_state()
    pid = record["pid"]
    prefix = path("gcore")
    subprocess.run(["gcore", "-o", prefix, str(pid)], capture_output=True, check=True)
    core = f"{prefix}.{pid}"
    snapshot = path("imported.snap")
    result = heapsnap("import", core, "-o", snapshot)
    roundtrip = path("imported.core")
    decompress(snapshot, roundtrip)
    return pid, core, snapshot, roundtrip, result


class ImportCore(Case):
    def test_import_output_and_mode(self):
        pid, core, snapshot, roundtrip, result = imported()
        check(re.match(r".*imported\.snap: .* 4 threads, \d+ segments, \d+ notes, \d+ modules", result.stdout),
              f"import output: {result.stdout!r}")
        check(os.stat(snapshot).st_mode & 0o777 == 0o600, "imported snapshot is not mode 0600")

    def test_load_segments(self):
        pid, core, snapshot, roundtrip, result = imported()
        original_loads, imported_loads = loads(core), loads(roundtrip)
        # compare everything but the file offsets (column 1), which a new layout may change
        strip = lambda rows: [r[2:4] + r[4:6] + [" ".join(r[6:-1])] for r in rows]
        check(len(original_loads) > 10, f"gcore wrote segments: {len(original_loads)}")
        check(strip(original_loads) == strip(imported_loads), "LOAD segments differ after import")
        check(segment_bytes(core) == segment_bytes(roundtrip), "segment bytes differ after import")

    def test_notes(self):
        pid, core, snapshot, roundtrip, result = imported()
        original_notes, imported_notes = notes(core), notes(roundtrip)
        foreign = [n for n in imported_notes if n[0] != "HEAPSNAP"]
        check(original_notes == foreign, f"notes differ: {original_notes} vs {foreign}")
        check(sum(n[0] == "HEAPSNAP" for n in imported_notes) >= 2, "heapsnap notes added")

    def test_gdb_reads_the_same(self):
        pid, core, snapshot, roundtrip, result = imported()
        commands = ["p known_counter", "p known_pair", "x/16xb known_blocks[7]", "info threads",
                    "thread apply all bt"]
        strip_gdb = lambda out: [l for l in out.splitlines() if re.match(r"^(\$|0x|#|\*? *\d+ +Thread|Thread)", l)]
        from_gcore = strip_gdb(gdb([KNOWN_STATE, core], commands))
        from_snapshot = strip_gdb(gdb([KNOWN_STATE, roundtrip], commands))
        check(len(from_gcore) > 10 and from_gcore == from_snapshot,
              "gdb reads the imported snapshot as it reads gcore's core")
        check("$1 = 424242" in from_snapshot, "known_counter read back")

    def test_info_of_the_imported_snapshot(self):
        pid, core, snapshot, roundtrip, result = imported()
        info = json.loads(heapsnap("info", snapshot, "--format", "json").stdout)
        check(info["pid"] == pid, f"pid {info['pid']} != {pid}")
        check(os.path.realpath(info["exe"]) == os.path.realpath(KNOWN_STATE), f"exe {info['exe']}")
        check(sorted(t["tid"] for t in info["threads"]) == sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")),
              "threads of the imported core are the process's tasks")
        exe_module = [m for m in info["modules"] if os.path.realpath(m["path"]) == os.path.realpath(KNOWN_STATE)]
        check(len(exe_module) == 1 and exe_module[0]["build_id"] == build_id(KNOWN_STATE),
              f"the executable's build-id: {exe_module}")
        check(info["pause_ms"] is None, "an imported core has no pause")

    def test_raw_core_info(self):
        # the raw core can be inspected directly
        pid, core, snapshot, roundtrip, result = imported()
        raw = json.loads(heapsnap("info", core, "--format", "json").stdout)
        check(raw["pid"] == pid and len(raw["threads"]) == 4, "info reads a raw core")

    def test_snapshot_not_imported_again(self):
        # a snapshot cannot be imported again
        pid, core, snapshot, roundtrip, result = imported()
        again = heapsnap("import", snapshot, "-o", path("again.snap"), check_ok=False)
        check(again.returncode == 2 and "already a heapsnap snapshot" in again.stderr, f"re-import: {again.stderr}")


if __name__ == "__main__":
    main()
