"""Cores of CPython processes from gdb's gcore and from the kernel, imported, give the answers a
capture of the same state gives. gcore leaves unwritten read-only file mappings (the interpreter's
code and its read-only data: every built-in type's name) out of the core's segments, and only
NT_FILE names them; the kernel writes them with their first page at most. Their bytes are read from
the files, checked by build-id, or a warning names the file.

For pyenv's CPython 3.8, 3.11, 3.12, 3.13 and Debian's stripped /usr/bin/python3.11, a target
(tests/targets/python_objects.py) holding known objects is captured asleep in a read, then gcore'd,
then killed with SIGABRT for a kernel core; each core is imported and:
- `heapsnap summary --format json` gives the same count for every type as the capture, and for the
  target's own classes what gc.get_objects() counted in the process;
- bytes of its read-only file mappings read through the analysis equal the live process's;
- `heapsnap info` accounts for every readable mapping the process had (stored, or in files).
Then a target run from a copy of the interpreter that is deleted (and then replaced by another
file) before the analysis: the summary warns, naming the copy, and so does an import then."""
import ast
import atexit
import functools
import glob
import json
import os
import resource
import shutil
import signal
import subprocess
import time

from common import WORKDIR, Case, check, give_up, heapsnap, main, path, process_state, start

LOOKUP = os.environ.get("LOOKUP", "build/tests/lookup")
TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets", "python_objects.py")
CORE_PATTERN = "/proc/sys/kernel/core_pattern"

pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
# the interpreters, each with cases of its own (below)
NAMES = ("python3.8", "python3.11", "python3.12", "python3.13", "debian-python3.11")


@functools.cache
def interpreters():
    """{name: path} of the interpreters; their checks (each present) run once, in the first case."""
    found_all = []
    for minor in (8, 11, 12, 13):
        found = sorted(glob.glob(os.path.join(pyenv_root, "versions", f"3.{minor}.*", "bin", f"python3.{minor}")))
        check(found, f"pyenv's CPython 3.{minor} is present")
        found_all += found[-1:]
    check(os.path.exists("/usr/bin/python3.11"), "Debian's python3.11 is installed (scripts/setup installs it)")
    found_all.append("/usr/bin/python3.11")
    return {"debian-python3.11" if interpreter.startswith("/usr/bin") else os.path.basename(interpreter):
            interpreter for interpreter in found_all}


@functools.cache
def kernel_cores_here():
    """Points the kernel's core dumps at this test's directory (a file pattern, even where they
    are piped to systemd-coredump); the old pattern is put back at exit. False if it cannot be."""
    try:
        with open(CORE_PATTERN) as f:
            old = f.read().rstrip("\n")
        with open(CORE_PATTERN, "w") as f:
            f.write(os.path.join(WORKDIR, "kernel-core.%p"))
    except OSError as e:
        check(False, f"cannot set {CORE_PATTERN} for a kernel core ({e}); run the tests as root")
        return False

    def restore():
        with open(CORE_PATTERN, "w") as f:
            f.write(old)
    atexit.register(restore)
    return True


def allow_core_dump():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def start_target(interpreter, name):
    """Starts python_objects.py, waits for its counts and for it to sleep in its read."""
    result_file = path(f"result-{name}")
    reader, writer = os.pipe()  # the target blocks reading stdin until killed
    process = start([interpreter, TARGET, result_file], stdin=reader, preexec_fn=allow_core_dump)
    os.close(reader)
    process.stdin_writer = writer
    deadline = time.time() + 60
    while not os.path.exists(result_file) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    if not check(os.path.exists(result_file), f"{name}: the target wrote its counts"):
        return process, None
    while process_state(process.pid) != "S" and time.time() < deadline:
        time.sleep(0.01)
    with open(result_file) as f:
        return process, ast.literal_eval(f.read())


def gcore(pid, name):
    prefix = path(f"gcore-{name}")
    result = subprocess.run(["gcore", "-o", prefix, str(pid)], capture_output=True, text=True)
    check(result.returncode == 0, f"gcore {pid}: {result.stderr[-500:]}")
    return f"{prefix}.{pid}"


def summary(snapshot):
    return json.loads(heapsnap("summary", snapshot, "--format", "json").stdout or "{}")


