"""The structure-aware damage campaign (tests/fuzz/mutate_snapshots.py) for a minute: one field of
a snapshot's structure changed at a time (ELF header, program header, note header, seek table,
compressed frame), and `heapsnap summary` must refuse it (exit 2), give the original's answer, or
warn; a different answer in silence, a crash, a sanitizer report, a hang or more than 1 GiB fails.
The snapshot is known_state's, captured here; the seed is printed, to replay a failure.
bench/mutations runs the campaign for as long as asked."""
import os
import subprocess
import sys

from common import HEAPSNAP, check, finish, heapsnap, path, start_known_state

process, record = start_known_state()
snapshot = path("mutations.snap")
heapsnap("capture", str(record["pid"]), "-o", snapshot)
process.kill()
campaign = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz",
                        "mutate_snapshots.py")
result = subprocess.run([sys.executable, campaign, HEAPSNAP, snapshot, path("mutations"),
                         "--seconds", "60"], capture_output=True, text=True, timeout=600)
print(result.stdout)
check(result.returncode == 0, f"the campaign found what it must not: {result.stdout[-3000:]} "
                              f"{result.stderr[-1000:]}")
counts = result.stdout.splitlines()[0] if result.stdout else ""
check(" refused" in counts and int(counts.split()[0]) >= 20,
      f"the campaign ran (at least 20 mutated snapshots): {counts!r}")
finish()
