"""What the tests of the allocators that replace glibc's malloc share (test_jemalloc_heap.py,
test_tcmalloc_heap.py): running the known-heap target (tests/targets/jemalloc_heap.c) until it
has written its record and capturing it, and the leaking servers' stories with the allocator
preloaded, checked as on glibc."""
import bisect
import json
import os
import subprocess
import time

from common import check, heapsnap, leak_story, path, start

LEAKY_SERVER_C = os.environ.get("LEAKY_SERVER_C", "build/tests/leaky_server_c")
HEAPDIFF = os.environ.get("HEAPDIFF", "build/heapdiff")
TARGETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets")
PYTHON = "/usr/bin/python3.11"


def run_recording_target(label, command, read_record, env=None, method="freeze"):
    """Starts `command` with a record file, waits for the record, captures the process with
    `method`; returns the record (as `read_record` reads the file) and the snapshot's path."""
    record_path = path(label + ".record")
    process = start(command + [record_path], env=env)
    deadline = time.time() + 30
    while not os.path.exists(record_path) and time.time() < deadline:
        time.sleep(0.02)
    record = read_record(record_path)
    snapshot = path(label + ".snap")
    heapsnap("capture", "--method", method, str(process.pid), "-o", snapshot)
    return record, snapshot


def _leak_report(library, command, name):
    """leak_story's two snapshots of `command` with `library` preloaded, and heapdiff's JSON."""
    before, after = leak_story(["env", f"LD_PRELOAD={library}"] + command, "global", name)
    diff = subprocess.run([HEAPDIFF, before, after, "--format", "json"], capture_output=True,
                          text=True, timeout=600)
    check(diff.returncode == 0, f"{name}: heapdiff exits 0: {diff.returncode} {diff.stderr[:500]}")
    return json.loads(diff.stdout) if diff.returncode == 0 else None


def _grown(report, name):
    return next((g for g in report["grown"] if g["type"] == name), None)


def check_leak_stories(library, allocator):
    """The leaking servers with `library` (the allocator called `allocator`) preloaded tell the
    same story as on glibc: the C one (heapdiff shows struct conn +1,000 retained by global
    all_conns, nothing new unreachable) and the Python one on Debian's python3.11 (pymalloc on
    top of the allocator: __main__.Connection +1,000 retained by the module global
    _CONNECTIONS)."""
    report = _leak_report(library, [LEAKY_SERVER_C], f"c-{allocator}")
    if report:
        conn = _grown(report, "struct conn")
        held = [r for r in (conn or {}).get("retainers", []) if r["path"][0] == "global all_conns"]
        check(conn and conn["delta_count"] == 1000 and conn["new"] == 1000,
              f"C server on {allocator}: struct conn +1,000; heapdiff: {conn}")
        check(held and sum(r["count"] for r in held) == 1000,
              f"C server on {allocator}: all 1,000 new struct conn retained from global "
              f"all_conns: {conn and conn.get('retainers')}")
        check(report["unreachable"]["new_count"] == 0,
              f"C server on {allocator}: nothing new unreachable: "
              f"{report['unreachable']['new_count']}")
    if not check(os.path.exists(PYTHON), "Debian's python3.11 is installed"):
        return
    report = _leak_report(library, [PYTHON, os.path.join(TARGETS, "leaky_server.py")],
                          f"py-{allocator}")
    if report:
        conn = _grown(report, "__main__.Connection")
        held = [r for r in (conn or {}).get("retainers", [])
                if r["path"][:2] == ["module __main__._CONNECTIONS", "list[*]"]]
        check(conn and conn["delta_count"] == 1000 and conn["new"] == 1000,
              f"Python server on {allocator}: __main__.Connection +1,000; heapdiff: {conn}")
        check(held and sum(r["count"] for r in held) == 1000,
              f"Python server on {allocator}: the 1,000 new Connections retained by "
              f"_CONNECTIONS: {conn and conn.get('retainers')}")


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
    result = heapsnap("summary", path(label + ".snap"), check_ok=False)
    check(result.returncode == 2 and result.stdout == "" and
          all(needle in result.stderr for needle in needles),
          f"{label}: refused, exit 2, naming {needles}: {result.returncode} {result.stderr!r}")
    impostor.kill()


def holder_of(allocations):
    """A function giving the listed allocation (a dict of `list --format jsonl`) whose usable
    bytes hold an address, or None."""
    spans = sorted((a["addr"], a["addr"] + a["size"], a) for a in allocations)
    starts = [start for start, _, _ in spans]

    def holder(addr):
        k = bisect.bisect_right(starts, addr) - 1
        return spans[k][2] if k >= 0 and spans[k][0] <= addr < spans[k][1] else None
    return holder


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
    in_held = holder_of([{"addr": addr, "size": size} for addr, size in record["held"].items()])
    return {addr: asked for addr, asked in record["freed"].items() if not in_held(addr)}


def read_record(name):
    """The known-heap target's record: "held" (address to malloc_usable_size), "freed" (address
    to size asked), "lines" (how many blocks it recorded: an address freed by one thread and
    allocated again by another is in both), and each counter it read ("allocated", "tcache_bytes",
    "current_allocated_bytes") by its name."""
    record = {"held": {}, "freed": {}, "lines": 0}
    for line in open(name):
        words = line.split()
        if words[0] in ("held", "freed"):
            record[words[0]][int(words[1], 16)] = int(words[2])
            record["lines"] += 1
        elif len(words) == 3:
            record[words[0]] = int(words[2])
    return record
