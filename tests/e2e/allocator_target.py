"""What the tests of the allocators that replace glibc's malloc share (test_jemalloc_heap.py,
test_tcmalloc_heap.py, test_mimalloc_heap.py): the known-heap target's record
(tests/targets/known_heap.c), run and captured; its held and freed blocks checked against
`list`; a program that only looks like the allocator refused; and the leaking servers' stories
with the allocator preloaded, checked as on glibc."""
import os
import time

from common import (block_finder, capture_when_recorded, check, heapsnap, path,
                    preloaded_leak_diff, start)

LEAKY_SERVER_C = os.environ.get("LEAKY_SERVER_C", "build/tests/leaky_server_c")
TARGETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets")
PYTHON = "/usr/bin/python3.11"


def read_record(name):
    """The known-heap target's record: "held" (address to malloc_usable_size), "freed" (address
    to size asked), "visited" (mimalloc's own enumeration: address to usable size), "late"
    (addresses freed after that visit), "lines" (how many held and freed blocks it recorded: an
    address freed by one thread and allocated again by another is in both), and each number it
    read ("allocated", "tcache_bytes", "current_allocated_bytes", "version") by its name."""
    record = {"held": {}, "freed": {}, "visited": {}, "late": set(), "lines": 0, "version": None}
    with open(name) as f:
        lines = f.read().splitlines()
    for line in lines:
        words = line.split()
        if words[0] in ("held", "freed", "visited"):
            record[words[0]][int(words[1], 16)] = int(words[2])
            record["lines"] += words[0] != "visited"
        elif words[0] == "late":
            record["late"].add(int(words[1], 16))
        elif len(words) == 3:
            record[words[0]] = int(words[2])
    return record


def run_target(label, command, env=None, method="freeze"):
    """Runs the known-heap target (`command`), captures it once its record is written; returns
    the record and the snapshot's path."""
    record_path, snapshot = capture_when_recorded(label, command, env, method)
    return read_record(record_path), snapshot


def live_and_free(label, allocations, held):
    """The listed allocations by address, live and free; checks that every block the target
    holds (`held`: address to malloc_usable_size) is live with exactly that usable size."""
    live = {a["addr"]: a for a in allocations if a["state"] == "live"}
    free = {a["addr"]: a for a in allocations if a["state"] == "free"}
    wrong = [(hex(addr), size, live.get(addr) or free.get(addr)) for addr, size in held.items()
             if addr not in live or live[addr]["size"] != size]
    check(not wrong, f"{label}: {len(wrong)} of {len(held)} held blocks not live with their "
                     f"usable size, first {wrong[:3]}")
    return live, free


def freed_not_reused(record):
    """The blocks the target freed (address to size asked) whose memory no block it holds has
    since: threads that share an arena or a central cache (jemalloc's arena for huge blocks,
    tcmalloc's central caches and page heap) may hand memory one thread freed to another before
    the record is written, and then the held block is the truth about it."""
    in_held = block_finder([{"addr": addr, "size": size} for addr, size in record["held"].items()])
    return {addr: asked for addr, asked in record["freed"].items() if not in_held(addr)}


def check_impostor_refused(program, label, needles):
    """`program` (tests/targets/own_malloc.c built to look like an allocator) has none of that
    allocator's structures: its summary exits 2 with the words `needles` in the error, rather
    than show an empty heap."""
    ready = path(label + ".ready")
    impostor = start([program, ready])
    deadline = time.time() + 30
    while not os.path.exists(ready) and time.time() < deadline:
        time.sleep(0.02)
    heapsnap("capture", str(impostor.pid), "-o", path(label + ".snap"))
    impostor.kill()
    result = heapsnap("summary", path(label + ".snap"), check_ok=False)
    check(result.returncode == 2 and result.stdout == "" and
          all(needle in result.stderr for needle in needles),
          f"{label}: refused, exit 2, naming {needles}: {result.returncode} {result.stderr!r}")


def _retained(report, type_name, path_start):
    """heapdiff's entry for `type_name`, and how many of its objects paths from `path_start`
    retain."""
    grown = next((g for g in report["grown"] if g["type"] == type_name), None)
    held = [r for r in (grown or {}).get("retainers", [])
            if r["path"][:len(path_start)] == path_start]
    return grown, sum(r["count"] for r in held)


def check_leak_stories(library, allocator):
    """The leaking servers with `library` (the allocator called `allocator`) preloaded tell the
    same story as on glibc: the C one (heapdiff shows struct conn +1,000 retained by global
    all_conns, nothing new unreachable) and the Python one on Debian's python3.11 (pymalloc on
    top of the allocator: __main__.Connection +1,000 retained by the module global
    _CONNECTIONS)."""
    report = preloaded_leak_diff(library, [LEAKY_SERVER_C], f"c-{allocator}")
    if report:
        conn, held = _retained(report, "struct conn", ["global all_conns"])
        check(conn and conn["delta_count"] == 1000 and conn["new"] == 1000 and held == 1000,
              f"C server on {allocator}: struct conn +1,000, all retained from global "
              f"all_conns: {conn}")
        check(report["unreachable"]["new_count"] == 0,
              f"C server on {allocator}: nothing new unreachable: "
              f"{report['unreachable']['new_count']}")
    if not check(os.path.exists(PYTHON), "Debian's python3.11 is installed"):
        return
    report = preloaded_leak_diff(library, [PYTHON, os.path.join(TARGETS, "leaky_server.py")],
                                 f"py-{allocator}")
    if report:
        conn, held = _retained(report, "__main__.Connection",
                               ["module __main__._CONNECTIONS", "list[*]"])
        check(conn and conn["delta_count"] == 1000 and conn["new"] == 1000 and held == 1000,
              f"Python server on {allocator}: __main__.Connection +1,000, all retained by "
              f"_CONNECTIONS: {conn}")
