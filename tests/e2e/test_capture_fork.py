"""Capture by fork (issue 17): the snapshot taken by fork equals the one taken by freeze of the same
quiescent process (`list` and `summary` output, every thread's registers; known_state and the glibc
heap target), and the fork never harms the target: across 20 fork captures under TCP load no
request fails and no signal sent to it is lost, the target gets no SIGCHLD, waitpid(-1) in it finds no child, no process but the
target ever runs its code (its pthread_atfork handlers and its main loop log any other pid), it
keeps no child, zombie or not, and is never left stopped or traced; reading the clone copies none
of its pages (they stay shared with the target); its MADV_DONTFORK and
MADV_WIPEONFORK mappings are in the snapshot with their bytes; SIGKILL of heapsnap at random
points of a fork capture leaves the target running and untraced and no clone, living or zombie
(the keeper process reaps it); SIGKILL of heapsnap, or of its process group, or SIGTERM, while
the clone system call runs (held there for the test) leaves the target running on correctly, with
its own registers; a target under a seccomp filter, and a clone that fails (RLIMIT_NPROC), give a
capture by freeze with one line on stderr saying why; fork is the default."""
import functools
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time

from common import (HEAPSNAP, WORKDIR, Case, check, children_of, decompress, heapsnap,
                    living_keepers, main, path, program_headers, read_core_memory, running, start,
                    start_known_state, tracers_of)

FORK_WATCH = os.environ.get("FORK_WATCH", "build/tests/fork_watch")
GLIBC_HEAP = os.environ.get("GLIBC_HEAP", "build/tests/glibc_heap")
NT_PRSTATUS, NT_PRFPREG = 1, 2


def notes(core):
    """(name, type, desc) of every note of an uncompressed ELF core."""
    found = []
    with open(core, "rb") as f:
        for p_type, p_offset, _, p_filesz, _ in program_headers(f):
            if p_type != 4:
                continue
            f.seek(p_offset)
            data = f.read(p_filesz)
            at = 0
            while at + 12 <= len(data):
                namesz, descsz, note_type = struct.unpack_from("<III", data, at)
                name = data[at + 12:at + 12 + namesz].rstrip(b"\0").decode()
                desc_at = at + 12 + (namesz + 3) // 4 * 4
                found.append((name, note_type, data[desc_at:desc_at + descsz]))
                at = desc_at + (descsz + 3) // 4 * 4
    return found


def thread_registers(snapshot):
    """{tid: (general registers, floating-point registers)} from the snapshot's NT_PRSTATUS and
    NT_PRFPREG notes (x86-64 layout: pr_pid at 32, pr_reg at 112, 27 words)."""
    core = snapshot + ".core"
    decompress(snapshot, core)
    registers, tid = {}, None
    for name, note_type, desc in notes(core):
        if name == "CORE" and note_type == NT_PRSTATUS:
            tid, = struct.unpack_from("<i", desc, 32)
            registers[tid] = [desc[112:112 + 27 * 8], None]
        elif name == "CORE" and note_type == NT_PRFPREG and tid is not None:
            registers[tid][1] = desc
    os.remove(core)
    return {t: tuple(r) for t, r in registers.items()}


def capture(pid, name, method):
    snapshot = path(name + ".snap")
    chosen = ["--method", method] if method else []  # None: the default, which is fork
    result = heapsnap("capture", str(pid), "-o", snapshot, *chosen, "--threads", "1")
    return snapshot, result


def report(snapshot, command):
    """`heapsnap list` or `summary` output, without the line that names the snapshot file."""
    out = heapsnap(command, snapshot).stdout
    return "\n".join(line for line in out.splitlines() if snapshot not in line)


