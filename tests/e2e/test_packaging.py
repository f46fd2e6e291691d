"""The finish of an installed tool: `meson install` puts the programs, the hook with a versioned
soname, its header and a pkg-config file that builds a program calling heapsnap_capture(), man
pages made from the --help texts (rendered by man, one section per command, every option of every
--help in them), and bash completion that completes commands, options (read from --help), their
values and .snap files; a progress line on a terminal only, never in JSON, cleared before the
report."""
import functools
import os
import pty
import re
import select
import subprocess
import sys
import tempfile

from common import HEAPSNAP, Case, check, give_up, heapsnap, main, path, start

BUILD = os.path.dirname(HEAPSNAP)
HEAPDIFF = os.environ.get("HEAPDIFF", os.path.join(BUILD, "heapdiff"))
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



@functools.cache
def install():
    """`meson install` into a directory of the run's own, once for every case: {relative path:
    path} of the files installed, and the directory."""
    destination = tempfile.mkdtemp(prefix="heapsnap-install-", dir=os.path.dirname(path("x")))
    installed = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", destination],
                               capture_output=True, text=True)
    check(installed.returncode == 0, f"meson install: {installed.stdout[-500:]} {installed.stderr[-500:]}")
    files = {os.path.relpath(os.path.join(d, f), destination): os.path.join(d, f)
             for d, _, names in os.walk(destination) for f in names}
    return files, destination


def one(pattern):
    files, _ = install()
    found = [f for f in files if re.search(pattern, f)]
    check(len(found) == 1, f"one installed file matches {pattern}: {found}")
    return files[found[0]] if found else None


