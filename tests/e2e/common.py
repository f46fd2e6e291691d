"""Shared helpers for the end-to-end tests: starting target processes, running heapsnap and gdb,
and reporting checks. Each test script exits non-zero when any check failed."""
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HEAPSNAP = os.environ.get("HEAPSNAP", "build/heapsnap")
KNOWN_STATE = os.environ.get("KNOWN_STATE", "build/tests/known_state")

failures = 0
_processes = []
WORKDIR = tempfile.mkdtemp(prefix="heapsnap-e2e-")


def _cleanup():
    for process in _processes:
        if process.poll() is None:
            try:
                # a test may have left it stopped on purpose; SIGKILL works on stopped processes
                process.kill()
                process.wait(timeout=10)
            except Exception:
                pass
    shutil.rmtree(WORKDIR, ignore_errors=True)


atexit.register(_cleanup)


def check(condition, message):
    global failures
    if not condition:
        failures += 1
        print("FAIL:", message, file=sys.stderr)
    return condition


def finish():
    if failures:
        print(f"{failures} checks failed", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


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
    record = {"blocks": []}
    with open(ready) as f:
        for line in f:
            words = line.split()
            if words[0] == "pid":
                record["pid"] = int(words[1])
            elif words[0] == "unreadable":
                record["unreadable"] = (int(words[1], 16), int(words[2]))
            elif words[0] == "block":
                record["blocks"].append((int(words[1], 16), int(words[2])))
    return process, record


def start(args, **kwargs):
    process = subprocess.Popen(args, **kwargs)
    _processes.append(process)
    return process


def heapsnap(*args, check_ok=True, timeout=300, env=None):
    result = subprocess.run([HEAPSNAP, *args], capture_output=True, text=True, timeout=timeout,
                            env=env)
    if check_ok and result.returncode != 0:
        check(False, f"heapsnap {' '.join(args)} exited {result.returncode}: {result.stderr}")
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


def build_id(file):
    """The GNU build-id of an ELF file as readelf reports it, or None."""
    out = subprocess.run(["readelf", "-n", file], capture_output=True, text=True).stdout
    found = re.search(r"Build ID: ([0-9a-f]+)", out)
    return found.group(1) if found else None


def decompress(snapshot, core):
    subprocess.run(["zstd", "-q", "-d", "-f", snapshot, "-o", core], check=True)
