"""Fields of CPython's C types are named, not numbered (tests/targets/c_fields.py): the paths to
Payloads held by closures and by asyncio Tasks read `function.__closure__ -> tuple[*] ->
cell.ob_ref` and `_asyncio.Task.task_coro`, never `cell+16` or `_asyncio.Task+136`. With the
interpreter's DWARF the names come from it; without (--no-debuginfo, and Debian's stripped
python3.11) from the built-in table (scripts/cpython_field_table.py), and the paths must be the
same both ways. On every supported CPython: a case per interpreter."""
import functools
import json
import os
import re

from common import (Case, check, give_up, heapsnap, main, path, start, supported_pythons,
                    wait_for_text)

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets", "c_fields.py")
NUMBERED = re.compile(r"^(function|cell|_asyncio\.Task|_asyncio\.Future|method|coroutine)\+\d+$")


def payload_paths(snapshot, *options):
    summary = json.loads(heapsnap("summary", snapshot, "--format", "json", "--type", "__main__.Payload",
                                  *options).stdout)
    payload = next((t for t in summary["types"] if t["type"] == "__main__.Payload"), {})
    return sorted((r["path"], r["count"]) for r in payload.get("retainers", []))


# the interpreters supported_pythons() gives, each a case of its own below
NAMES = ("python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13",
         "debian-python3.11")


@functools.cache
def pythons():
    """supported_pythons(), whose checks (every interpreter present) run once, in the first case."""
    found = dict(supported_pythons())
    check(set(found) <= set(NAMES), f"every supported interpreter has its case: {sorted(set(found) - set(NAMES))}")
    return found


def check_fields(name):
    interpreter = pythons().get(name)
    if interpreter is None:
        give_up(f"{name}: the interpreter is not installed: {sorted(pythons())}")
    ready = path(f"fields-{name}.ready")
    process = start([interpreter, TARGET, ready])
    wait_for_text(ready, process, timeout=60)
    snapshot = path(f"fields-{name}.snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    by_dwarf, by_table = payload_paths(snapshot), payload_paths(snapshot, "--no-debuginfo")
    closures = [c for p, c in by_dwarf if p[-3:-1] == ["tuple[*]", "cell.ob_ref"] and
                "function.__closure__" in p]
    check(sum(closures) == 50, f"{name}: 50 Payloads through function.__closure__ and cell.ob_ref: {by_dwarf}")
    tasks = [c for p, c in by_dwarf if "_asyncio.Task.task_coro" in p]
    # (from 3.12 a coroutine's frame is read otherwise: its Payload is not reached that way yet)
    check(sum(tasks) == 20 or name in ("python3.12", "python3.13"),
          f"{name}: 20 Payloads through _asyncio.Task.task_coro: {by_dwarf}")
    numbered = [e for p, _ in by_dwarf + by_table for e in p if NUMBERED.match(e)]
    check(not numbered, f"{name}: no field of these types is named by its offset: {numbered}")
    check(by_dwarf == by_table, f"{name}: the same paths by the built-in table: {by_table} against {by_dwarf}")
    process.kill()


class Fields(Case):
    def test_python3_8(self):
        check_fields("python3.8")

    def test_python3_9(self):
        check_fields("python3.9")

    def test_python3_10(self):
        check_fields("python3.10")

    def test_python3_11(self):
        check_fields("python3.11")

    def test_python3_12(self):
        check_fields("python3.12")

    def test_python3_13(self):
        check_fields("python3.13")

    def test_debian_python3_11_stripped(self):
        check_fields("debian-python3.11")


if __name__ == "__main__":
    main()
