"""A path a snapshot names is not trusted: where the executable it records is now a FIFO, summary
must not block in open() (it warns, naming the path, and goes on); where it is now a directory, it
warns the same (and the sanitizer build checks that nothing libdwarf allocated leaks)."""
import functools
import os
import shutil
import subprocess
import time

from common import HEAPSNAP, KNOWN_STATE, Case, check, heapsnap, main, path, start_known_state

executable = path("known_state_copy")
snapshot = path("copy.snap")


@functools.cache
def captured():
    """A copy of known_state captured (and ended), and the summary with the copy in place, which
    tells how long a summary takes here; made once for every case."""
    shutil.copy(KNOWN_STATE, executable)
    process, record = start_known_state(executable=executable)
    heapsnap("capture", str(record["pid"]), "-o", snapshot)
    process.kill()
    process.wait()
    began = time.monotonic()
    whole = heapsnap("summary", snapshot, check_ok=False)
    # 20 s, or more for a build that takes long anyway (sanitizers on a loaded machine): a hang is forever
    limit = max(20, 3 * (time.monotonic() - began))
    return whole, limit


def replace_executable(make):
    """Puts what `make` makes (a FIFO, a directory) where the executable was."""
    if os.path.isdir(executable):
        os.rmdir(executable)
    elif os.path.lexists(executable):
        os.remove(executable)
    make(executable)


def expect_summary_warns(what):
    _, limit = captured()
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


class ModulePaths(Case):
    def test_executable_in_place(self):
        whole, _ = captured()
        check(whole.returncode == 0, f"summary with the executable in place: {whole.stderr!r}")

    def test_executable_now_a_fifo(self):
        captured()
        replace_executable(os.mkfifo)
        expect_summary_warns("the executable replaced by a FIFO")

    def test_executable_now_a_directory(self):
        captured()
        replace_executable(os.mkdir)
        expect_summary_warns("the executable replaced by a directory")
        os.rmdir(executable)


if __name__ == "__main__":
    main()
