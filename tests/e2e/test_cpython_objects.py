"""CPython heaps from outside, against the interpreter's own answers, for every supported CPython
on this machine (pyenv's 3.8 to 3.13, with DWARF, and Debian's stripped /usr/bin/python3.11):

- the layouts heapsnap reads from each libpython's DWARF equal its built-in tables;
- a target (tests/targets/python_objects.py) builds known structures and records what
  gc.get_objects() counts per type; heapsnap's count of the objects the collector tracks, per type,
  must equal it exactly, with pymalloc's arenas found from the arena table (debug info) and by
  validating candidate pools (heuristics);
- and per generation, what gc.get_objects(generation) counts;
- the objects the target created that the collector does not track (bytes, floats) are all found;
- the blocks that belong to objects (list items, dict keys and values) are named after them;
- a frame's local is the root of what it holds, named by thread, function and variable;
- the Python objects no root reaches are, type by type, what the cyclic collector itself finds to be
  garbage (asked after the snapshot, with gc.DEBUG_SAVEALL);
- the three leak shapes of docs/design/leaking-server.md: the module-global list is the root of its
  instances, through `list[*]`; the class-attribute dict is the root of its instances, through
  `dict[*]`; the unreachable Connection/ConnectionHandler pairs are each one cycle whose shape
  names both classes and the attributes that close it, as many cycles as the target made."""
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

LAYOUT_CHECK = os.environ.get("LAYOUT_CHECK", "build/tests/cpython_layout_check")
TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets", "python_objects.py")

pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))


def pyenv_interpreters():
    interpreters = []
    for minor in range(8, 14):
        found = sorted(glob.glob(os.path.join(pyenv_root, "versions", f"3.{minor}.*", "bin", f"python3.{minor}")))
        interpreters += found[-1:]
    return interpreters


def pyenv_interpreter(minor):
    """pyenv's CPython 3.MINOR; the case gives up without it."""
    found = [i for i in pyenv_interpreters() if i.endswith(f"python3.{minor}")]
    if not found:
        give_up(f"python3.{minor}: pyenv has no such interpreter here")
    return found[0]


# DWARF layouts equal the built-in tables
def check_layouts(minor):
    interpreter = pyenv_interpreter(minor)
    minor = interpreter.rsplit("python3.", 1)[1]
    libraries = glob.glob(os.path.join(os.path.dirname(interpreter), "..", "lib", f"libpython3.{minor}.so.1.0"))
    if not check(libraries, f"{interpreter}: its libpython is next to it"):
        return
    result = subprocess.run([LAYOUT_CHECK, libraries[0], minor], capture_output=True, text=True)
    check(result.returncode == 0, f"3.{minor}: DWARF layouts differ from the built-in table:\n"
          f"{result.stdout}{result.stderr}")


def python_roles(snapshot, *options):
    """Per type: objects the collector tracks, all objects; the types of 'part' blocks; and per
    generation, the tracked objects by type (lists left out, as the target leaves them out)."""
    out = heapsnap("list", snapshot, "--format", "jsonl", *options).stdout
    tracked, objects, parts = collections.Counter(), collections.Counter(), collections.Counter()
    generations = [collections.Counter() for _ in range(3)]
    for line in out.splitlines():
        block = json.loads(line)
        role = block.get("python")
        if role == "tracked":
            tracked[block["type"]] += 1
            if block["type"] != "list" and "generation" in block:
                generations[block["generation"]][block["type"]] += 1
        if role in ("tracked", "object", "immortal"):
            objects[block["type"]] += 1
        if role == "part":
            parts[block["type"]] += 1
    return tracked, objects, parts, generations


# (and Debian's python3.11 under the debug hooks, as python -X dev and every debug build run:
# each block starts with 16 bytes of the hooks' own before the object)
_runs = {}


