"""heapdiff on the leaking-server story (docs/design/leaking-server.md), with real servers and real
client connections over 127.0.0.1. The ground truth is what the test itself did: 100 connections
before the first snapshot, 1,000 more before the second, each making one Connection (and one
ConnectionHandler) in the server.

- Python (tests/targets/leaky_server.py), on pyenv's 3.11 and 3.13 and Debian's stripped 3.11:
  (a) a module-global list never pruned: __main__.Connection grew by exactly 1,000, all 1,000
      retained through `module __main__._CONNECTIONS -> list[*]`, and the list is reported as a
      container that grew from 100 to 1,100 items;
  (b) a class-attribute dict: the same through `class __main__.Connection.registry -> dict[*]`;
  (c) only the cycle, with gc disabled: 1,000 new unreachable cycles of the shape
      Connection._conn_handler -> ConnectionHandler._conn -> Connection, and 1,000 of each class
      unreachable;
  (d) fixed (try/finally, weakref.proxy): no type of __main__ grew, nothing new unreachable.
- The C twin (tests/targets/leaky_server.c): a global linked list (struct conn grew by 1,000,
  retained from `global all_conns`), lost pointers (3,000 new unreachable blocks, 1,000 cycles of
  conn and handler), fixed (no struct grew, nothing unreachable).
- The markdown report of (a) equals the checked-in fixture, times, pids, paths and totals masked.
- The same leak captured in two separate runs of the server has the same signature.
- Three snapshots (tests/targets/burst_server.py, which prunes on close): 1,000 connections open
  at TARGET, 500 of them closed before FINAL: exactly 500 Connection (and handlers) left behind.
- The options: --fail-on-growth (exit 1 only past the limit, by count and by bytes), snapshots
  of two processes refused (exit 2) unless --force, values masked unless --show-values, colour
  only when asked for or on a terminal."""
import glob
import json
import os
import re
import resource
import socket
import subprocess
import time

from common import Case, check, give_up, heapsnap, leak_story, main, path, start, wait_for_text

HEAPDIFF = os.environ.get("HEAPDIFF", "build/heapdiff")
LEAKY_SERVER_C = os.environ.get("LEAKY_SERVER_C", "build/tests/leaky_server_c")
HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = os.path.join(HERE, "..", "targets")
FIXTURE = os.path.join(HERE, "fixtures", "heapdiff_global_list.md")

pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))


def pyenv_python(minor):
    found = sorted(glob.glob(os.path.join(pyenv_root, "versions", f"3.{minor}.*", "bin",
                                          f"python3.{minor}")))
    return found[-1] if found else None


PY311, PY313 = pyenv_python(11), pyenv_python(13)
DEBIAN = "/usr/bin/python3.11"


def setUpModule():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def heapdiff(*args, expect=0):
    result = subprocess.run([HEAPDIFF, *args], capture_output=True, text=True, timeout=600)
    check(result.returncode == expect,
          f"heapdiff {' '.join(args)} exited {result.returncode}, not {expect}: {result.stderr}")
    return result


runs = 0


def python_story(python, variant):
    global runs
    runs += 1
    return leak_story([python, os.path.join(TARGETS, "leaky_server.py")], variant,
                      f"py-{variant}-{runs}")


def report(before, after, *options):
    return json.loads(heapdiff("--format", "json", *options, before, after).stdout)


def grown(diff):
    return {g["type"]: g for g in diff["grown"]}


def retainer(entry, first, second):
    """The retainer of a grown type whose path starts with [first, second]."""
    for r in (entry or {}).get("retainers", []):
        if r["path"][:2] == [first, second]:
            return r
    return None


def interpreter(python):
    """`python` and its label; the case gives up when it is not installed."""
    if not python or not os.path.exists(python):
        give_up(f"the interpreter is present: {python}")
    return python, python.replace(pyenv_root, "pyenv")


_global_stories = {}


def global_story(python):
    """(a) the module-global list on `python`: its two snapshots and heapdiff's JSON of them, made
    once per interpreter for every case."""
    if python not in _global_stories:
        before, after = python_story(python, "global")
        _global_stories[python] = before, after, report(before, after)
    return _global_stories[python]


def global_list_retainer(diff):
    conn = grown(diff).get("__main__.Connection")
    return conn, retainer(conn, "module __main__._CONNECTIONS", "list[*]")


