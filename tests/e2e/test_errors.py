"""Every error a user can meet: exit code 2 and one message naming the cause and what to do, and
never a file left under the final name (or a temporary one); `-o` never replaces another user's
file."""
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import (HEAPDIFF, HEAPSNAP, WORKDIR, Case, check, decompress, give_up, heapsnap, main, path,
                    process_state, start, start_known_state)


def expect_error(result, *needles, what):
    check(result.returncode == 2, f"{what}: exit code {result.returncode}, stderr {result.stderr!r}")
    for needle in needles:
        check(needle in result.stderr, f"{what}: {needle!r} not in {result.stderr!r}")
    check(result.stdout == "", f"{what}: printed {result.stdout!r} on stdout")


def leftovers(directory, stem):
    return [n for n in os.listdir(directory) if n.startswith(stem)]


_target = []


def target():
    """The pid of a known_state started once, for every case that captures a process."""
    if not _target:
        process, record = start_known_state()
        _target.append(record["pid"])
    return _target[0]


_good = []


def good_snapshot():
    """A snapshot of target(), captured once for every case that reads one."""
    if not _good:
        _good.append(path("good.snap"))
        heapsnap("capture", str(target()), "-o", _good[0])
    return _good[0]


# usage
def check_usage():
    expect_error(heapsnap(check_ok=False), "usage", what="no command")
    expect_error(heapsnap("capture", check_ok=False), "expects one PID", what="capture without pid")
    expect_error(heapsnap("capture", "12ab", check_ok=False), "'12ab' is not a process id", what="bad pid")
    expect_error(heapsnap("capture", "1", "--level", "99", check_ok=False), "--level", what="bad level")
    expect_error(heapsnap("frobnicate", check_ok=False), "unknown command", what="unknown command")
    for command in ("capture", "import", "info"):
        helped = heapsnap(command, "--help")
        check(helped.returncode == 0 and "usage: heapsnap " + command in helped.stdout, f"{command} --help")


# no such process: a pid that existed and was reaped
def check_no_such_process():
    gone = subprocess.Popen(["true"])
    gone.wait()
    expect_error(heapsnap("capture", str(gone.pid), "-o", path("gone.snap"), check_ok=False),
                 f"no process with pid {gone.pid}", what="no such process")
    check(not os.path.exists(path("gone.snap")), "no file for a missing process")


# another uid, heapsnap unprivileged
def check_other_uid():
    pid = target()
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", HEAPSNAP,
                             "capture", str(pid), "-o", "/tmp/never.snap"], capture_output=True, text=True)
    expect_error(result, f"pid {pid} runs as uid 0", "heapsnap as uid 65534", "CAP_SYS_PTRACE",
                 what="other uid")


# root without CAP_SYS_PTRACE against another uid's process
def check_no_cap_sys_ptrace():
    other, other_record = start_known_state(user=65534)
    result = subprocess.run(["setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace", HEAPSNAP,
                             "capture", str(other_record["pid"]), "-o", path("nocap.snap")],
                            capture_output=True, text=True)
    expect_error(result, "runs as uid 65534", "without CAP_SYS_PTRACE", what="no CAP_SYS_PTRACE")
    check(not leftovers(os.path.dirname(path("x")), "nocap"), "no file without permission")


