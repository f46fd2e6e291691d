"""The CPython interpreter in a snapshot is found, with its exact version, for every supported
CPython on this machine (pyenv's 3.8 to 3.13, built with debug information, and Debian's stripped
/usr/bin/python3.11 with libpython linked in): `heapsnap summary` must say what the interpreter
itself says (platform.python_version())."""
import glob
import json
import os
import subprocess
import time

from common import Case, check, heapsnap, main, path, start

pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))


def pyenv_interpreter(minor):
    """pyenv's newest CPython 3.MINOR, or None."""
    found = sorted(glob.glob(os.path.join(pyenv_root, "versions", f"3.{minor}.*", "bin", f"python3.{minor}")))
    return found[-1] if found else None


def check_version(interpreter):
    print("interpreter:", interpreter)
    expected = subprocess.run([interpreter, "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True).stdout.strip()
    ready = path(f"ready-{os.path.basename(interpreter)}")
    process = start([interpreter, "-c", f"import time; open({ready!r}, 'w').close(); time.sleep(120)"])
    deadline = time.time() + 20
    while not os.path.exists(ready) and time.time() < deadline:
        time.sleep(0.02)
    snapshot = path(os.path.basename(interpreter) + ".snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    summary = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)
    check(summary["runtimes"]["python"] == expected,
          f"{interpreter}: heapsnap says {summary['runtimes']['python']}, the interpreter {expected}")
    process.kill()


class CPythonVersion(Case):
    def check_pyenv(self, minor):
        interpreter = pyenv_interpreter(minor)
        if interpreter is None:
            self.skipTest(f"pyenv has no CPython 3.{minor} here")
        check_version(interpreter)

    def test_debian_python3_11(self):
        if check(os.path.exists("/usr/bin/python3.11"),
                 "Debian's python3.11 is installed (scripts/setup installs it)"):
            check_version("/usr/bin/python3.11")

    def test_python3_8(self):
        self.check_pyenv(8)

    def test_python3_9(self):
        self.check_pyenv(9)

    def test_python3_10(self):
        self.check_pyenv(10)

    def test_python3_11(self):
        self.check_pyenv(11)

    def test_python3_12(self):
        self.check_pyenv(12)

    def test_python3_13(self):
        self.check_pyenv(13)


if __name__ == "__main__":
    main()
