"""Roots: what each holds, alone and with others, against what the targets themselves know.

- Python (every supported version present): DATA, a list of 100,000 dicts of lists, bound to two
  module globals (DATA, ALIAS) is held by the group of those two roots, by neither alone, with at
  least the bytes sys.getsizeof counts of it; bound to one global, that global retains it; no
  type's retained bytes exceed the live heap (a list of dicts of lists counts each list once);
  the roots' retained bytes and the shared groups add up to the reachable bytes.
- Python (tests/targets/thread_locals.py): one path taken in 20 threads is one shape, the thread
  masked ("thread * frame hold() local held"), counting all 60 objects; dict keys read from memory
  are masked in summary (text and JSON) and list --paths unless --show-values.
- C (tests/targets/dead_thread.c): blocks whose only pointers are in the stacks of threads that
  ended (glibc keeps the stacks for reuse) are unreachable, not held by "mapping 0x...", while the
  blocks a global holds are reached from it."""
import glob
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from common import Case, check, check_summary_invariants, give_up, heapsnap, main, path, start

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets", "shared_roots.py")
THREAD_LOCALS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets", "thread_locals.py")
DEAD_THREAD = os.environ.get("DEAD_THREAD", "build/tests/dead_thread")
pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))


def wait_for(name, process, timeout=60):
    deadline = time.time() + timeout
    while not os.path.exists(name) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    return os.path.exists(name)


def root(summary, name):
    return next((r for r in summary["roots"] if r["root"] == name), None)


def pyenv_interpreters():
    interpreters = []
    for minor in (8, 11, 12, 13):
        interpreters += sorted(glob.glob(os.path.join(pyenv_root, "versions", f"3.{minor}.*", "bin", f"python3.{minor}")))[-1:]
    return interpreters


def interpreter_of(label):
    """The interpreter of a label (python3.8, debian-3.11); the case gives up without it."""
    if label == "debian-3.11":
        return "/usr/bin/python3.11"
    found = [i for i in pyenv_interpreters() if os.path.basename(i) == label]
    if not found:
        give_up(f"{label}: pyenv has no such interpreter here")
    return found[0]


def check_shared(label, alias):
    interpreter = interpreter_of(label)
    what = f"{label} {'DATA and ALIAS' if alias else 'DATA alone'}"
    record_path = path(f"roots-{label}-{alias}.json")
    process = start([interpreter, TARGET, record_path] + (["alias"] if alias else []))
    if not check(wait_for(record_path, process), f"{what}: the target wrote its record"):
        return
    record = json.loads(Path(record_path).read_text())
    snapshot = path(f"roots-{label}-{alias}.snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    process.kill()
    summary = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)
    check_summary_invariants(what, summary)
    data, alias_root = root(summary, "module __main__.DATA"), root(summary, "module __main__.ALIAS")
    solo = root(summary, "module __main__.SOLO")
    check(solo and solo["retained_bytes"] >= record["solo_bytes"],
          f"{what}: SOLO alone retains at least its getsizeof bytes {record['solo_bytes']}: {solo}")
    if not check(data is not None, f"{what}: DATA is in the roots table"):
        return
    check(data["holds_bytes"] >= record["data_bytes"],
          f"{what}: DATA holds at least its getsizeof bytes {record['data_bytes']}: {data}")
    check(data["holds_bytes"] <= 2 * record["data_bytes"],
          f"{what}: DATA holds at most twice its getsizeof bytes: {data}")
    if alias:
        check(alias_root and alias_root["holds_bytes"] == data["holds_bytes"],
              f"{what}: ALIAS holds what DATA holds: {alias_root}")
        check(data["retained_bytes"] < record["data_bytes"] / 100,
              f"{what}: DATA alone retains (almost) nothing: {data}")
        groups = [g for g in summary["shared"]["groups"]
                  if sorted(g["roots"]) == ["module __main__.ALIAS", "module __main__.DATA"]]
        check(len(groups) == 1 and groups[0]["bytes"] >= record["data_bytes"] and not groups[0]["more_roots"],
              f"{what}: one group of the two roots holds DATA: {groups}")
        text = heapsnap("summary", snapshot).stdout
        check("held by 2 roots: module __main__.ALIAS, module __main__.DATA" in text or
              "held by 2 roots: module __main__.DATA, module __main__.ALIAS" in text,
              f"{what}: the text report names the two roots that hold DATA together")
    else:
        check(alias_root is None, f"{what}: there is no ALIAS root")
        # (all but the few objects others share: the one-character strs are cached)
        check(data["retained_bytes"] >= 0.99 * data["holds_bytes"],
              f"{what}: DATA alone retains what it holds: {data}")
    lists = next(t for t in summary["types"] if t["type"] == "list")
    check(lists["retained_bytes"] <= summary["heap"]["live_bytes"],
          f"{what}: list retains {lists['retained_bytes']}, more than the live heap {summary['heap']['live_bytes']}")


