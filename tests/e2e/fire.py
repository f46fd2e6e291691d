"""Servers under load and captures under fire, for tests/e2e/test_under_fire.py and
bench/under_fire (which differ only in their counts).

- start_server: the multi-threaded C echo server (tests/targets/echo_server.c, a thread per
  connection) or the Python one (tests/targets/burst_server.py, a selectors loop);
- Load: client processes (tests/targets/load_client.py) making checked requests without pause;
- capture_under_load: captures one after another, each checked (exit 0, the server running and
  untraced after it, the snapshot whole), with the pauses they report;
- Signals: real-time signals sent to the C server without pause, which it counts: a signal the
  target took while heapsnap stopped it must reach it all the same, even when heapsnap is killed;
- kill_trial: `heapsnap capture` sent SIGKILL, SIGTERM or SIGINT at a given delay (or once it
  has the target frozen, or the snapshot named), and what it left: its exit, the target's
  state, the files in its directory, judged by `problems`.

What a signal to heapsnap may leave depends on where the capture is (capture/capture.c,
formats/snapshot_file.c, cli/heapsnap.c). A trial can look first: it stops heapsnap (SIGSTOP),
reads its phase from outside, sends the signal, and lets it go on (SIGCONT), so the phase cannot
change between the look and the signal:

  phase      where heapsnap is                          SIGKILL            SIGTERM, SIGINT
  running    before the freeze, or after the thaw with  killed, no file    ended by it, no file
             no file open yet
  frozen     a thread of the target traced by it        killed, no file;   ended by it once the
             (the signals are blocked then)             the kernel lets    target runs again,
                                                        the target go      no file
  writing    an unnamed file (O_TMPFILE) open in the    killed, no file    ended by it, no file
             directory, no name given yet
  linked     the snapshot under its name                killed, the whole  ended by it, the whole
                                                        snapshot           snapshot
  finished   exited                                     exit 0, the whole snapshot, named as it
                                                        printed
Without a look, the outcome must be one of those. Whatever the phase, the target is running and
untraced afterwards, and nothing else is in the directory (no temporary file)."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from common import (HEAPSNAP, heapsnap, path, process_state, running, start, threads_of,
                    thread_state, tracers_of)

ECHO_SERVER = os.environ.get("ECHO_SERVER", "build/tests/echo_server")
TARGETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets")
BURST_SERVER = os.path.join(TARGETS, "burst_server.py")
LOAD_CLIENT = os.path.join(TARGETS, "load_client.py")
SNAPSHOT_NAME = re.compile(r"heapsnap-\d+-\d{8}T\d{6}(-\d+)?\.snap")


def wait_for(predicate, timeout, step=0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def start_server(kind, name, ballast_mib=0):
    """Starts the "c" or "python" echo server; returns (process, port)."""
    port_file = path(f"{name}.port")
    if kind == "c":
        args = [ECHO_SERVER, port_file, str(ballast_mib)]
    else:
        args = [sys.executable, BURST_SERVER, port_file, path(f"{name}.status")]
    process = start(args)
    if not wait_for(lambda: os.path.exists(port_file) or process.poll() is not None, 60):
        raise RuntimeError(f"the {kind} server did not start")
    with open(port_file) as f:
        return process, int(f.read())


class Load:
    """`processes` client processes of `threads` threads each, making requests until stop()."""

    def __init__(self, port, name, processes=2, threads=3, timeout=60):
        self.results = [path(f"{name}-load-{i}.json") for i in range(processes)]
        self.clients = [start([sys.executable, LOAD_CLIENT, str(port), str(threads), result,
                               str(timeout)], stdout=subprocess.PIPE, text=True)
                        for result in self.results]
        for client in self.clients:
            if client.stdout.readline().strip() != "ready":
                raise RuntimeError("a load client did not start")

    def stop(self):
        """Ends the load; the totals: requests, connections, failed, failures, slowest."""
        for client in self.clients:
            client.send_signal(signal.SIGTERM)
        totals = {"requests": 0, "connections": 0, "failed": 0, "failures": [], "slowest": 0.0,
                  "clients_failed": 0}
        for client, result in zip(self.clients, self.results):
            client.wait(timeout=300)
            if client.returncode != 0 or not os.path.exists(result):
                totals["clients_failed"] += 1
                continue
            with open(result) as f:
                one = json.load(f)
            for key in ("requests", "connections", "failed"):
                totals[key] += one[key]
            totals["failures"] += one["failures"]
            totals["slowest"] = max(totals["slowest"], one["slowest"])
        return totals


class Signals:
    """SIGRTMIN sent to the C echo server every `interval` seconds until stop(); real-time
    signals are queued, never merged, so the server must count every one sent."""

    def __init__(self, server, name, interval=0.001):
        self.server, self.name, self.interval = server, name, interval
        self.sent = 0
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.send, daemon=True)
        self.thread.start()

    def send(self):
        while not self.halt.wait(self.interval):
            try:
                os.kill(self.server.pid, signal.SIGRTMIN)
                self.sent += 1
            except OSError:  # EAGAIN: the queue is full for a moment (the target is frozen)
                pass

    def stop(self):
        """Stops sending; returns (sent, received): received is the server's count once it has
        taken every signal sent, or its last count after 30 s."""
        self.halt.set()
        self.thread.join()
        report = path(f"{self.name}.port.signals")
        deadline = time.monotonic() + 30
        received = None
        while time.monotonic() < deadline:
            if os.path.exists(report):
                os.unlink(report)
            self.server.send_signal(signal.SIGUSR1)
            if wait_for(lambda: os.path.exists(report), 5):
                with open(report) as f:
                    received = int(f.read())
                if received == self.sent:
                    break
            time.sleep(0.1)
        return self.sent, received


def target_problems(pid):
    """What is wrong with the target after a capture: gone, a thread stopped, a thread traced."""
    if not threads_of(pid):
        return ["the target is gone"]
    problems = []
    if not running(pid):
        problems.append("a thread of the target is stopped: " + " ".join(
            f"{tid}:{thread_state(pid, tid)}" for tid in threads_of(pid)))
    if tracers_of(pid) - {0}:
        problems.append(f"the target is traced by {sorted(tracers_of(pid) - {0})}")
    return problems


PAUSE = re.compile(r"target paused ([0-9.]+) ms")


def capture_under_load(pid, count, name):
    """`count` captures of `pid`; returns (pauses in ms, problems as (capture, text))."""
    pauses, problems = [], []
    for i in range(count):
        snapshot = path(f"{name}-{i}.snap")
        result = heapsnap("capture", str(pid), "-o", snapshot, check_ok=False)
        problems += [(i, p) for p in target_problems(pid)]
        if result.returncode != 0:
            problems.append((i, f"capture exited {result.returncode}: {result.stderr.strip()}"))
        else:
            found = PAUSE.search(result.stdout)
            if found:
                pauses.append(float(found.group(1)))
            verify = heapsnap("info", snapshot, "--verify", check_ok=False)
            if verify.returncode != 0:
                problems.append((i, f"snapshot not whole: {verify.stderr.strip()}"))
        if os.path.exists(snapshot):
            os.unlink(snapshot)
    return pauses, problems


def capture_seconds(pid, directory, runs=3):
    """The wall time of a whole `heapsnap capture` of `pid` into `directory` (the median of
    `runs`), from its start to its exit."""
    times = []
    for _ in range(runs):
        began = time.monotonic()
        subprocess.run([os.path.abspath(HEAPSNAP), "capture", str(pid)], cwd=directory,
                       capture_output=True, check=True, timeout=300)
        times.append(time.monotonic() - began)
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
    return sorted(times)[len(times) // 2]


def stopped_or_gone(pid):
    """Every thread of heapsnap stopped by SIGSTOP, or heapsnap exited (a zombie)."""
    states = [thread_state(pid, tid) for tid in threads_of(pid)]
    return not states or "Z" in states[:1] or all(s in ("T", "Z", None) for s in states)


def phase_of(capture_pid, target_pid, directory):
    """Where a stopped `heapsnap capture` is (see the table above)."""
    states = [thread_state(capture_pid, tid) for tid in threads_of(capture_pid)]
    if not states or states[0] == "Z":
        return "finished"
    if capture_pid in tracers_of(target_pid):
        return "frozen"
    if any(SNAPSHOT_NAME.fullmatch(n) for n in os.listdir(directory)):
        return "linked"
    fds = f"/proc/{capture_pid}/fd"
    for fd in os.listdir(fds):
        try:
            target = os.readlink(os.path.join(fds, fd))
        except OSError:
            continue
        if target.startswith(directory + "/#") and target.endswith(" (deleted)"):
            return "writing"
    return "running"


def kill_trial(target_pid, directory, signal_number, delay, look, aim=None):
    """One `heapsnap capture` of `target_pid` to its default name in `directory` (empty), sent
    `signal_number` `delay` seconds after it started (with `aim`, as soon as it is seen in that
    phase, "frozen" or "linked", or has exited), after a look at its phase when `look`. Returns
    what happened; `directory` is emptied again."""
    capture = subprocess.Popen([os.path.abspath(HEAPSNAP), "capture", str(target_pid)],
                               cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    if aim:
        began = time.monotonic()
        seen = {"frozen": lambda: capture.pid in tracers_of(target_pid),
                "linked": lambda: any(SNAPSHOT_NAME.fullmatch(n) for n in os.listdir(directory))}
        wait_for(lambda: seen[aim]() or process_state(capture.pid) in (None, "Z"), 300, step=0)
        delay = time.monotonic() - began
    else:
        time.sleep(delay)
    phase = None
    if look:
        os.kill(capture.pid, signal.SIGSTOP)
        if not wait_for(lambda: stopped_or_gone(capture.pid), 60):
            raise RuntimeError("heapsnap did not stop on SIGSTOP")
        phase = phase_of(capture.pid, target_pid, directory)
    os.kill(capture.pid, signal_number)
    if look:
        os.kill(capture.pid, signal.SIGCONT)
    output, errors = capture.communicate(timeout=300)
    target = target_problems(target_pid)
    files = sorted(os.listdir(directory))
    whole = [n for n in files if SNAPSHOT_NAME.fullmatch(n) and heapsnap(
        "info", os.path.join(directory, n), "--verify", check_ok=False).returncode == 0]
    for name in files:
        os.unlink(os.path.join(directory, name))
    return {"signal": signal_number, "delay": delay, "phase": phase,
            "status": capture.returncode, "printed": output.split(":")[0], "errors": errors,
            "files": files, "whole": whole, "target": target}


def problems(trial):
    """What is wrong with a trial's outcome (see the table above); [] when it is allowed."""
    found = list(trial["target"])
    status, files, whole, phase = trial["status"], trial["files"], trial["whole"], trial["phase"]
    killed = status == -trial["signal"]
    if status == 0:
        outcome = "finished"
        if files != whole or len(whole) != 1 or trial["printed"] != whole[0]:
            found.append(f"exit 0 without one whole snapshot named as printed: {files}, "
                         f"printed {trial['printed']!r}")
    elif not killed:
        outcome = "failed"
        found.append(f"exit status {status}: {trial['errors'].strip()}")
    else:
        outcome = "linked" if files else "none"
        if files != whole or len(files) > 1:
            found.append(f"left in the directory: {files} (whole: {whole})")
    expected = {None: {"none", "linked", "finished"}, "running": {"none"}, "frozen": {"none"},
                "writing": {"none"}, "linked": {"linked"}, "finished": {"finished"}}[phase]
    if outcome not in expected:
        found.append(f"{outcome} for a signal in phase {phase}: expected {sorted(expected)}")
    trial["outcome"] = outcome
    return found
