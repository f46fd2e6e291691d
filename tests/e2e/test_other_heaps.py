"""Heaps the simple case does not show: a forked worker's brk heap (several adjacent mappings
after fork), glibc linked statically, allocators heapsnap does not walk (jemalloc, tcmalloc and
mimalloc it walks: tests/e2e/test_jemalloc_heap.py, test_tcmalloc_heap.py and
test_mimalloc_heap.py check them), and heaps beside the malloc (an allocator under a prefix, node's
V8 heap, the JVM's) which are named in a warning.
Ground truth is the target's own record
(tests/targets/forked_heap.c: every block it holds with malloc_usable_size, every block it
freed); for a malloc it does not know (a program's own), that the tool refuses (exit 2, naming the
allocator) rather than report an empty heap as healthy."""
import functools
import json
import os
import subprocess
import time
from pathlib import Path

from common import Case, check, heapsnap, main, path, start
from glibc_target import listing, read_record

TARGETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets")

FORKED = os.environ.get("FORKED_HEAP", "build/tests/forked_heap")
FORKED_STATIC = os.environ.get("FORKED_HEAP_STATIC", "build/tests/forked_heap_static")
OWN_MALLOC = os.environ.get("OWN_MALLOC", "build/tests/own_malloc")
BESIDE_ALLOCATOR = os.environ.get("BESIDE_ALLOCATOR", "build/tests/beside_allocator")
GLIBC_HEAP = os.environ.get("GLIBC_HEAP", "build/tests/glibc_heap")
HEAPDIFF = os.environ.get("HEAPDIFF", "build/heapdiff")
LIBDIR = "/usr/lib/x86_64-linux-gnu"


def wait_for(name, timeout=30):
    deadline = time.time() + timeout
    while not os.path.exists(name):
        if time.time() > deadline:
            raise RuntimeError(f"{name} was not written")
        time.sleep(0.02)


def forked_worker(label, executable):
    record_path = path(label + ".record")
    start([executable, record_path])
    wait_for(record_path)
    record = read_record(record_path)
    child = int(next(l.split()[1] for l in Path(record_path).read_text().splitlines(keepends=True) if l.startswith("child ")))
    maps = [l for l in Path(f"/proc/{child}/maps").read_text().splitlines(keepends=True) if l.rstrip().endswith("[heap]")]
    snapshot = path(label + ".snap")
    heapsnap("capture", str(child), "-o", snapshot)
    for options in ((), ("--no-debuginfo",)):
        what = f"{label} {' '.join(options)}".strip()
        allocations, warnings = listing(snapshot, *options)
        check(warnings == "", f"{what}: no warnings on a forked worker's sound heap: {warnings[:300]}")
        live = {a["addr"]: a for a in allocations if a["state"] == "live"}
        wrong = [(hex(addr), size, live.get(addr)) for addr, size in record["held"].items()
                 if addr not in live or live[addr]["size"] != size]
        check(not wrong, f"{what}: {len(wrong)} of {len(record['held'])} held blocks not live with "
                         f"their usable size, first {wrong[:3]}")
        freed_live = [hex(addr) for addr in record["freed"] if addr in live]
        check(not freed_live, f"{what}: freed blocks reported live: {freed_live[:5]}")
        free = {a["addr"] for a in allocations if a["state"] == "free"}
        check(record["freed"] <= free, f"{what}: {len(record['freed'] - free)} freed blocks not found free")
        # besides the target's blocks, only libc's own few (a tcache, stdio's buffer)
        extra = [a for a in live.values() if a["addr"] not in record["held"]]
        check(len(extra) <= 8, f"{what}: {len(extra)} live blocks nobody recorded")
    return maps, snapshot


def check_forked_worker():
    maps, _ = forked_worker("forked", FORKED)
    check(len(maps) >= 2, f"the worker's brk heap is several mappings, as the kernel keeps it after fork: {maps}")


def check_forked_worker_static():
    _, static_snapshot = forked_worker("forked-static", FORKED_STATIC)
    summary = json.loads(heapsnap("summary", static_snapshot, "--format", "json").stdout)
    check(summary["runtimes"]["glibc"].startswith("2.35 or later"),
          f"a static glibc's version is told from its malloc_par layout: {summary['runtimes']['glibc']!r}")


