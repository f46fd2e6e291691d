"""The glibc walker on other glibcs than this machine's 2.36, each in a debootstrapped Debian root:
Debian 11's 2.31, the oldest the walker supports (no safe-linking, a 32-byte heap_info, an older
malloc_par), and Debian 13's 2.41, newer than the 2.39 the walker was written for. The target is built there against that glibc and runs there; its snapshot must satisfy the
same checks as on this machine's glibc, with that glibc's debug files and without them."""
import json
import os
import shutil
import subprocess

from common import Case, check, heapsnap, main
from glibc_target import check_sound_heap, run_target
from roots import debian_root, glibc_version

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check_glibc(suite, expected):
    root = debian_root(suite)
    version = glibc_version(root)
    check(version == expected, f"{suite} has glibc {version}")
    shutil.copy(os.path.join(SOURCE, "targets", "glibc_heap.c"), os.path.join(root, "tmp", "glibc_heap.c"))
    build = subprocess.run(["chroot", root, "gcc", "-O1", "-g", "-pthread", "-o", "/tmp/glibc_heap",
                            "/tmp/glibc_heap.c"], capture_output=True, text=True)
    check(build.returncode == 0, f"{suite}: building the target: {build.stderr[-500:]}")
    record_inside = f"/tmp/record-{os.getpid()}"
    record_outside = os.path.join(root, record_inside.lstrip("/"))
    if os.path.exists(record_outside):
        os.unlink(record_outside)
    record, snapshot = run_target(suite, ["chroot", root, "/tmp/glibc_heap", record_inside],
                                  host_record_path=record_outside)
    debug_dir = os.path.join(root, "usr", "lib", "debug")
    check_sound_heap(f"glibc {version}", record, snapshot, "--debug-dir", debug_dir)
    summary = json.loads(heapsnap("summary", snapshot, "--format", "json", "--debug-dir", debug_dir).stdout)
    check(summary["runtimes"]["glibc"] == expected, f"{suite}: summary says glibc {summary['runtimes']['glibc']}")
    check(summary["heap"]["found_with"] == "debug info", f"{suite}: {expected}'s debug files were used")
    os.unlink(record_outside)


class GlibcVersions(Case):
    def test_bullseye_glibc_2_31(self):
        check_glibc("bullseye", "2.31")

    def test_trixie_glibc_2_41(self):
        check_glibc("trixie", "2.41")


if __name__ == "__main__":
    main()
