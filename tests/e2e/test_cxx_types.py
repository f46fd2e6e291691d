"""C++ objects are named by their dynamic class, from the vtable pointer in their first word: the
counts per class in `heapsnap summary` equal what the target made (tests/targets/shapes.cpp),
including a class derived twice and one in a namespace, held in a std::vector and a std::map; a
global in a namespace is named as C++ writes it (canvas::highlight), not by its mangled symbol. On
glibc malloc, and on jemalloc (preloaded), whose walker reads the blocks' first words only when the
process may hold C++ objects; with the DWARF and without (--no-debuginfo)."""
import functools
import json
import os
import time

from common import Case, check, heapsnap, main, path, start

TARGET = os.environ.get("SHAPES", "build/tests/shapes")
LIBJEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
ENVIRONMENTS = {
    "glibc": None,
    # on jemalloc, whose walker leaves the blocks' first words unread (its metadata is apart from
    # the blocks) until something needs them: here the vtables of a C++ program
    "jemalloc": dict(os.environ, LD_PRELOAD=LIBJEMALLOC),
}


@functools.cache
def captured(label):
    """The classes the target made and its snapshot, on one malloc; once for every case."""
    record_path = path(f"shapes-{label}")
    process = start([TARGET, record_path], env=ENVIRONMENTS[label])
    deadline = time.time() + 20
    while not os.path.exists(record_path) and time.time() < deadline:
        time.sleep(0.02)
    expected = {}
    with open(record_path) as record:
        for line in record:
            words = line.split()
            if words[0] == "class":
                expected[words[1]] = int(words[2])
    snapshot = path(f"shapes-{label}.snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    process.kill()
    process.wait()
    return expected, snapshot


def check_shapes(label, options):
    expected, snapshot = captured(label)
    summary = json.loads(heapsnap("summary", snapshot, "--format", "json", *options).stdout)
    counts = {t["type"]: t["count"] for t in summary["types"]}
    for name, count in expected.items():
        check(counts.get(name) == count,
              f"{label} {options}: {name}: {counts.get(name)} objects, the target made {count}")
    listing = heapsnap("list", snapshot, "--format", "jsonl", *options).stdout.splitlines()
    named = sum(1 for line in listing if json.loads(line)["type"] in expected)
    check(named == sum(expected.values()), f"{label} {options}: list names {named} objects")
    roots = [r["root"] for r in summary["roots"]]
    check("global canvas::highlight" in roots and not any("_ZN" in r for r in roots),
          f"{label} {options}: the C++ global is demangled among the roots: "
          f"{[r for r in roots if 'canvas' in r or '_Z' in r]}")


class CxxTypes(Case):
    def test_glibc(self):
        check_shapes("glibc", [])

    def test_glibc_no_debuginfo(self):
        check_shapes("glibc", ["--no-debuginfo"])

    def test_jemalloc_preloaded(self):
        check_shapes("jemalloc", [])

    def test_jemalloc_preloaded_no_debuginfo(self):
        check_shapes("jemalloc", ["--no-debuginfo"])


if __name__ == "__main__":
    main()
