"""Big blocks whose pages were mostly never written (tests/targets/untouched_blocks.c): a capture
keeps those pages as zeros without storing them, and every reader must see them so. Each held
block is live with its malloc_usable_size, by debug info and by heuristics, captured by fork and
by freeze; malloc's own counters (mallinfo2) agree; the heap of an idle thread arena reads as sound
(no warning at all); and ten new 4 MiB blocks, each touched in its first bytes only, are +40 MiB
in heapdiff, past a --fail-on-growth gate."""
import functools
import json
import os
import signal
import subprocess

from common import HEAPDIFF, Case, check, heapsnap, main, path, start, wait_for_text

TARGET = os.environ.get("UNTOUCHED_BLOCKS", "build/tests/untouched_blocks")


def read_record(text):
    record = {"held": {}}
    for line in text.splitlines():
        words = line.split()
        if words[0] == "held":
            record["held"][int(words[1], 16)] = int(words[2])
        elif words[0] == "mallinfo":
            record["in_arenas"], record["mmapped"] = int(words[1]), int(words[2])
    return record


def wait_record(name, process):
    text = wait_for_text(name, process)
    while not text.endswith("done"):
        text = wait_for_text(name, process, previous=text)
    return read_record(text)


def check_held(label, snapshot, record, options=()):
    result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl", *options)
    allocations = [json.loads(line) for line in result.stdout.splitlines()]
    check(result.stderr == "", f"{label}: no warning on a sound heap: {result.stderr[:600]!r}")
    live = {a["addr"]: a for a in allocations if a["state"] == "live"}
    wrong = [(hex(addr), size, live.get(addr, {}).get("size")) for addr, size in record["held"].items()
             if live.get(addr, {}).get("size") != size]
    check(not wrong, f"{label}: every held block live with its usable size: {wrong}")
    return allocations


record_name = path("untouched.record")


@functools.cache
def target():
    """The target (left running) and its record, once for every case."""
    # (MALLOC_PERTURB_, which the suite sets, would write every byte malloc hands out)
    process = start([TARGET, record_name], env={k: v for k, v in os.environ.items() if k != "MALLOC_PERTURB_"})
    record = wait_record(record_name, process)
    check(len(record["held"]) == 6, f"the target holds six big blocks: {record}")
    return process, record


@functools.cache
def snapshots():
    """The target captured by fork and by freeze (both before it grows), once for every case."""
    process, _ = target()
    for method in ("fork", "freeze"):
        heapsnap("capture", str(process.pid), "--method", method, "-o", path(f"untouched-{method}.snap"))
    return {method: path(f"untouched-{method}.snap") for method in ("fork", "freeze")}


def check_capture(method, options):
    _, record = target()
    snapshot = snapshots()[method]
    if not options:
        info = json.loads(heapsnap("info", snapshot, "--format", "json").stdout)
        check(info["regions"]["bytes_untouched"] >= 40 << 20,
              f"{method}: the untouched pages are kept as such, not stored: "
              f"{info['regions']['bytes_untouched'] >> 20} MiB")
    label = f"{method} {' '.join(options)}".strip()
    allocations = check_held(label, snapshot, record, options)
    mmapped = sum(a["size"] + 16 for a in allocations if a["state"] == "live" and a["place"] == "mmapped")
    check(mmapped == record["mmapped"],
          f"{label}: the mmapped chunks are mallinfo2's hblkhd: {mmapped} against {record['mmapped']}")
    if not options:
        summary = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)
        held_bytes = sum(record["held"].values())
        check(summary["heap"]["live_bytes"] >= held_bytes,
              f"{method}: the summary's live bytes hold the held blocks: {summary['heap']['live_bytes']} "
              f"against {held_bytes}")


class Untouched(Case):
    def test_fork(self):
        check_capture("fork", ())

    def test_fork_no_debuginfo(self):
        check_capture("fork", ("--no-debuginfo",))

    def test_freeze(self):
        check_capture("freeze", ())

    def test_freeze_no_debuginfo(self):
        check_capture("freeze", ("--no-debuginfo",))

    def test_growth_in_heapdiff(self):
        # ten new 4 MiB blocks, each written in its first bytes only: heapdiff says +40 MiB and the
        # gate fails
        process, record = target()
        before = snapshots()["fork"]
        process.send_signal(signal.SIGUSR1)
        more = wait_record(record_name + ".more", process)
        check(len(more["held"]) == 10, f"ten more blocks: {len(more['held'])}")
        after = path("untouched-after.snap")
        heapsnap("capture", str(process.pid), "-o", after)
        check_held("after", after, {"held": {**record["held"], **more["held"]}})
        result = subprocess.run([HEAPDIFF, "--format", "json", before, after], capture_output=True, text=True,
                                timeout=300)
        check(result.returncode == 0, f"heapdiff: {result.returncode} {result.stderr[-400:]}")
        diff = json.loads(result.stdout)
        grown = sum(t["delta_bytes"] for t in diff["grown"])
        check(grown >= 40 << 20 and diff["after"]["live_bytes"] - diff["before"]["live_bytes"] >= 40 << 20,
              f"heapdiff: the heap grew by 40 MiB: {grown}")
        result = subprocess.run([HEAPDIFF, "--fail-on-growth", "*=10MiB", before, after],
                                capture_output=True, text=True, timeout=300)
        check(result.returncode == 1, f"heapdiff --fail-on-growth '*=10MiB' fails: {result.returncode} "
                                      f"{result.stdout[-400:]}")
        process.kill()


if __name__ == "__main__":
    main()
