"""CPython 3.13 run with PYTHONMALLOC=mimalloc allocates its objects with the mimalloc it bundles
(Objects/mimalloc, compiled into libpython), not pymalloc nor malloc. heapsnap must walk it, or
say it cannot: never report an empty heap. Checked against what heapsnap did not compute:

- a target (tests/targets/python_mimalloc.py) records the ids (addresses) of objects it keeps
  and their types: each is inside a live block that heapsnap names with that type (the object's
  own type, or for the bytes it holds, bytes); the ids of the 2,000 objects it freed: none is a
  live object of their type, and heapsnap reports their blocks free;
- heapsnap's count of the objects the collector tracks, per type, equals gc.get_objects()'s;
- the leak story: 5,000 __main__.Connection retained by `module __main__.keep -> list[*]`, in
  the summary and in heapdiff's report against a snapshot taken before they were made; with and
  without debug info (without, CPython's mimalloc is found by its segments' shape);
- the same under PYTHONMALLOC=mimalloc_debug (the debug hooks on top of mimalloc);
- the allocator is told apart: pymalloc by default, malloc under PYTHONMALLOC=malloc, and 3.12
  (which has no mimalloc) unaffected."""
import ast
import collections
import functools
import glob
import json
import os
import subprocess
import time

from common import HEAPDIFF, Case, check, give_up, heapsnap, main, path, process_state, start

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets",
                      "python_mimalloc.py")
pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))


def interpreter(minor):
    found = sorted(glob.glob(os.path.join(pyenv_root, "versions", f"3.{minor}.*", "bin",
                                          f"python3.{minor}")))
    return found[-1] if found else None


def python313():
    found = interpreter(13)
    if found is None:
        give_up("pyenv's CPython 3.13 is not installed (scripts/setup installs it)")
    return found