# one path in many threads is one shape; values from memory masked unless asked
def check_thread_locals(label):
    interpreter = interpreter_of(label)
    ready = path(f"threads-{label}.ready")
    process = start([interpreter, THREAD_LOCALS, ready])
    if not check(wait_for(ready, process), f"{label}: thread_locals is ready"):
        return
    snapshot = path(f"threads-{label}.snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    process.kill()
    summary = heapsnap("summary", snapshot, "--format", "json", "--type", "__main__.*").stdout
    item = next(t for t in json.loads(summary)["types"] if t["type"] == "__main__.Item")
    shapes = {tuple(r["path"]): r["count"] for r in item["retainers"]}
    check(shapes.get(("thread * frame hold() local held", "list[*]", "__main__.Item")) == 60,
          f"{label}: the 20 threads' locals are one shape of 60 objects: {shapes}")
    check(shapes.get(("module __main__.REG", "dict[*]", "__main__.Item")) == 5,
          f"{label}: REG's items through masked keys: {shapes}")
    for args in (("summary", snapshot, "--type", "__main__.*"), ("summary", snapshot, "--format", "json"),
                 ("list", snapshot, "--format", "jsonl", "--paths")):
        output = heapsnap(*args).stdout
        check("SECRET-TOKEN" not in output, f"{label}: {' '.join(args[:1] + args[2:])} prints a key read from memory")
        shown = heapsnap(*args, "--show-values").stdout
        check("SECRET-TOKEN-12345-key" in shown or args[0] == "summary" and "--type" not in args,
              f"{label}: {' '.join(args[:1] + args[2:])} --show-values shows the keys")


# C: the stacks of ended threads are no roots
def check_dead_thread():
    record_path = path("dead_thread.record")
    process = start([DEAD_THREAD, record_path])
    if check(wait_for(record_path, process, 30), "dead_thread wrote its record"):
        lines = [l.split() for l in Path(record_path).read_text().splitlines(keepends=True)]
        lost = {int(w[1], 16) for w in lines if w[0] == "lost"}
        held = {int(w[1], 16) for w in lines if w[0] == "held"}
        snapshot = path("dead_thread.snap")
        heapsnap("capture", str(process.pid), "-o", snapshot)
        listed = {}
        for line in heapsnap("list", snapshot, "--format", "jsonl", "--paths").stdout.splitlines():
            allocation = json.loads(line)
            listed[allocation["addr"]] = allocation
        kept = [(hex(a), listed[a].get("path")) for a in lost if a in listed and listed[a].get("path")]
        check(len(lost) == 200 and all(a in listed for a in lost), f"the 200 lost blocks are listed")
        check(not kept, f"{len(kept)} lost blocks are held by a stale stack: {kept[:3]}")
        reached = [a for a in held if (listed.get(a) or {}).get("path", [""])[0] == "global held_blocks"]
        check(len(reached) == len(held) == 50, f"the blocks the global holds are reached from it: {len(reached)}")
        summary = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)
        check_summary_invariants("dead_thread", summary)
        check(summary["unreachable"]["count"] >= 200, f"the lost blocks are unreachable: {summary['unreachable']['count']}")
    process.kill()