# 1. fork equals freeze on quiescent targets: freeze, fork, freeze again (which also shows that the
# thread the clone ran in got its registers back exactly)
def compare_methods(label, pid):
    snapshots = [capture(pid, f"{label}-{i}-{method}", method)
                 for i, method in enumerate(("freeze", "fork", "freeze"))]
    for (snapshot, result), method in zip(snapshots, ("freeze", "fork", "freeze")):
        check(f"by {method}" in result.stdout and "using the freeze method" not in result.stderr,
              f"{label}: capture by {method} says so: {result.stdout!r} {result.stderr!r}")
    info = heapsnap("info", snapshots[1][0]).stdout
    check(re.search(r"target paused [\d.]+ ms \(by fork\)", info),
          f"{label}: info names the fork method: {info[:300]!r}")
    info_json = json.loads(heapsnap("info", snapshots[1][0], "--format", "json").stdout)
    check(info_json.get("capture_method") == "fork",
          f"{label}: info --format json says capture_method fork: {info_json.get('capture_method')}")
    for command in ("list", "summary"):
        outputs = [report(snapshot, command) for snapshot, _ in snapshots]
        check(outputs[0] == outputs[1] == outputs[2] and outputs[0],
              f"{label}: `{command}` differs between freeze, fork and freeze")
    registers = [thread_registers(snapshot) for snapshot, _ in snapshots]
    check(len(registers[0]) > 1 and registers[0].keys() == registers[1].keys() == registers[2].keys(),
          f"{label}: the same threads: {[sorted(r) for r in registers]}")
    for tid in registers[0]:
        check(registers[0][tid] == registers[1].get(tid) == registers[2].get(tid),
              f"{label}: thread {tid}'s registers differ between freeze, fork and freeze")
    check(running(pid) and tracers_of(pid) == {0}, f"{label}: target left stopped or traced")
    check(children_of(pid) == [], f"{label}: target has children: {children_of(pid)}")


# 2. the target's view across 20 fork captures under TCP load
def start_watch(name, *extra, user=None):
    ready, log = path(name + ".ready"), path(name + ".log")
    command = [FORK_WATCH, ready, log, *extra]
    if user:
        os.chmod(WORKDIR, 0o777)
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + command
    process = start(command)
    deadline = time.time() + 60
    while not os.path.exists(ready):
        if process.poll() is not None or time.time() > deadline:
            raise RuntimeError("fork_watch did not become ready")
        time.sleep(0.02)
    record = {}
    with open(ready) as f:
        for line in f:
            words = line.split()
            if words[0] in ("pid", "port"):
                record[words[0]] = int(words[1])
            else:
                record[words[0]] = (int(words[1], 16), int(words[2]))
    return process, record, log


def ask(port, line):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(line.encode() + b"\n")
        return connection.makefile().readline().strip()


def logged_pids(log):
    with open(log) as f:
        return {int(line.split()[1]) for line in f}


class Load(threading.Thread):
    """Requests on one long-lived connection and on a new connection every tenth request."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.requests, self.failures, self.stop = port, 0, [], False

    def run(self):
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        reader = connection.makefile()
        while not self.stop:
            try:
                word = f"w{self.requests}"
                if self.requests % 10 == 9:
                    answer = ask(self.port, "echo " + word)
                else:
                    connection.sendall(f"echo {word}\n".encode())
                    answer = reader.readline().strip()
                if answer != word:
                    self.failures.append((word, answer))
            except OSError as error:
                self.failures.append((self.requests, repr(error)))
            self.requests += 1
        connection.close()


class Signals(threading.Thread):
    """SIGRTMIN to the target without pause: queued, never merged, each must be taken."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.sent, self.stop = pid, 0, False

    def run(self):
        while not self.stop:
            os.kill(self.pid, signal.SIGRTMIN)
            self.sent += 1
            time.sleep(0.0002)


@functools.cache
def large():
    """fork_watch with a 256 MiB heap, captured by fork while the clone's private pages are
    sampled; the target left running for the kills. Once for every case."""
    watch, record, log = start_watch("large", "--heap-mib", "256")
    pid = record["pid"]
    began = time.time()
    # while it is copied from, the clone's pages stay shared with the target: reading them must not
    # make the kernel copy them (process_vm_readv would, by pinning them)
    capturing = subprocess.Popen([HEAPSNAP, "capture", str(pid), "-o", path("large.snap"),
                                  "--method", "fork", "--threads", "1"], stdout=subprocess.PIPE,
                                 text=True)
    private_kib = []
    while capturing.poll() is None:
        for child, state in children_of(pid):
            try:
                with open(f"/proc/{child}/smaps_rollup") as f:
                    # a page the kernel unshared is private to the clone (clean: never written)
                    private_kib.append(sum(int(n) for n in re.findall(r"Private_(?:Clean|Dirty):\s+(\d+)",
                                                                   f.read())))
            except (FileNotFoundError, ProcessLookupError, AttributeError):
                pass
        time.sleep(0.01)
    duration = time.time() - began
    captured_by_fork = capturing.returncode == 0 and "by fork" in capturing.stdout.read()
    capturing.stdout.close()
    return watch, record, log, duration, captured_by_fork, private_kib


@functools.cache
def held_target():
    """fork_watch with a 64 MiB heap, for heapsnap killed inside the clone call; once."""
    return start_watch("held", "--heap-mib", "64")


