"""Capture never harms the target: 200 captures of a process doing checked work leave its work
correct and it never stopped; SIGKILL to heapsnap while the target is frozen lets the target run
on (the kernel detaches it); SIGTERM while frozen and SIGINT while writing end heapsnap with the
target running and no file, final or temporary, left behind."""
import os
import signal
import subprocess
import sys
import time

from common import (HEAPSNAP, WORKDIR, check, finish, heapsnap, path, process_state, start,
                    start_known_state)


def running(pid):
    """Not stopped: sampled a few times, since a thread may be between two states."""
    for _ in range(5):
        state = process_state(pid)
        if state in ("t", "T", None):
            return False
        time.sleep(0.002)
    return True


def tracer_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])


# 1. 200 captures of a busy multi-threaded target
process, record = start_known_state(work=True)
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
with open(f"{path('ready-0')}.result") as f:
    verdict, steps = f.read().split()
check(verdict == "ok", "the target's work checksum is correct after 200 captures")
check(process.returncode == 0, f"target exit status {process.returncode}")
check(int(steps) > 1000, f"the target made progress: {steps} steps")

# 2. a target whose threads are born and die all the time: every capture must catch a consistent
# set (each thread either frozen or gone), succeed, and let every thread go
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
import json
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
check(big.stdout.readline().strip() == "ok", "big target ready")


def progress_count():
    try:
        return int(open(progress).read() or 0)
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
capture = subprocess.Popen([HEAPSNAP, "capture", str(big.pid), "-o", path("killed.snap")],
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
capture = subprocess.Popen([HEAPSNAP, "capture", str(big.pid), "-o", path("term.snap")],
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
capture = subprocess.Popen([HEAPSNAP, "capture", str(big.pid), "-o", path("int.snap"), "--level", "9",
                            "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
check(wait_until(lambda: any(".tmp." in n for n in files_named("int.snap"))), "writing began")
capture.send_signal(signal.SIGINT)
capture.wait(timeout=60)
check(capture.returncode == -signal.SIGINT, f"heapsnap ended by SIGINT: {capture.returncode}")
check(not files_named("int.snap"), f"files left after SIGINT: {files_named('int.snap')}")
check(running(big.pid) and tracer_of(big.pid) == 0, "target running after SIGINT to heapsnap")
finish()
