"""Debug info fetched from a debuginfod server (analyze/debuginfod.c) against the target's own
record: tests/targets/conn_server.c, built with -g, has its debug info split off (objcopy
--only-keep-debug) and is stripped (strip --strip-all), so nothing on this machine names its
types; a local `debuginfod` (Debian's package, started here on a free loopback port over the
directory of that debug file) serves it by build-id. With the server, the summary names struct
conn with the count the target recorded and the root `global all_conns` retaining the bytes it
counted; with --no-debuginfod (the control) it names neither and says the module was left unnamed;
pointed at a closed port, or at one that never answers, the unnamed answer comes with the one
warning in bounded time; a process whose executable is gone gets the file from the server too;
without libdebuginfod.so.1 the answer is unnamed with one warning; `heapsnap info` names the
server and the cache file; a second summary is served from the cache with the server
stopped; the hook's allocation sites in a stripped program get their functions and the lines the
target recorded; Debian's stripped python3.11 gets its layouts from python3.11-dbg's DWARF; and
debug files split by dwz are read with their supplementary file, found here or fetched."""
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

from common import Case, check, give_up, heapsnap, main, path, process_state, start
from hook_target import hooked, wait_for_snapshot

TARGET = os.environ.get("CONN_SERVER", "build/tests/conn_server")
SITES_TARGET = os.environ.get("SITES_TARGET", "build/tests/sites")


