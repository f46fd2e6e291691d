"""Shared helpers for the end-to-end tests: starting target processes, running heapsnap and gdb,
and reporting checks. Each test script holds unittest cases (subclasses of Case) and ends with
`if __name__ == "__main__": main()`; `python3 tests/e2e/test_graph.py -k timings` runs one case
alone, `-v` names each, and a failing case is named with every check it failed. The script exits
non-zero when any check failed."""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HEAPSNAP = os.environ.get("HEAPSNAP", "build/heapsnap")
KNOWN_STATE = os.environ.get("KNOWN_STATE", "build/tests/known_state")

failures = 0
_processes = []
WORKDIR = tempfile.mkdtemp(prefix="heapsnap-e2e-")

# every heapdiff the suite runs goes through tests/tools/heapdiff_checked.py, which logs a report
# that exits 0 with no warning while the memory no walker reads grew (finish() fails on it)
if "REAL_HEAPDIFF" not in os.environ:
    os.environ["REAL_HEAPDIFF"] = os.path.abspath(os.environ.get("HEAPDIFF", "build/heapdiff"))
    os.environ["HEAPDIFF"] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools",
                                          "heapdiff_checked.py")
    os.environ["HEAPDIFF_CHECK_LOG"] = os.path.join(WORKDIR, "heapdiff-unseen.log")
HEAPDIFF = os.environ["HEAPDIFF"]


def _cleanup():
    for process in _processes:
        if process.poll() is None:
            try:
                # a test may have left it stopped on purpose; SIGKILL works on stopped processes
                process.kill()
                process.wait(timeout=10)
            except Exception:
                pass
    if failures:
        # the snapshots and records of a failed run are kept, to look into
        sys.stderr.write(f"(kept {WORKDIR} for the failures above)\n")
    else:
        shutil.rmtree(WORKDIR, ignore_errors=True)


atexit.register(_cleanup)


# the messages of the checks the running case failed (None outside a case)
_case_failures = None
_unseen_log_read = 0


def check(condition, message):
    global failures
    if not condition:
        failures += 1
        print("FAIL:", message, file=sys.stderr)
        if _case_failures is not None:
            _case_failures.append(message)
    return condition


def _check_unseen_log():
    """The heapdiffs run since the last look that exited 0 in silence while unseen memory grew."""
    global _unseen_log_read
    log = os.environ.get("HEAPDIFF_CHECK_LOG")
    if log and os.path.exists(log):
        with open(log) as f:
            f.seek(_unseen_log_read)
            for line in f:
                check(False, line.strip())
            _unseen_log_read = f.tell()


class _GaveUp(AssertionError):
    pass


class Case(unittest.TestCase):
    """An end-to-end case: check() records a failure and goes on, so one run names every wrong
    answer; the case fails at its end with all of them. give_up() ends the case at once."""

    def setUp(self):
        global _case_failures
        _case_failures = []

    def tearDown(self):
        global _case_failures
        _check_unseen_log()
        failed, _case_failures = _case_failures, None
        if failed:
            self.fail(f"{len(failed)} checks failed:\n  " + "\n  ".join(failed))


def main():
    """Runs the script's cases (unittest's options: -k PATTERN, -v, a case's name) and exits
    non-zero when any case failed or any check outside a case (in setUpClass) did."""
    result = unittest.main(module="__main__", exit=False, verbosity=2).result
    _check_unseen_log()
    ok = result.wasSuccessful() and not failures and result.testsRun > 0
    print("all checks passed" if ok else f"{failures} checks failed", file=sys.stdout if ok else sys.stderr)
    sys.exit(0 if ok else 1)


