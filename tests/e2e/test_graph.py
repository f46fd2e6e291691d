"""The object graph against a C target's own record (tests/targets/conn_server.c): the global list
all_conns is the root retaining exactly the connections' blocks (conn, handler, buffer) the target
counted with malloc_usable_size; the blocks it lost every pointer to are exactly the unreachable
ones, although a struct conn's integer member holds one of their addresses (precise edges read
only pointer members); and DWARF types propagated from all_conns name exactly its struct conn,
struct handler and char[] buffers, with retaining paths through their members."""
import json
import os
import re
import shutil
import subprocess
import time

from common import Case, check, heapsnap, main, path, process_state, start

TARGET = os.environ.get("CONN_SERVER", "build/tests/conn_server")
TYPEDEF_TABLE = os.environ.get("TYPEDEF_TABLE", "build/tests/typedef_table")


def run(name, *args):
    record_path = path(name)
    process = start([TARGET, record_path, *args])
    deadline = time.time() + 20
    while not os.path.exists(record_path) and time.time() < deadline:
        time.sleep(0.02)
    # capture it asleep in pause(): its registers then hold no stale pointers from the work
    while process_state(process.pid) != "S" and time.time() < deadline:
        time.sleep(0.01)
    record = {}
    with open(record_path) as f:
        lines = f.read().splitlines()
    for line in lines:
        words = line.split()
        if len(words) > 1:
            record[words[0]] = [int(w) for w in words[1:]]
    snapshot = path(name + ".snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    summary = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)
    return record, summary


_captured = {}


def captured(mode):
    """The target's record and the summary of its snapshot, run once per mode for every case."""
    label = " ".join(mode) or "default"
    if label not in _captured:
        _captured[label] = run("conns" + label.replace(" ", ""), *mode)
    return label, _captured[label]


def check_graph(mode):
    label, (record, summary) = captured(mode)
    roots = {r["root"]: r for r in summary["roots"]}
    check("global all_conns" in roots, f"{label}: the list's global is a root: {list(roots)[:8]}")
    retained = roots.get("global all_conns", {}).get("retained_bytes")
    check(retained == record["retained"][0],
          f"{label}: all_conns retains {retained} bytes, the target counted {record['retained'][0]}")
    check(summary["roots"][0]["root"] == "global all_conns",
          f"{label}: all_conns is the root retaining most: {summary['roots'][:3]}")
    lost_count, lost_bytes = record["lost"]
    check(summary["unreachable"]["count"] == lost_count and summary["unreachable"]["bytes"] == lost_bytes,
          f"{label}: unreachable {summary['unreachable']['count']} blocks / {summary['unreachable']['bytes']} "
          f"bytes, the target lost {lost_count} / {lost_bytes}")
    # the thread's stack is a root named with the function it sleeps in, without symbol versions
    stacks = [name for name in roots if " stack, in " in name]
    check(any(re.search(r"stack, in (__libc_)?pause\(\)$", name) for name in stacks),
          f"{label}: the stack root names pause(): {stacks}")
    # types from DWARF, propagated from the global into the heap
    types = {t["type"]: t for t in summary["types"]}
    conns = record["conns"][0]
    for name in ("struct conn", "struct handler", "char[]"):
        check(types.get(name, {}).get("count") == conns,
              f"{label}: {name}: {types.get(name, {}).get('count')} allocations, the target made {conns}")
    check(types.get("struct conn", {}).get("retained_bytes") == record["retained"][0],
          f"{label}: struct conn retains what all_conns does")
    # a known chain prints as that chain
    detail = types.get("struct detail", {})
    check(detail.get("count") == 10, f"{label}: 10 struct detail: {detail.get('count')}")
    retainers = detail.get("retainers", [])
    check(retainers and retainers[0]["path"] == ["global registry", "struct registry.items",
                                                 "struct item[*].detail", "struct detail"]
          and retainers[0]["count"] == 10, f"{label}: the path to struct detail: {retainers[:1]}")
    check(types.get("struct item[]", {}).get("count") == 1, f"{label}: the array of items is one struct item[]")
    # each item's `raw` (a char *) points at its detail too: the struct type wins, and the
    # conflicts are counted
    check(any("pointed to by members of different types" in w and
              "struct detail (kept) and char[], 10" in w for w in summary["warnings"]),
          f"{label}: the conflict is reported, naming the types: {summary['warnings']}")
    conn_paths = [r["path"] for r in types.get("struct conn", {}).get("retainers", [])]
    check(["global all_conns", "struct conn.next (repeated)", "struct conn"] in conn_paths and
          ["global all_conns", "struct conn"] in conn_paths, f"{label}: the list's paths: {conn_paths}")


class Graph(Case):
    def test_default(self):
        check_graph([])

    def test_lost_pointers(self):
        check_graph(["--lose"])

    def test_typedefs_and_pointer_tables(self):
        # tests/targets/typedef_table.c: structs named only through typedefs (as most C code,
        # redis's, names them), entries held by a table of pointers (entry **buckets[2], as redis's
        # dict holds its dictEntry), the global an anonymous struct by typedef
        record_path = path("typedef-table")
        process = start([TYPEDEF_TABLE, record_path])
        deadline = time.time() + 20
        while not os.path.exists(record_path) and time.time() < deadline:
            time.sleep(0.02)
        while process_state(process.pid) != "S" and time.time() < deadline:
            time.sleep(0.01)
        with open(record_path) as f:
            record = {w[0]: int(w[1]) for w in (line.split() for line in f) if len(w) > 1}
        snapshot = path("typedef-table.snap")
        heapsnap("capture", str(process.pid), "-o", snapshot)
        summary = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)
        types = {t["type"]: t for t in summary["types"]}
        counts = {name: types.get(name, {}).get("count") for name in
                  ("struct entry", "struct entry *[]", "struct db[]", "struct table")}
        check(counts == {"struct entry": record["entries"], "struct entry *[]": 1, "struct db[]": 1,
                         "struct table": 4},
              f"typedefs: every entry, the bucket table, the dbs and their tables typed: {counts}, "
              f"the target made {record['entries']} entries")
        entries = types.get("struct entry", {}).get("retainers", [])
        check(entries and entries[0]["path"][:4] == ["global server", "struct db[*].keys",
                                                     "struct table.buckets", "struct entry *[]"],
              f"typedefs: the entries are held from global server: {entries[:1]}")
        # the node ending in a flexible array: one struct node, its children reachable through it
        check(types.get("struct node", {}).get("count") == 1 and "struct node[]" not in types,
              f"typedefs: the flexible node is one struct node: {types.get('struct node')}")
        check(summary["unreachable"]["count"] == 0,
              f"typedefs: nothing unreachable (the flexible array's pointers are edges): "
              f"{summary['unreachable']['count']} {summary['unreachable']['by_type'][:3]}")
        check(not any(t.startswith("struct ") and t.endswith(" *") for t in types),
              f"typedefs: no type is spelled as a pointer: {sorted(types)[:12]}")

        # its debug file split by dwz (as Debian's -dbgsym files are), its supplementary file
        # (named by .gnu_debugaltlink) found nowhere: the stripped binary then says what is
        # not seen and why (test_debuginfod's Dwz finds it)
        if shutil.which("dwz") is None:
            check(False, "dwz is missing: apt-get install dwz (scripts/setup)")
            return
        work = path("dwz")
        os.makedirs(work, exist_ok=True)
        binary = os.path.join(work, "typedef_table")
        shutil.copy(TYPEDEF_TABLE, binary)
        for name in ("one.debug", "two.debug"):
            subprocess.run(["objcopy", "--only-keep-debug", binary, os.path.join(work, name)], check=True)
        subprocess.run(["dwz", "-m", os.path.join(work, "common.debug"), "-M", "/nonexistent/common.debug",
                        os.path.join(work, "one.debug"), os.path.join(work, "two.debug")], check=True)
        subprocess.run(["strip", "--strip-all", binary], check=True)
        notes = subprocess.run(["readelf", "-n", binary], capture_output=True, text=True).stdout
        build_id = next(line.split()[-1] for line in notes.splitlines() if "Build ID" in line)
        debug_dir = os.path.join(work, "debug")
        os.makedirs(os.path.join(debug_dir, ".build-id", build_id[:2]), exist_ok=True)
        shutil.copy(os.path.join(work, "one.debug"),
                    os.path.join(debug_dir, ".build-id", build_id[:2], build_id[2:] + ".debug"))
        record_path = path("typedef-table-dwz")
        process = start([binary, record_path])
        deadline = time.time() + 20
        while not os.path.exists(record_path) and time.time() < deadline:
            time.sleep(0.02)
        while process_state(process.pid) != "S" and time.time() < deadline:
            time.sleep(0.01)
        snapshot = path("typedef-table-dwz.snap")
        heapsnap("capture", str(process.pid), "-o", snapshot)
        summary = json.loads(heapsnap("summary", snapshot, "--format", "json", "--no-debuginfod",
                                      "--debug-dir", debug_dir).stdout)
        warned = [w for w in summary["warnings"] if "split by dwz" in w]
        check(len(warned) == 1 and binary in warned[0] and ".gnu_debugaltlink" in warned[0],
              f"dwz: one warning names the module whose debug file needs a supplementary file: "
              f"{summary['warnings']}")

    def test_timings(self):
        # --timings: the same report, and on stderr each step's time and the memory peak as it ended,
        # adding up to no more than the command's own wall-clock time
        captured([])
        snapshot = path("conns" + "default" + ".snap")
        plain = heapsnap("summary", snapshot)
        started = time.monotonic()
        timed = heapsnap("summary", snapshot, "--timings")
        wall = time.monotonic() - started
        check(timed.stdout == plain.stdout, "--timings leaves the report as it is")
        steps = {}
        for line in timed.stderr.splitlines():
            found = re.match(r"heapsnap summary: .*\.snap: +([0-9.]+) s  (?:peak +([0-9]+) MiB  )?(.*)$", line)
            if found:
                steps[found.group(3)] = (float(found.group(1)), int(found.group(2) or -1))
        check({"glibc heap", "graph: edges", "graph: dominators", "report", "in all"} <= set(steps),
              f"--timings names the steps: {sorted(steps)}")
        total = steps.get("in all", (0, 0))[0]
        check(0 < total <= wall and abs(sum(t for name, (t, _) in steps.items() if name != "in all") - total) < 0.05,
              f"--timings: the steps add up to {total} s, within the {wall:.2f} s the command took")
        # the DWARF read on a thread of its own beside the steps: its share, not in their sum
        dwarf = [float(m.group(1)) for m in re.finditer(
            r"\.snap: \( *([0-9.]+) s  DWARF: .* the steps\)$", timed.stderr, re.M)]
        check(len(dwarf) == 1 and 0 < dwarf[0] <= total,
              f"--timings says the DWARF's share beside the steps, within the {total} s: {dwarf}")
        peaks = [peak for name, (_, peak) in steps.items() if name != "in all"]
        check(peaks == sorted(peaks) and peaks[-1] > 0, f"--timings: the memory peak only grows: {peaks}")


if __name__ == "__main__":
    main()
