"""Python objects damaged through ctypes (tests/targets/python_damage.py) are warned about by their
address, counted in the summary, and lose nothing else, for every supported CPython on this machine
(pyenv's 3.8 to 3.13 with DWARF, and Debian's stripped /usr/bin/python3.11), against the target's own
record of what it damaged:

- `heapsnap summary` (text and JSON), `heapsnap list` and `heapdiff` (against a snapshot from before
  the damage) exit 0;
- a warning names each object whose type pointer is damaged, each list whose item array is, the
  dict whose keys table is, and each object whose reference count or collector links are, by the
  object's address;
- the summary and heapdiff count (JSON on each interpreter; text, and heapdiff's markdown, on the
  first) the objects left untyped, the damaged containers, reference counts and collector links,
  and heapdiff counts none in the snapshot from before the damage;
- every undamaged instance is still typed (Item: all but the three whose type is damaged, those
  with a damaged reference count or collector links among them), the Items the module global
  ITEMS holds have their path from it, and every tracked instance is in a collector's generation
  (the list the damaged links break is walked back from its end).

A case per interpreter (`-k python3_12`, or `-k debian` runs one only), and one for the text
formats, on the first interpreter."""
import ast
import collections
import functools
import json
import os
import signal
import subprocess
import time

from common import (Case, check, give_up, heapsnap, main, path, process_state, start,
                    supported_pythons)

HEAPDIFF = os.environ.get("HEAPDIFF", "build/heapdiff")
TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets",
                      "python_damage.py")

# the interpreters supported_pythons() gives, each a case of its own below
NAMES = ("python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13",
         "debian-python3.11")


@functools.cache
def pythons():
    """supported_pythons() as (name, path), whose checks (every interpreter present) run once, in
    the first case."""
    found = supported_pythons()
    check({name for name, _ in found} <= set(NAMES),
          f"every supported interpreter has its case: {sorted({n for n, _ in found} - set(NAMES))}")
    return found


def wait_for(file, process, deadline):
    while not os.path.exists(file) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    while process_state(process.pid) != "S" and time.time() < deadline:
        time.sleep(0.01)  # asleep in its read
    return os.path.exists(file)