def run_target(python, malloc, name, before=None):
    """Starts the target, waits for its result, captures it; returns (snapshot, result). With
    `before`, a snapshot is taken into it first, before the target makes its objects."""
    result_file = path(f"result-{name}")
    reader, writer = os.pipe()  # the target reads one byte, then blocks reading until killed
    environment = dict(os.environ)
    environment.pop("PYTHONMALLOC", None)
    if malloc:
        environment["PYTHONMALLOC"] = malloc
    process = start([python, TARGET, result_file], stdin=reader, env=environment)
    deadline = time.time() + 60
    if before:
        while not os.path.exists(result_file + ".before") and time.time() < deadline:
            time.sleep(0.05)
        while process_state(process.pid) != "S" and time.time() < deadline:
            time.sleep(0.01)
        heapsnap("capture", str(process.pid), "-o", before)
    os.write(writer, b"x")
    while not os.path.exists(result_file) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    if not check(os.path.exists(result_file), f"{name}: the target wrote its result"):
        give_up(f"{name}: no result from the target")
    with open(result_file) as f:
        result = ast.literal_eval(f.read())
    while process_state(process.pid) != "S" and time.time() < deadline:
        time.sleep(0.01)
    snapshot = path(f"{name}.snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    process.kill()
    os.close(writer)
    os.close(reader)
    return snapshot, result


def blocks(snapshot, *options):
    """Every block heapsnap lists, live and free, in address order."""
    out = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl", *options).stdout
    listed = [json.loads(line) for line in out.splitlines()]
    listed.sort(key=lambda b: b["addr"] if isinstance(b["addr"], int) else int(b["addr"], 16))
    return listed


def address(block):
    return block["addr"] if isinstance(block["addr"], int) else int(block["addr"], 16)


def block_holding(listed, starts, target):
    """The block whose bytes hold `target`, or None."""
    import bisect
    k = bisect.bisect_right(starts, target) - 1
    if k >= 0 and target < starts[k] + listed[k]["size"]:
        return listed[k]
    return None


def check_connections(snapshot, name, *options):
    summary = json.loads(heapsnap("summary", snapshot, "--format", "json", "--type",
                                  "__main__.*", *options).stdout)
    retainers = {t["type"]: t.get("retainers", []) for t in summary["types"]}
    counts = {t["type"]: t["count"] for t in summary["types"]}
    check(counts.get("__main__.Connection") == 5000,
          f"{name} {options}: {counts.get('__main__.Connection')} __main__.Connection live, 5000 made")
    want = ["module __main__.keep", "list[*]", "__main__.Connection"]
    found = [r for r in retainers.get("__main__.Connection", []) if r["path"] == want]
    check(found and found[0]["count"] == 5000,
          f"{name} {options}: 5000 __main__.Connection kept by {want}; heapsnap: "
          f"{[(r['path'], r['count']) for r in retainers.get('__main__.Connection', [])]}")
    check("__main__.Freed" not in counts,
          f"{name} {options}: no __main__.Freed is live (all 2000 were freed): {counts.get('__main__.Freed')}")
    return summary


def check_target(snapshot, result, name, *options):
    summary = check_connections(snapshot, name, *options)
    python = summary.get("python", {})
    check(python.get("object_allocator") == "mimalloc",
          f"{name} {options}: the objects' allocator is mimalloc: {python.get('object_allocator')}")
    listed = blocks(snapshot, *options)
    starts = [address(b) for b in listed]
    # each recorded live object: inside a live block of its type
    wrong = []
    for object_id, type_name in result["live"]:
        block = block_holding(listed, starts, object_id)
        if block is None or block["state"] != "live" or block.get("type") != type_name:
            wrong.append((hex(object_id), type_name, block and (block["state"], block.get("type"))))
    check(not wrong, f"{name} {options}: {len(wrong)} of {len(result['live'])} recorded live "
          f"objects are not live objects of their type at their address: {wrong[:5]}")
    # each freed object: not live as a Freed; its block free unless reused since
    reported_live, free = [], 0
    for object_id in result["freed"]:
        block = block_holding(listed, starts, object_id)
        if block is None:
            reported_live.append((hex(object_id), None))
        elif block["state"] == "free":
            free += 1
        elif block.get("type") == "__main__.Freed":
            reported_live.append((hex(object_id), block.get("type")))
    check(not reported_live, f"{name} {options}: freed objects reported live or not found: "
          f"{reported_live[:5]}")
    check(free >= len(result["freed"]) * 0.95,
          f"{name} {options}: {free} of {len(result['freed'])} freed objects' blocks are free")
    # the collector's count per type
    tracked = collections.Counter(b["type"] for b in listed
                                  if b["state"] == "live" and b.get("python") == "tracked")
    expected = result["gc"]
    wrong = {t: (expected.get(t, 0), tracked.get(t, 0)) for t in set(expected) | set(tracked)
             if expected.get(t, 0) != tracked.get(t, 0)}
    check(not wrong, f"{name} {options}: tracked objects per type differ from gc.get_objects() "
          f"(type: (gc, heapsnap)): {dict(sorted(wrong.items())[:20])}")


before = path("before.snap")


@functools.cache
def with_mimalloc():
    """3.13 under PYTHONMALLOC=mimalloc captured before it made its objects and after; once for
    every case."""
    return run_target(python313(), "mimalloc", "mimalloc", before=before)


def check_other_allocator(python, malloc, allocator):
    name = f"{os.path.basename(python)}-{malloc or 'default'}"
    snapshot, result = run_target(python, malloc, name)
    summary = check_connections(snapshot, name)
    python_section = summary.get("python", {})
    check(python_section.get("object_allocator") == allocator and
          "mimalloc_found_with" not in python_section,
          f"{name}: the objects' allocator is {python_section.get('object_allocator')}, "
          f"not {allocator}")


class CpythonMimalloc(Case):
    # PYTHONMALLOC=mimalloc, with and without debug info
    def test_mimalloc(self):
        snapshot, result = with_mimalloc()
        summary_text = heapsnap("summary", snapshot)
        check("CPython's mimalloc" in summary_text.stdout,
              f"mimalloc: the summary says the objects come from CPython's mimalloc:\n{summary_text.stdout[:600]}")
        check_target(snapshot, result, "mimalloc")
        summary = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)
        check(summary["python"].get("mimalloc_found_with") == "heuristics, checked by symbols",
              f"mimalloc: segments found with {summary['python'].get('mimalloc_found_with')}")

    def test_mimalloc_no_debuginfo(self):
        snapshot, result = with_mimalloc()
        check_target(snapshot, result, "mimalloc", "--no-debuginfo")

    def test_mimalloc_heapdiff(self):
        # heapdiff: the snapshot before the Connections were made against the one after
        snapshot, result = with_mimalloc()
        diff = subprocess.run([HEAPDIFF, "--format", "json", before, snapshot], capture_output=True,
                              text=True, timeout=300)
        check(diff.returncode in (0, 1) and "__main__.Connection" in diff.stdout and
              "module __main__.keep" in diff.stdout,
              f"heapdiff names the 5000 Connections kept by module __main__.keep (exit {diff.returncode}):\n"
              f"{diff.stdout[:1500]}{diff.stderr[:1000]}")
        if diff.returncode in (0, 1):
            text = subprocess.run([HEAPDIFF, before, snapshot], capture_output=True, text=True,
                                  timeout=300).stdout
            grown = [line.split() for line in text.splitlines() if line.endswith(" __main__.Connection")]
            check(grown and grown[0][:3] == ["5,000", "0", "+5,000"],
                  f"heapdiff: 5,000 new __main__.Connection, none freed: {grown[:2]}")
            check("module __main__.keep -> list[*] -> __main__.Connection" in text,
                  f"heapdiff: the new Connections kept by module __main__.keep:\n{text[:2000]}")

    def test_mimalloc_debug(self):
        # the debug hooks on top of mimalloc
        snapshot, result = run_target(python313(), "mimalloc_debug", "mimalloc_debug")
        check_connections(snapshot, "mimalloc_debug")
        summary = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)
        check(summary["python"].get("object_allocator") == "mimalloc",
              f"mimalloc_debug: the objects' allocator is {summary['python'].get('object_allocator')}")

    # the other allocators are told apart, and 3.12 has no mimalloc
    def test_pymalloc_by_default(self):
        check_other_allocator(python313(), None, "pymalloc")

    def test_malloc(self):
        check_other_allocator(python313(), "malloc", "malloc")

    def test_python3_12_pymalloc(self):
        # (where pyenv has a 3.12, as the script always did)
        if interpreter(12):
            check_other_allocator(interpreter(12), None, "pymalloc")


if __name__ == "__main__":
    main()
