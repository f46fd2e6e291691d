"""Processes in containers (issue 16): a process in another mount namespace whose root is a
Debian 13 file system (glibc 2.41, where this machine has 2.36 under the same file names) sees
/usr/lib/x86_64-linux-gnu/libc.so.6 as its own, and the host's file of that name is another.

- captured from the host while it runs: the analysis finds its files under /proc/PID/root (same
  pid, start time and boot), so the heap is walked with its glibc's debug info, no warning, and
  every block the target recorded is found as it recorded it;
- once it has exited, the analysis warns, naming libc's path, that the file here is another
  (build-id), and says to use --sysroot; it does not read the version from the wrong file;
- with --sysroot ROOT, the same sound heap and 2.41 with debug info, no warning;
- captured from inside a PID and mount namespace of its own (a container granting
  CAP_SYS_PTRACE), the known-heap target's blocks are all found, as on the host."""
import atexit
import functools
import json
import os
import shutil
import subprocess
import time

from common import Case, check, give_up, heapsnap, main, path, start
from glibc_target import check_sound_heap, read_record
from roots import debian_root, glibc_version

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KNOWN_STATE = os.environ.get("KNOWN_STATE", "build/tests/known_state")
HEAPSNAP = os.path.abspath(os.environ.get("HEAPSNAP", "build/heapsnap"))

libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"


@functools.cache
def trixie():
    """The Debian 13 root, with tests/targets/glibc_heap.c built in it; made once."""
    root = debian_root("trixie")
    check(glibc_version(root) == "2.41", "trixie has glibc 2.41")
    shutil.copy(os.path.join(SOURCE, "targets", "glibc_heap.c"), os.path.join(root, "tmp", "glibc_heap.c"))
    build = subprocess.run(["chroot", root, "gcc", "-O1", "-g", "-pthread", "-o", "/tmp/glibc_heap",
                            "/tmp/glibc_heap.c"], capture_output=True, text=True)
    check(build.returncode == 0, f"building the target in trixie: {build.stderr[-500:]}")
    os.makedirs(os.path.join(root, ".oldroot"), exist_ok=True)
    return root


@functools.cache
def captured():
    """The target started in a mount namespace whose root is trixie's (left running for the first
    case), its record and its snapshot; once for every case."""
    root = trixie()
    record_inside = f"/tmp/record-containers-{os.getpid()}"
    record_outside = os.path.join(root, record_inside.lstrip("/"))
    if os.path.exists(record_outside):
        os.unlink(record_outside)
    atexit.register(lambda: os.path.exists(record_outside) and os.unlink(record_outside))
    # a mount namespace whose root is the trixie tree (a bind mount made the root by pivot_root):
    # the host then sees its files by the paths the process sees, as with a container runtime's
    process = start(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                     f"mount --bind {root} {root} && cd {root} && pivot_root . .oldroot && cd / && "
                     f"exec /tmp/glibc_heap {record_inside}"])
    deadline = time.time() + 30
    while not os.path.exists(record_outside) and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    check(os.path.exists(record_outside), "the target in its namespace wrote its record")
    record = read_record(record_outside)
    with open(f"/proc/{process.pid}/maps") as f:
        maps = f.read()
    check(" /usr/lib/x86_64-linux-gnu/libc.so.6\n" in maps,
          "the host sees the process's libc by the path the process sees")
    snapshot = path("container.snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    return process, record, snapshot


def exited():
    """captured(), the target ended."""
    process, record, snapshot = captured()
    if process.poll() is None:
        process.kill()
        process.wait()
    return process, record, snapshot


def summary_of(snapshot, *options):
    result = heapsnap("summary", snapshot, "--format", "json", *options)
    return json.loads(result.stdout) if result.returncode == 0 else {}


class Containers(Case):
    # (the cases run in the order of their names: this one, while the target runs, first)
    def test_analysed_while_it_runs(self):
        # while it runs: its files under /proc/PID/root
        process, record, snapshot = captured()
        if process.poll() is not None:
            give_up("the target ended before the analysis while it runs")
        check_sound_heap("running, from /proc/PID/root", record, snapshot)
        running = summary_of(snapshot)
        check(running.get("runtimes", {}).get("glibc") == "2.41" and
              running.get("heap", {}).get("found_with") == "debug info",
              f"running: glibc 2.41 walked with its debug info: {running.get('runtimes')} "
              f"{running.get('heap', {}).get('found_with')}")

    def test_exited_warns_of_another_libc(self):
        # gone: this machine's libc.so.6 is another file
        process, record, snapshot = exited()
        gone = heapsnap("list", snapshot, "--format", "jsonl")
        warned = [line for line in gone.stderr.splitlines() if libc in line]
        check(any("build-id differs" in line for line in warned) and
              f"--sysroot DIR (the container's root: /proc/{process.pid}/root" in gone.stderr,
              f"exited: the warning names libc, says it is another file here, and how to point at the "
              f"right one: {gone.stderr!r}")
        after = summary_of(snapshot)
        check(after.get("runtimes", {}).get("glibc") != "2.36",
              f"exited: the version is not read from this machine's libc: {after.get('runtimes')}")

    def test_exited_with_sysroot(self):
        # --sysroot: its files, and its debug files under it
        process, record, snapshot = exited()
        root = trixie()
        check_sound_heap("exited, --sysroot", record, snapshot, "--sysroot", root)
        with_root = summary_of(snapshot, "--sysroot", root)
        check(with_root.get("runtimes", {}).get("glibc") == "2.41" and
              with_root.get("heap", {}).get("found_with") == "debug info",
              f"--sysroot: glibc 2.41 walked with its debug info: {with_root.get('runtimes')}")

    def test_capture_inside_a_container(self):
        # capture inside a container: PID and mount namespaces of its own, CAP_SYS_PTRACE within
        ready = path("inside-ready")
        inside_snapshot = path("inside.snap")
        script = (f"{KNOWN_STATE} {ready} & target=$!; "
                  f"while [ ! -s {ready} ]; do sleep 0.05; done; "
                  f"{HEAPSNAP} capture $target -o {inside_snapshot}; code=$?; kill $target; exit $code")
        inside = subprocess.run(["unshare", "--pid", "--fork", "--mount", "--mount-proc", "sh", "-c",
                                 script], capture_output=True, text=True, timeout=120)
        check(inside.returncode == 0, f"capture inside the namespaces: {inside.stderr[-800:]}")
        held = []
        if os.path.exists(ready):
            with open(ready) as f:
                for line in f:
                    words = line.split()
                    if words[0] == "block":
                        held.append((int(words[1], 16), int(words[2])))
        info = json.loads(heapsnap("info", inside_snapshot, "--format", "json").stdout or "{}") \
            if os.path.exists(inside_snapshot) else {}
        check(info.get("pid", 0) < 100, f"the snapshot records the pid the container sees: {info.get('pid')}")
        listed = heapsnap("list", inside_snapshot, "--format", "jsonl").stdout \
            if os.path.exists(inside_snapshot) else ""
        live = {}
        for line in listed.splitlines():
            block = json.loads(line)
            live[block["addr"]] = block["size"]
        missing = [(hex(a), s) for a, s in held if live.get(a, -1) < s]
        check(held and not missing, f"inside: all {len(held)} recorded blocks live, missing {missing[:3]}")


if __name__ == "__main__":
    main()
