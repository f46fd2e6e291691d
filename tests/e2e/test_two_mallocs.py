"""Two mallocs in one process, side by side (tests/targets/two_mallocs.c): the program calls glibc's
malloc, and a library loaded with dlopen(RTLD_LOCAL), libmimalloc or libtcmalloc, defines malloc
too without replacing the process's (as a plugin, or a Python extension's dependency, brings one
in). Before, heapsnap took that library for the process's malloc and showed its heap alone: the
whole glibc heap was missing, with exit 0. Both heaps must be walked: every block either
allocator holds is live with its usable size and named by its own allocator, no freed block is
live, no damage is reported, and the summary names both mallocs. tcmalloc takes memory with sbrk,
so glibc's main heap is cut by fenceposts around tcmalloc's pieces of the break, and its walk
must go on past them. (jemalloc cannot be loaded this way: its thread-local storage needs the
static TLS block.)"""
import json
import os
from pathlib import Path

from allocator_target import freed_not_reused
from common import Case, capture_when_recorded, check, heapsnap, main

TWO_MALLOCS = os.environ.get("TWO_MALLOCS", "build/tests/two_mallocs")
LIBRARIES = {"mimalloc": "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
             "tcmalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"}
VERSION_KEY = {"mimalloc": "mimalloc", "tcmalloc": "gperftools"}  # (their runtimes keys)


def read_record(record_path):
    """{side: {"held": address -> usable size, "freed": address -> size asked}}"""
    record = {"glibc": {"held": {}, "freed": {}}, "other": {"held": {}, "freed": {}}}
    for line in Path(record_path).read_text().splitlines(keepends=True):
        words = line.split()
        if words[0] in ("held", "freed"):
            record[words[1]][words[0]][int(words[2], 16)] = int(words[3])
    return record


def check_two_mallocs(name, method):
    library = LIBRARIES[name]
    label = f"{name}-{method}"
    record_path, snapshot = capture_when_recorded(label, [TWO_MALLOCS, library], method=method)
    record = read_record(record_path)
    result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl")
    allocations = [json.loads(line) for line in result.stdout.splitlines()]
    live = {a["addr"]: a for a in allocations if a["state"] == "live"}
    for side, owner in (("glibc", "glibc malloc"), ("other", name)):
        held = record[side]["held"]
        check(len(held) == 1500, f"{label}: the target holds 1,500 blocks of {owner}")
        wrong = [(hex(addr), usable, live.get(addr)) for addr, usable in held.items()
                 if addr not in live or live[addr]["size"] != usable
                 or live[addr].get("allocator") != owner]
        check(not wrong, f"{label}: {len(wrong)} of {len(held)} blocks held from {owner} not "
                         f"live with their usable size and their allocator named, first "
                         f"{wrong[:3]}")
        freed = freed_not_reused({"held": held, "freed": record[side]["freed"]})
        stale = [hex(addr) for addr in freed if addr in live]
        check(len(freed) > 100 and not stale,
              f"{label}: of {len(freed)} blocks freed to {owner}, {len(stale)} listed live: "
              f"{stale[:3]}")
    summary = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)
    heap = summary["heap"]
    check(heap["allocator"] == name and [b["allocator"] for b in heap.get("beside", [])] ==
          ["glibc malloc"] and summary["runtimes"].get("glibc")
          and summary["runtimes"].get(VERSION_KEY[name]),
          f"{label}: the summary names {name} and glibc's malloc beside it: "
          f"{heap['allocator']} {heap.get('beside')} {summary['runtimes']}")
    check(heap["live_count"] >= 3000 and heap["heap_damage"]["corrupt_spots"] == 0,
          f"{label}: the summary counts both heaps' blocks, and no damage: "
          f"{heap['live_count']} {heap['heap_damage']}")
    text = heapsnap("summary", snapshot).stdout
    check(f"\nglibc malloc 2." in text and " beside it, structures found with " in text,
          f"{label}: the text summary names glibc's malloc beside {name}")


class TwoMallocs(Case):
    def test_mimalloc_fork(self):
        check_two_mallocs("mimalloc", "fork")

    def test_mimalloc_freeze(self):
        check_two_mallocs("mimalloc", "freeze")

    def test_tcmalloc_fork(self):
        check_two_mallocs("tcmalloc", "fork")

    def test_tcmalloc_freeze(self):
        check_two_mallocs("tcmalloc", "freeze")


if __name__ == "__main__":
    main()
