#!/usr/bin/env python3
"""heapdiff as the end-to-end tests run it (tests/e2e/common.py puts it in HEAPDIFF): the real
heapdiff (REAL_HEAPDIFF), with its output, errors and exit status passed on as they are, and one
check on every report the suite makes: a report that exits 0 with no warning must not hide a
growth of the memory no walker reads. A report that does is written to HEAPDIFF_CHECK_LOG, which
common.finish() turns into a failure of the test that made it."""
import os
import re
import subprocess
import sys

UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
JUDGED = 1 << 20  # heapdiff's UNSEEN_JUDGED


def unseen_growth(report):
    """The growth of the memory no walker reads the report states, in bytes (0: none stated)."""
    found = re.search(r'"unseen":\s*\{\s*"before":\s*(\d+),\s*"after":\s*(\d+),\s*"delta":\s*(-?\d+)', report)
    if found:
        return int(found.group(3))
    found = re.search(r"[Mm]emory no walker reads:\**\s*\S+ \S+ -> \S+ \S+ \(([+-])([0-9.]+) (\S+)\)", report)
    if found:
        return (1 if found.group(1) == "+" else -1) * float(found.group(2)) * UNITS.get(found.group(3), 1)
    return 0


def main():
    result = subprocess.run([os.environ["REAL_HEAPDIFF"], *sys.argv[1:]], capture_output=True)
    sys.stdout.buffer.write(result.stdout)
    sys.stderr.buffer.write(result.stderr)
    report = result.stdout.decode("utf-8", "replace")
    errors = result.stderr.decode("utf-8", "replace")
    grown = unseen_growth(report)
    log = os.environ.get("HEAPDIFF_CHECK_LOG")
    if result.returncode == 0 and "warning" not in errors and grown >= JUDGED and log:
        with open(log, "a") as out:
            out.write(f"heapdiff {' '.join(sys.argv[1:])} exited 0 with no warning, but the memory "
                      f"no walker reads grew by {grown:.0f} bytes\n")
    sys.exit(result.returncode)


main()
