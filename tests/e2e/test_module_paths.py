"""A path a snapshot names is not trusted: where the executable it records is now a FIFO, summary
must not block in open() (it warns, naming the path, and goes on); where it is now a directory, it
warns the same (and the sanitizer build checks that nothing libdwarf allocated leaks)."""
import os
import shutil
import subprocess
import time

from common import HEAPSNAP, KNOWN_STATE, check, finish, heapsnap, path, start_known_state

executable = path("known_state_copy")
shutil.copy(KNOWN_STATE, executable)
process, record = start_known_state(executable=executable)
snapshot = path("copy.snap")
heapsnap("capture", str(record["pid"]), "-o", snapshot)
process.kill()
process.wait()

began = time.monotonic()
whole = heapsnap("summary", snapshot, check_ok=False)
check(whole.returncode == 0, f"summary with the executable in place: {whole.stderr!r}")
# 20 s, or more for a build that takes long anyway (sanitizers on a loaded machine): a hang is forever
limit = max(20, 3 * (time.monotonic() - began))


def expect_summary_warns(what):
    try:
        result = subprocess.run([HEAPSNAP, "summary", snapshot], capture_output=True, text=True,
                                timeout=limit)
    except subprocess.TimeoutExpired:
        check(False, f"{what}: summary still running after {limit:.0f} s")
        return
    check(result.returncode in (0, 2), f"{what}: exit {result.returncode}: {result.stderr!r}")
    check(executable in result.stderr, f"{what}: no warning names {executable}: {result.stderr!r}")
    check("AddressSanitizer" not in result.stderr and "LeakSanitizer" not in result.stderr,
          f"{what}: {result.stderr!r}")
    print(f"{what}: exit {result.returncode}")


os.remove(executable)
os.mkfifo(executable)
expect_summary_warns("the executable replaced by a FIFO")

os.remove(executable)
os.mkdir(executable)
expect_summary_warns("the executable replaced by a directory")
os.rmdir(executable)

finish()