def free_port():
    """A loopback port nothing listens on (bound then closed: the kernel does not hand it out
    again at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(program, package):
    if shutil.which(program) is None:
        result = subprocess.run(["apt-get", "install", "-y", package], capture_output=True,
                                text=True, timeout=600)
        if result.returncode != 0 or shutil.which(program) is None:
            give_up(f"{program} is missing and apt-get install -y {package} failed: "
                    f"{result.stderr[-500:]}")


def build_id(file):
    out = subprocess.run(["readelf", "-n", file], capture_output=True, text=True).stdout
    return next((line.split()[-1] for line in out.splitlines() if "Build ID" in line), None)


def capture(binary, name):
    """Runs `binary` (conn_server), waits for its record, captures it asleep and kills it;
    returns the record and the snapshot."""
    record_path = path(name + ".record")
    process = start([binary, record_path])
    deadline = time.time() + 20
    while not os.path.exists(record_path) and time.time() < deadline:
        time.sleep(0.02)
    while process_state(process.pid) != "S" and time.time() < deadline:
        time.sleep(0.01)
    record = {}
    with open(record_path) as f:
        for line in f:
            words = line.split()
            if len(words) > 1:
                record[words[0]] = [int(w) for w in words[1:]]
    snapshot = path(name + ".snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    process.kill()
    process.wait()
    return record, snapshot


def check_names(summary, record, binary, label, expect_named, unnamed_words):
    """Named: struct conn with the count `record` has and the root global all_conns retaining
    the bytes it counted, no warning about `binary`; unnamed: neither, and a warning about
    `binary` with `unnamed_words`."""
    types = {t["type"]: t for t in summary["types"]}
    roots = {r["root"]: r for r in summary["roots"]}
    conns, retained = record["conns"][0], record["retained"][0]
    if expect_named:
        check(types.get("struct conn", {}).get("count") == conns,
              f"{label}: struct conn: {types.get('struct conn', {}).get('count')}, the "
              f"target made {conns}")
        check(roots.get("global all_conns", {}).get("retained_bytes") == retained,
              f"{label}: global all_conns retains {roots.get('global all_conns')}, the "
              f"target counted {retained}")
        check(not any(binary in w for w in summary["warnings"]),
              f"{label}: no warning about the target: {summary['warnings']}")
    else:
        check("struct conn" not in types and "global all_conns" not in roots,
              f"{label}: nothing is named: {list(types)[:5]} {list(roots)[:3]}")
        check(any(binary in w and unnamed_words in w for w in summary["warnings"]),
              f"{label}: a warning says the target was left unnamed: {summary['warnings']}")


class Server:
    """`debuginfod -F DIR` on a free loopback port, up once it serves `wanted`'s debuginfo."""

    def __init__(self, directory, wanted, name, archives=False, kinds=("debuginfo", "executable")):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(path(f"debuginfod-{name}.log"), "w")
        # -F: plain ELF files; -U: .deb archives read as they are, as Debian's own server does
        self.process = start(["debuginfod", "-p", str(self.port), "-U" if archives else "-F",
                              directory, "-d", path(f"debuginfod-{name}.sqlite")],
                             stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        kinds = list(kinds)
        while time.time() < deadline and self.process.poll() is None and kinds:
            try:
                with urllib.request.urlopen(f"{self.url}/buildid/{wanted}/{kinds[0]}", timeout=5) as r:
                    if r.status == 200:
                        kinds.pop(0)
                        continue
            except OSError:
                pass
            time.sleep(0.2)
        if not kinds:
            return
        give_up(f"debuginfod on port {self.port} did not serve {wanted} within 120 s "
                f"(see {self.log.name})")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


class Debuginfod(Case):
    @classmethod
    def setUpClass(cls):
        need("debuginfod", "debuginfod")
        need("objcopy", "binutils")
        need("strip", "binutils")
        if not os.path.exists("/usr/lib/x86_64-linux-gnu/libdebuginfod.so.1"):
            need("debuginfod-find", "debuginfod")  # (its dependency libdebuginfod1 with it)
        # the stripped target and its debug file in the server's directory
        cls.debug_dir = path("debuginfod-files")
        os.makedirs(cls.debug_dir, exist_ok=True)
        cls.binary = path("conn_server_stripped")
        shutil.copy(TARGET, cls.binary)
        subprocess.run(["objcopy", "--only-keep-debug", cls.binary,
                        os.path.join(cls.debug_dir, "conn_server.debug")], check=True)
        subprocess.run(["strip", "--strip-all", cls.binary], check=True)
        cls.build_id = build_id(cls.binary)
        sections = subprocess.run(["readelf", "-S", cls.binary], capture_output=True, text=True).stdout
        if not cls.build_id or ".debug_info" in sections or ".symtab" in sections:
            give_up(f"the stripped target keeps its build-id and loses its debug info: "
                    f"{cls.build_id} {sections[-300:]}")
        # the stripped executable is served too, for a process whose file is gone
        shutil.copy(cls.binary, os.path.join(cls.debug_dir, "conn_server"))
        cls.record, cls.snapshot = capture(cls.binary, "debuginfod")
        cls.server = Server(cls.debug_dir, cls.build_id, "shared")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def summary(self, cache, *options, expect_named, urls=None):
        """The JSON summary with the cache `cache` (a fresh directory per case), checked named
        (struct conn and global all_conns as the target recorded) or unnamed; returns it and the
        run's seconds."""
        env = dict(os.environ, DEBUGINFOD_CACHE_PATH=path(cache))
        env.pop("DEBUGINFOD_URLS", None)
        if urls:
            env["DEBUGINFOD_URLS"] = urls
        started = time.monotonic()
        result = heapsnap("summary", self.snapshot, "--format", "json", *options, env=env)
        seconds = time.monotonic() - started
        if result.returncode != 0:
            return None, seconds
        summary = json.loads(result.stdout)
        check_names(summary, self.record, self.binary, f"{cache} {' '.join(options)}",
                    expect_named, "left unnamed")
        return summary, seconds

    def unasked_seconds(self):
        """How long the summary takes without asking any server (the floor of a bounded wait,
        which a busy machine or a sanitizer build raises)."""
        _, seconds = self.summary("cache-unasked", "--no-debuginfod", expect_named=False)
        return seconds

    def test_named_by_the_server(self):
        self.summary("cache-named", "--debuginfod", self.server.url, expect_named=True)
        # DEBUGINFOD_PROGRESS shows the download on stderr (not a terminal here)
        env = dict(os.environ, DEBUGINFOD_CACHE_PATH=path("cache-progress"), DEBUGINFOD_PROGRESS="1")
        env.pop("DEBUGINFOD_URLS", None)
        text = heapsnap("summary", self.snapshot, "--debuginfod", self.server.url, env=env)
        check(f"heapsnap summary: debuginfod: fetching the debug info of conn_server_stripped from "
              f"{self.server.url}/buildid/{self.build_id}/debuginfo" in text.stderr,
              f"DEBUGINFOD_PROGRESS: the download is shown: {text.stderr[-600:]}")

    def test_named_by_the_environment(self):
        # DEBUGINFOD_URLS is the default; --no-debuginfod overrides it (the control)
        env = dict(os.environ, DEBUGINFOD_URLS=self.server.url,
                   DEBUGINFOD_CACHE_PATH=path("cache-env"))
        result = heapsnap("summary", self.snapshot, env=env)
        check("struct conn" in result.stdout and "global all_conns" in result.stdout,
              f"DEBUGINFOD_URLS: the text summary names struct conn: {result.stdout[:600]}")
        summary, _ = self.summary("cache-control", "--no-debuginfod", expect_named=False,
                                  urls=self.server.url)
        check(summary is None or not os.path.exists(path("cache-control")),
              "--no-debuginfod: no request, not even to the cache")

    def test_closed_port(self):
        url = f"http://127.0.0.1:{free_port()}"
        summary, seconds = self.summary("cache-closed", "--debuginfod", url, expect_named=False)
        warnings = [w for w in (summary or {}).get("warnings", []) if "debuginfod" in w]
        check(len(warnings) == 1 and url in warnings[0],
              f"closed port: one warning naming the server: {warnings}")
        baseline = self.unasked_seconds()
        check(seconds < baseline + 3,
              f"closed port: answered in {seconds:.2f} s (without asking: {baseline:.2f} s)")
        # the text report gives it on stderr, heapdiff in its JSON too
        env = dict(os.environ, DEBUGINFOD_CACHE_PATH=path("cache-closed"))
        text = heapsnap("summary", self.snapshot, "--debuginfod", url, env=env)
        check(text.returncode == 0 and "left unnamed" in text.stderr,
              f"closed port: the text summary exits 0 with the warning: {text.stderr[-600:]}")
        diff = subprocess.run([os.environ.get("REAL_HEAPDIFF", "build/heapdiff"), self.snapshot,
                               self.snapshot, "--format", "json", "--debuginfod", url],
                              capture_output=True, text=True, timeout=120, env=env)
        check(diff.returncode == 0 and any("left unnamed" in w for w in
                                           json.loads(diff.stdout or "{}").get("warnings", [])),
              f"closed port: heapdiff's JSON has the warning: {diff.returncode} {diff.stderr[-300:]}")

    def test_silent_server(self):
        # a server that accepts the connection and never answers: the request is given up after
        # DEBUGINFOD_TIMEOUT, the server is not asked again, and the miss is not left in the
        # cache for the real server's answer to be ignored
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            url = f"http://127.0.0.1:{silent.getsockname()[1]}"
            os.environ["DEBUGINFOD_TIMEOUT"] = "2"
            try:
                summary, seconds = self.summary("cache-silent", "--debuginfod", url,
                                                expect_named=False)
            finally:
                del os.environ["DEBUGINFOD_TIMEOUT"]
        baseline = self.unasked_seconds()
        check(seconds < baseline + 4, f"silent server: answered in {seconds:.2f} s "
              f"(DEBUGINFOD_TIMEOUT=2; without asking: {baseline:.2f} s)")
        check(any("no answer in time" in w for w in (summary or {}).get("warnings", [])),
              f"silent server: the warning says why: {summary and summary['warnings']}")
        self.summary("cache-silent", "--debuginfod", self.server.url, expect_named=True)

    def test_file_gone(self):
        # the process's executable is deleted after the capture (then replaced by another
        # build): its file comes from the server too (by build-id), and then its debug info
        gone = path("conn_server_gone")
        shutil.copy(self.binary, gone)
        record, snapshot = capture(gone, "debuginfod-gone")
        os.unlink(gone)
        env = dict(os.environ, DEBUGINFOD_CACHE_PATH=path("cache-gone"))
        env.pop("DEBUGINFOD_URLS", None)
        result = heapsnap("summary", snapshot, "--format", "json", "--debuginfod", self.server.url,
                          env=env)
        summary = json.loads(result.stdout) if result.returncode == 0 else {"types": [], "warnings": []}
        types = {t["type"]: t["count"] for t in summary["types"]}
        check(types.get("struct conn") == record["conns"][0],
              f"file gone: struct conn {types.get('struct conn')}, the target made {record['conns'][0]}")
        check(not any(gone in w for w in summary["warnings"]),
              f"file gone: no warning about it: {summary['warnings']}")
        check(os.path.exists(os.path.join(path("cache-gone"), self.build_id, "executable")),
              "file gone: the executable was fetched into the cache")
        # another build at its path (an upgraded binary): not used, and fetched as well
        shutil.copy("/bin/true", gone)
        env["DEBUGINFOD_CACHE_PATH"] = path("cache-other-build")
        result = heapsnap("summary", snapshot, "--format", "json", "--debuginfod", self.server.url,
                          env=env)
        summary = json.loads(result.stdout) if result.returncode == 0 else {"types": [], "warnings": []}
        types = {t["type"]: t["count"] for t in summary["types"]}
        check(types.get("struct conn") == record["conns"][0] and
              os.path.exists(os.path.join(path("cache-other-build"), self.build_id, "executable")),
              f"another build at its path: the right one fetched, struct conn {types.get('struct conn')}")

    def test_library_absent(self):
        # where libdebuginfod.so.1 cannot be loaded (hidden here by /dev/null mounted over it, in
        # a mount namespace of the run's own), heapsnap answers unnamed, with one warning only
        # when servers were named
        library = "/usr/lib/x86_64-linux-gnu/libdebuginfod.so.1"
        hidden = ["unshare", "-m", "sh", "-c", f'mount --bind /dev/null {library} && exec "$@"', "-"]

        def run(*options, urls=None):
            env = dict(os.environ, DEBUGINFOD_CACHE_PATH=path("cache-absent"))
            env.pop("DEBUGINFOD_URLS", None)
            if urls:
                env["DEBUGINFOD_URLS"] = urls
            return subprocess.run(hidden + [os.environ.get("HEAPSNAP", "build/heapsnap"), "summary",
                                            self.snapshot, "--format", "json", *options],
                                  capture_output=True, text=True, timeout=120, env=env)
        named = run(urls=self.server.url)
        warnings = json.loads(named.stdout)["warnings"] if named.returncode == 0 else []
        check(named.returncode == 0 and '"struct conn"' not in named.stdout and
              [w for w in warnings if "libdebuginfod.so.1" in w and "not installed" in w],
              f"library absent, servers named: exit 0, unnamed, one warning: {named.returncode} "
              f"{warnings} {named.stderr[-300:]}")
        plain = run()
        check(plain.returncode == 0 and not any("debuginfod" in w for w in
                                                json.loads(plain.stdout or "{}").get("warnings", [])),
              f"library absent, no server named: nothing said: {plain.returncode} {plain.stderr[-300:]}")

    def test_info_names_the_source(self):
        env = dict(os.environ, DEBUGINFOD_CACHE_PATH=path("cache-info"))
        env.pop("DEBUGINFOD_URLS", None)
        first = heapsnap("info", self.snapshot, "--format", "json", "--debuginfod",
                         self.server.url, env=env)
        modules = {m["path"]: m for m in json.loads(first.stdout)["modules"]} if first.returncode == 0 else {}
        target = modules.get(self.binary, {})
        cached = os.path.join(path("cache-info"), self.build_id, "debuginfo")
        check(target.get("names_from") == "debuginfod" and target.get("debuginfod_url") == self.server.url
              and target.get("debug_file") == cached,
              f"info --format json: the target's names from {self.server.url} ({cached}): {target}")
        text = heapsnap("info", self.snapshot, "--debuginfod", self.server.url, env=env)
        check(f"names from debuginfod cache ({cached})" in text.stdout,
              f"info: the second time, from the cache: {text.stdout[-800:]}")
        control = heapsnap("info", self.snapshot, "--no-debuginfod", env=env)
        lines = control.stdout.splitlines()
        at = next((i for i, line in enumerate(lines)
                   if line.startswith("  0x") and self.binary in line), None)
        check(at is not None and lines[at + 1].strip() == "names from none",
              f"info --no-debuginfod: the target's names from none: {control.stdout[-800:]}")

    def test_second_run_from_the_cache(self):
        server = Server(self.debug_dir, self.build_id, "cache")
        self.summary("cache-second", "--debuginfod", server.url, expect_named=True)
        server.stop()
        # the server is gone: only the cache can name it now
        summary, seconds = self.summary("cache-second", "--debuginfod", server.url,
                                        expect_named=True)
        check(summary is not None and not any("debuginfod" in w for w in summary["warnings"]),
              f"from the cache: no warning: {summary and summary['warnings']}")


class Dwz(Case):
    """Debug files as Debian's -dbgsym packages ship them: dwz moved what the debug files of two
    builds of conn_server share (its structs, common names) into one supplementary file named by
    their .gnu_debugaltlink. With it (under --debug-dir by build-id, at the link's path under a
    debug directory's root, or from the debuginfod server) struct conn and global all_conns are
    named as the target recorded; without it (the control) they are not, and a warning names the
    missing file."""
    LINK = "/usr/lib/debug/.dwz/x86_64-linux-gnu/heapsnap-dwz-test.debug"

    @classmethod
    def setUpClass(cls):
        need("dwz", "dwz")
        need("debuginfod", "debuginfod")
        need("objcopy", "binutils")
        if os.path.exists(cls.LINK):
            give_up(f"{cls.LINK} exists on this machine: the test needs that path free")
        source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets",
                              "conn_server.c")
        work = path("dwz")
        os.makedirs(work, exist_ok=True)
        debug = {}
        for name, level in (("conn_dwz", "-O1"), ("conn_dwz_other", "-O0")):
            binary = os.path.join(work, name)
            subprocess.run(["gcc", level, "-g", "-o", binary, source], check=True)
            debug[name] = os.path.join(work, name + ".debug")
            subprocess.run(["objcopy", "--only-keep-debug", binary, debug[name]], check=True)
        cls.common = os.path.join(work, "common.debug")
        subprocess.run(["dwz", "-m", cls.common, "-M", cls.LINK, *debug.values()], check=True)
        own = subprocess.run(["readelf", "--debug-dump=info", debug["conn_dwz"]],
                             capture_output=True, text=True).stdout
        shared = subprocess.run(["readelf", "--debug-dump=info", cls.common],
                                capture_output=True, text=True).stdout
        if ".gnu_debugaltlink" not in subprocess.run(["readelf", "-S", debug["conn_dwz"]],
                                                     capture_output=True, text=True).stdout \
                or "DW_TAG_imported_unit" not in own or ": conn\n" not in shared:
            give_up("dwz did not move struct conn into the supplementary file: the test's "
                    "premise does not hold")
        cls.binary = os.path.join(work, "conn_dwz")
        subprocess.run(["strip", "--strip-all", cls.binary], check=True)
        cls.record, cls.snapshot = capture(cls.binary, "dwz")
        # debug directories: both files by build-id; the supplementary file at its link's path
        # under a root; the debug file alone
        cls.by_build_id, cls.partial = path("dwz-by-build-id"), path("dwz-partial")
        cls.root = path("dwz-root")
        for directory, files in ((cls.by_build_id, (debug["conn_dwz"], cls.common)),
                                 (cls.partial, (debug["conn_dwz"],)),
                                 (os.path.join(cls.root, "usr/lib/debug"), (debug["conn_dwz"],))):
            for file in files:
                bid = build_id(file)
                os.makedirs(os.path.join(directory, ".build-id", bid[:2]), exist_ok=True)
                shutil.copy(file, os.path.join(directory, ".build-id", bid[:2], bid[2:] + ".debug"))
        os.makedirs(os.path.dirname(cls.root + cls.LINK), exist_ok=True)
        shutil.copy(cls.common, cls.root + cls.LINK)
        served = path("dwz-served")
        os.makedirs(served, exist_ok=True)
        for file in (debug["conn_dwz"], cls.common):
            shutil.copy(file, served)
        cls.server = Server(served, build_id(cls.common), "dwz", kinds=("debuginfo",))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def summary(self, label, *options):
        env = dict(os.environ, DEBUGINFOD_CACHE_PATH=path("cache-" + label))
        env.pop("DEBUGINFOD_URLS", None)
        result = heapsnap("summary", self.snapshot, "--format", "json", *options, env=env)
        check(result.returncode == 0, f"{label}: summary exits 0: {result.stderr[-500:]}")
        return json.loads(result.stdout) if result.returncode == 0 else {"types": [], "roots": [],
                                                                          "warnings": []}

    def test_by_build_id(self):
        summary = self.summary("dwz-local", "--debug-dir", self.by_build_id, "--no-debuginfod")
        check_names(summary, self.record, self.binary, "dwz by build-id", True, "")
        info = heapsnap("info", self.snapshot, "--format", "json", "--debug-dir",
                        self.by_build_id, "--no-debuginfod")
        modules = {m["path"]: m for m in json.loads(info.stdout)["modules"]} if info.returncode == 0 else {}
        bid = build_id(self.common)
        check(modules.get(self.binary, {}).get("dwz_file") ==
              os.path.join(self.by_build_id, ".build-id", bid[:2], bid[2:] + ".debug"),
              f"info: the supplementary file used: {modules.get(self.binary)}")

    def test_at_the_links_path_under_a_root(self):
        summary = self.summary("dwz-root", "--debug-dir",
                               os.path.join(self.root, "usr/lib/debug"), "--no-debuginfod")
        check_names(summary, self.record, self.binary, "dwz at the link's path", True, "")

    def test_from_the_server(self):
        summary = self.summary("dwz-server", "--debug-dir", self.partial, "--debuginfod",
                               self.server.url)
        check_names(summary, self.record, self.binary, "dwz from debuginfod", True, "")
        check(os.path.exists(os.path.join(path("cache-dwz-server"), build_id(self.common),
                                          "debuginfo")),
              "the supplementary file was fetched by its build-id")

    def test_missing(self):
        # the globals are in the debug file itself, their types (struct conn) in the missing one
        summary = self.summary("dwz-missing", "--debug-dir", self.partial, "--no-debuginfod")
        check("struct conn" not in {t["type"] for t in summary["types"]},
              f"without the supplementary file struct conn is not named: {summary['types'][:3]}")
        check(any("dwz" in w and "not seen" in w and self.binary in w and self.LINK in w
                  for w in summary["warnings"]),
              f"a warning names the module and the missing file: {summary['warnings']}")