@functools.cache
def captured(name):
    """The target on interpreter `name` captured before and after it damaged its objects, and its
    record of the damage; once for every case."""
    interpreter = dict(pythons()).get(name)
    if interpreter is None:
        give_up(f"{name}: the interpreter is not installed: {pythons()}")
    result_file = path(f"result-{name}")
    reader, writer = os.pipe()  # the target blocks reading stdin until killed
    process = start([interpreter, TARGET, result_file], stdin=reader)
    deadline = time.time() + 60
    if not check(wait_for(result_file + ".before", process, deadline),
                 f"{name}: the target built its objects"):
        give_up(f"{name}: nothing to look at")
    before = path(f"{name}-before.snap")
    heapsnap("capture", str(process.pid), "-o", before)
    os.kill(process.pid, signal.SIGUSR1)
    if not check(wait_for(result_file, process, deadline),
                 f"{name}: the target damaged its objects and lived"):
        give_up(f"{name}: nothing to look at")
    with open(result_file) as f:
        record = ast.literal_eval(f.read())
    snapshot = path(f"{name}.snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    check(process.poll() is None, f"{name}: the target is alive after the captures")
    process.kill()
    os.close(writer)
    os.close(reader)
    return before, snapshot, record


def counted(record):
    return f"{len(record['damaged_type'])} objects with a damaged type, left untyped"


def check_damage(name):
    before, snapshot, record = captured(name)
    # the JSON formats on each interpreter; the text ones, the same code whatever the version,
    # on the first (test_text_formats; the sanitizer build's run must stay within the test's time)
    summary_json = heapsnap("summary", snapshot, "--format", "json")
    listed = heapsnap("list", snapshot, "--format", "jsonl", "--paths")
    diff = subprocess.run([HEAPDIFF, before, snapshot, "--format", "json"], capture_output=True,
                          text=True, timeout=300)
    check(diff.returncode == 0, f"{name}: heapdiff exited {diff.returncode}: {diff.stderr[-2000:]}")
    for label, result in (("summary", summary_json), ("list", listed), ("heapdiff", diff)):
        warnings = result.stderr
        for kind in ("damaged_type", "damaged_list", "damaged_dict", "damaged_refcount",
                     "damaged_links"):
            for address in record[kind]:
                check(f"0x{address:x}" in warnings,
                      f"{name}: {label} warns about the {kind} object at 0x{address:x}; "
                      f"stderr: {warnings[-1500:]}")
    summary = json.loads(summary_json.stdout or "{}")
    damaged = summary.get("python", {}).get("damaged", {})
    want = {"untyped": len(record["damaged_type"]), "containers":
            len(record["damaged_list"]) + len(record["damaged_dict"]),
            "reference_counts": len(record["damaged_refcount"]),
            # the object, and the collector's list it breaks
            "gc_links": len(record["damaged_links"]) + 1}
    check(damaged == want, f"{name}: the JSON summary counts the damage {want}: {damaged}")
    diff_json = json.loads(diff.stdout or "{}")
    # and none before the damage: no false alarm on the same objects whole
    check(diff_json.get("after", {}).get("python_damaged") == want and
          not any(diff_json.get("before", {}).get("python_damaged", {"?": 1}).values()),
          f"{name}: heapdiff's JSON counts the damage after, none before: "
          f"{diff_json.get('before', {}).get('python_damaged')}, "
          f"{diff_json.get('after', {}).get('python_damaged')}")

    typed = collections.Counter()
    held_by_items = without_generation = 0
    damaged_refcount_typed = set()
    blocks = [json.loads(line) for line in listed.stdout.splitlines()]
    for block in blocks:
        kind = block.get("type") or ""
        if not kind.startswith("__main__.") or block.get("python") == "part":
            continue  # (an instance's values are a part of it, named after it)
        typed[kind[len("__main__."):]] += 1
        if block.get("python") == "tracked" and "generation" not in block:
            without_generation += 1
        if kind == "__main__.Item" and (block.get("path") or [None])[0] == "module __main__.ITEMS":
            held_by_items += 1
        for address in record["damaged_refcount"] + record["damaged_links"]:
            if block["addr"] <= address < block["addr"] + block["size"] and kind == "__main__.Item":
                damaged_refcount_typed.add(address)
    for cls, count in record["typed"].items():
        check(typed[cls] == count, f"{name}: {count} {cls} still typed; heapsnap: {typed[cls]}")
    check(damaged_refcount_typed == set(record["damaged_refcount"] + record["damaged_links"]),
          f"{name}: the Items with a damaged reference count or collector links are typed: "
          f"{sorted(map(hex, damaged_refcount_typed))}")
    check(held_by_items == record["typed"]["Item"],
          f"{name}: {record['typed']['Item']} Items have their path from ITEMS; heapsnap: "
          f"{held_by_items}")
    # the collector's list broken at one Item is walked back from its end for the rest
    check(without_generation == 0,
          f"{name}: {without_generation} tracked instances are in no collector's generation")
    for address in record["damaged_type"]:
        block = next((b for b in blocks if b["addr"] <= address < b["addr"] + b["size"]), None)
        check(block is not None and block.get("type") != "__main__.Item",
              f"{name}: the object at 0x{address:x} whose type is damaged is left untyped: {block}")


class PythonDamage(Case):
    def test_python3_8(self):
        check_damage("python3.8")

    def test_python3_9(self):
        check_damage("python3.9")

    def test_python3_10(self):
        check_damage("python3.10")

    def test_python3_11(self):
        check_damage("python3.11")

    def test_python3_12(self):
        check_damage("python3.12")

    def test_python3_13(self):
        check_damage("python3.13")

    def test_debian_python3_11_stripped(self):
        check_damage("debian-python3.11")

    def test_text_formats(self):
        # the text summary and heapdiff's text and markdown count the damage too: the same code
        # whatever the version, on the first interpreter's snapshots
        name = pythons()[0][0] if pythons() else give_up("no interpreter")
        before, snapshot, record = captured(name)
        text = heapsnap("summary", snapshot).stdout
        check(counted(record) in text, f"{name}: the text summary counts the untyped objects: "
              f"{[l for l in text.splitlines() if 'damaged' in l]}")
        for form, line in (("text", f"after    damaged: {counted(record)}"),
                           ("markdown", f"**Damaged Python objects in after:** {counted(record)}")):
            out = subprocess.run([HEAPDIFF, before, snapshot, "--format", form],
                                 capture_output=True, text=True, timeout=300).stdout
            check(line in out, f"{name}: heapdiff's {form} counts the untyped objects: "
                  f"{[l for l in out.splitlines() if 'amaged' in l]}")


if __name__ == "__main__":
    main()