# (a) the module-global list
def check_global_list(python):
    python, label = interpreter(python)
    before, after, diff = global_story(python)
    check(diff["schema"] == "heapsnap.diff/1", f"{label}: schema is heapsnap.diff/1")
    types = grown(diff)
    conn = types.get("__main__.Connection")
    check(conn and conn["delta_count"] == 1000 and conn["new"] == 1000 and conn["freed"] == 0
          and conn["count_after"] == 1100 and conn["surviving"] == 100,
          f"{label} (a): __main__.Connection +1,000 new, 1,100 after; heapdiff: {conn}")
    handler = types.get("__main__.ConnectionHandler")
    check(handler and handler["delta_count"] == 1000,
          f"{label} (a): __main__.ConnectionHandler +1,000; heapdiff: {handler}")
    held = retainer(conn, "module __main__._CONNECTIONS", "list[*]")
    check(held and held["count"] == 1000 and held["path"][-1] == "__main__.Connection"
          and held["retained_bytes"] > 0,
          f"{label} (a): all 1,000 new Connections retained via module __main__._CONNECTIONS "
          f"-> list[*]; heapdiff: {conn and conn.get('retainers')}")
    containers = [c for c in diff["grown_containers"]
                  if c["path"] and c["path"][0] == "module __main__._CONNECTIONS"]
    check(containers and containers[0]["type"] == "list"
          and (containers[0]["items_before"], containers[0]["items_after"]) == (100, 1100),
          f"{label} (a): the list _CONNECTIONS grew from 100 to 1,100 items; heapdiff: "
          f"{diff['grown_containers']}")
    if held:
        found = [held["signature"]]
        check(len(set(found)) == 1, f"{label}: one signature for one leak: {found}")


# the markdown report of (a) on pyenv's 3.11, against the fixture
def masked(text):
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "TIME", text)
    text = re.sub(r"(pid|thread) \d+", r"\1 PID", text)
    text = re.sub(r"`[^`]*\.snap`", "`FILE`", text)
    text = re.sub(r"build-id [0-9a-f]+", "build-id BUILD_ID", text)
    text = re.sub(r"in \d+m\d\ds", "in DURATION", text)
    text = re.sub(r"exe `[^`]*`", "exe `EXE`", text)
    text = re.sub(r"CPython 3\.11\.\d+", "CPython 3.11.x", text)
    # what an object retains depends on what else shares its parts: a few bytes differ
    # from run to run
    text = re.sub(r"[\d.]+ (B|KiB|MiB) retained", "SIZE retained", text)
    text = re.sub(r"^(\| \d+ \| [\d,]+ \| `[^`]*` \| )[^|]+\|", r"\1SIZE |", text,
                  flags=re.M)
    # the whole heap's totals vary with what the interpreter did between runs
    text = re.sub(r"^\| (before|after|change) \|.*$", r"| \1 | ... |", text, flags=re.M)
    return text


def check_markdown_fixture():
    before, after, diff = global_story(PY311)
    markdown = heapdiff("--format", "markdown", "--type", "__main__.*", before, after).stdout
    if os.environ.get("HEAPSNAP_UPDATE_FIXTURES"):
        with open(FIXTURE, "w") as f:
            f.write(masked(markdown))
    with open(FIXTURE) as f:
        expected = f.read()
    check(masked(markdown) == expected,
          f"the markdown report of (a) equals {FIXTURE}; got:\n{masked(markdown)}")


# a second run of (a) on pyenv's 3.11: the same signature
def check_signature_in_two_runs():
    python, label = interpreter(PY311)
    before, after, diff = global_story(python)
    conn, held = global_list_retainer(diff)
    again = report(*python_story(python, "global"))
    held_again = retainer(grown(again).get("__main__.Connection"),
                          "module __main__._CONNECTIONS", "list[*]")
    check(held and held_again and held_again["signature"] == held["signature"],
          f"the same leak in two runs has one signature: {held and held['signature']} "
          f"and {held_again and held_again['signature']}")


# values stay masked unless asked for: the peers' host strings are new str objects
def check_values_masked():
    before, after, diff = global_story(PY311)
    text = heapdiff(before, after).stdout + heapdiff("--format", "json", before, after).stdout
    check("127.0.0.1" not in text, "no value from memory in the default reports")
    shown = grown(report(before, after, "--show-values")).get("str", {})
    check("127.0.0.1" in shown.get("values", []),
          f"--show-values previews the new strings; heapdiff: {shown.get('values')}")