def kill_in_clone_call(how):
    watch, record, log = held_target()
    pid = record["pid"]
    held = subprocess.Popen([HEAPSNAP, "capture", str(pid), "-o", path("held.snap"), "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, HEAPSNAP_TEST_CLONE_HOLD_MS="1500"),
                            start_new_session=True)
    deadline = time.time() + 20
    while not children_of(pid) and time.time() < deadline:
        time.sleep(0.005)
    check(children_of(pid) != [], f"{how}: the clone exists while the call is held")
    time.sleep(0.1)
    if how == "SIGKILL":
        held.kill()
    elif how == "SIGTERM":
        held.terminate()
    else:
        os.killpg(held.pid, signal.SIGKILL)
    held.wait()
    deadline = time.time() + 10
    while (children_of(pid) or living_keepers(pid)) and time.time() < deadline:
        time.sleep(0.02)
    check(running(pid) and tracers_of(pid) == {0},
          f"{how} inside the clone call: the target is running and untraced")
    check(children_of(pid) == [] and living_keepers(pid) == [],
          f"{how} inside the clone call: no clone and no keeper left: {children_of(pid)} "
          f"{living_keepers(pid)}")
    answers = [ask(record["port"], f"echo after{i}") for i in range(20)]
    check(answers == [f"after{i}" for i in range(20)],
          f"{how} inside the clone call: the target goes on correctly: {answers[:3]}")
    check(ask(record["port"], "status") == "sigchld 0 waitpid -1 errno 10 realtime 0",
          "after the held clones the target saw no SIGCHLD and no child")
    check(logged_pids(log) == {pid}, f"after the held clones, only the target ran its code")


class CaptureFork(Case):
    # 1. fork equals freeze on quiescent targets: freeze, fork, freeze again (which also shows
    # that the thread the clone ran in got its registers back exactly)
    def test_fork_equals_freeze_known_state(self):
        process, record = start_known_state()
        compare_methods("known_state", record["pid"])
        process.kill()

    def test_fork_equals_freeze_glibc_heap(self):
        glibc_record = path("glibc.record")
        glibc = start([GLIBC_HEAP, glibc_record])
        deadline = time.time() + 30
        while not os.path.exists(glibc_record) and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        compare_methods("glibc_heap", glibc.pid)
        glibc.kill()

    def test_20_fork_captures_under_load(self):
        # 2. the target's view across 20 fork captures under TCP load
        watch, record, log = start_watch("watch")
        pid = record["pid"]
        load = Load(record["port"])
        load.start()
        signals = Signals(pid)
        signals.start()
        methods, pauses = [], []
        for i in range(20):
            snapshot, result = capture(pid, "watch", "fork" if i % 2 else None)
            methods.append("fork" if "by fork" in result.stdout else result.stdout + result.stderr)
            found = re.search(r"target paused ([\d.]+) ms", result.stdout)
            pauses.append(float(found.group(1)) if found else None)
            if not running(pid):
                check(False, f"target left stopped after fork capture {i}")
                break
        signals.stop = True
        signals.join(10)
        time.sleep(0.1)
        load.stop = True
        load.join(10)
        check(methods == ["fork"] * 20, f"every capture ran by fork: {[m for m in methods if m != 'fork'][:2]}")
        check(load.requests > 20 and not load.failures,
              f"{len(load.failures)} of {load.requests} requests failed across 20 fork captures: "
              f"{load.failures[:3]}")
        deadline = time.time() + 10
        while True:
            status = ask(record["port"], "status")
            if status.endswith(f" realtime {signals.sent}") or time.time() > deadline:
                break
            time.sleep(0.1)
        check(status == f"sigchld 0 waitpid -1 errno 10 realtime {signals.sent}",
              f"the target saw no SIGCHLD, waitpid(-1) found no child (ECHILD), and it took every one of "
              f"the {signals.sent} SIGRTMIN sent: {status!r}")
        check(logged_pids(log) == {pid}, f"only the target ran its code: pids logged {logged_pids(log)}")
        check(children_of(pid) == [], f"the target keeps no child: {children_of(pid)}")
        check(running(pid) and tracers_of(pid) == {0}, "the target is running and untraced")
        core = path("watch.core")
        decompress(snapshot, core)
        for name, fill in (("dont_fork", 0xd0), ("wipe_on_fork", 0x3f)):
            address, size = record[name]
            check(read_core_memory(core, address, size) == bytes([fill]) * size,
                  f"the {name} mapping is in the snapshot with its bytes")
        os.remove(core)
        print(f"20 fork captures: pauses {min(pauses)}-{max(pauses)} ms, {load.requests} requests")
        watch.kill()

    # 3. SIGKILL of heapsnap at random points of a fork capture (a 256 MiB heap, so that the
    # copy from the clone takes a while)
    def test_large_capture_shares_pages(self):
        # while it is copied from, the clone's pages stay shared with the target: reading them
        # must not make the kernel copy them (process_vm_readv would, by pinning them)
        watch, record, log, duration, captured_by_fork, private_kib = large()
        check(captured_by_fork, "the large capture by fork")
        check(private_kib and max(private_kib) < 32 * 1024,
              f"the clone's pages stay shared while copied: at most {max(private_kib or [0])} KiB private "
              f"in {len(private_kib)} samples")

    def test_sigkill_at_random_points(self):
        watch, record, log, duration, captured_by_fork, private_kib = large()
        pid = record["pid"]
        random.seed(17)
        for i in range(8):
            delay = random.uniform(0, duration)
            killed = subprocess.Popen([HEAPSNAP, "capture", str(pid), "-o", path(f"killed-{i}.snap"),
                                       "--method", "fork", "--threads", "1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            killed.kill()
            killed.wait()
            # the keeper, heapsnap's helper, lets the target go, kills the clone and takes its zombie
            deadline = time.time() + 10
            while True:
                left = children_of(pid)
                if (not left and not living_keepers(pid)) or time.time() > deadline:
                    break
                time.sleep(0.02)
            check(running(pid) and tracers_of(pid) == {0},
                  f"SIGKILL after {delay * 1000:.0f} ms: the target is running and untraced")
            check(not left, f"SIGKILL after {delay * 1000:.0f} ms: no clone left, living or zombie: {left}")
        check(logged_pids(log) == {pid}, f"after the kills, only the target ran its code: {logged_pids(log)}")
        result = heapsnap("capture", str(pid), "-o", path("large-after.snap"), "--method", "fork")
        check("by fork" in result.stdout, f"a fork capture after the kills works: {result.stdout!r}")
        watch.kill()  # (test_large_capture_shares_pages needs only what large() measured)

    # 3b. heapsnap killed while the clone system call runs: the unsafe moment, held open for
    # seconds by HEAPSNAP_TEST_CLONE_HOLD_MS, in which the target's thread holds the registers set
    # for the call. The keeper (a process of its own session) finishes the call and puts them back.
    def test_sigkill_in_clone_call(self):
        kill_in_clone_call("SIGKILL")

    def test_sigkill_to_process_group_in_clone_call(self):
        kill_in_clone_call("SIGKILL to its process group")

    def test_sigterm_in_clone_call(self):
        kill_in_clone_call("SIGTERM")

    # 4. fallbacks to freeze, each with one line saying why
    def test_seccomp_falls_back_to_freeze(self):
        watch, record, log = start_watch("seccomp", "--seccomp")
        snapshot, result = capture(record["pid"], "seccomp", "fork")
        check("by freeze" in result.stdout and re.search(r"using the freeze method, not fork: .*seccomp",
                                                         result.stderr)
              and len(result.stderr.splitlines()) == 1,
              f"under a seccomp filter: freeze, one line why: {result.stdout!r} {result.stderr!r}")
        check("(by freeze)" in heapsnap("info", snapshot).stdout, "info names the freeze method")
        result = heapsnap("capture", str(record["pid"]), "-o", path("seccomp-default.snap"))
        check("by freeze" in result.stdout and "seccomp" in result.stderr
              and len(result.stderr.splitlines()) == 1,
              f"by default too, freeze under seccomp with one line why: {result.stdout!r} {result.stderr!r}")
        watch.kill()

    def test_failed_clone_falls_back_to_freeze(self):
        watch, record, log = start_watch("nproc", "--nproc-limit", user="65534")
        pid = record["pid"]
        snapshot, result = capture(pid, "nproc", "fork")
        check("by freeze" in result.stdout and re.search(
            rf"using the freeze method, not fork: clone in pid {pid} failed: Resource temporarily "
            "unavailable", result.stderr),
              f"a failed clone: freeze, one line why: {result.stdout!r} {result.stderr!r}")
        check(running(pid) and tracers_of(pid) == {0} and children_of(pid) == [],
              "after a failed clone the target runs, untraced, with no child")
        check(ask(record["port"], "status") == "sigchld 0 waitpid -1 errno 10 realtime 0",
              "after a failed clone the target saw nothing")
        watch.kill()


if __name__ == "__main__":
    main()