def counts(result):
    """Live objects per type: those a root reaches and those none does (cyclic garbage)."""
    total = {}
    for group in result.get("types", []) + result.get("unreachable", {}).get("by_type", []):
        total[group["type"]] = total.get(group["type"], 0) + group["count"]
    return total


def file_warnings(result):
    return {w for w in result.get("warnings", []) if "build-id" in w or "mapped file" in w}


def differences(want, got):
    return {t: (want.get(t, 0), got.get(t, 0)) for t in sorted(set(want) | set(got))
            if want.get(t, 0) != got.get(t, 0)}


def readable_mappings(pid):
    """(start, end, permissions, path) of each mapping the process can read, but the kernel's
    [vvar] pages and [vsyscall], which no core holds."""
    mappings = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            name = fields[5].strip() if len(fields) > 5 else ""
            if fields[1][0] == "r" and not name.startswith("[vvar") and name != "[vsyscall]":
                start_end = [int(x, 16) for x in fields[0].split("-")]
                mappings.append((start_end[0], start_end[1], fields[1], name))
    return mappings


def live_bytes(pid, address, size):
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(address)
        return mem.read(size)


def file_samples(pid, mappings):
    """[(address, bytes, description)]: 64 bytes inside each read-only mapping of an ELF file (code,
    read-only data), as the live process has them."""
    samples = []
    for start_, end, permissions, file in mappings:
        if not file.startswith("/") or "w" in permissions:
            continue
        try:
            with open(file, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue  # no build-id to check its bytes by: not used
        except OSError:
            continue
        address = start_ + (end - start_) // 2 // 8 * 8
        samples.append((address, live_bytes(pid, address, 64).hex(), f"{file} ({permissions})"))
    return samples


def check_file_bytes(name, snapshot, samples):
    """The samples read through the analysis as the live process had them."""
    check(len(samples) >= 4, f"{name}: read-only mappings of ELF files: {samples}")
    for address, want, description in samples:
        got = subprocess.run([LOOKUP, snapshot, "read", hex(address), "64"], capture_output=True,
                             text=True)
        check(got.stdout.strip() == want,
              f"{name}: {description} at {address:#x} reads {got.stdout.strip()[:32]!r}, the "
              f"process had {want[:32]!r}: {got.stderr.strip()[:300]}")


def check_info(name, snapshot, mappings):
    info = json.loads(heapsnap("info", snapshot, "--format", "json").stdout)
    regions = info["regions"]
    readable = sum(end - start_ for start_, end, _, _ in mappings)
    accounted = regions["bytes_with_contents"] + regions["bytes_from_files"] + regions["bytes_untouched"]
    check(accounted >= readable and regions["bytes_from_files"] > 0,
          f"{name}: info accounts {accounted} bytes (from files {regions['bytes_from_files']}) of the "
          f"{readable} the process could read")


@functools.cache
def prepared(name):
    """The target on interpreter `name`: its counts, readable mappings and file samples, its
    capture and the summary of it, and its cores (gcore's; the kernel's, as SIGABRT ends it);
    once for every case."""
    interpreter = interpreters().get(name)
    if interpreter is None:
        give_up(f"{name}: the interpreter is not installed: {interpreters()}")
    kernel_cores = kernel_cores_here()
    process, result = start_target(interpreter, name)
    if result is None:
        return None
    mappings = readable_mappings(process.pid)
    samples = file_samples(process.pid, mappings)
    captured = path(f"{name}.snap")
    heapsnap("capture", str(process.pid), "-o", captured)
    cores = {"gcore": gcore(process.pid, name)}
    if kernel_cores:
        os.kill(process.pid, signal.SIGABRT)
        process.wait(timeout=60)
        cores["kernel"] = path(f"kernel-core.{process.pid}")
        check(os.path.exists(cores["kernel"]), f"{name}: the kernel wrote a core ({process.returncode})")
    else:
        process.kill()
    os.close(process.stdin_writer)
    from_capture = summary(captured)
    gc_counts = {t: n for t, n in result["gc"].items() if t.startswith("__main__.")}
    return dict(result=result, mappings=mappings, samples=samples, cores=cores,
                from_capture=from_capture, want=counts(from_capture), gc_counts=gc_counts)


def target_of(name):
    found = prepared(name)
    if found is None:
        give_up(f"{name}: the target wrote no counts to check against")
    return found


def check_capture(name):
    found = target_of(name)
    want, gc_counts = found["want"], found["gc_counts"]
    check(len(gc_counts) >= 8, f"{name}: the target's classes: {gc_counts}")
    check(not differences(gc_counts, {t: want.get(t, 0) for t in gc_counts}),
          f"{name}: capture: per class (gc, heapsnap): "
          f"{differences(gc_counts, {t: want.get(t, 0) for t in gc_counts})}")


def check_import(name, kind):
    found = target_of(name)
    want, gc_counts = found["want"], found["gc_counts"]
    core = found["cores"].get(kind)
    if core is None or not os.path.exists(core):
        # (the kernel's core: its absence is a failed check of prepared(), or of kernel_cores_here())
        return
    imported = path(f"{name}-{kind}.snap")
    heapsnap("import", core, "-o", imported)
    got = summary(imported)
    wrong = differences(want, counts(got))
    check(not wrong, f"{name} {kind}: per-type counts differ from the capture's "
          f"(type: (capture, import)): {dict(list(wrong.items())[:20])}")
    check(not differences(gc_counts, {t: counts(got).get(t, 0) for t in gc_counts}),
          f"{name} {kind}: per class (gc, heapsnap): "
          f"{differences(gc_counts, {t: counts(got).get(t, 0) for t in gc_counts})}")
    # (the capture's own: a locale file, which has no build-id to check it by)
    new_warnings = file_warnings(got) - file_warnings(found["from_capture"])
    check(not new_warnings, f"{name} {kind}: warnings about files: {new_warnings}")
    check_info(f"{name} {kind}", imported, found["mappings"])
    check_file_bytes(f"{name} {kind}", imported, found["samples"])


class ImportPython(Case):
    def test_missing_then_different_file(self):
        # a mapped file missing, then different, when the analysis runs: a warning names it
        copy_dir = path("copy")
        os.makedirs(copy_dir)
        copy = os.path.join(copy_dir, "python3.11")
        shutil.copy2("/usr/bin/python3.11", copy)
        process, result = start_target(copy, "copy")
        if result is None:
            return
        captured = path("copy.snap")
        heapsnap("capture", str(process.pid), "-o", captured)
        imported = path("copy-gcore.snap")
        copy_core = gcore(process.pid, "copy")
        heapsnap("import", copy_core, "-o", imported)
        process.kill()
        os.close(process.stdin_writer)
        complete = counts(summary(imported))
        check(complete.get("__main__.Plain") == result["gc"]["__main__.Plain"],
              f"copy: with its file present, {complete.get('__main__.Plain')} __main__.Plain")
        os.unlink(copy)
        again = heapsnap("import", copy_core, "-o", path("copy-again.snap"))
        check(copy in again.stderr and "warning" in again.stderr,
              f"import names the mapped file that is not here: {again.stderr!r}")
        for snapshot in (captured, imported):
            warnings = summary(snapshot).get("warnings", [])
            check(any(copy in w for w in warnings), f"{snapshot}: no warning names the missing {copy}: {warnings}")
        shutil.copy2(list(interpreters().values())[0], copy)  # another interpreter: another build-id
        for snapshot in (captured, imported):
            warnings = summary(snapshot).get("warnings", [])
            check(any(copy in w and "build-id" in w for w in warnings),
                  f"{snapshot}: no warning says {copy} differs: {warnings}")


# for each interpreter: the capture against gc's counts, gcore's core imported, the kernel's core
# imported (test_python3_8_capture, test_python3_8_gcore, test_python3_8_kernel_core, ...,
# test_debian_python3_11_kernel_core)
for _name in NAMES:
    _case = "test_" + _name.replace(".", "_").replace("-", "_")
    setattr(ImportPython, _case + "_capture", lambda self, name=_name: check_capture(name))
    setattr(ImportPython, _case + "_gcore", lambda self, name=_name: check_import(name, "gcore"))
    setattr(ImportPython, _case + "_kernel_core", lambda self, name=_name: check_import(name, "kernel"))


if __name__ == "__main__":
    main()
