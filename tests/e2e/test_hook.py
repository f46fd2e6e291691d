"""The in-process hook, libheapsnap.so, against ground truth and against ptrace captures:

- the glibc target (tests/targets/glibc_heap.c) preloaded with the hook: on SIGUSR2 it writes a
  snapshot in which every block the target recorded is live with its usable size (and no block it
  freed is), the allocations are exactly those of a ptrace capture of the same state, every thread
  has the registers (pc, sp) ptrace reads, heapdiff between the two sees one process and no growth,
  and the process runs on;
- HEAPSNAP_SIGNAL accepts SIGUSR2, USR2 and 12, and refuses what it cannot use;
- a process that made itself non-dumpable (prctl PR_SET_DUMPABLE 0) is snapshotted all the same;
- a CPython process (pyenv 3.11) preloaded with the hook: `heapsnap summary` gives the same types,
  counts and bytes as on a ptrace capture of the same state;
- 100 signals during malloc-heavy work on four threads (tests/targets/malloc_hammer.c), allocation
  sites on: no deadlock,
  no crash, the work's checksum is the one of a run without the hook, and every snapshot written
  is whole (its frames' checksums verify);
- a burst of 200 signals 20 ms apart, twenty of them doubled: one snapshot at a time, every
  signal either served or counted as not served on standard error, every snapshot whole and
  under a name of its own;
- a program linked with the library calls heapsnap_capture(path) and the snapshot holds the blocks
  it recorded;
- allocation sites (HEAPSNAP_SITES=1): a target allocating from three functions
  (tests/targets/sites.c), snapshotted before and after it allocates 100, 200 and 300 more blocks
  from them: heapdiff groups the untyped growth under those three functions and the source lines
  the target recorded of its own calls, with those counts; the summary groups all of them; a
  snapshot without sites has none."""
import glob
import json
import os
import signal
import subprocess
import time

from common import Case, check, heapsnap, main, path, process_state, start
from glibc_target import check_sound_heap, listing, read_record
from hook_target import (GLIBC_HEAP, LIBRARY, hooked, read_sites_record, signal_burst,
                         snapshots_in, wait_for_file, wait_for_forks, wait_for_snapshot)

HAMMER = os.environ.get("MALLOC_HAMMER", "build/tests/malloc_hammer")
HOOK_API = os.environ.get("HOOK_API", "build/tests/hook_api")
SITES_TARGET = os.environ.get("SITES_TARGET", "build/tests/sites")
HEAPDIFF = os.environ.get("HEAPDIFF", "build/heapdiff")
PYTHON_TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets",
                             "python_objects.py")


def threads_of(snapshot):
    info = json.loads(heapsnap("info", snapshot, "--format", "json").stdout)
    return info, {t["tid"]: (t["pc"], t["sp"]) for t in info["threads"]}


# the glibc target, by signal, against its record and a ptrace capture
def check_glibc_by_signal(signal_name):
    directory = path(f"hook-glibc-{signal_name}")
    record_file = path(f"glibc-record-{signal_name}")
    target = start([GLIBC_HEAP, record_file], env=hooked(directory, signal_name))
    if not check(wait_for_file(record_file, target), f"{signal_name}: the target ran"):
        return
    time.sleep(0.1)  # "done" is written last; its threads are now all in pause()
    record = read_record(record_file)
    ptrace_snapshot = path(f"ptrace-{signal_name}.snap")
    heapsnap("capture", str(target.pid), "-o", ptrace_snapshot)
    os.kill(target.pid, signal.SIGUSR2)
    hook_snapshot = wait_for_snapshot(directory, [])
    if not check(hook_snapshot, f"HEAPSNAP_SIGNAL={signal_name}: a snapshot appeared in "
                                f"HEAPSNAP_DIR"):
        return
    check(os.stat(hook_snapshot).st_mode & 0o777 == 0o600, "the hook's snapshot is 0600")
    check(os.path.basename(hook_snapshot).startswith(f"heapsnap-{target.pid}-"),
          f"named as heapsnap capture names it: {hook_snapshot}")
    check(process_state(target.pid) in ("S", "R"),
          f"the target runs on after the hook's snapshot (state {process_state(target.pid)})")
    allocations = check_sound_heap(f"hook ({signal_name})", record, hook_snapshot)
    ptrace_allocations, _ = listing(ptrace_snapshot)
    check(allocations == ptrace_allocations,
          f"{signal_name}: the hook's allocations are the ptrace capture's "
          f"({len(allocations)} and {len(ptrace_allocations)})")
    info, hook_threads = threads_of(hook_snapshot)
    _, ptrace_threads = threads_of(ptrace_snapshot)
    check(info["source"] == "hook" and info["pid"] == target.pid and info["pause_ms"] is not None,
          f"the info note says hook, the pid and the pause: {info['source']}, {info['pid']}")
    check(hook_threads == ptrace_threads,
          f"{signal_name}: every thread with the pc and sp ptrace reads: hook {hook_threads}, "
          f"ptrace {ptrace_threads}")
    # heapdiff from the ptrace capture to the hook's, of one state: one process, nothing grew
    diff = json.loads(subprocess.run([HEAPDIFF, "--format", "json", ptrace_snapshot,
                                      hook_snapshot], capture_output=True, text=True).stdout
                      or "{}")
    check(diff.get("grown") == [] and diff.get("unreachable", {}).get("new_count") == 0,
          f"{signal_name}: heapdiff sees one process and no growth between the ptrace capture "
          f"and the hook's: {diff.get('grown', 'no report')}")
    target.kill()
    target.wait()


