"""C++ objects are named by their dynamic class, from the vtable pointer in their first word: the
counts per class in `heapsnap summary` equal what the target made (tests/targets/shapes.cpp),
including a class derived twice and one in a namespace, held in a std::vector and a std::map; a
global in a namespace is named as C++ writes it (canvas::highlight), not by its mangled symbol."""
import json
import os
import time

from common import check, finish, heapsnap, path, process_state, start

TARGET = os.environ.get("SHAPES", "build/tests/shapes")
record_path = path("shapes")
process = start([TARGET, record_path])
deadline = time.time() + 20
while not os.path.exists(record_path) and time.time() < deadline:
    time.sleep(0.02)
expected = {}
for line in open(record_path):
    words = line.split()
    if words[0] == "class":
        expected[words[1]] = int(words[2])
snapshot = path("shapes.snap")
heapsnap("capture", str(process.pid), "-o", snapshot)
for options in ([], ["--no-debuginfo"]):
    summary = json.loads(heapsnap("summary", snapshot, "--format", "json", *options).stdout)
    counts = {t["type"]: t["count"] for t in summary["types"]}
    for name, count in expected.items():
        check(counts.get(name) == count, f"{options}: {name}: {counts.get(name)} objects, the target made {count}")
    listing = heapsnap("list", snapshot, "--format", "jsonl", *options).stdout.splitlines()
    named = sum(1 for line in listing if json.loads(line)["type"] in expected)
    check(named == sum(expected.values()), f"{options}: list names {named} objects")
    roots = [r["root"] for r in summary["roots"]]
    check("global canvas::highlight" in roots and not any("_ZN" in r for r in roots),
          f"{options}: the C++ global is demangled among the roots: {[r for r in roots if 'canvas' in r or '_Z' in r]}")
finish()