def finish():
    """The end of a script without cases."""
    _check_unseen_log()
    if failures:
        print(f"{failures} checks failed", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def give_up(message):
    """A failure after which nothing else can be checked: ends the case (or the script)."""
    check(False, message)
    if _case_failures is not None:
        raise _GaveUp(message)
    finish()


def require_npm_tools(directory, package, needed_for):
    """node, and the npm packages of tests/tools/DIRECTORY (`npm ci` there from its lock file
    when `package` is not installed yet, as scripts/setup does); a failure naming what to
    install when either is missing, never a skip."""
    if shutil.which("node") is None:
        give_up("node is not installed: apt-get install -y nodejs npm (scripts/setup does)")
    if not os.path.isdir(os.path.join(directory, "node_modules", package)):
        result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=directory,
                                capture_output=True, text=True, timeout=600,
                                env=dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1"))
        if result.returncode != 0:
            give_up(f"npm ci in {directory} failed ({package} is needed {needed_for}): "
                    f"{result.stderr[-2000:]}")


def path(name):
    return os.path.join(WORKDIR, name)


def start_known_state(work=False, preexec_fn=None, user=None, executable=KNOWN_STATE):
    """Starts the known_state target and waits for its ready file; returns (process, record)."""
    ready = path(f"ready-{len(_processes)}")
    args = [executable, ready] + (["--work"] if work else [])
    if user:
        args = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + args
        os.chmod(WORKDIR, 0o777)
    process = subprocess.Popen(args, preexec_fn=preexec_fn)
    _processes.append(process)
    deadline = time.time() + 20
    while not os.path.exists(ready):
        if process.poll() is not None or time.time() > deadline:
            raise RuntimeError("known_state did not become ready")
        time.sleep(0.02)
    record = {"blocks": [], "unreadable": []}
    with open(ready) as f:
        for line in f:
            words = line.split()
            if words[0] == "pid":
                record["pid"] = int(words[1])
            elif words[0] == "unreadable":
                record["unreadable"].append((int(words[1], 16), int(words[2])))
            elif words[0] == "block":
                record["blocks"].append((int(words[1], 16), int(words[2])))
    return process, record


def start(args, **kwargs):
    process = subprocess.Popen(args, **kwargs)
    _processes.append(process)
    return process


def free_port():
    """A TCP port free on 127.0.0.1 (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_text(file, process, previous=None, timeout=30):
    """The text `process` wrote to `file`, once the file exists (and says other than `previous`)."""
    deadline = time.time() + timeout
    while True:
        if os.path.exists(file):
            with open(file) as f:
                text = f.read().strip()
            if text and text != previous:
                return text
        if process.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{file} never appeared")
        time.sleep(0.02)


def leak_story(server, variant, name, connections=(100, 1000)):
    """The leaking-server story (docs/design/leaking-server.md): starts `server` (a command:
    tests/targets/leaky_server.py or its C twin) with a port file and --variant VARIANT, makes 100
    client connections, captures NAME-before.snap, makes 1,000 more, captures NAME-after.snap,
    kills the server; returns the two paths. With three numbers of connections: NAME-baseline,
    -target and -final.snap, after each."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets"))
    from client import connect  # (the client the demo runs)
    port_file = path(f"port-{name}")
    process = start(server + [port_file, "--variant", variant])
    port = int(wait_for_text(port_file, process))
    roles = ["before", "after"] if len(connections) == 2 else ["baseline", "target", "final"]
    snapshots = []
    for count, role in zip(connections, roles):
        connect(port, count)
        snapshots.append(path(f"{name}-{role}.snap"))
        heapsnap("capture", str(process.pid), "-o", snapshots[-1])
    process.kill()
    process.wait()
    return tuple(snapshots)


def preloaded_leak_diff(library, command, name):
    """leak_story's two snapshots of `command` run with `library` preloaded (another malloc), and
    heapdiff's JSON on them; None when heapdiff fails (a failed check)."""
    before, after = leak_story(["env", f"LD_PRELOAD={library}"] + command, "global", name)
    diff = subprocess.run([HEAPDIFF, before, after, "--format", "json"], capture_output=True,
                          text=True, timeout=600)
    check(diff.returncode == 0, f"{name}: heapdiff exits 0: {diff.returncode} {diff.stderr[:500]}")
    import json
    return json.loads(diff.stdout) if diff.returncode == 0 else None


def capture_when_recorded(label, command, env=None, method="freeze"):
    """Starts `command` with the path of a record file as its last argument (the known-heap
    targets write it whole, by rename, once their heap is set), waits for it (30 s at most) and
    captures the program with `method`; returns the record's path and the snapshot's."""
    record_path = path(label + ".record")
    process = start(command + [record_path], env=env)
    deadline = time.time() + 30
    while not os.path.exists(record_path) and time.time() < deadline:
        time.sleep(0.02)
    check(os.path.exists(record_path), f"{label}: the target wrote its record")
    snapshot = path(label + ".snap")
    heapsnap("capture", "--method", method, str(process.pid), "-o", snapshot)
    return record_path, snapshot


def block_finder(allocations):
    """From `list`'s JSON objects, a function giving the allocation that holds an address (at its
    start or inside it), or None."""
    import bisect
    spans = sorted((a["addr"], a["addr"] + a["size"], a) for a in allocations)
    starts = [start for start, _, _ in spans]

    def holder(addr):
        k = bisect.bisect_right(starts, addr) - 1
        return spans[k][2] if k >= 0 and spans[k][0] <= addr < spans[k][1] else None
    return holder


