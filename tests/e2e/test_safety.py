"""Capture never harms the target: 200 captures (by fork, the default) of a process doing checked
work leave its work correct and it never stopped; by freeze, SIGKILL to heapsnap while the target
is frozen lets the target run on (the kernel detaches it); SIGTERM while frozen and SIGINT while writing end heapsnap with the
target running and no file, final or temporary, left behind; SIGKILL at ten random points of a
capture leaves nothing in the directory (the snapshot is written unnamed, O_TMPFILE) but, past
its end, the whole snapshot; a temporary file a dead writer left (named, where there is no
O_TMPFILE) is removed by the next capture in that directory; a capture whose default name exists
already (two captures in one second) takes the next free name and replaces nothing."""
import datetime
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import (HEAPSNAP, WORKDIR, Case, check, give_up, heapsnap, living_keepers, main, path, running,
                    start, start_known_state, tracer_of)


# 1. 200 captures of a busy multi-threaded target
def check_busy_target():
    process, record = start_known_state(work=True)
    ready = process.args[1]  # (known_state's ready file: the result is written beside it)
    pid = record["pid"]
    stopped_after = []
    for i in range(200):
        result = heapsnap("capture", str(pid), "-o", path("busy.snap"), "--threads", "1")
        if result.returncode != 0:
            break
        if not running(pid) or tracer_of(pid) != 0:
            stopped_after.append(i)
    check(not stopped_after, f"target left stopped or traced after captures {stopped_after[:5]}")
    os.kill(pid, signal.SIGUSR1)
    process.wait(timeout=60)
    with open(f"{ready}.result") as f:
        verdict, steps = f.read().split()
    check(verdict == "ok", "the target's work checksum is correct after 200 captures")
    check(process.returncode == 0, f"target exit status {process.returncode}")
    check(int(steps) > 1000, f"the target made progress: {steps} steps")


# 2. a target whose threads are born and die all the time: every capture must catch a consistent
# set (each thread either frozen or gone), succeed, and let every thread go
def check_thread_churn():
    churn = start([sys.executable, "-c", """
import threading, time
def spawner():
    while True:
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
for _ in range(4):
    threading.Thread(target=spawner, daemon=True).start()
print('ok', flush=True)
time.sleep(600)
"""], stdout=subprocess.PIPE, text=True)
    check(churn.stdout.readline().strip() == "ok", "thread-churning target ready")
    failed_captures = []
    for i in range(30):
        result = heapsnap("capture", str(churn.pid), "-o", path("churn.snap"), check_ok=False)
        if result.returncode != 0:
            failed_captures.append(result.stderr)
            continue
        info = json.loads(heapsnap("info", path("churn.snap"), "--format", "json").stdout)
        if len(info["threads"]) < 5 or not running(churn.pid) or tracer_of(churn.pid) != 0:
            failed_captures.append(f"{len(info['threads'])} threads")
    check(not failed_captures, f"captures of a thread-churning target: {failed_captures[:3]}")
    churn.kill()


# a big target that reports progress, so a long freeze window and its end can be observed
progress = path("progress")
_big = []


def big_target():
    """The big target, started once for every case that needs it."""
    if not _big:
        big = start([sys.executable, "-c", f"""
import time
x = bytearray(1200 << 20)
for i in range(0, len(x), 4096): x[i] = 1
print('ok', flush=True)
n = 0
while True:
    n += 1
    with open({progress!r}, 'w') as f: f.write(str(n))
    time.sleep(0.005)
"""], stdout=subprocess.PIPE, text=True)
        if big.stdout.readline().strip() != "ok":
            give_up("big target ready")
        _big.append(big)
    return _big[0]


