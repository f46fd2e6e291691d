"""Identity across snapshots: a dict that was cyclic garbage in BEFORE is freed, and a new dict is
put at its address before AFTER (tests/targets/reused_dict.py). Same address, type and size, but
not the same object: heapdiff counts the new dicts as new and never says a container "grew" from the
garbage's 3 items to the new dict's 27. The rule (docs/heapdiff.md, "Identity"): an object no
root reaches in BEFORE and one a root reaches in AFTER are never the same. Ground truth: the
addresses the target recorded with id(). On every supported CPython."""
import ast
import json
import os
import signal
import subprocess

from common import HEAPDIFF, Case, check, give_up, heapsnap, main, path, start, supported_pythons, wait_for_text

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets", "reused_dict.py")


def check_identity(name):
    interpreter = dict(supported_pythons()).get(name)
    if interpreter is None:
        give_up(f"{name}: not present")
    record = path(f"reused-{name}")
    process = start([interpreter, TARGET, record])
    garbage = ast.literal_eval(wait_for_text(record, process, timeout=60))  # noqa: F841
    before, after = path(f"reused-{name}-before.snap"), path(f"reused-{name}-after.snap")
    heapsnap("capture", str(process.pid), "-o", before)
    process.send_signal(signal.SIGUSR1)
    reused = ast.literal_eval(wait_for_text(record + ".grown", process, timeout=60))
    check(len(reused) >= 1, f"{name}: some new dicts took a garbage dict's address: {reused}")
    heapsnap("capture", str(process.pid), "-o", after)
    result = subprocess.run([HEAPDIFF, "--format", "json", before, after], capture_output=True,
                            text=True, timeout=300)
    if not check(result.returncode == 0, f"{name}: heapdiff: {result.returncode} {result.stderr[-300:]}"):
        process.kill()
        return
    diff = json.loads(result.stdout)
    invented = [c for c in diff["grown_containers"] if c["type"] == "dict" and c["items_before"] == 3]
    check(not invented, f"{name}: no garbage dict is said to have lived through and grown: {invented}")
    dicts = next((g for g in diff["grown"] if g["type"] == "dict"), {})
    check(dicts.get("new", 0) >= 400, f"{name}: the 400 new dicts are new: {dicts.get('new')}")
    # (an object's address is its block's, past the collector's header)
    listed = heapsnap("list", after, "--format", "jsonl").stdout.splitlines()
    types = {o["addr"]: o["type"] for o in map(json.loads, listed)}
    held = [a for a in reused if any(types.get(a - header) == "dict" for header in (0, 16, 32))]
    check(len(held) == len(reused), f"{name}: the reused addresses hold dicts in AFTER: "
                                    f"{len(held)} of {len(reused)}")
    process.kill()


class Identity(Case):
    def test_python3_8(self):
        check_identity("python3.8")

    def test_python3_9(self):
        check_identity("python3.9")

    def test_python3_10(self):
        check_identity("python3.10")

    def test_python3_11(self):
        check_identity("python3.11")

    def test_python3_12(self):
        check_identity("python3.12")

    def test_python3_13(self):
        check_identity("python3.13")

    def test_debian_python3_11(self):
        check_identity("debian-python3.11")


if __name__ == "__main__":
    main()