def run(minor=None, malloc_hooks=None):
    """pyenv's CPython 3.MINOR (Debian's python3.11 without MINOR) run on the target, under
    `malloc_hooks` if given: made once per run for every case, as (name, interpreter, the target's
    pid, its result, the collector's garbage, snapshot)."""
    key = (minor, malloc_hooks)
    if key in _runs:
        return _runs[key]
    interpreter = pyenv_interpreter(minor) if minor else "/usr/bin/python3.11"
    name = "debian-python3.11" if interpreter.startswith("/usr/bin") else os.path.basename(interpreter)
    name += f"-{malloc_hooks}" if malloc_hooks else ""
    result_file = path(f"result-{name}")
    reader, writer = os.pipe()  # the target blocks reading stdin until killed
    environment = dict(os.environ, PYTHONMALLOC=malloc_hooks) if malloc_hooks else None
    process = start([interpreter, TARGET, result_file], stdin=reader, env=environment)
    deadline = time.time() + 60
    while not os.path.exists(result_file) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    if not os.path.exists(result_file):
        give_up(f"{name}: the target wrote its counts")
    result = ast.literal_eval(Path(result_file).read_text())
    # captured asleep in its read: on a loaded machine it can still be between the rename and
    # the read, its frame's values stack not written back (what it last touched would then look
    # referenced)
    while process_state(process.pid) != "S" and time.time() < deadline:
        time.sleep(0.01)
    snapshot = path(f"{name}.snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    # the collector's own answer, after the snapshot: what it finds to be garbage
    os.kill(process.pid, signal.SIGUSR1)
    deadline = time.time() + 30
    while not os.path.exists(result_file + ".garbage") and time.time() < deadline:
        time.sleep(0.05)
    garbage = ast.literal_eval(Path(result_file + ".garbage").read_text()) \
        if os.path.exists(result_file + ".garbage") else None
    process.kill()
    os.close(writer)
    os.close(reader)
    _runs[key] = name, interpreter, process.pid, result, garbage, snapshot
    return _runs[key]


def check_found_with(minor=None, malloc_hooks=None):
    """How the summary found the layouts and pymalloc's arenas."""
    name, interpreter, pid, result, garbage, snapshot = run(minor, malloc_hooks)
    summary = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)
    python = summary.get("python", {})
    stripped = interpreter.startswith("/usr/bin")
    check(python.get("layouts_from") == ("built-in" if stripped else "debug info"),
          f"{name}: layouts from {python.get('layouts_from')}")
    check(python.get("pymalloc_found_with") == ("heuristics" if stripped else "debug info"),
          f"{name}: pymalloc's arenas found with {python.get('pymalloc_found_with')}")


def check_objects(options, minor=None, malloc_hooks=None):
    name, interpreter, pid, result, garbage, snapshot = run(minor, malloc_hooks)
    expected = result["gc"]
    tracked, objects, parts, generations = python_roles(snapshot, *options)
    for generation in range(3):
        want = result["generations"][generation]
        got = generations[generation]
        wrong = {t: (want.get(t, 0), got.get(t, 0)) for t in set(want) | set(got)
                 if want.get(t, 0) != got.get(t, 0)}
        check(not wrong, f"{name} {options}: generation {generation}: tracked objects per type "
              f"differ from gc.get_objects({generation}) (type: (gc, heapsnap)): "
              f"{dict(sorted(wrong.items())[:10])}")
    wrong = {t: (expected.get(t, 0), tracked.get(t, 0)) for t in set(expected) | set(tracked)
             if expected.get(t, 0) != tracked.get(t, 0)}
    check(not wrong, f"{name} {options}: tracked objects per type differ from gc.get_objects() "
          f"(type: (gc, heapsnap)): {dict(sorted(wrong.items())[:20])}")
    created = result["created"]
    for cls in ("Plain", "Slotted", "Many", "Few", "Registered"):
        check(tracked["__main__." + cls] == created[cls],
              f"{name} {options}: {tracked['__main__.' + cls]} __main__.{cls}, created {created[cls]}")
    check(tracked["__main__.Connection"] == created["cycles"] and
          tracked["__main__.ConnectionHandler"] == created["cycles"],
          f"{name} {options}: the unreachable cycle pairs are found")
    check(objects["bytes"] >= created["bytes"] and objects["float"] >= created["float"],
          f"{name} {options}: {objects['bytes']} bytes and {objects['float']} float objects "
          f"found, {created['bytes']} and {created['float']} created")
    # the module-global lists' item arrays, the dicts' tables: named after their owners
    check(parts["list"] >= 5 and parts["dict"] >= 1,
          f"{name} {options}: blocks of lists and dicts named after them: {dict(parts)}")

    summary = json.loads(heapsnap("summary", snapshot, "--format", "json", "--type", "__main__.*",
                                  *options).stdout)
    retainers = {t["type"]: t.get("retainers", []) for t in summary["types"]}
    expected_paths = {
        "__main__.Plain": (["module __main__._GLOBAL_LIST", "list[*]", "__main__.Plain"], created["Plain"]),
        "__main__.Slotted": (["module __main__._SLOTTED", "list[*]", "__main__.Slotted"], created["Slotted"]),
        "__main__.Few": (["module __main__._FEW", "dict[*]", "__main__.Few"], created["Few"]),
        "__main__.Registered": (["class __main__.Registered.registry", "dict[*]", "__main__.Registered"],
                                created["Registered"]),
        "__main__.Held": ([f"thread {pid} frame serve_forever() local held", "__main__.Held"], 1),
    }
    for cls, (path_expected, count) in expected_paths.items():
        found = [r for r in retainers.get(cls, []) if r["path"] == path_expected]
        check(found and found[0]["count"] == count,
              f"{name} {options}: {cls} kept by {path_expected} x{count}; heapsnap: "
              f"{[(r['path'], r['count']) for r in retainers.get(cls, [])]}")
    cycles = summary["unreachable"]["cycles"]
    shape = ["__main__.Connection._conn_handler", "__main__.ConnectionHandler._conn",
             "__main__.Connection"]
    found = [c for c in cycles if c["shape"] == shape]
    check(found and found[0]["count"] == created["cycles"],
          f"{name} {options}: {created['cycles']} cycles of shape {shape}; heapsnap: "
          f"{[(c['shape'], c['count']) for c in cycles[:5]]}")
    unreachable = {t["type"]: t["count"] for t in summary["unreachable"]["by_type"]}
    # the objects the collector tracks that no root reaches are exactly its garbage, type by
    # type (what it does not track never shows in gc.garbage, though it goes with it)
    found_garbage = collections.Counter()
    for line in heapsnap("list", snapshot, "--format", "jsonl", "--paths", *options).stdout.splitlines():
        block = json.loads(line)
        if block.get("python") == "tracked" and block.get("path", 0) is None:
            found_garbage[block["type"]] += 1
    found_garbage = dict(found_garbage)
    # gc untracks the tuples that hold only atomic objects (strs, ints) as it collects, so a
    # few garbage tuples it no longer lists: heapsnap sees them tracked, as they were
    if garbage is not None and 0 <= found_garbage.get("tuple", 0) - garbage.get("tuple", 0) <= 3:
        found_garbage["tuple"] = garbage.get("tuple", 0)
        if found_garbage["tuple"] == 0:
            del found_garbage["tuple"]
    check(garbage is not None and found_garbage == garbage,
          f"{name} {options}: unreachable Python objects differ from the collector's garbage "
          f"(type: (gc, heapsnap)): "
          f"{ {t: ((garbage or {}).get(t, 0), found_garbage.get(t, 0)) for t in set(found_garbage) | set(garbage or {}) if (garbage or {}).get(t, 0) != found_garbage.get(t, 0)} }")
    check(unreachable.get("__main__.Connection") == created["cycles"],
          f"{name} {options}: {unreachable.get('__main__.Connection')} unreachable Connections, "
          f"{created['cycles']} made unreachable")