# exit 1 only past a --fail-on-growth limit
def check_fail_on_growth():
    before, after, diff = global_story(PY311)
    conn, held = global_list_retainer(diff)
    heapdiff("--fail-on-growth", "__main__.Connection=999", before, after, expect=1)
    heapdiff("--fail-on-growth", "__main__.Connection=1000", before, after, expect=0)
    heapdiff("--fail-on-growth", "__main__.*=2000", before, after, expect=0)
    heapdiff("--fail-on-growth", "__main__.*=1999", before, after, expect=1)
    connection_bytes = conn["delta_bytes"] if conn else 0
    heapdiff("--fail-on-growth", f"__main__.Connection={connection_bytes}B", before, after,
             expect=0)
    heapdiff("--fail-on-growth", f"__main__.Connection={connection_bytes - 1}B", before,
             after, expect=1)
    heapdiff("--fail-on-growth", "nonsense", before, after, expect=2)


# the text report says it in words
def check_text_report():
    before, after, diff = global_story(PY311)
    text = heapdiff(before, after).stdout
    check("module __main__._CONNECTIONS grew from 100 to 1,100 items" in text and
          "module __main__._CONNECTIONS -> list[*] -> __main__.Connection" in text,
          f"the text report names the list and the path:\n{text}")


# filters and ranking
def check_filters_and_ranking():
    before, after, diff = global_story(PY311)
    large = grown(report(before, after, "--min-bytes", "100K"))
    check(all(g["delta_bytes"] >= 100 * 1024 for g in large.values()) and
          "__main__.Connection" in large and "__main__.ConnectionHandler" not in large,
          f"--min-bytes 100K keeps Connection (109 KiB), not ConnectionHandler (94 KiB): "
          f"{[(t, g['delta_bytes']) for t, g in large.items()]}")
    by_count = report(before, after, "--sort", "count")["grown"]
    counts = [g["delta_count"] for g in by_count]
    check(counts == sorted(counts, reverse=True), f"--sort count ranks by objects: {counts}")
    only = grown(report(before, after, "--type", "__main__.*"))
    check(sorted(only) == ["__main__.Connection", "__main__.ConnectionHandler"],
          f"--type '__main__.*' keeps the server's two classes: {sorted(only)}")


# bad input: a clear error naming the file, exit 2
def check_bad_input():
    before, after, diff = global_story(PY311)
    missing = heapdiff(before, path("no-such.snap"), expect=2)
    check("no-such.snap" in missing.stderr, f"a missing file is named: {missing.stderr}")
    junk = path("junk.snap")
    with open(junk, "wb") as f:
        f.write(b"not a snapshot" * 100)
    bad = heapdiff(junk, after, expect=2)
    check("junk.snap" in bad.stderr, f"a file that is no snapshot is named: {bad.stderr}")
    heapdiff(before, expect=2)
    check("usage: heapdiff" in heapdiff("--help").stdout, "--help prints the usage")


# `heapsnap diff` is the same command: the same report, its messages by its own name
def check_heapsnap_diff():
    before, after, diff = global_story(PY311)
    as_command = heapsnap("diff", before, after, "--format", "json")
    check(as_command.stdout == heapdiff(before, after, "--format", "json").stdout,
          "heapsnap diff writes heapdiff's report")
    refused = heapsnap("diff", before, check_ok=False)
    check(refused.returncode == 2 and "heapsnap diff --help" in refused.stderr,
          f"heapsnap diff names itself in a usage error: {refused.stderr!r}")


# colour only when asked for, or on a terminal without NO_COLOR
def check_colour():
    before, after, diff = global_story(PY311)
    check("\033[" not in heapdiff(before, after).stdout, "no colour into a pipe")
    check("\033[" in heapdiff("--color", "always", before, after).stdout,
          "--color always colours")


# two processes: refused, unless --force
def check_two_processes():
    python, label = interpreter(PY311)
    before, after, diff = global_story(python)
    other_before, _ = python_story(python, "fixed")
    refused = heapdiff(other_before, after, expect=2)
    check("--force" in refused.stderr and "pid" in refused.stderr,
          f"two processes: the error says why and names --force: {refused.stderr}")
    forced = report(other_before, after, "--force")
    check(forced["forced"] and "__main__.Connection" in grown(forced),
          "--force compares by type")