class HookSites(Case):
    """Allocation sites the hook recorded in a stripped program (tests/targets/sites.c) are named
    with their functions and source lines from the debug file the server gives: the lines the
    target itself recorded; without the server (the control) the functions have no names."""

    @classmethod
    def setUpClass(cls):
        need("debuginfod", "debuginfod")
        directory = path("sites-debug-files")
        os.makedirs(directory, exist_ok=True)
        cls.binary = path("sites_stripped")
        shutil.copy(SITES_TARGET, cls.binary)
        subprocess.run(["objcopy", "--only-keep-debug", cls.binary,
                        os.path.join(directory, "sites.debug")], check=True)
        subprocess.run(["strip", "--strip-all", cls.binary], check=True)
        cls.server = Server(directory, build_id(cls.binary), "sites", kinds=("debuginfo",))
        snapshots, record_file = path("sites-snapshots"), path("sites-stripped.record")
        reader, writer = os.pipe()
        target = start([cls.binary, record_file], stdin=reader, env=hooked(snapshots, sites=True))
        deadline = time.time() + 30
        while time.time() < deadline and "phase 1" not in (
                open(record_file).read() if os.path.exists(record_file) else ""):
            time.sleep(0.05)
        os.kill(target.pid, signal.SIGUSR2)
        cls.snapshot = wait_for_snapshot(snapshots, [])
        target.kill()
        target.wait()
        os.close(writer)
        os.close(reader)
        cls.lines = {}
        with open(record_file) as f:
            for line in f:
                words = line.split()
                if words[0] == "site":
                    cls.lines[words[1]] = int(words[2])
        if not cls.snapshot:
            give_up("the hook wrote no snapshot of the stripped sites target")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def sites(self, *options):
        env = dict(os.environ, DEBUGINFOD_CACHE_PATH=path("cache-sites"))
        env.pop("DEBUGINFOD_URLS", None)
        summary = json.loads(heapsnap("summary", self.snapshot, "--format", "json", *options,
                                      env=env).stdout)
        return {(s["function"], os.path.basename(s.get("file") or ""), s.get("line"))
                for s in summary.get("sites", [])}

    def test_sites_named_by_the_server(self):
        found = self.sites("--debuginfod", self.server.url)
        expected = {(name, "sites.c", self.lines.get(name))
                    for name in ("make_small", "make_medium", "make_large")}
        check(len(self.lines) == 3 and expected <= found,
              f"the sites are named with the lines the target recorded: {sorted(found, key=str)[:6]}"
              f", expected {sorted(expected, key=str)}")

    def test_sites_unnamed_without_the_server(self):
        found = self.sites("--no-debuginfod")
        named = {f for f in found if f[0] in ("make_small", "make_medium", "make_large")}
        check(found and not named, f"without the server the functions have no names: {sorted(found, key=str)[:6]}")