def expect_refusal(label, command, needles, env=None):
    """The target runs under another malloc: list, summary and heapdiff exit 2 naming it."""
    ready = path(label + ".ready")
    process = start(command + [ready], env=env)
    wait_for(ready)
    snapshot = path(label + ".snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    for args in (("list", snapshot), ("summary", snapshot), ("summary", snapshot, "--format", "json")):
        result = heapsnap(*args, check_ok=False)
        check(result.returncode == 2, f"{label}: {args[0]} exits 2, not {result.returncode}")
        check(result.stdout == "", f"{label}: {args[0]} prints no report: {result.stdout[:200]!r}")
        for needle in needles:
            check(needle in result.stderr, f"{label}: {needle!r} named in {result.stderr!r}")
    diff = subprocess.run([HEAPDIFF, snapshot, snapshot, "--fail-on-growth", "*=1MiB"],
                          capture_output=True, text=True, timeout=300)
    check(diff.returncode == 2, f"{label}: heapdiff --fail-on-growth exits 2, not {diff.returncode}")
    process.kill()


# an allocator beside glibc's malloc (jemalloc under Rust's prefix, serving what Rust allocates):
# glibc's heap is walked, and the report says what it leaves out rather than pass for the whole
def check_beside():
    ready = path("beside.ready")
    process = start([BESIDE_ALLOCATOR, ready])
    wait_for(ready)
    snapshot = path("beside.snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    for args in (("summary", snapshot), ("list", snapshot)):
        result = heapsnap(*args, check_ok=False)
        check(result.returncode == 0 and "jemalloc under the prefix _rjem_" in result.stderr and
              "keeps a heap of its own" in result.stderr and "beside_allocator" in result.stderr,
              f"beside: {args[0]} walks glibc's heap and warns of the jemalloc beside it: "
              f"{result.returncode} {result.stderr[:400]!r}")
    listed = [line.split() for line in heapsnap("list", snapshot).stdout.splitlines()]
    check(sum(1 for fields in listed if 48 <= int(fields[1]) < 64 and fields[2] == "live") >= 1000,
          "beside: the 1,000 blocks from glibc's malloc are listed")
    diff = subprocess.run([HEAPDIFF, snapshot, snapshot], capture_output=True, text=True, timeout=300)
    check(diff.returncode == 0 and "keeps a heap of its own" in diff.stdout + diff.stderr,
          f"beside: heapdiff says it too: {diff.returncode} {diff.stderr[:300]!r}")
    process.kill()


# runtimes whose objects live in heaps of their own: node (V8), Java, PHP (the Zend memory
# manager) and LuaJIT. Their malloc heap is walked, and the report says that the runtime's heap is
# not in it; for PHP and LuaJIT, whose objects are nearly all the memory they wrote, it also says
# how much memory lies outside every heap walked (what an unknown runtime would get)
RUNTIMES = [
    ("node", ["node", "-e", "const fs = require('fs'); const kept = [];"
              " for (let i = 0; i < 200000; i++) kept.push({i, text: 'x' + i});"
              " fs.writeFileSync(process.argv[1], 'ready'); setInterval(() => kept.length, 1000);"],
     "V8's JavaScript heap", False),
    # (the JVM's heap, gigabytes mostly never captured, once made the scan for mmapped chunks
    # run for minutes: a word in it looked like a chunk whose size wrapped the address around)
    ("java", ["java", os.path.join(TARGETS, "Holder.java")], "Java virtual machine's heap", False),
    ("php", ["php", os.path.join(TARGETS, "holder.php")], "PHP's Zend memory manager", True),
    ("luajit", ["luajit", os.path.join(TARGETS, "holder.lua")], "LuaJIT's garbage-collected heap",
     True),
]


def check_runtime(label, command, needle, outside):
    ready = path(label + ".ready")
    process = start(command + [ready])
    wait_for(ready, timeout=120)
    snapshot = path(label + ".snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    result = heapsnap("summary", snapshot, "--format", "json", check_ok=False)
    warnings = json.loads(result.stdout)["warnings"] if result.returncode == 0 else []
    check(any(needle in warning and "keeps a heap of its own" in warning for warning in warnings),
          f"{label}: the summary says {needle} is not walked: {result.returncode} {warnings} "
          f"{result.stderr[:300]!r}")
    if outside:
        said = [float(w.split(" MiB")[0]) for w in warnings if "outside every heap walked" in w]
        check(said and said[0] >= 32, f"{label}: the memory outside the heaps is said: {warnings}")
    process.kill()


# programs whose heap no walker reads say what they are: Go, statically linked (with its symbols
# and stripped: its version from .go.buildinfo) or with cgo (glibc's heap walked, Go's named as
# not walked), and a static musl program (musl's malloc named)
GO_SOURCES = os.path.join(TARGETS, "go")
go_env = dict(os.environ, GOCACHE=path("gocache"), GOPATH=path("gopath"), GO111MODULE="off",
              HOME=path(""))
builds = {
    "go-static": (["go", "build", "-o", path("go-static"), "holder.go"], {"CGO_ENABLED": "0"}),
    "go-stripped": (["go", "build", "-ldflags=-s -w", "-o", path("go-stripped"), "holder.go"],
                    {"CGO_ENABLED": "0"}),
    "go-cgo": (["go", "build", "-o", path("go-cgo"), "cgo_holder.go"], {"CGO_ENABLED": "1"}),
}


@functools.lru_cache(maxsize=None)
def go_version():
    return subprocess.run(["go", "version"], capture_output=True, text=True).stdout.split()[2]


def build(label):
    if label in builds:
        command, extra = builds[label]
        built = subprocess.run(command, cwd=GO_SOURCES, env=dict(go_env, **extra), capture_output=True,
                               text=True, timeout=600)
        check(built.returncode == 0, f"{label}: go build: {built.stderr[-400:]}")
    else:
        built = subprocess.run(["musl-gcc", "-static", "-O1", "-o", path("musl-static"),
                                os.path.join(TARGETS, "musl_holder.c")], capture_output=True, text=True)
        check(built.returncode == 0, f"musl-gcc: {built.stderr[-400:]}")


def expected_of(label):
    return {
        "go-static": (2, [f"it is a Go program ({go_version()})", "Go runtime's garbage-collected heap"]),
        "go-stripped": (2, [f"it is a Go program ({go_version()})"]),
        "go-cgo": (0, ["the Go runtime's garbage-collected heap", "keeps a heap of its own beside glibc"]),
        "musl-static": (2, ["musl's malloc"]),
    }[label]


def check_unwalked_program(label):
    build(label)
    status, needles = expected_of(label)
    ready = path(label + ".ready")
    process = start([path(label), ready])
    wait_for(ready)
    snapshot = path(label + ".snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    result = heapsnap("summary", snapshot, check_ok=False)
    check(result.returncode == status and all(n in result.stderr for n in needles),
          f"{label}: summary exits {status} saying {needles}: {result.returncode} {result.stderr[-500:]!r}")
    process.kill()


# jemalloc, tcmalloc and mimalloc are walked (tests/e2e/test_jemalloc_heap.py,
# test_tcmalloc_heap.py and test_mimalloc_heap.py check their heaps block by block)
def check_walked(library, name):
    ready = path(library + ".ready")
    process = start([GLIBC_HEAP, ready], env=dict(os.environ, LD_PRELOAD=os.path.join(LIBDIR, library)))
    wait_for(ready)
    snapshot = path(library + ".snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    result = heapsnap("summary", snapshot, check_ok=False)
    check(result.returncode == 0 and result.stdout.splitlines()[1].startswith(name),
          f"{name}: its heap is walked and named: {result.returncode} {result.stdout[:200]!r} {result.stderr!r}")
    process.kill()


class OtherHeaps(Case):
    def test_forked_worker_brk_heap(self):
        check_forked_worker()

    def test_static_glibc_forked_worker(self):
        check_forked_worker_static()

    def test_own_malloc_refused(self):
        expect_refusal("own", [OWN_MALLOC], ["the malloc of own_malloc", "cannot walk"])

    def test_jemalloc_beside_glibc(self):
        check_beside()

    def test_node(self):
        check_runtime(*RUNTIMES[0])

    def test_java(self):
        check_runtime(*RUNTIMES[1])

    def test_php(self):
        check_runtime(*RUNTIMES[2])

    def test_luajit(self):
        check_runtime(*RUNTIMES[3])

    def test_go_static(self):
        check_unwalked_program("go-static")

    def test_go_stripped(self):
        check_unwalked_program("go-stripped")

    def test_go_cgo(self):
        check_unwalked_program("go-cgo")

    def test_musl_static(self):
        check_unwalked_program("musl-static")

    def test_jemalloc_walked(self):
        check_walked("libjemalloc.so.2", "jemalloc 5.3.0")

    def test_tcmalloc_walked(self):
        check_walked("libtcmalloc_minimal.so.4", "tcmalloc 2.10")

    def test_mimalloc_walked(self):
        check_walked("libmimalloc.so.2", "mimalloc 2.0.9")


if __name__ == "__main__":
    main()
