"""Targets preloaded with the in-process hook (libheapsnap.so), for tests/e2e/test_hook.py and
bench/under_fire: their environment, the snapshots they write, the forks that write them, and a
burst of signals (signal_burst)."""
import glob
import os
import re
import signal
import subprocess
import time

from common import heapsnap, path, process_state, start

LIBRARY = os.path.abspath(os.environ.get("LIBHEAPSNAP", "build/libheapsnap.so"))
GLIBC_HEAP = os.environ.get("GLIBC_HEAP", "build/tests/glibc_heap")


def hooked(directory, signal_name="USR2", sites=False):
    os.makedirs(directory, exist_ok=True)
    env = dict(os.environ)
    env.update(LD_PRELOAD=LIBRARY, HEAPSNAP_SIGNAL=signal_name, HEAPSNAP_DIR=directory)
    if sites:
        env["HEAPSNAP_SITES"] = "1"
    return env


def snapshots_in(directory):
    return sorted(glob.glob(os.path.join(directory, "heapsnap-*.snap")))


def wait_for_snapshot(directory, known, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        new = [s for s in snapshots_in(directory) if s not in known]
        if new:
            return new[0]
        time.sleep(0.02)
    return None


def read_sites_record(name):
    """tests/targets/sites.c's record: {function: line of its malloc}, {function: line in main
    that calls it}."""
    lines, callers = {}, {}
    with open(name) as f:
        for line in f:
            words = line.split()
            if words[0] == "site":
                lines[words[1]] = int(words[2])
            elif words[0] == "caller":
                callers[words[1]] = int(words[2])
    return lines, callers


def wait_for_file(name, process, timeout=30):
    deadline = time.time() + timeout
    while not os.path.exists(name):
        if process.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.02)
    return True


def forks_writing(executable, besides=()):
    """The processes running `executable` (the hook's forks run their process's), zombies and
    `besides` left out."""
    executable = os.path.realpath(executable)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in besides:
            continue
        try:
            if os.readlink(f"/proc/{entry}/exe") == executable and process_state(entry) != "Z":
                found.append(int(entry))
        except OSError:
            pass
    return found


def wait_for_forks(executable, besides=(), timeout=120):
    deadline = time.time() + timeout
    while forks_writing(executable, besides) and time.time() < deadline:
        time.sleep(0.05)
    return not forks_writing(executable, besides)


def signal_burst(directory, name, count, interval=0.02):
    """`count` signals `interval` seconds apart to the glibc target preloaded with the hook (every
    tenth followed at once by another, so that some come while a snapshot is being made), then
    one more once the forks have ended (what came during the last snapshot is said when the next
    one is written). A real-time signal, so that the kernel merges none of them: every one sent
    is either served or counted as not served on standard error. Returns the figures: sent,
    written (snapshots), not_served (as the hook said), unfinished (a snapshot started and not
    written, as the hook said), numbered (a snapshot named -2, -3... in a second taken), broken
    (snapshots that fail `heapsnap info --verify`), others (any other file left), ran,
    forks_ended, last_written, said (the hook's standard error)."""
    record_file = path(f"{name}-record")
    burst_signal = signal.SIGRTMIN + 6
    target = start([GLIBC_HEAP, record_file], env=hooked(directory, str(int(burst_signal))),
                   stderr=subprocess.PIPE, text=True)
    figures = {"sent": 0, "ran": wait_for_file(record_file, target), "forks_ended": False,
               "last_written": False}
    if figures["ran"]:
        time.sleep(0.1)  # "done" is written last; its threads are now all in pause()
        for number in range(count):
            os.kill(target.pid, burst_signal)
            figures["sent"] += 1
            if number % 10 == 9:
                # and one right behind it, which comes while that snapshot is being made
                # however fast this machine makes one
                os.kill(target.pid, burst_signal)
                figures["sent"] += 1
            time.sleep(interval)
        figures["forks_ended"] = wait_for_forks(GLIBC_HEAP, besides=[target.pid])
        before_last = snapshots_in(directory)
        os.kill(target.pid, burst_signal)
        figures["sent"] += 1
        figures["last_written"] = bool(wait_for_snapshot(directory, before_last))
        figures["forks_ended"] &= wait_for_forks(GLIBC_HEAP, besides=[target.pid])
    target.kill()
    _, said = target.communicate(timeout=60)
    written = snapshots_in(directory)
    figures.update(
        said=said, written=len(written),
        not_served=sum(int(n) for n in
                       re.findall(r"heapsnap hook: (\d+) signals? not served", said)),
        unfinished="no snapshot written" in said,
        numbered=any(re.search(r"T\d{6}-\d+\.snap$", w) for w in written),
        broken=[s for s in written
                if heapsnap("info", s, "--verify", check_ok=False).returncode != 0],
        others=sorted(set(os.listdir(directory)) - {os.path.basename(w) for w in written}))
    return figures