def check_walked_summary(label, snapshot, allocator, version, method, options=()):
    """The JSON summary of a heap another malloc's walker walked: it names `allocator`, gives its
    `version` (and no glibc's), was found with `method`, and counts no damage; returns its heap."""
    import json
    summary = json.loads(heapsnap("summary", snapshot, "--format", "json", *options).stdout)
    heap = summary["heap"]
    check(heap["allocator"].startswith(allocator),
          f"{label}: the allocator is named: {heap['allocator']}")
    check(summary["runtimes"].get(allocator) == version and "glibc" not in summary["runtimes"],
          f"{label}: {allocator}'s version {version} is read, and not given as glibc's: "
          f"{summary['runtimes']}")
    check(heap["found_with"] == method, f"{label}: found with {method}: {heap['found_with']}")
    check(heap["heap_damage"]["corrupt_spots"] == 0, f"{label}: no damage: {heap['heap_damage']}")
    return heap


def check_layout(library, layout):
    """A walker's layout table against `library`'s DWARF: gdb prints each C expression of
    `layout` (a dict of expression to the value the walker holds), which must be that value."""
    command = ["gdb", "-nx", "-batch"] + [a for e in layout for a in ("-ex", f"p {e}")] + [library]
    printed = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    values = [int(line.split("= ")[1]) for line in printed.splitlines() if line.startswith("$")]
    wrong = [(e, want, got) for (e, want), got in zip(layout.items(), values) if want != got]
    check(len(values) == len(layout) and not wrong,
          f"the layout table agrees with {os.path.basename(library)}'s DWARF: "
          f"{wrong or printed[-300:]}")


def heapsnap(*args, check_ok=True, timeout=300, env=None):
    result = subprocess.run([HEAPSNAP, *args], capture_output=True, text=True, timeout=timeout,
                            env=env)
    if check_ok and result.returncode != 0:
        check(False, f"heapsnap {' '.join(args)} exited {result.returncode}: {result.stderr}")
    if (result.returncode == 0 and args and args[0] == "summary" and "--format" in args and
            args[args.index("--format") + 1] == "json"):
        # every summary the suite makes must satisfy the invariants
        import json
        check_summary_invariants(f"summary {' '.join(os.path.basename(a) for a in args[1:])}",
                                 json.loads(result.stdout))
    return result


def gdb(args, commands, timeout=120):
    """Runs gdb in batch mode and returns its stdout (stderr merged)."""
    command = ["gdb", "-nx", "-batch", "-iex", "set auto-load off", "-iex",
               "set debuginfod enabled off"]
    for c in commands:
        command += ["-ex", c]
    result = subprocess.run(command + args, capture_output=True, text=True, timeout=timeout)
    return result.stdout + result.stderr


def process_state(pid):
    """The state letter of /proc/PID/stat (R, S, D, T, t, Z), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def threads_of(pid):
    """The thread ids of process `pid` (none once it is gone)."""
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return []


def thread_state(pid, tid):
    """The state letter of one thread of `pid`, or None if gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def running(pid):
    """No thread of `pid` stopped (t, T), or gone: sampled a few times, since a thread may be
    between two states."""
    for _ in range(5):
        if process_state(pid) is None:
            return False
        if any(thread_state(pid, tid) in ("t", "T") for tid in threads_of(pid)):
            return False
        time.sleep(0.002)
    return True