DEBIAN_PYTHON_OBJECTS = r"""
import gc, signal, sys
class Conn:
    def __init__(self, number):
        self.number = number
conns = [Conn(i) for i in range(1000)]
with open(sys.argv[1], "w") as record:
    record.write("conns %d\n" % sum(1 for o in gc.get_objects() if type(o) is Conn))
signal.pause()
"""


@functools.cache
def debian_python():
    """Debian's own python3.11 (stripped, as the distribution ships it) of the version whose
    python3.11-dbg is in the archive now, unpacked beside the test (the machine's python3.11 is
    left as it is), and that -dbg .deb in a directory of its own for `debuginfod -U`."""
    work = path("debian-python")
    archives, root = os.path.join(work, "debs"), os.path.join(work, "root")
    os.makedirs(archives, exist_ok=True)
    def candidate():
        policy = subprocess.run(["apt-cache", "policy", "python3.11-dbg"], capture_output=True,
                                text=True).stdout
        return next((l.split()[-1] for l in policy.splitlines() if "Candidate:" in l), "(none)")
    version = candidate()
    if version == "(none)":
        subprocess.run(["apt-get", "update"], capture_output=True, timeout=600)
        version = candidate()
    packages = [f"{name}={version}" for name in
                ("python3.11-dbg", "python3.11-minimal", "libpython3.11-minimal")]
    got = subprocess.run(["apt-get", "download", *packages], cwd=work, capture_output=True,
                         text=True, timeout=900)
    debs = {name.split("_")[0]: os.path.join(work, name) for name in os.listdir(work)
            if name.endswith(".deb")}
    if got.returncode != 0 or len(debs) != 3:
        give_up(f"apt-get download {' '.join(packages)} failed: {got.stderr[-500:]}")
    shutil.move(debs["python3.11-dbg"], archives)
    for name in ("python3.11-minimal", "libpython3.11-minimal"):
        subprocess.run(["dpkg-deb", "-x", debs[name], root], check=True)
    return archives, os.path.join(root, "usr", "bin", "python3.11"), os.path.join(root, "usr")