def check_with_dwarf(minor=None, malloc_hooks=None):
    """The summary's sources, and the objects read with the interpreter's DWARF (for Debian's
    stripped python3.11: its built-in layouts)."""
    check_found_with(minor, malloc_hooks)
    check_objects([], minor, malloc_hooks)


class Interpreters(Case):
    def test_all_present(self):
        interpreters = pyenv_interpreters()
        check(len(interpreters) == 6, f"pyenv's CPython 3.8 to 3.13 are all present: {interpreters}")
        check(os.path.exists("/usr/bin/python3.11"), "Debian's python3.11 is installed (scripts/setup installs it)")


class Layouts(Case):
    def test_layouts_python3_8(self):
        check_layouts(8)

    def test_layouts_python3_9(self):
        check_layouts(9)

    def test_layouts_python3_10(self):
        check_layouts(10)

    def test_layouts_python3_11(self):
        check_layouts(11)

    def test_layouts_python3_12(self):
        check_layouts(12)

    def test_layouts_python3_13(self):
        check_layouts(13)


class CPythonObjects(Case):
    def test_python3_8_with_dwarf(self):
        check_with_dwarf(8)

    def test_python3_8_no_debuginfo(self):
        check_objects(["--no-debuginfo"], 8)

    def test_python3_9_with_dwarf(self):
        check_with_dwarf(9)

    def test_python3_9_no_debuginfo(self):
        check_objects(["--no-debuginfo"], 9)

    def test_python3_10_with_dwarf(self):
        check_with_dwarf(10)

    def test_python3_10_no_debuginfo(self):
        check_objects(["--no-debuginfo"], 10)

    def test_python3_11_with_dwarf(self):
        check_with_dwarf(11)

    def test_python3_11_no_debuginfo(self):
        check_objects(["--no-debuginfo"], 11)

    def test_python3_12_with_dwarf(self):
        check_with_dwarf(12)

    def test_python3_12_no_debuginfo(self):
        check_objects(["--no-debuginfo"], 12)

    def test_python3_13_with_dwarf(self):
        check_with_dwarf(13)

    def test_python3_13_no_debuginfo(self):
        check_objects(["--no-debuginfo"], 13)

    def test_debian_python3_11_built_in(self):
        check_with_dwarf()

    def test_debian_python3_11_no_debuginfo(self):
        check_objects(["--no-debuginfo"])

    def test_debian_python3_11_pymalloc_debug_built_in(self):
        check_with_dwarf(malloc_hooks="pymalloc_debug")

    def test_debian_python3_11_pymalloc_debug_no_debuginfo(self):
        check_objects(["--no-debuginfo"], malloc_hooks="pymalloc_debug")


if __name__ == "__main__":
    main()
