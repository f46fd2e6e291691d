"""A capture must hold what gdb sees in the live process: the same global values, the same heap
bytes (which must also equal what the target itself wrote), the same threads and the same
backtraces, read by gdb from the decompressed snapshot. Checked by fork (the default: the memory
read from the clone as the snapshot is written) and by freeze with both ways of reading memory:
process_vm_readv, and the /proc/PID/mem fallback."""
import json
import os
import re

from common import (Case, check, decompress, gdb, heapsnap, main, path, process_state,
                    start_known_state, KNOWN_STATE)

chosen = [0, 5, 31, 63]

commands = ["p known_counter", "p known_text", "p known_ratio", "p known_pair",
            "p known_block_sizes[10]"]
commands += [f"x/24xb known_blocks[{i}]" for i in chosen]
commands += ["info threads", "thread apply all bt"]


def normalise(output):
    """Values, memory dumps, thread count and per-thread backtrace functions."""
    values = re.findall(r"^\$\d+ = (.*)$", output, re.M)
    memory = re.findall(r"^0x[0-9a-f]+:\s+((?:0x[0-9a-f]{2}\s*)+)$", output, re.M)
    threads = {}
    current = None
    for line in output.splitlines():
        m = re.match(r"^Thread \d+ \(.*?LWP (\d+)\)", line)
        if m:
            current = int(m.group(1))
            threads[current] = []
            continue
        m = re.match(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(", line)
        if m and current is not None:
            threads[current].append(m.group(1))
    return values, [" ".join(m.split()) for m in memory], threads


_live = []


def live_target():
    """known_state started, and what gdb attached to it sees (normalised), with the target's state
    once gdb detached: once for every case, as (pid, record, live, state)."""
    if not _live:
        process, record = start_known_state()
        pid = record["pid"]
        live = normalise(gdb(["-p", str(pid)], commands))
        _live.append((pid, record, live, process_state(pid)))
    return _live[0]


def compare(mode, environment, *options):
    pid, record, live, _ = live_target()
    blocks = record["blocks"]
    snapshot = path(f"known-{mode}.snap")
    result = heapsnap("capture", str(pid), "-o", snapshot, *options, env=environment)
    check(re.match(r".*known-\w+\.snap: .* 4 threads, \d+ regions, \d+ modules, target paused [\d.]+ ms",
                   result.stdout), f"{mode}: capture output: {result.stdout!r}")
    check(process_state(pid) not in ("t", "T", None), f"{mode}: capture left the target stopped")
    check(os.stat(snapshot).st_mode & 0o777 == 0o600, f"{mode}: snapshot is not mode 0600")
    core = path(f"known-{mode}.core")
    decompress(snapshot, core)
    offline = normalise(gdb([KNOWN_STATE, core], commands))

    check(live[0] == offline[0], f"{mode}: globals differ: live {live[0]} snapshot {offline[0]}")
    check(live[1] == offline[1], f"{mode}: heap bytes differ between live gdb and the snapshot")
    check(live[2].keys() == offline[2].keys(),
          f"{mode}: thread ids differ: {sorted(live[2])} vs {sorted(offline[2])}")
    for tid, frames in live[2].items():
        check(frames == offline[2].get(tid),
              f"{mode}: thread {tid} backtrace: live {frames} snapshot {offline[2].get(tid)}")
    check(sum("park_in_worker_wait" in f for f in offline[2].values()) == 3,
          f"{mode}: three workers are parked in park_in_worker_wait in the snapshot")
    check(any("park_in_main_wait" in f for f in offline[2].values()), f"{mode}: main thread parked")

    # ground truth from the target itself: block i has size 16 + 40 i and byte k = (7 i + k) & 0xff
    for i in chosen:
        address, size = blocks[i]
        check(size == 16 + 40 * i, "record matches the known pattern")
        dump = gdb([KNOWN_STATE, core], [f"x/{min(size, 64)}xb {address:#x}"])
        got = [int(b, 16) for b in re.findall(r"\t0x([0-9a-f]{2})", dump)]
        want = [(7 * i + k) & 0xFF for k in range(min(size, 64))]
        check(got == want, f"{mode}: block {i} at {address:#x}: snapshot has {got[:8]}..., target wrote {want[:8]}...")

    # the pages past the end of the mapped file could not be read: recorded, and said so (one
    # mapping from the file's start, one from its second page: by fork, the second is read from
    # the clone as the snapshot is written, and the write must start over with it copied)
    length = sum(size for _, size in record["unreadable"])
    info = json.loads(heapsnap("info", snapshot, "--format", "json").stdout)
    check(info["regions"]["bytes_unreadable"] == length,
          f"{mode}: {info['regions']['bytes_unreadable']} bytes unreadable, expected {length}")
    check("could not be read" in result.stderr, f"{mode}: capture warns of unreadable memory: {result.stderr!r}")


class CaptureGdb(Case):
    def test_live_gdb(self):
        pid, record, live, state = live_target()
        check(state not in ("t", "T", None), "gdb left the target stopped")
        check(len(live[0]) == 5, f"live gdb printed the globals: {live[0]}")
        check(live[0][:2] == ["424242", '"heapsnap known text", \'\\000\' <repeats 44 times>'],
              f"globals are the known values: {live[0][:2]}")
        check(len(live[1]) >= len(chosen) * 3, f"live gdb dumped memory: {live[1]}")
        check(len(live[2]) == 4, f"live gdb sees 4 threads: {sorted(live[2])}")
        check(sorted(live[2]) == sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")),
              "live threads are the process's tasks")

    def test_fork(self):
        compare("fork", None)

    def test_freeze_process_vm_readv(self):
        compare("process_vm_readv", None, "--method", "freeze")

    def test_freeze_proc_mem(self):
        compare("proc_mem", dict(os.environ, HEAPSNAP_PROC_MEM="1"), "--method", "freeze")


if __name__ == "__main__":
    main()