# (b) the class-attribute dict
def check_class_dict(python):
    python, label = interpreter(python)
    diff = report(*python_story(python, "class"))
    conn = grown(diff).get("__main__.Connection")
    held = retainer(conn, "class __main__.Connection.registry", "dict[*]")
    check(conn and conn["delta_count"] == 1000 and held and held["count"] == 1000,
          f"{label} (b): +1,000 Connections, retained via class __main__.Connection.registry "
          f"-> dict[*]; heapdiff: {conn}")
    containers = [c for c in diff["grown_containers"]
                  if c["path"] and c["path"][0] == "class __main__.Connection.registry"]
    check(containers and (containers[0]["items_before"], containers[0]["items_after"]) ==
          (100, 1100), f"{label} (b): the registry grew from 100 to 1,100 items; heapdiff: "
          f"{diff['grown_containers']}")


# (c) only the cycle, gc disabled
def check_cycle(python):
    python, label = interpreter(python)
    diff = report(*python_story(python, "cycle"))
    shape = ["__main__.Connection._conn_handler", "__main__.ConnectionHandler._conn",
             "__main__.Connection"]
    cycles = [c for c in diff["unreachable"]["cycles"] if c["shape"] == shape]
    check(cycles and cycles[0]["count"] == 1000,
          f"{label} (c): 1,000 new unreachable cycles of shape {shape}; heapdiff: "
          f"{[(c['shape'], c['count']) for c in diff['unreachable']['cycles'][:3]]}")
    lost = {t["type"]: t["count"] for t in diff["unreachable"]["by_type"]}
    check(lost.get("__main__.Connection") == 1000 and
          lost.get("__main__.ConnectionHandler") == 1000,
          f"{label} (c): 1,000 of each class newly unreachable; heapdiff: {lost}")
    conn = grown(diff).get("__main__.Connection")
    check(conn and conn["delta_count"] == 1000, f"{label} (c): +1,000 Connections: {conn}")


# (d) fixed
def check_fixed(python):
    python, label = interpreter(python)
    diff = report(*python_story(python, "fixed"))
    ours = [g["type"] for g in diff["grown"] if g["type"].startswith("__main__.")]
    check(not ours, f"{label} (d): no type of __main__ grew; heapdiff: {ours}")
    lost = [t for t in diff["unreachable"]["by_type"] if t["type"].startswith("__main__.")]
    check(not lost, f"{label} (d): nothing of __main__ unreachable; heapdiff: {lost}")


# the C twin
def check_c_twin(variant):
    before, after = leak_story([LEAKY_SERVER_C], variant, f"c-{variant}")
    diff = report(before, after)
    types = grown(diff)
    if variant == "global":
        conn = types.get("struct conn")
        held = [r for r in (conn or {}).get("retainers", [])
                if r["path"][0] == "global all_conns"]
        check(conn and conn["delta_count"] == 1000 and conn["new"] == 1000,
              f"C global: struct conn +1,000; heapdiff: {conn}")
        check(held and sum(r["count"] for r in held) == 1000,
              f"C global: all 1,000 new struct conn retained from global all_conns; heapdiff: "
              f"{conn and conn.get('retainers')}")
        handler = types.get("struct handler")
        check(handler and handler["delta_count"] == 1000,
              f"C global: struct handler +1,000; heapdiff: {handler}")
        check(diff["unreachable"]["new_count"] == 0, "C global: nothing new unreachable")
    elif variant == "lost":
        unreachable = diff["unreachable"]
        check(unreachable["new_count"] == 3000,
              f"C lost: conn, handler and buffer of 1,000 connections newly unreachable "
              f"(3,000); heapdiff: {unreachable['new_count']}")
        check(sum(c["count"] for c in unreachable["cycles"]) == 1000,
              f"C lost: 1,000 cycles (conn <-> handler); heapdiff: {unreachable['cycles']}")
    else:
        check(not [t for t in types if t.startswith("struct ")],
              f"C fixed: no struct grew; heapdiff: {list(types)[:10]}")
        check(diff["unreachable"]["new_count"] == 0, "C fixed: nothing new unreachable")