def help_options(*command):
    text = subprocess.run([*command, "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"(?:^|\s)(--[a-z][a-z-]+)", text))


def check_man_page(name, program, commands):
    # man pages: rendered, a section per command, every option of every --help
    page = one(rf"man1/{name}\.1$")
    if not page:
        return
    rendered = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                              env=dict(os.environ, MANPAGER="cat", MANWIDTH="100"))
    text = rendered.stdout
    check(rendered.returncode == 0 and text.startswith(name.upper() + "(1)"),
          f"man -l {name}.1 renders: {rendered.stderr[-300:]!r}")
    for command in commands:
        check(f"{name.upper()} {command.upper()}" in text, f"{name}(1) has a section for {command}")
    options = help_options(program).union(*(help_options(program, c) for c in commands))
    missing = [o for o in options if o not in text.replace("\u2010", "-")]
    check(options and not missing, f"{name}(1) names every option of the --help texts; missing {missing}")


snaps = os.path.dirname(path("x"))


def complete(completion, function, *words):
    script = (f"source {completion}; cd {snaps}; PATH={BUILD}:$PATH; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
              f"COMP_CWORD={len(words) - 1}; {function} 2>/dev/null; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    return set(result.stdout.split())


def on_terminal(*command):
    """What `command` writes to a terminal (its stdout and stderr both), with the progress line
    shown from the start (HEAPSNAP_PROGRESS_AFTER=0)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["HEAPSNAP_PROGRESS_AFTER"] = "0"
        os.execv(command[0], list(command))
    out = b""
    while select.select([fd], [], [], 120)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
    os.waitpid(pid, 0)
    return out.decode(errors="replace")


class Packaging(Case):
    def test_installed_programs_and_library(self):
        one(r"bin/heapsnap$")
        one(r"bin/heapdiff$")
        one(r"include/heapsnap\.h$")
        library = one(r"lib/.*libheapsnap\.so\.0\.\d+\.\d+$")
        files, _ = install()
        links = [f for f in files if re.search(r"lib/.*libheapsnap\.so(\.0)?$", f)]
        check(len(links) == 2, f"libheapsnap.so and libheapsnap.so.0 are installed beside it: {links}")
        if library:
            dynamic = subprocess.run(["readelf", "-d", library], capture_output=True, text=True).stdout
            check("Library soname: [libheapsnap.so.0]" in dynamic, "the hook's soname is versioned: libheapsnap.so.0")

    def test_pkg_config_builds_a_program(self):
        # pkg-config builds a program that calls the hook's API
        _, destination = install()
        library = one(r"lib/.*libheapsnap\.so\.0\.\d+\.\d+$")
        pc = one(r"pkgconfig/libheapsnap\.pc$")
        if not pc or not library:
            give_up("no pkg-config file or library installed to build with")
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc), PKG_CONFIG_SYSROOT_DIR=destination)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libheapsnap"], capture_output=True,
                               text=True, env=env)
        check(flags.returncode == 0 and "-lheapsnap" in flags.stdout, f"pkg-config: {flags.stdout!r} {flags.stderr!r}")
        program = path("uses_hook.c")
        with open(program, "w") as f:
            f.write('#include <heapsnap.h>\nint main(void) { return heapsnap_capture(0) == 0 ? 0 : 1; }\n')
        built = subprocess.run(["sh", "-c", f"cc {program} -o {path('uses_hook')} $(pkg-config --cflags --libs libheapsnap)"],
                               capture_output=True, text=True, env=env)
        check(built.returncode == 0, f"a program builds with pkg-config's flags: {built.stderr[-500:]}")
        snapshot = path("self.snap")
        ran = subprocess.run([path("uses_hook")], capture_output=True, text=True,
                             env=dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(library), HEAPSNAP_DIR=os.path.dirname(snapshot)))
        check(ran.returncode == 0, f"and its heapsnap_capture() writes a snapshot: {ran.returncode} {ran.stderr[-300:]}")

    def test_man_page_heapsnap(self):
        check_man_page("heapsnap", HEAPSNAP, ["capture", "import", "info", "list", "summary", "export",
                                              "watch"])

    def test_man_page_heapdiff(self):
        check_man_page("heapdiff", HEAPDIFF, [])

    def test_bash_completion(self):
        completion = one(r"bash-completion/completions/heapsnap$")
        one(r"bash-completion/completions/heapdiff$")
        open(os.path.join(snaps, "before.snap"), "w").close()
        open(os.path.join(snaps, "notes.txt"), "w").close()
        if not completion:
            return
        check(complete(completion, "_heapsnap", "heapsnap", "") >= {"capture", "import", "info", "list", "summary",
                                                                    "diff", "export", "watch"},
              "commands are completed")
        check(complete(completion, "_heapsnap", "heapsnap", "summary", "--") >= help_options(HEAPSNAP, "summary"),
              "a command's options are completed from its --help")
        check(complete(completion, "_heapsnap", "heapsnap", "list", "--state", "") == {"live", "free", "all"},
              "an option's values are completed")
        check(complete(completion, "_heapsnap", "heapsnap", "export", "--format", "") == {"devtools", "pprof"},
              "export's formats are completed, and only they")
        check(complete(completion, "_heapsnap", "heapsnap", "export", "--pprof-stacks", "") == {"paths", "sites"},
              "export's kinds of pprof stacks are completed")
        check(complete(completion, "_heapdiff", "heapdiff", "--format", "") >= {"html", "pprof"},
              "heapdiff's formats are completed, pprof among them")
        offered = complete(completion, "_heapsnap", "heapsnap", "summary", "")
        check("before.snap" in offered and "notes.txt" not in offered, f"snapshots are completed: {offered}")
        check(complete(completion, "_heapdiff", "heapdiff", "--s") >= {"--sort", "--show-values"}, "heapdiff's options")
        check(str(os.getpid()) in complete(completion, "_heapsnap", "heapsnap", "capture", ""),
              "capture completes process ids")
        check(str(os.getpid()) in complete(completion, "_heapsnap", "heapsnap", "watch", ""),
              "watch completes process ids")

    def test_progress_line(self):
        sleeper = start([sys.executable, "-c", "import time\nx = [str(i) for i in range(100000)]\nprint('ok', flush=True)\ntime.sleep(600)"],
                        stdout=subprocess.PIPE, text=True)
        sleeper.stdout.readline()
        snapshot = path("progress.snap")
        heapsnap("capture", str(sleeper.pid), "-o", snapshot)
        sleeper.kill()
        sleeper.stdout.close()
        shown = on_terminal(HEAPSNAP, "summary", snapshot)
        report_at = shown.find("pid ")
        check("\r\x1b[Kheapsnap summary: " in shown and " done" in shown, f"a progress line on a terminal: {shown[:300]!r}")
        check(report_at > 0 and shown[:report_at].endswith("\r\x1b[K"), "the progress line is cleared before the report")
        check("heapsnap summary: " not in on_terminal(HEAPSNAP, "summary", snapshot, "--format", "json"),
              "no progress line with JSON")
        piped = subprocess.run([HEAPSNAP, "summary", snapshot], capture_output=True, text=True,
                               env=dict(os.environ, HEAPSNAP_PROGRESS_AFTER="0"))
        check("\x1b[K" not in piped.stderr + piped.stdout, "no progress line when not on a terminal")


if __name__ == "__main__":
    main()
