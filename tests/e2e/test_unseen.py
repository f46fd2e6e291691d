"""Memory no walker reads, in every report: tests/targets/own_pool.c keeps 32 MiB in a pool of its
own, then another 32 MiB on SIGUSR1, while its malloc heap stays as it was. The summary states the
memory in every format; heapdiff states how it changed near the top of every format (text,
markdown, JSON, HTML, DOT), warns of the growth, and a --fail-on-growth gate never passes on it:
exit 1 past a limit in bytes, exit 2 (cannot judge) on a limit in objects, exit 0 under a limit in
bytes it stays within. Ground truth: the pool's size, which the program chose."""
import json
import os
import re
import signal
import subprocess

from common import HEAPDIFF, Case, check, heapsnap, main, path, start, wait_for_text

TARGET = os.environ.get("OWN_POOL", "build/tests/own_pool")
MIB = 1 << 20
_snapshots = []


def snapshots():
    """(before, after): own_pool captured before and after its pool grew, once for every case."""
    if not _snapshots:
        ready = path("pool.ready")
        process = start([TARGET, ready])
        wait_for_text(ready, process)
        before = path("pool-before.snap")
        heapsnap("capture", str(process.pid), "-o", before)
        process.send_signal(signal.SIGUSR1)
        wait_for_text(ready + ".grown", process)
        after = path("pool-after.snap")
        heapsnap("capture", str(process.pid), "-o", after)
        process.kill()
        _snapshots.extend((before, after))
    return _snapshots


def heapdiff(*args):
    before, after = snapshots()
    return subprocess.run([HEAPDIFF, *args, before, after], capture_output=True, text=True, timeout=300)


# the summary, in each of its formats
class Summary(Case):
    def test_summary_json(self):
        summary = json.loads(heapsnap("summary", snapshots()[1], "--format", "json").stdout)
        unseen = summary["heap"]["unseen"]
        check(64 * MIB <= unseen["bytes"] < 65 * MIB and unseen["largest_bytes"] >= 32 * MIB,
              f"summary json: the 64 MiB of pools are unseen: {unseen}")

    def test_summary_text(self):
        text = heapsnap("summary", snapshots()[1]).stdout
        head = "\n".join(text.splitlines()[:8])
        check(re.search(r"memory no walker reads: 64\.0 MiB", head), f"summary text says it near the top: {head}")

    def test_summary_dot(self):
        dot = heapsnap("summary", snapshots()[1], "--format", "dot").stdout
        check("// memory no walker reads: 64.0 MiB" in dot, f"summary dot says it: {dot[:400]}")

    def test_summary_html(self):
        html = heapsnap("summary", snapshots()[1], "--format", "html").stdout
        check('"unseen":' in html and "unseenNote" in html, "summary html carries it and shows it")


# heapdiff, in each of its formats
class Heapdiff(Case):
    def test_heapdiff_text(self):
        result = heapdiff()
        head = "\n".join(result.stdout.splitlines()[:6])
        check(result.returncode == 0 and "memory no walker reads: 32.0 MiB -> 64.0 MiB (+32.0 MiB)" in head,
              f"heapdiff text says the growth near the top: {result.returncode} {head}")
        check("memory no walker reads grew by 32.0 MiB" in result.stderr,
              f"heapdiff warns of the growth: {result.stderr[-600:]}")
        check(re.search(r"^\d+ warnings? \(on stderr\)$", result.stdout, re.M),
              f"heapdiff text counts its warnings: {result.stdout[-600:]}")
        check("none in the memory walked (memory no walker reads grew" in result.stdout,
              "heapdiff text: no grown type is not an all-clear")

    def test_heapdiff_markdown(self):
        markdown = heapdiff("--format", "markdown").stdout
        check("**Memory no walker reads:** 32.0 MiB -> 64.0 MiB (+32.0 MiB)" in markdown and
              "memory no walker reads grew by 32.0 MiB" in markdown,
              f"heapdiff markdown says it and carries the warnings: {markdown[:1200]}")

    def test_heapdiff_json(self):
        diff = json.loads(heapdiff("--format", "json").stdout)
        check(diff["unseen"]["delta"] == 32 * MIB and diff["after"]["unseen"]["bytes"] >= 64 * MIB and
              any("memory no walker reads grew" in w for w in diff["warnings"]),
              f"heapdiff json: {diff['unseen']} {diff['warnings']}")

    def test_heapdiff_dot(self):
        dot = heapdiff("--format", "dot").stdout
        check("// memory no walker reads: 32.0 MiB -> 64.0 MiB (+32.0 MiB)" in dot, f"heapdiff dot: {dot[:400]}")

    def test_heapdiff_html(self):
        html = heapdiff("--format", "html").stdout
        check('"unseen":{"before":' in html.replace(" ", "") and "unseenNote" in html, "heapdiff html carries it")


# the gates
class Gates(Case):
    def test_limit_in_objects_cannot_judge(self):
        result = heapdiff("--fail-on-growth", "*=1")
        check(result.returncode == 2 and "cannot be judged" in result.stderr,
              f"a limit in objects cannot judge unseen memory: exit 2: {result.returncode} {result.stderr[-300:]}")

    def test_limit_in_bytes_exceeded(self):
        result = heapdiff("--fail-on-growth", "*=10MiB")
        check(result.returncode == 1 and "memory no walker reads grew by 33554432 bytes, more than" in result.stderr,
              f"a limit in bytes fails on it: exit 1: {result.returncode} {result.stderr[-300:]}")

    def test_limit_in_bytes_kept(self):
        result = heapdiff("--fail-on-growth", "*=100MiB")
        check(result.returncode == 0, f"within a limit in bytes: exit 0: {result.returncode} {result.stderr[-300:]}")

    def test_same_snapshot_twice(self):
        # the same snapshot twice: nothing grew, no gate trips, no growth warning
        after = snapshots()[1]
        result = subprocess.run([HEAPDIFF, "--fail-on-growth", "*=1", after, after], capture_output=True,
                                text=True, timeout=300)
        check(result.returncode == 0 and "grew by" not in result.stderr,
              f"no growth, no failure: {result.returncode} {result.stderr[-300:]}")


if __name__ == "__main__":
    main()