def processes():
    """(pid, name, state letter, parent pid) of every process now."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = rest.split()
        found.append((int(entry), head.split("(", 1)[1], fields[0], int(fields[1])))
    return found


def children_of(pid):
    """(pid, state) of every process whose parent is `pid`, zombies included."""
    return [(child, state) for child, _, state, parent in processes() if parent == pid]


def living_keepers(target=None):
    """Pids of the heapsnap-keeper processes (a capture by fork's helper, which outlives a killed
    heapsnap to let the target go and remove its clone) still at work, those capturing `target`
    only when it is given (a keeper is a fork of `heapsnap capture PID`: its command line names
    the pid; other tests' captures may run meanwhile): zombies, which init has yet to reap, have
    done their work."""
    found = []
    for pid, name, state, _ in processes():
        if name != "heapsnap-keeper" or state == "Z":
            continue
        if target is not None:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if str(target).encode() not in f.read().split(b"\0"):
                        continue
            except (FileNotFoundError, ProcessLookupError):
                continue
        found.append(pid)
    return found


def tracer_of(pid, tid=None):
    """The TracerPid of `pid` (or of its thread `tid`): 0 when untraced, None when gone."""
    try:
        with open(f"/proc/{pid}/task/{tid or pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None


def tracers_of(pid):
    """The tracers of every thread of `pid` (0 for untraced ones), as a set."""
    return {tracer_of(pid, tid) for tid in threads_of(pid)} - {None}


def build_id(file):
    """The GNU build-id of an ELF file as readelf reports it, or None."""
    out = subprocess.run(["readelf", "-n", file], capture_output=True, text=True).stdout
    found = re.search(r"Build ID: ([0-9a-f]+)", out)
    return found.group(1) if found else None


def program_headers(f):
    """(p_type, p_offset, p_vaddr, p_filesz, p_memsz) of every program header of an open 64-bit
    little-endian ELF file."""
    import struct
    f.seek(0)
    header = f.read(64)
    phoff, = struct.unpack_from("<Q", header, 32)
    phentsize, phnum = struct.unpack_from("<HH", header, 54)
    f.seek(phoff)
    table = f.read(phentsize * phnum)
    headers = []
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz, p_memsz, _ = struct.unpack_from(
            "<IIQQQQQQ", table, i * phentsize)
        headers.append((p_type, p_offset, p_vaddr, p_filesz, p_memsz))
    return headers


def read_core_memory(core, address, size):
    """Bytes [address, address + size) of a process as an uncompressed ELF core holds them, read
    with nothing but the ELF layout (not heapsnap's reader): bytes past a segment's p_filesz read
    as zeros, as ELF defines; None when part of the range is in no segment."""
    with open(core, "rb") as f:
        out = bytearray(size)
        covered = 0
        for p_type, p_offset, p_vaddr, p_filesz, p_memsz in program_headers(f):
            start, end = max(address, p_vaddr), min(address + size, p_vaddr + p_memsz)
            if p_type != 1 or start >= end:
                continue
            covered += end - start
            stored_end = min(end, p_vaddr + p_filesz)
            if stored_end > start:
                f.seek(p_offset + start - p_vaddr)
                out[start - address:stored_end - address] = f.read(stored_end - start)
        return bytes(out) if covered == size else None


def soft_dirty_works():
    """Whether this kernel tracks writes with soft-dirty bits (CONFIG_MEM_SOFT_DIRTY): the
    condition for heapsnap's pre-copy. Probed on this process, as heapsnap probes itself."""
    import mmap
    import struct
    page = mmap.mmap(-1, 4096)
    page[0] = 1
    index = ctypes_address(page) // 4096
    with open("/proc/self/clear_refs", "w") as f:
        f.write("4")
    page[0] = 2
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(index * 8)
        entry, = struct.unpack("<Q", f.read(8))
    return bool(entry & (1 << 55))


def ctypes_address(buffer):
    import ctypes
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


def decompress(snapshot, core):
    subprocess.run(["zstd", "-q", "-d", "-f", snapshot, "-o", core], check=True)


def check_summary_invariants(label, summary):
    """What every summary must satisfy: no type retains more than the live heap, and the roots'
    retained bytes plus what groups of roots hold together are every reachable byte."""
    live = summary["heap"]["live_bytes"]
    over = [(t["type"], t["retained_bytes"]) for t in summary["types"] if t["retained_bytes"] > live]
    check(not over, f"{label}: types retain more than the live heap ({live}): {over[:3]}")
    roots = sum(r["retained_bytes"] for r in summary["roots"]) + summary["shared"]["bytes"]
    check(roots == summary["reachable_bytes"],
          f"{label}: the roots ({roots}) do not account for every reachable byte "
          f"({summary['reachable_bytes']})")
    check(summary["reachable_bytes"] + summary["unreachable"]["bytes"] <= live,
          f"{label}: reachable and unreachable bytes exceed the live heap")


def supported_pythons():
    """The interpreters the CPython tests run on, as (name, path): pyenv's newest 3.8 to 3.13 (with
    DWARF) and Debian's stripped /usr/bin/python3.11 ("debian-python3.11"); checks they are all
    present."""
    import glob
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = []
    for minor in range(8, 14):
        versions = sorted(glob.glob(os.path.join(root, "versions", f"3.{minor}.*", "bin",
                                                 f"python3.{minor}")))
        found += [(os.path.basename(p), p) for p in versions[-1:]]
    check(len(found) == 6, f"pyenv's CPython 3.8 to 3.13 are all present: {found}")
    check(os.path.exists("/usr/bin/python3.11"),
          "Debian's python3.11 is installed (scripts/setup installs it)")
    return found + [("debian-python3.11", "/usr/bin/python3.11")]