# C, stripped: a global no symbol names is named by its section and offset (and the nearest
# exported symbol before it, which strip leaves in .dynsym), which the unstripped
# file's symbol table (nm) and section headers (readelf) give
def check_stripped():
    stripped = path("dead_thread_stripped")
    shutil.copy(DEAD_THREAD, stripped)
    subprocess.run(["strip", "--strip-all", stripped], check=True)
    symbol = int(next(l.split()[0] for l in subprocess.run(["nm", DEAD_THREAD], capture_output=True, text=True)
                      .stdout.splitlines() if l.endswith(" held_blocks")), 16)
    sections = {m.group(1): int(m.group(2), 16) for m in re.finditer(
        r"\]\s+(\.\S+)\s+\S+\s+([0-9a-f]+)", subprocess.run(["readelf", "-SW", DEAD_THREAD],
                                                          capture_output=True, text=True).stdout)}
    record_path = path("dead_thread_stripped.record")
    process = start([stripped, record_path])
    if check(wait_for(record_path, process, 30), "the stripped dead_thread wrote its record"):
        held = [int(w[1], 16) for w in (l.split() for l in Path(record_path).read_text().splitlines(keepends=True)) if w[0] == "held"]
        snapshot = path("dead_thread_stripped.snap")
        heapsnap("capture", str(process.pid), "-o", snapshot)
        roots = {}
        for line in heapsnap("list", snapshot, "--format", "jsonl", "--paths").stdout.splitlines():
            allocation = json.loads(line)
            roots[allocation["addr"]] = (allocation.get("path") or [""])[0]
        # what strip leaves: .dynsym's defined symbols (held_marker, exported), by address
        exported = sorted((int(w[0], 16), w[2]) for w in (l.split() for l in subprocess.run(
            ["nm", "-D", "--defined-only", stripped], capture_output=True, text=True).stdout.splitlines())
            if len(w) == 3)
        bss_start = sections[".bss"]

        def nearest(address):
            before = [name for at, name in exported if bss_start <= at <= address]
            return f" near {before[-1]}" if before else ""
        expected = {f"data of dead_thread_stripped at .bss+{symbol + 8 * i - bss_start:#x}"
                    f"{nearest(symbol + 8 * i)}" for i in range(len(held))}
        named = {roots.get(a) for a in held}
        check(len(held) == 50 and named == expected,
              f"stripped: the global's words are named by section, offset and the nearest exported "
              f"symbol before them: {sorted(named)[:3]} against {sorted(expected)[:3]}")
        check(any(" near held_marker" in name for name in expected),
              f"the target places its exported held_marker before held_blocks, so the nearest "
              f"symbol is checked: {exported}")
    process.kill()


class Roots(Case):
    def test_interpreters_present(self):
        interpreters = pyenv_interpreters()
        check(len(interpreters) == 4, f"pyenv's CPython 3.8, 3.11, 3.12, 3.13 are present: {interpreters}")

    def test_python3_8_data_and_alias(self):
        check_shared("python3.8", True)

    def test_python3_8_data_alone(self):
        check_shared("python3.8", False)

    def test_python3_11_data_and_alias(self):
        check_shared("python3.11", True)

    def test_python3_11_data_alone(self):
        check_shared("python3.11", False)

    def test_python3_12_data_and_alias(self):
        check_shared("python3.12", True)

    def test_python3_12_data_alone(self):
        check_shared("python3.12", False)

    def test_python3_13_data_and_alias(self):
        check_shared("python3.13", True)

    def test_python3_13_data_alone(self):
        check_shared("python3.13", False)

    def test_debian_python3_11_data_and_alias(self):
        check_shared("debian-3.11", True)

    def test_debian_python3_11_data_alone(self):
        check_shared("debian-3.11", False)

    def test_thread_locals_python3_11(self):
        check_thread_locals("python3.11")

    def test_thread_locals_debian_python3_11(self):
        check_thread_locals("debian-3.11")

    def test_dead_thread_stacks(self):
        check_dead_thread()

    def test_stripped_global_named_by_section(self):
        check_stripped()


if __name__ == "__main__":
    main()
