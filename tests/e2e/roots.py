"""Debian root file systems with other glibc versions, made with debootstrap from Debian's own
package mirror (the only network CI has), for testing the glibc walker on glibcs this machine does
not run. Each root holds gcc (to build the target against that glibc) and libc6-dbg (its debug
files). Made once and kept in build-roots/ at the top of the source tree."""
import fcntl
import os
import shutil
import subprocess

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROOTS = os.path.join(SOURCE, "build-roots")
MIRROR = "http://deb.debian.org/debian"


def debian_root(suite):
    """The path of a root of Debian `suite`, made if missing. Raises when it cannot be made."""
    root = os.path.join(ROOTS, suite)
    os.makedirs(ROOTS, exist_ok=True)
    with open(os.path.join(ROOTS, f".{suite}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(root, ".complete")):
            shutil.rmtree(root, ignore_errors=True)
            if shutil.which("debootstrap") is None:
                raise RuntimeError("debootstrap is missing: run scripts/setup")
            result = subprocess.run(["debootstrap", "--variant=minbase",
                                     "--include=gcc,libc6-dev,libc6-dbg", suite, root, MIRROR],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"debootstrap {suite} failed: {result.stdout[-500:]} {result.stderr[-500:]}")
            open(os.path.join(root, ".complete"), "w").close()
    return root


def glibc_version(root):
    out = subprocess.run(["chroot", root, "ldd", "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].split()[-1]