class DebianPython(Case):
    """Debian's stripped python3.11: its layouts come from the DWARF of python3.11-dbg's .deb,
    served by `debuginfod -U` as Debian's public server serves it, not from the built-in table;
    the objects counted are what the interpreter's gc counted, either way."""

    @classmethod
    def setUpClass(cls):
        need("debuginfod", "debuginfod")
        need("bsdtar", "libarchive-tools")  # (how debuginfod reads a .deb)
        archives, python, home = debian_python()
        cls.python_build_id = build_id(python)
        cls.server = Server(archives, cls.python_build_id, "debian-python", archives=True,
                            kinds=("debuginfo",))
        record_path = path("debian-python.record")
        process = start([python, "-c", DEBIAN_PYTHON_OBJECTS, record_path],
                        env=dict(os.environ, PYTHONHOME=home))
        deadline = time.time() + 30
        while not os.path.exists(record_path) or os.path.getsize(record_path) == 0:
            if time.time() > deadline or process.poll() is not None:
                give_up("Debian's python3.11, unpacked, did not start")
            time.sleep(0.05)
        with open(record_path) as f:
            cls.conns = int(f.read().split()[1])
        cls.snapshot = path("debian-python.snap")
        heapsnap("capture", str(process.pid), "-o", cls.snapshot)
        process.kill()
        process.wait()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def summary(self, *options):
        env = dict(os.environ, DEBUGINFOD_CACHE_PATH=path("cache-debian-python"))
        env.pop("DEBUGINFOD_URLS", None)
        return json.loads(heapsnap("summary", self.snapshot, "--format", "json", *options,
                                   env=env).stdout)

    def check_conns(self, label, summary):
        types = {t["type"]: t for t in summary["types"]}
        count = types.get("__main__.Conn", {}).get("count")
        check(count == self.conns == 1000,
              f"{label}: {count} __main__.Conn, the interpreter's gc counted {self.conns}")

    def test_layouts_from_the_servers_dwarf(self):
        summary = self.summary("--debuginfod", self.server.url)
        layouts = summary["python"].get("layouts_from")
        check(layouts == "debug info", f"with the server: the layouts come from {layouts}")
        self.check_conns("with the server", summary)

    def test_without_the_server_built_in(self):
        summary = self.summary("--no-debuginfod")
        layouts = summary["python"].get("layouts_from")
        check(layouts == "built-in", f"without the server (the control): the layouts come from {layouts}")
        self.check_conns("without the server", summary)

    def test_info_names_the_package_server(self):
        env = dict(os.environ, DEBUGINFOD_CACHE_PATH=path("cache-debian-python"))
        info = json.loads(heapsnap("info", self.snapshot, "--format", "json", "--debuginfod",
                                   self.server.url, env=env).stdout)
        python = [m for m in info["modules"] if m["path"].endswith("/python3.11")]
        check(python and python[0]["names_from"].startswith("debuginfod") and
              python[0]["build_id"] == self.python_build_id,
              f"info says python3.11's names came from the server: {python}")

if __name__ == "__main__":
    main()
