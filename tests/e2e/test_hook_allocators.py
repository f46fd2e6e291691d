"""The hook passes the program's calls to the allocator the program really uses (issue 15):
preloaded before jemalloc, tcmalloc or mimalloc, every malloc still reaches that allocator, as the
allocator itself says (jemalloc's thread.allocated counter, tcmalloc's ownership of the block,
mimalloc's heap region), and freeing, reallocating and aligned allocation keep working; a
snapshot on the hook's signal is written, and its analysis walks the heap of each, naming the
allocator and its version. Under a program that defines malloc itself (tests/targets/own_malloc.c),
the hook cannot stand in for it in the fork: it says so at start and on each signal, the program
goes on (the signal does not kill it), and no snapshot is written."""
import glob
import os
import signal
import subprocess
import time
from pathlib import Path

from common import Case, check, heapsnap, main, path, start

LIBHEAPSNAP = os.environ.get("LIBHEAPSNAP", "build/libheapsnap.so")
OWN_MALLOC = os.environ.get("OWN_MALLOC", "build/tests/own_malloc")
LIBDIR = "/usr/lib/x86_64-linux-gnu"

# a Python program that asks the allocator whether blocks from malloc are its own, then waits
PROBE = r'''
import ctypes, sys
process = ctypes.CDLL(None)
process.malloc.restype = ctypes.c_void_p
process.realloc.restype = ctypes.c_void_p
process.realloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
process.free.argtypes = [ctypes.c_void_p]
kind = sys.argv[1]
def owned(block):
    if kind == "jemalloc":
        return True  # counted below
    if kind == "tcmalloc":
        process.MallocExtension_GetOwnership.argtypes = [ctypes.c_void_p]
        return process.MallocExtension_GetOwnership(block) == 1
    process.mi_is_in_heap_region.argtypes = [ctypes.c_void_p]
    process.mi_is_in_heap_region.restype = ctypes.c_bool
    return process.mi_is_in_heap_region(block)
def allocated():
    value, size = ctypes.c_uint64(), ctypes.c_size_t(8)
    process.mallctl(b"thread.allocated", ctypes.byref(value), ctypes.byref(size), None, 0)
    return value.value
before = allocated() if kind == "jemalloc" else 0
blocks = [process.malloc(1 << 20) for _ in range(4)]
grown = allocated() - before if kind == "jemalloc" else 4 << 20
ok = all(owned(b) for b in blocks) and grown >= 4 << 20
blocks = [process.realloc(b, 2 << 20) for b in blocks]
ok = ok and all(owned(b) for b in blocks)
aligned = ctypes.c_void_p()
ok = ok and process.posix_memalign(ctypes.byref(aligned), 4096, 100) == 0 and \
    aligned.value % 4096 == 0 and owned(aligned.value)
for b in blocks + [aligned.value]:
    process.free(b)
print("owned" if ok else "NOT OWNED", grown, flush=True)
sys.stdin.readline()
'''


def check_preloaded(library, kind):
    directory = path(f"snaps-{kind}")
    os.makedirs(directory, exist_ok=True)
    env = dict(os.environ, LD_PRELOAD=f"{os.path.abspath(LIBHEAPSNAP)}:{LIBDIR}/{library}",
               HEAPSNAP_SIGNAL="USR2", HEAPSNAP_DIR=directory)
    process = start(["/usr/bin/python3.11", "-c", PROBE, kind], env=env, stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline().split()
    check(line[:1] == ["owned"], f"{kind}: malloc, realloc and posix_memalign through the hook "
                                 f"reach {kind}: {line}")
    os.kill(process.pid, signal.SIGUSR2)
    deadline = time.time() + 60
    while not glob.glob(os.path.join(directory, "*.snap")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    snapshots = glob.glob(os.path.join(directory, "*.snap"))
    check(len(snapshots) == 1 and process.poll() is None,
          f"{kind}: the hook wrote a snapshot and the program goes on: {snapshots}")
    if snapshots:
        info = heapsnap("info", snapshots[0])
        check(info.returncode == 0, f"{kind}: the snapshot is whole: {info.stderr}")
        walked = {"jemalloc": "jemalloc 5.3.0", "tcmalloc": "tcmalloc 2.10",
                  "mimalloc": "mimalloc 2.0.9"}
        summary = heapsnap("summary", snapshots[0], check_ok=False)
        check(summary.returncode == 0 and walked[kind] in summary.stdout,
              f"{kind}: the analysis walks the heap, naming {walked[kind]}: "
              f"{summary.returncode} {summary.stdout[:200]!r} {summary.stderr[:300]!r}")
    process.stdin.close()
    process.wait(timeout=30)


def check_own_malloc():
    # a program with its own malloc: refused, said, the program not killed
    directory = path("snaps-own")
    os.makedirs(directory, exist_ok=True)
    ready = path("own.ready")
    env = dict(os.environ, LD_PRELOAD=os.path.abspath(LIBHEAPSNAP), HEAPSNAP_SIGNAL="USR2",
               HEAPSNAP_DIR=directory)
    errors = open(path("own.stderr"), "w")
    process = start([OWN_MALLOC, ready], env=env, stderr=errors)
    deadline = time.time() + 30
    while not os.path.exists(ready) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGUSR2)
    time.sleep(1)
    alive = process.poll() is None
    process.kill()
    process.wait()
    errors.close()
    said = Path(path("own.stderr")).read_text()
    check(alive, "own malloc: the hook's signal does not kill the program")
    check(said.count("the program defines malloc itself") == 2 and "heapsnap capture PID" in said,
          f"own malloc: the refusal is said at start and on the signal: {said!r}")
    check(not os.listdir(directory), f"own malloc: no snapshot written: {os.listdir(directory)}")


class HookAllocators(Case):
    def test_jemalloc(self):
        check_preloaded("libjemalloc.so.2", "jemalloc")

    def test_tcmalloc(self):
        check_preloaded("libtcmalloc_minimal.so.4", "tcmalloc")

    def test_mimalloc(self):
        check_preloaded("libmimalloc.so.2", "mimalloc")

    def test_own_malloc_refused(self):
        check_own_malloc()


if __name__ == "__main__":
    main()