def progress_count():
    try:
        return int(Path(progress).read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def wait_until(predicate, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.0005)
    return False


def files_named(stem):
    return [n for n in os.listdir(WORKDIR) if n.startswith(stem)]

# 3. SIGKILL while frozen
def check_sigkill_while_frozen():
    big = big_target()
    capture = subprocess.Popen([HEAPSNAP, "capture", str(big.pid), "-o", path("killed.snap"),
                                "--method", "freeze"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    check(wait_until(lambda: tracer_of(big.pid) == capture.pid), "heapsnap attached")
    capture.kill()
    capture.wait()
    check(wait_until(lambda: tracer_of(big.pid) == 0, 5), "the kernel detached the target")
    before = progress_count()
    check(wait_until(lambda: progress_count() > before + 3, 5) and running(big.pid),
          "the target runs on after heapsnap was SIGKILLed mid-capture")
    check(not files_named("killed.snap"), f"files left: {files_named('killed.snap')}")


# 4. SIGTERM while frozen: deferred until the target runs again, then heapsnap ends
def check_sigterm_while_frozen():
    big = big_target()
    capture = subprocess.Popen([HEAPSNAP, "capture", str(big.pid), "-o", path("term.snap"),
                                "--method", "freeze"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    check(wait_until(lambda: tracer_of(big.pid) == capture.pid), "heapsnap attached")
    capture.send_signal(signal.SIGTERM)
    capture.wait(timeout=60)
    check(capture.returncode == -signal.SIGTERM, f"heapsnap ended by SIGTERM: {capture.returncode}")
    check(tracer_of(big.pid) == 0 and running(big.pid), "target running after SIGTERM to heapsnap")
    before = progress_count()
    check(wait_until(lambda: progress_count() > before + 3, 5), "target makes progress after SIGTERM")
    check(not files_named("term.snap"), f"files left: {files_named('term.snap')}")


# 5. SIGINT while the snapshot is being written: the temporary file is removed
def check_sigint_while_writing():
    big = big_target()
    capture = subprocess.Popen([HEAPSNAP, "capture", str(big.pid), "-o", path("int.snap"), "--level", "9",
                                "--method", "freeze",
                                "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # (the file being written may have no name: writing begins once the target is let go)
    check(wait_until(lambda: tracer_of(big.pid) == capture.pid), "heapsnap attached")
    check(wait_until(lambda: tracer_of(big.pid) == 0), "writing began")
    time.sleep(0.2)
    capture.send_signal(signal.SIGINT)
    capture.wait(timeout=60)
    check(capture.returncode == -signal.SIGINT, f"heapsnap ended by SIGINT: {capture.returncode}")
    check(not files_named("int.snap"), f"files left after SIGINT: {files_named('int.snap')}")
    check(running(big.pid) and tracer_of(big.pid) == 0, "target running after SIGINT to heapsnap")


# a target of 64 MiB of random bytes: its snapshot takes a while to compress and write
_noisy = []


def noisy_target():
    """The random-filled target, started once for every case that needs it."""
    if not _noisy:
        noisy = start([sys.executable, "-c", """
import os, time
x = os.urandom(64 << 20)
print('ok', flush=True)
time.sleep(600)
"""], stdout=subprocess.PIPE, text=True)
        if noisy.stdout.readline().strip() != "ok":
            give_up("random-filled target ready")
        _noisy.append(noisy)
    return _noisy[0]


def capture_in(directory, *options):
    """`heapsnap capture` of the random-filled target to its default name in `directory`."""
    return subprocess.Popen([os.path.abspath(HEAPSNAP), "capture", str(noisy_target().pid), *options],
                            cwd=directory,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# 6. SIGKILL at ten points of a capture, from its start to its end: nothing is left in the
# directory, neither a snapshot nor a temporary file, and the target runs on
def check_sigkill_during_capture():
    noisy = noisy_target()
    killed_in = path("sigkill")
    os.mkdir(killed_in)
    started = time.time()
    capture_in(killed_in).communicate(timeout=300)
    whole = time.time() - started
    for name in os.listdir(killed_in):
        os.unlink(os.path.join(killed_in, name))
    left_behind = []
    for delay in sorted(random.uniform(0, whole) for _ in range(10)):
        capture = capture_in(killed_in)
        time.sleep(delay)
        capture.kill()
        capture.wait()
        # the keeper of a capture by fork finishes its step, lets the target go and exits
        wait_until(lambda: not living_keepers(noisy.pid) and tracer_of(noisy.pid) == 0, 10)
        names = os.listdir(killed_in)
        # a kill after the snapshot was linked in leaves the snapshot, whole: that is not a leftover
        whole_snapshots = [n for n in names if n.endswith(".snap") and heapsnap(
            "info", os.path.join(killed_in, n), "--verify", check_ok=False).returncode == 0]
        if len(names) > len(whole_snapshots):
            left_behind.append((round(delay, 3), names))
        for name in names:
            os.unlink(os.path.join(killed_in, name))
        check(running(noisy.pid) and tracer_of(noisy.pid) == 0,
              f"target running after SIGKILL to heapsnap {delay:.3f} s into a capture")
    check(not left_behind, f"SIGKILL during capture (one takes {whole:.2f} s) left files: "
                           f"{left_behind[:3]}")


# 7. a temporary file a writer killed outright left on a filesystem without O_TMPFILE (named
# FINAL.tmp.heapsnap-PID) is removed by the next capture in that directory; one of a live
# process, another user's, or another program's is not
def check_stale_temporary_files():
    noisy = noisy_target()
    stale_in = path("stale")
    os.mkdir(stale_in)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = {"dead": f"heapsnap-1-20260101T000000.snap.tmp.heapsnap-{dead.pid}",
             "live": f"heapsnap-1-20260101T000000.snap.tmp.heapsnap-{noisy.pid}",
             "other user's": f"other.snap.tmp.heapsnap-{dead.pid}",
             "other program's": f"notes.tmp.{dead.pid}"}
    for name in stale.values():
        with open(os.path.join(stale_in, name), "w") as f:
            f.write("partial")
    os.chown(os.path.join(stale_in, stale["other user's"]), 65534, 65534)
    output, errors = capture_in(stale_in, "--no-precopy").communicate(timeout=300)
    remaining = set(os.listdir(stale_in))
    check(stale["dead"] not in remaining, "a dead writer's temporary file is removed")
    check({stale[k] for k in ("live", "other user's", "other program's")} <= remaining,
          f"only a dead writer's own temporary file is removed: {sorted(remaining)}")


# 8. a snapshot never replaces another under a default name: with a file already under the name
# of every second a capture could pick, the capture takes the next free name (-2) and every file
# that was there is untouched (the race of two captures in one second comes to this: the second
# one's name exists when it links its file in)
def check_default_name_taken():
    noisy = noisy_target()
    same_second = path("same-second")
    os.mkdir(same_second)
    now = time.time()
    placeholders = {}
    for offset in range(-2, 120):
        stamp = datetime.datetime.fromtimestamp(now + offset, datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        name = f"heapsnap-{noisy.pid}-{stamp}.snap"
        placeholders[name] = f"an earlier snapshot {offset}"
        with open(os.path.join(same_second, name), "w") as f:
            f.write(placeholders[name])
    output, errors = capture_in(same_second, "--no-precopy").communicate(timeout=300)
    reported = output.split(":")[0]
    check(re.fullmatch(rf"heapsnap-{noisy.pid}-\d{{8}}T\d{{6}}-2\.snap", reported or ""),
          f"the capture took the next free name: {output!r} {errors!r}")
    check(all(Path(os.path.join(same_second, n)).read_text() == text for n, text in placeholders.items()),
          "no file under a default name was replaced")
    check(reported in os.listdir(same_second) and
          heapsnap("info", os.path.join(same_second, reported), "--verify", check_ok=False).returncode == 0,
          "the new snapshot is whole under the name reported")


class Safety(Case):
    """The cases, numbered as the scenarios above, run in that order (unittest sorts by name)."""

    def test_1_200_captures_of_a_busy_target(self):
        check_busy_target()

    def test_2_thread_churning_target(self):
        check_thread_churn()

    def test_3_sigkill_while_frozen(self):
        check_sigkill_while_frozen()

    def test_4_sigterm_while_frozen(self):
        check_sigterm_while_frozen()

    def test_5_sigint_while_writing(self):
        check_sigint_while_writing()

    def test_6_sigkill_at_ten_points_of_a_capture(self):
        check_sigkill_during_capture()

    def test_7_stale_temporary_file_removed(self):
        check_stale_temporary_files()

    def test_8_default_name_taken_replaces_nothing(self):
        check_default_name_taken()


if __name__ == "__main__":
    main()