def seize(target, name=None):
    """A helper process that seizes `target` with ptrace and holds it (named `name`)."""
    rename = f"open('/proc/self/comm', 'w').write({name!r})" if name else ""
    tracer = start([sys.executable, "-c", f"""
import ctypes, time
{rename}
libc = ctypes.CDLL(None, use_errno=True)
assert libc.ptrace(0x4206, {target}, None, None) == 0, ctypes.get_errno()
print("seized", flush=True)
time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    check(tracer.stdout.readline().strip() == "seized", f"the helper tracer {name or ''} attached")
    return tracer


# already traced by a debugger: a helper process seizes the target and holds it
def check_already_traced():
    pid = target()
    tracer = seize(pid)
    expect_error(heapsnap("capture", str(pid), "-o", path("traced.snap"), check_ok=False),
                 f"already traced by pid {tracer.pid}", "detach", what="already traced")
    check(not os.path.exists(path("traced.snap")), "no file when already traced")
    tracer.kill()
    tracer.wait()
    check(process_state(pid) not in ("t", "T", None), "target runs after the tracer left")


# the tracer is another heapsnap (named so): retry later, no debugger to detach
def check_traced_by_heapsnap():
    pid = target()
    tracer = seize(pid, "heapsnap")
    expect_error(heapsnap("capture", str(pid), "-o", path("traced.snap"), check_ok=False),
                 f"being captured by another heapsnap (pid {tracer.pid}", "retry", what="another heapsnap")
    tracer.kill()
    tracer.wait()


# what cannot be captured at all: a kernel thread, a zombie
def check_kernel_thread():
    expect_error(heapsnap("capture", "2", "-o", path("kthread.snap"), check_ok=False),
                 "pid 2 is a kernel thread", what="kthreadd")


def check_zombie():
    zombie = start(["true"])
    time.sleep(0.5)  # exited, not reaped: a zombie
    expect_error(heapsnap("capture", str(zombie.pid), "-o", path("zombie.snap"), check_ok=False),
                 f"pid {zombie.pid} is a zombie", what="a zombie")
    zombie.wait()


# output not writable
def check_unwritable_output():
    pid = target()
    expect_error(heapsnap("capture", str(pid), "-o", "/nonexistent-dir/x.snap", check_ok=False),
                 "/nonexistent-dir/x.snap", "-o", what="unwritable output")
    check(process_state(pid) not in ("t", "T", None), "target runs after a failed write")


# -o over another user's file, in a directory all may write to (as /tmp): refused, the file left
# as it was; over a file of one's own, replaced
def check_capture_over_files():
    pid = target()
    os.chmod(WORKDIR, 0o777)  # (uid 65534 writes in it, as start_known_state(user=) lets it)
    shared = path("shared")
    os.mkdir(shared)
    os.chmod(shared, 0o1777)
    theirs = os.path.join(shared, "theirs.snap")
    subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
                    f"echo theirs > {theirs}"], check=True)
    expect_error(heapsnap("capture", str(pid), "-o", theirs, check_ok=False), theirs,
                 "belongs to uid 65534", what="-o over another user's file")
    check(Path(theirs).read_bytes() == b"theirs\n" and os.stat(theirs).st_uid == 65534,
          "another user's file is left as it was")
    check(os.listdir(shared) == ["theirs.snap"], f"nothing else left: {os.listdir(shared)}")
    mine = os.path.join(shared, "mine.snap")
    with open(mine, "w") as f:
        f.write("old")
    heapsnap("capture", str(pid), "-o", mine)
    check(heapsnap("info", "--verify", mine, check_ok=False).returncode == 0 and
          os.stat(mine).st_mode & 0o777 == 0o600, "-o over a file of one's own replaces it, mode 0600")


# the same for export and import, which write through the same safe path; and neither writes
# over the file it reads, by any name (the snapshot itself, a hard link to it, a symlink)
def check_export_import_over_files():
    os.chmod(WORKDIR, 0o777)  # (uid 65534 writes in it, as start_known_state(user=) lets it)
    shared = path("shared-export")
    os.mkdir(shared)
    os.chmod(shared, 0o1777)
    mine = os.path.join(shared, "mine.snap")
    shutil.copy(good_snapshot(), mine)
    export_theirs = os.path.join(shared, "theirs.heapsnapshot")
    subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
                    f"echo theirs > {export_theirs}"], check=True)
    expect_error(heapsnap("export", mine, "-o", export_theirs, check_ok=False), export_theirs,
                 "belongs to uid 65534", what="export -o over another user's file")
    check(Path(export_theirs).read_bytes() == b"theirs\n", "export left another user's file as it was")
    original = Path(mine).read_bytes()
    os.link(mine, os.path.join(shared, "hardlink.snap"))
    os.symlink(mine, os.path.join(shared, "symlink.snap"))
    for name in ("mine.snap", "hardlink.snap", "symlink.snap"):
        target = os.path.join(shared, name)
        expect_error(heapsnap("export", mine, "-o", target, check_ok=False), "the file this command reads",
                     what=f"export -o {name} (its own input)")
    check(Path(mine).read_bytes() == original, "the input is left as it was")
    own_core = os.path.join(shared, "own.core")
    decompress(mine, own_core)
    core_bytes = Path(own_core).read_bytes()
    expect_error(heapsnap("import", own_core, "-o", own_core, check_ok=False), "the file this command reads",
                 what="import -o its own core")
    check(Path(own_core).read_bytes() == core_bytes, "import left its core as it was")
    exported = os.path.join(shared, "mine.heapsnapshot")
    with open(exported, "w") as f:
        f.write("old")
    heapsnap("export", mine, "-o", exported)
    check(Path(exported).read_text()[:1] == "{" and os.stat(exported).st_mode & 0o777 == 0o600,
          "export -o over a file of one's own replaces it, mode 0600")


# disk full: a 256 KiB tmpfs in a private mount namespace, and a target whose snapshot cannot be
# smaller than the 4 MiB of random bytes it holds
_noisy = []


def noisy_target():
    """The incompressible target, started once for every case that needs it."""
    if not _noisy:
        noisy = start([sys.executable, "-c", "import os, time\nx = os.urandom(4 << 20)\nprint('ok', flush=True)\ntime.sleep(600)"],
                      stdout=subprocess.PIPE, text=True)
        if noisy.stdout.readline().strip() != "ok":
            give_up("incompressible target ready")
        _noisy.append(noisy)
    return _noisy[0]


def check_disk_full():
    noisy = noisy_target()
    script = f"""
mount -t tmpfs -o size=256k tmpfs /mnt || exit 99
{HEAPSNAP} capture {noisy.pid} -o /mnt/full.snap
echo "rc=$?"
ls -A /mnt
"""
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    check("rc=2" in result.stdout, f"disk full: {result.stdout!r} {result.stderr!r}")
    check("No space left on device" in result.stderr and "/mnt/full.snap" in result.stderr,
          f"disk full message: {result.stderr!r}")
    check(result.stdout.strip().endswith("rc=2"), f"files left on the full disk: {result.stdout!r}")


# file-size limit: write fails with EFBIG, nothing left behind
def check_file_size_limit():
    noisy = noisy_target()
    limit = subprocess.run(["sh", "-c", f"ulimit -f 64; exec {HEAPSNAP} capture {noisy.pid} -o {path('big.snap')}"],
                           capture_output=True, text=True)
    expect_error(limit, "big.snap", what="file size limit")
    check(not leftovers(os.path.dirname(path("x")), "big.snap"), "nothing left after EFBIG")


# a target that dies while frozen: once the target is traced, heapsnap itself is stopped
# (SIGSTOP) so it cannot go on, the target is killed, and heapsnap continued. Killed before its
# memory was all copied, the capture must fail naming the pid and leave no file; killed after
# (heapsnap was stopped between the copy's end and the detach), the snapshot it writes is whole,
# and that is right too (by fork the window is wider: the clone keeps a whole copy). So each try
# checks whichever happened, and the tries go on, with a new target each, until the first case
# has been seen.
def traced(target_pid):
    with open(f"/proc/{target_pid}/status") as f:
        return "TracerPid:\t0" not in f.read()


BIG_TARGET = "import time\nx = bytearray(1500 << 20)\nfor i in range(0, len(x), 4096): x[i] = 1\nprint('ok', flush=True)\ntime.sleep(600)"
directory = os.path.dirname(path("x"))


def check_target_dies_while_frozen():
    died_during_copy = False
    for target_try in range(5):
        big = start([sys.executable, "-c", BIG_TARGET], stdout=subprocess.PIPE, text=True)
        check(big.stdout.readline().strip() == "ok", "big target ready")
        caught = False
        for attempt in range(20):
            capture = subprocess.Popen([HEAPSNAP, "capture", str(big.pid), "-o", path("dies.snap"),
                                        "--threads", "1", "--method", "freeze"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 30
            while time.time() < deadline and capture.poll() is None and not traced(big.pid):
                time.sleep(0.0005)
            if capture.poll() is None:
                os.kill(capture.pid, signal.SIGSTOP)
                if traced(big.pid):
                    caught = True
                    break
                os.kill(capture.pid, signal.SIGCONT)
            capture.communicate(timeout=120)
            for leftover in leftovers(directory, "dies.snap"):
                os.unlink(os.path.join(directory, leftover))
        check(caught, "heapsnap stopped while the target was frozen")
        os.kill(big.pid, signal.SIGKILL)
        os.kill(capture.pid, signal.SIGCONT)
        out, err = capture.communicate(timeout=120)
        if capture.returncode == 2:
            check(f"pid {big.pid} exited during capture" in err, f"target exits during capture: {err!r}")
            check(not leftovers(directory, "dies.snap"), "no file for a target that died")
            died_during_copy = True
            break
        # the copy was done: the snapshot must be whole
        check(capture.returncode == 0 and os.path.exists(path("dies.snap")),
              f"target killed after the copy: rc {capture.returncode} {err!r}")
        verified = heapsnap("info", "--verify", path("dies.snap"), check_ok=False)
        check(verified.returncode == 0, f"a snapshot finished after its target died is whole: {verified.stderr!r}")
        os.unlink(path("dies.snap"))
    check(died_during_copy, "a target killed during the copy was seen (5 targets tried)")


# bad input files
def check_not_a_snapshot():
    expect_error(heapsnap("info", "/etc/passwd", check_ok=False), "/etc/passwd", "not a heapsnap snapshot",
                 what="not a snapshot")


def check_missing_file():
    expect_error(heapsnap("info", path("missing.snap"), check_ok=False), "missing.snap", "No such file",
                 what="missing file")


def check_truncated():
    snapshot = good_snapshot()
    data = Path(snapshot).read_bytes()
    with open(path("truncated.snap"), "wb") as f:
        f.write(data[: len(data) // 2])
    expect_error(heapsnap("info", path("truncated.snap"), check_ok=False), "truncated.snap",
                 "heapsnap snapshot cut short", f"ends after {len(data) // 2} bytes", what="truncated snapshot")


# what is not a regular file is refused at once, named for what it is (a FIFO would hang a read)
def check_not_a_regular_file():
    snapshot = good_snapshot()
    os.mkfifo(path("fifo.snap"))
    for command in (["info"], ["summary"], ["list"], ["import"], ["export"]):
        args = command + [path("fifo.snap")] + (["-o", path("out.any")] if command[0] in ("import", "export")
                                                else [])
        expect_error(heapsnap(*args, check_ok=False, timeout=20), "fifo.snap", "is a FIFO (named pipe)",
                     what=f"{command[0]} of a FIFO")
    expect_error(subprocess.run([HEAPDIFF, path("fifo.snap"), snapshot], capture_output=True, text=True,
                                timeout=20), "is a FIFO", what="heapdiff of a FIFO")
    expect_error(heapsnap("info", path(""), check_ok=False), "is a directory, not a snapshot file",
                 what="a directory")
    expect_error(heapsnap("info", "/dev/null", check_ok=False), "/dev/null is a device", what="a device")


# heapdiff: snapshots in the wrong order are refused (--force shows them backwards, with no
# wrapped interval); one file given twice is said
def check_heapdiff_wrong_order():
    pid = target()
    snapshot = good_snapshot()
    later = path("later.snap")
    time.sleep(1.1)
    heapsnap("capture", str(pid), "-o", later)
    expect_error(subprocess.run([HEAPDIFF, later, snapshot], capture_output=True, text=True, timeout=300),
                 "was captured before BEFORE", "--force", what="heapdiff AFTER BEFORE")
    forced = subprocess.run([HEAPDIFF, "--force", later, snapshot], capture_output=True, text=True, timeout=300)
    check(forced.returncode == 0 and "shown backwards" in forced.stderr and
          re.search(r"objects in -[0-9.]+s\)", forced.stdout),
          f"heapdiff --force AFTER BEFORE: a negative interval: {forced.returncode} {forced.stdout[:400]!r}")


def check_heapdiff_one_file_twice():
    snapshot = good_snapshot()
    twice = subprocess.run([HEAPDIFF, snapshot, snapshot], capture_output=True, text=True, timeout=300)
    check(twice.returncode == 0 and "are one file" in twice.stderr, f"one file twice is said: {twice.stderr[-300:]!r}")


def check_bit_flip_first_frame():
    data = Path(good_snapshot()).read_bytes()
    flipped = bytearray(data)
    flipped[40] ^= 0x04  # inside frame 0, which holds the ELF header and notes
    Path(path("flipped.snap")).write_bytes(flipped)
    expect_error(heapsnap("info", path("flipped.snap"), check_ok=False), "flipped.snap", "corrupt zstd frame 0",
                 what="bit flip in the first frame")


# somewhere in the memory frames (--verify reads them all), at a bit that matters: some bits of a
# zstd stream change nothing decompressed (CI met one: the frame decompressed whole, checksum
# right), so zstd itself says which flips damage the data
def check_bit_flip_found_by_verify():
    snapshot = good_snapshot()
    data = Path(snapshot).read_bytes()
    whole = subprocess.run(["zstd", "-q", "-d", "-c", snapshot], capture_output=True).stdout
    for offset in range(len(data) // 2, len(data) - 64):
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        Path(path("flipped2.snap")).write_bytes(flipped)
        by_zstd = subprocess.run(["zstd", "-q", "-d", "-c", path("flipped2.snap")], capture_output=True)
        if by_zstd.returncode != 0 or by_zstd.stdout != whole:
            break
    expect_error(heapsnap("info", "--verify", path("flipped2.snap"), check_ok=False), "flipped2.snap",
                 "corrupt zstd frame", what="bit flip found by --verify")
    check(heapsnap("info", "--verify", snapshot).returncode == 0, "an intact snapshot verifies")


def check_bad_seek_table():
    data = Path(good_snapshot()).read_bytes()
    table = bytearray(data)
    table[-9] ^= 0xFF  # the frame count in the seek table's footer
    Path(path("table.snap")).write_bytes(table)
    expect_error(heapsnap("info", path("table.snap"), check_ok=False), "table.snap", "bad seek table",
                 what="bad seek table")


def check_plain_zstd():
    snapshot = good_snapshot()
    core = path("plain.core")
    decompress(snapshot, core)
    subprocess.run(["zstd", "-q", "-f", core, "-o", path("plain.zst")], check=True)
    expect_error(heapsnap("info", path("plain.zst"), check_ok=False), "without a seek table", "zstd -d",
                 what="plain zstd")


class Usage(Case):
    def test_usage(self):
        check_usage()


class Capture(Case):
    def test_no_such_process(self):
        check_no_such_process()

    def test_other_uid(self):
        check_other_uid()

    def test_no_cap_sys_ptrace(self):
        check_no_cap_sys_ptrace()

    def test_already_traced(self):
        check_already_traced()

    def test_traced_by_another_heapsnap(self):
        check_traced_by_heapsnap()

    def test_kernel_thread(self):
        check_kernel_thread()

    def test_zombie(self):
        check_zombie()

    def test_unwritable_output(self):
        check_unwritable_output()

    def test_o_over_another_users_file(self):
        check_capture_over_files()

    def test_disk_full(self):
        check_disk_full()

    def test_file_size_limit(self):
        check_file_size_limit()

    def test_target_dies_while_frozen(self):
        check_target_dies_while_frozen()


class ExportImport(Case):
    def test_o_never_replaces_a_file_or_the_input(self):
        check_export_import_over_files()

    def test_import_of_a_non_core(self):
        expect_error(heapsnap("import", "/etc/passwd", check_ok=False), "/etc/passwd", what="import of a non-core")


class BadInput(Case):
    def test_not_a_snapshot(self):
        check_not_a_snapshot()

    def test_missing_file(self):
        check_missing_file()

    def test_truncated_snapshot(self):
        check_truncated()

    def test_not_a_regular_file(self):
        check_not_a_regular_file()

    def test_heapdiff_wrong_order(self):
        check_heapdiff_wrong_order()

    def test_heapdiff_one_file_twice(self):
        check_heapdiff_one_file_twice()

    def test_bit_flip_in_the_first_frame(self):
        check_bit_flip_first_frame()

    def test_bit_flip_found_by_verify(self):
        check_bit_flip_found_by_verify()

    def test_bad_seek_table(self):
        check_bad_seek_table()

    def test_plain_zstd(self):
        check_plain_zstd()


if __name__ == "__main__":
    main()