def wait_for_text(name, text, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(name):
            with open(name) as f:
                if text in f.read():
                    return True
        time.sleep(0.02)
    return False


class Hook(Case):
    # the glibc target, by signal, against its record and a ptrace capture
    def test_glibc_signal_USR2(self):
        check_glibc_by_signal("USR2")

    def test_glibc_signal_SIGUSR2(self):
        check_glibc_by_signal("SIGUSR2")

    def test_glibc_signal_12(self):
        check_glibc_by_signal("12")

    def test_bad_signal_refused(self):
        # a bad HEAPSNAP_SIGNAL is refused with a message, and the program runs as usual
        result = subprocess.run(["true"], env=hooked(path("bad-signal"), "KILL"), capture_output=True,
                                text=True)
        check(result.returncode == 0 and "HEAPSNAP_SIGNAL" in result.stderr,
              f"HEAPSNAP_SIGNAL=KILL is refused with a message: {result.stderr!r}")

    def test_nondumpable_process(self):
        # a process that forbids being dumped
        directory = path("hook-nondumpable")
        record_file = path("nondumpable-record")
        target = start([GLIBC_HEAP, record_file, "--nondumpable"], env=hooked(directory))
        if check(wait_for_file(record_file, target), "the non-dumpable target ran"):
            time.sleep(0.1)
            os.kill(target.pid, signal.SIGUSR2)
            snapshot = wait_for_snapshot(directory, [])
            if check(snapshot, "a non-dumpable process is snapshotted by the hook"):
                check_sound_heap("hook, non-dumpable", read_record(record_file), snapshot)
            target.kill()
            target.wait()

    def test_python_same_summary_as_ptrace(self):
        # CPython: the same summary from the hook as from ptrace
        pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
        pythons = sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.11.*", "bin", "python3.11")))
        check(pythons, "pyenv's CPython 3.11 is present")
        hook_snapshot = None
        for python in pythons[-1:]:
            directory = path("hook-python")
            result_file = path("python-result")
            reader, writer = os.pipe()
            target = start([python, PYTHON_TARGET, result_file], stdin=reader, env=hooked(directory))
            if check(wait_for_file(result_file, target, 60), "the Python target ran"):
                ptrace_snapshot = path("python-ptrace.snap")
                heapsnap("capture", str(target.pid), "-o", ptrace_snapshot)
                os.kill(target.pid, signal.SIGUSR2)
                hook_snapshot = wait_for_snapshot(directory, [])
                if check(hook_snapshot, "the Python process wrote a snapshot on SIGUSR2"):
                    summaries = [json.loads(heapsnap("summary", s, "--format", "json").stdout)
                                 for s in (ptrace_snapshot, hook_snapshot)]
                    types = [[(t["type"], t["count"], t["bytes"]) for t in s["types"]] for s in summaries]
                    check(types[0] == types[1] and len(types[0]) > 100,
                          f"the hook's summary has the ptrace capture's types, counts and bytes "
                          f"({len(types[0])} and {len(types[1])} types; first differences: "
                          f"{[a for a, b in zip(*types) if a != b][:5]})")
                    check(summaries[0]["python"]["objects"] == summaries[1]["python"]["objects"],
                          "as many Python objects in both")
                    check(process_state(target.pid) in ("S", "R"), "the Python process runs on")
            target.kill()
            target.wait()
            os.close(writer)
            os.close(reader)
        # (the Python process's hook snapshot, taken without sites)
        without = json.loads(heapsnap("summary", hook_snapshot, "--format", "json").stdout) \
            if hook_snapshot else {}
        check("sites" not in without, "a snapshot taken without HEAPSNAP_SITES has no sites")

    def test_hammer_100_signals(self):
        # 100 signals during malloc-heavy work on four threads
        reference = subprocess.run([HAMMER, "4", "400000"], capture_output=True, text=True, timeout=300)
        check(reference.returncode == 0 and reference.stdout.startswith("checksum"),
              f"the hammer runs without the hook: {reference.stdout} {reference.stderr}")
        directory = path("hook-hammer")
        ready = path("hammer-ready")
        # (with allocation sites on: their table is updated from every thread, and read by each fork)
        hammer = start([HAMMER, "4", "400000", ready], env=hooked(directory, sites=True),
                       stdout=subprocess.PIPE, text=True)
        sent = 0
        if check(wait_for_file(ready, hammer), "the hammer started"):
            while sent < 100 and hammer.poll() is None:
                os.kill(hammer.pid, signal.SIGUSR2)
                sent += 1
                time.sleep(0.01)
        try:
            output, _ = hammer.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            hammer.kill()
            output = "(hung)"
        check(sent == 100, f"100 signals were sent while the hammer worked (it ended after {sent}: "
                           f"give it more work)")
        check(hammer.returncode == 0 and output == reference.stdout,
              f"no deadlock, no crash, the same checksum: {output!r} (exit {hammer.returncode}), "
              f"without the hook {reference.stdout!r}")
        # the forks finish writing after the hammer exits
        wait_for_forks(HAMMER)
        written = snapshots_in(directory)
        check(written and not glob.glob(os.path.join(directory, "*.tmp.*")),
              f"snapshots were written ({len(written)}) and no temporary file is left")
        broken = [s for s in written if heapsnap("info", s, "--verify", check_ok=False).returncode != 0]
        check(not broken, f"every snapshot written during the work is whole: {broken[:3]}")

    def test_signal_burst(self):
        # a burst of 200 signals 20 ms apart (and 20 more, each right behind one of them): one snapshot
        # is made at a time, the signals that come meanwhile are counted and the count said on standard
        # error; every snapshot started is written, whole, under a name of its own (many fall in the same
        # second)
        burst = signal_burst(path("hook-burst"), "burst", 200)
        check(burst["ran"], "burst: the target ran")
        check(burst["forks_ended"], "burst: the forks ended")
        check(burst["last_written"], "burst: a snapshot after the burst")
        check(not burst["unfinished"], f"burst: every snapshot started was written: {burst['said'][-300:]}")
        check(burst["written"] + burst["not_served"] == burst["sent"] and burst["not_served"] > 0,
              f"burst: each of the {burst['sent']} signals made a snapshot ({burst['written']}) or was "
              f"counted as not served ({burst['not_served']})")
        check(burst["numbered"], "burst: snapshots of the same second have names of their own (-2, -3...)")
        check(not burst["broken"], f"burst: every snapshot is whole: {burst['broken'][:3]}")
        check(not burst["others"], f"burst: no other file is left: {burst['others'][:5]}")

    def test_api_heapsnap_capture(self):
        # the API, from a program linked with the library
        snapshot, record_file = path("api.snap"), path("api-record")
        result = subprocess.run([HOOK_API, snapshot, record_file], capture_output=True, text=True,
                                timeout=120)
        check(result.returncode == 0, f"heapsnap_capture returned 0: {result.stderr}")
        if os.path.exists(snapshot):
            record = read_record(record_file)
            allocations, _ = listing(snapshot)
            live = {a["addr"]: a["size"] for a in allocations if a["state"] == "live"}
            wrong = [hex(a) for a, size in record["held"].items() if live.get(a) != size]
            check(len(record["held"]) == 300 and not wrong,
                  f"the API's snapshot holds the program's 300 blocks with their sizes: {wrong[:5]}")

    def test_allocation_sites(self):
        # allocation sites
        directory = path("hook-sites")
        record_file = path("sites-record")
        reader, writer = os.pipe()
        target = start([SITES_TARGET, record_file], stdin=reader, env=hooked(directory, sites=True))
        if check(wait_for_text(record_file, "phase 1"), "the sites target ran"):
            os.kill(target.pid, signal.SIGUSR2)
            first = wait_for_snapshot(directory, [])
            os.write(writer, b"go\n")
            check(wait_for_text(record_file, "phase 2"), "the sites target allocated more")
            os.kill(target.pid, signal.SIGUSR2)
            second = wait_for_snapshot(directory, [first])
            lines, callers = read_sites_record(record_file)
            if check(first and second, "two snapshots with sites"):
                diff = json.loads(subprocess.run([HEAPDIFF, "--format", "json", first, second],
                                                 capture_output=True, text=True).stdout)
                found = {(s["function"], os.path.basename(s["file"] or ""), s["line"]): s["new"]
                         for s in diff.get("sites", [])}
                expected = {("make_small", "sites.c", lines.get("make_small")): 100,
                            ("make_medium", "sites.c", lines.get("make_medium")): 200,
                            ("make_large", "sites.c", lines.get("make_large")): 300}
                check(found == expected, f"heapdiff groups the untyped growth by site: {found}, "
                                         f"expected {expected}")
                # the stack goes on to main, where it called each function (the target keeps frame
                # pointers)
                stacks = {s["function"]: s["stack"] for s in diff.get("sites", [])}
                for function, line in callers.items():
                    stack = stacks.get(function, [])
                    check(len(stack) >= 2 and stack[1] == f"main (sites.c:{line})",
                          f"{function}'s stack goes on to main (sites.c:{line}): {stack}")
                summary = json.loads(heapsnap("summary", second, "--format", "json").stdout)
                counts = {}  # (a function reached from two places in main is two sites)
                for site in summary.get("sites", []):
                    counts[site["function"]] = counts.get(site["function"], 0) + site["count"]
                check(counts == {"make_small": 110, "make_medium": 210, "make_large": 310},
                      f"the summary groups every untyped block by site: {counts}")
        target.kill()
        target.wait()
        os.close(writer)
        os.close(reader)


if __name__ == "__main__":
    main()
