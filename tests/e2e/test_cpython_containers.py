"""Objects held by containers implemented in C (collections.deque, OrderedDict, defaultdict,
functools.lru_cache's caches, a C object's own fields) and by subclasses of dict, list and set
have a path from the module global that holds them, for every supported CPython on this machine
(pyenv's 3.8 to 3.13, with DWARF, with and without --no-debuginfo, and Debian's stripped
/usr/bin/python3.11), against the target's own account (tests/targets/python_containers.py):

- each class's instances, as many as gc.get_objects() lists, all have exactly the expected path
  (the module global, the container's labelled step, the instance), none under `external
  references to`;
- the deque's blocks are its parts, as many as deque.__sizeof__ counts; the OrderedDict's nodes and
  its array of them are its parts, a node per key;
- heapdiff between a snapshot and one after the deque and the OrderedDict grew names both among
  the grown containers, with their lengths before and after."""
import ast
import collections
import glob
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from common import Case, check, give_up, heapsnap, main, path, process_state, start

HEAPDIFF = os.environ.get("HEAPDIFF", "build/heapdiff")
TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets",
                      "python_containers.py")

pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))


def pyenv_interpreters():
    interpreters = []
    for minor in range(8, 14):
        found = sorted(glob.glob(os.path.join(pyenv_root, "versions", f"3.{minor}.*", "bin",
                                              f"python3.{minor}")))
        interpreters += found[-1:]
    return interpreters


def interpreter_of(name):
    """The interpreter of a run's name (python3.8, debian-python3.11); the case gives up without it."""
    if name == "debian-python3.11":
        return "/usr/bin/python3.11"
    found = [i for i in pyenv_interpreters() if os.path.basename(i) == name]
    if not found:
        give_up(f"{name}: pyenv has no such interpreter here")
    return found[0]


EXPECTED_PATHS = {
    "InDeque": ["module __main__.DQ", "collections.deque[*]"],
    "InOrderedDict": ["module __main__.OD", "collections.OrderedDict[*]"],
    "InDefaultDict": ["module __main__.DD", "collections.defaultdict[*]", "list[*]"],
    "InCache": ["module __main__.cached", "functools._lru_cache_wrapper.cache", "dict[*]"],
    "InBoundedCache": ["module __main__.bounded", "functools._lru_cache_wrapper.cache", "dict[*]",
                       "functools._lru_list_elem.result"],
    "InDictSubclass": ["module __main__.DICT_SUBCLASS", "__main__.DictSubclass[*]"],
    "InListSubclass": ["module __main__.LIST_SUBCLASS", "__main__.ListSubclass[*]"],
    "InSetSubclass": ["module __main__.SET_SUBCLASS", "__main__.SetSubclass{*}"],
    "InDequeSubclass": ["module __main__.DEQUE_SUBCLASS", "__main__.DequeSubclass[*]"],
    "InSubclassAttribute": ["module __main__.DEQUE_SUBCLASS", "__main__.DequeSubclass.note"],
    # repeatobject.element, at 16 in every version, is in no tp_members
    "InRepeat": ["module __main__.REPEAT", "itertools.repeat+16"],
    "InPartial": ["module __main__.PARTIAL", "functools.partial.args", "tuple[*]"],
}

_runs = {}