# three snapshots: a burst of 1,000 connections, 500 closed before FINAL
def check_three_snapshots(python):
    global runs
    python, label = interpreter(python)
    runs += 1
    port_file, status_file = path(f"port-{runs}"), path(f"status-{runs}")
    server = start([python, os.path.join(TARGETS, "burst_server.py"), port_file, status_file])
    port = int(wait_for_text(port_file, server))

    def wait_status(count):
        deadline = time.time() + 60
        while True:
            with open(status_file) as f:
                if f.read().strip() == str(count):
                    return
            if time.time() > deadline:
                raise RuntimeError(f"the burst server never reached {count} connections")
            time.sleep(0.02)

    snaps = [path(f"burst-{runs}-{name}.snap") for name in ("baseline", "target", "final")]
    heapsnap("capture", str(server.pid), "-o", snaps[0])
    sockets = []
    for i in range(1000):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"hello")
        received = b""
        while len(received) < 5:
            received += sock.recv(16)
        sockets.append(sock)
    wait_status(1000)
    heapsnap("capture", str(server.pid), "-o", snaps[1])
    for sock in sockets[:500]:
        sock.close()
    wait_status(500)
    heapsnap("capture", str(server.pid), "-o", snaps[2])
    diff = json.loads(heapdiff("--format", "json", *snaps).stdout)
    types = grown(diff)
    for name in ["__main__.Connection", "__main__.ConnectionHandler"]:
        entry = types.get(name)
        check(entry and entry["new"] == 500 and entry["new_in_target"] == 1000,
              f"{label} three snapshots: {name}: 500 left behind of 1,000 new in TARGET; "
              f"heapdiff: {entry}")
    held = retainer(types.get("__main__.Connection"), "module __main__._CONNECTIONS", "dict[*]")
    check(held and held["count"] == 500,
          f"{label} three snapshots: the 500 are held by module __main__._CONNECTIONS")
    for sock in sockets[500:]:
        sock.close()
    server.kill()
    server.wait()


class Interpreters(Case):
    def test_all_present(self):
        check(PY311 and PY313, f"pyenv's CPython 3.11 and 3.13 are present: {PY311}, {PY313}")
        check(os.path.exists("/usr/bin/python3.11"), "Debian's python3.11 is installed")


class Python(Case):
    def test_python3_11_global_list(self):
        check_global_list(PY311)

    def test_python3_11_class_dict(self):
        check_class_dict(PY311)

    def test_python3_11_cycle_only(self):
        check_cycle(PY311)

    def test_python3_11_fixed(self):
        check_fixed(PY311)

    def test_python3_13_global_list(self):
        check_global_list(PY313)

    def test_python3_13_class_dict(self):
        check_class_dict(PY313)

    def test_python3_13_cycle_only(self):
        check_cycle(PY313)

    def test_python3_13_fixed(self):
        check_fixed(PY313)

    def test_debian_python3_11_global_list(self):
        check_global_list(DEBIAN)

    def test_debian_python3_11_class_dict(self):
        check_class_dict(DEBIAN)

    def test_debian_python3_11_cycle_only(self):
        check_cycle(DEBIAN)

    def test_debian_python3_11_fixed(self):
        check_fixed(DEBIAN)


class Report(Case):
    """The report and the options, on (a) on pyenv's 3.11."""

    def test_markdown_fixture(self):
        check_markdown_fixture()

    def test_signature_in_two_runs(self):
        check_signature_in_two_runs()

    def test_values_masked(self):
        check_values_masked()

    def test_fail_on_growth(self):
        check_fail_on_growth()

    def test_text_report(self):
        check_text_report()

    def test_filters_and_ranking(self):
        check_filters_and_ranking()

    def test_bad_input(self):
        check_bad_input()

    def test_heapsnap_diff(self):
        check_heapsnap_diff()

    def test_colour(self):
        check_colour()

    def test_two_processes(self):
        check_two_processes()


class CTwin(Case):
    def test_global_list(self):
        check_c_twin("global")

    def test_lost_pointers(self):
        check_c_twin("lost")

    def test_fixed(self):
        check_c_twin("fixed")


class ThreeSnapshots(Case):
    def test_burst_python3_11(self):
        check_three_snapshots(PY311)

    def test_burst_python3_13(self):
        check_three_snapshots(PY313)


if __name__ == "__main__":
    main()
