"""The CPython interpreter in a snapshot is found, with its exact version, for every supported
CPython on this machine (pyenv's 3.8 to 3.13, built with debug information, and Debian's stripped
/usr/bin/python3.11 with libpython linked in): `heapsnap summary` must say what the interpreter
itself says (platform.python_version())."""
import glob
import json
import os
import subprocess
import time

from common import check, finish, heapsnap, path, start

pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
interpreters = ["/usr/bin/python3.11"]
for minor in range(8, 14):
    found = sorted(glob.glob(os.path.join(pyenv_root, "versions", f"3.{minor}.*", "bin", f"python3.{minor}")))
    interpreters += found[-1:]
print("interpreters:", interpreters)
check(os.path.exists("/usr/bin/python3.11"), "Debian's python3.11 is installed (scripts/setup installs it)")
for interpreter in interpreters:
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
finish()