def run(name):
    """The target's account of what it made and of how its containers grew, and its two
    snapshots (before and after they grew): made once per interpreter for every case, as
    (result, grown, snapshot, snapshot_grown)."""
    if name in _runs:
        return _runs[name]
    interpreter = interpreter_of(name)
    result_file = path(f"result-{name}")
    reader, writer = os.pipe()  # the target blocks reading stdin until killed
    process = start([interpreter, TARGET, result_file], stdin=reader)
    deadline = time.time() + 60
    while not os.path.exists(result_file) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    if not os.path.exists(result_file):
        give_up(f"{name}: the target wrote its counts")
    result = ast.literal_eval(Path(result_file).read_text())
    while process_state(process.pid) != "S" and time.time() < deadline:
        time.sleep(0.01)  # asleep in its read
    snapshot = path(f"{name}.snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    # the deque and the OrderedDict grow: a second snapshot for heapdiff
    os.kill(process.pid, signal.SIGUSR1)
    while not os.path.exists(result_file + ".grown") and time.time() < deadline + 30:
        time.sleep(0.05)
    grown = ast.literal_eval(Path(result_file + ".grown").read_text()) \
        if os.path.exists(result_file + ".grown") else {}
    while process_state(process.pid) != "S" and time.time() < deadline + 30:
        time.sleep(0.01)
    snapshot_grown = path(f"{name}-grown.snap")
    heapsnap("capture", str(process.pid), "-o", snapshot_grown)
    process.kill()
    os.close(writer)
    os.close(reader)
    _runs[name] = result, grown, snapshot, snapshot_grown
    return _runs[name]


def check_target(name):
    result, grown, snapshot, snapshot_grown = run(name)
    created, held = result["created"], result["held"]
    check(all(result["gc"].get("__main__." + cls, 0) == count for cls, count in created.items()),
          f"{name}: the target made what it meant to: {result['gc']}")
    check(held["DQ"] == created["InDeque"] and held["cached"] == created["InCache"] and
          held["bounded"] == created["InBoundedCache"] and held["DD"] == created["InDefaultDict"],
          f"{name}: the containers hold what was put in them: {held}")


def check_paths(name, options):
    result, grown, snapshot, snapshot_grown = run(name)
    created = result["created"]
    paths = collections.defaultdict(collections.Counter)
    parts = collections.Counter()
    external = collections.Counter()
    out = heapsnap("list", snapshot, "--format", "jsonl", "--paths", *options).stdout
    for line in out.splitlines():
        block = json.loads(line)
        kind = block.get("type") or ""
        if block.get("python") == "part" and block.get("path"):
            parts[(kind, block["path"][0])] += 1  # by owner: other deques are the process's
        if block.get("python") != "tracked" or not kind.startswith("__main__.In"):
            continue
        steps = block.get("path")
        paths[kind[len("__main__."):]][tuple(steps) if steps else None] += 1
        if steps and steps[0].startswith("external references to"):
            external[kind] += 1
    check(not external, f"{name} {options}: instances under external references: {dict(external)}")
    for cls, steps in EXPECTED_PATHS.items():
        want = tuple(steps + ["__main__." + cls])
        got = paths.get(cls, {})
        check(dict(got) == {want: created[cls]},
              f"{name} {options}: {created[cls]} {cls} by {' -> '.join(want)}; heapsnap: "
              f"{[(' -> '.join(p) if p else None, n) for p, n in got.items()]}")
    got = parts[("collections.deque", "module __main__.DQ")]
    check(got == result["deque_blocks"],
          f"{name} {options}: the deque's {result['deque_blocks']} blocks are its parts; "
          f"heapsnap: {got}")
    # a node per key, the array of nodes, the dict's keys table
    got = parts[("collections.OrderedDict", "module __main__.OD")]
    check(got == created["InOrderedDict"] + 2,
          f"{name} {options}: the OrderedDict's {created['InOrderedDict']} nodes, its array "
          f"of them and its keys table are its parts; heapsnap: {got}")
    summary = json.loads(heapsnap("summary", snapshot, "--format", "json", *options).stdout)
    roots = [r["root"] for r in summary["roots"]]
    # the containers are held by their globals, nothing from outside
    for container in ("collections.deque", "collections.OrderedDict", "collections.defaultdict",
                      "functools._lru_list_elem", "__main__.DictSubclass",
                      "__main__.ListSubclass", "__main__.SetSubclass", "__main__.InDeque"):
        check("external references to " + container not in roots,
              f"{name} {options}: external references to {container} among the roots")


def check_growth(name):
    result, grown, snapshot, snapshot_grown = run(name)
    held = result["held"]
    diff = json.loads(subprocess.run([HEAPDIFF, snapshot, snapshot_grown, "--format", "json"],
                                     capture_output=True, text=True).stdout or "{}")
    containers = {c["type"]: c for c in diff.get("grown_containers", [])
                  if c["path"][0] in ("module __main__.DQ", "module __main__.OD")}
    for container, variable in (("collections.deque", "DQ"), ("collections.OrderedDict", "OD")):
        found = containers.get(container, {})
        check(found.get("path") == [f"module __main__.{variable}", container] and
              found.get("items_before") == held[variable] and
              found.get("items_after") == grown.get(variable),
              f"{name}: heapdiff: {container} {variable} grew from {held[variable]} to "
              f"{grown.get(variable)}; heapdiff: {found}")


def check_with_dwarf(name):
    """The target's account, and the paths read with the interpreter's DWARF (for Debian's
    stripped python3.11: its built-in layouts)."""
    check_target(name)
    check_paths(name, [])


class Interpreters(Case):
    def test_all_present(self):
        interpreters = pyenv_interpreters()
        check(len(interpreters) == 6, f"pyenv's CPython 3.8 to 3.13 are all present: {interpreters}")
        check(os.path.exists("/usr/bin/python3.11"),
              "Debian's python3.11 is installed (scripts/setup installs it)")


class CPythonContainers(Case):
    def test_python3_8_paths_with_dwarf(self):
        check_with_dwarf("python3.8")

    def test_python3_8_paths_no_debuginfo(self):
        check_paths("python3.8", ["--no-debuginfo"])

    def test_python3_8_heapdiff(self):
        check_growth("python3.8")

    def test_python3_9_paths_with_dwarf(self):
        check_with_dwarf("python3.9")

    def test_python3_9_paths_no_debuginfo(self):
        check_paths("python3.9", ["--no-debuginfo"])

    def test_python3_9_heapdiff(self):
        check_growth("python3.9")

    def test_python3_10_paths_with_dwarf(self):
        check_with_dwarf("python3.10")

    def test_python3_10_paths_no_debuginfo(self):
        check_paths("python3.10", ["--no-debuginfo"])

    def test_python3_10_heapdiff(self):
        check_growth("python3.10")

    def test_python3_11_paths_with_dwarf(self):
        check_with_dwarf("python3.11")

    def test_python3_11_paths_no_debuginfo(self):
        check_paths("python3.11", ["--no-debuginfo"])

    def test_python3_11_heapdiff(self):
        check_growth("python3.11")

    def test_python3_12_paths_with_dwarf(self):
        check_with_dwarf("python3.12")

    def test_python3_12_paths_no_debuginfo(self):
        check_paths("python3.12", ["--no-debuginfo"])

    def test_python3_12_heapdiff(self):
        check_growth("python3.12")

    def test_python3_13_paths_with_dwarf(self):
        check_with_dwarf("python3.13")

    def test_python3_13_paths_no_debuginfo(self):
        check_paths("python3.13", ["--no-debuginfo"])

    def test_python3_13_heapdiff(self):
        check_growth("python3.13")

    def test_debian_python3_11_paths(self):
        check_with_dwarf("debian-python3.11")

    def test_debian_python3_11_heapdiff(self):
        check_growth("debian-python3.11")


if __name__ == "__main__":
    main()
