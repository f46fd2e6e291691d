"""`heapsnap export --format pprof` and `heapdiff --format pprof` read by Go's own pprof (`go tool
pprof`, Debian's golang-go, built into the Go distribution: no network; HOME and GOCACHE in a
temporary directory). A missing `go` is a failure that says what to install, never a skip.

On the leaking server of docs/design/leaking-server.md (tests/targets/leaky_server.py), captured
after 100 and 1,100 connections (the test's own count: 1,000 leaked __main__.Connection):
- `go tool pprof -top -sample_index=inuse_objects` of AFTER's export shows __main__.Connection with
  1,100 objects and its share of the total, and the total is every live object;
- `go tool pprof -raw` (the samples as Go's parser read them): per type (the leaf frame), objects
  and bytes equal `heapsnap summary --format json`'s, reachable ones under their retaining paths and
  unreachable ones under "(unreachable)";
- `-base BEFORE` of the two exports gives each type heapdiff's change in objects (+1,000
  Connection), and `heapdiff --format pprof` gives each type heapdiff's new objects;
- `-traces` of the diff profile shows each retaining path shape heapdiff prints, root outermost,
  with heapdiff's count (1,000 through `module __main__._CONNECTIONS -> list[*]`);
- the profile's comments (`-comments`) say what it is, and what the report warns about; dict
  keys read from memory are in the frames only with --show-values.
The C twin (tests/targets/leaky_server.c, DWARF-typed structs in a global linked list): the same
for `struct conn` (+1,000, retained from `global all_conns`).
Memory no walker reads (tests/targets/own_pool.c, 32 MiB in a pool of its own): in the comments and
on stderr, as the summary states it.
Allocation sites (the hook with HEAPSNAP_SITES=1, tests/targets/sites.c): `--pprof-stacks sites`
gives per allocating function the blocks the target made there (its record: 110, 210, 310), its
caller main below it; a snapshot without sites is refused.
Bad inputs: no -o, a directory that does not exist, -o naming an input (export's snapshot,
heapdiff's BEFORE), -o without --format pprof: exit 2, a clear message, no file left; the file is
mode 0600."""
import collections
import functools
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

from common import (HEAPDIFF, HEAPSNAP, Case, check, give_up, heapsnap, leak_story, main, path,
                    start, wait_for_text)
from hook_target import hooked, read_sites_record, wait_for_snapshot
from test_hook import wait_for_text as wait_for_phrase

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = os.path.join(HERE, "..", "targets")
LEAKY_SERVER = os.path.join(TARGETS, "leaky_server.py")
LEAKY_SERVER_C = os.environ.get("LEAKY_SERVER_C", "build/tests/leaky_server_c")
OWN_POOL = os.environ.get("OWN_POOL", "build/tests/own_pool")
SITES_TARGET = os.environ.get("SITES_TARGET", "build/tests/sites")
CONNECTION = "__main__.Connection"
UNREACHABLE = "(unreachable)"
GO_HOME = tempfile.mkdtemp(prefix="heapsnap-go-")


def pprof(*args):
    """`go tool pprof ARGS`'s standard output; the case gives up when it fails."""
    go = shutil.which("go")
    if go is None:
        give_up("`go` is not installed: install Debian's golang-go (scripts/setup does)")
    env = dict(os.environ, HOME=GO_HOME, GOCACHE=os.path.join(GO_HOME, "cache"), GOFLAGS="",
               GOPROXY="off", GOTOOLCHAIN="local")
    result = subprocess.run([go, "tool", "pprof", *args], capture_output=True, text=True,
                            timeout=600, env=env)
    if result.returncode != 0:
        give_up(f"go tool pprof {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


def export(snapshot, *options, suffix=""):
    out = snapshot.replace(".snap", f"{suffix}.pb.gz")
    heapsnap("export", snapshot, "--format", "pprof", "-o", out, *options)
    return out


def diff_profile(before, after):
    out = after.replace(".snap", "-diff.pb.gz")
    result = subprocess.run([HEAPDIFF, before, after, "--format", "pprof", "-o", out],
                            capture_output=True, text=True, timeout=600)
    check(result.returncode == 0, f"heapdiff --format pprof exits 0: {result.stderr}")
    return out


def heapdiff_json(before, after):
    result = subprocess.run([HEAPDIFF, "--format", "json", "--top", "1000", before, after],
                            capture_output=True, text=True, timeout=600)
    check(result.returncode == 0, f"heapdiff --format json exits 0: {result.stderr}")
    return json.loads(result.stdout)


LOCATION = re.compile(r"^\s*(\d+): 0x[0-9a-f]+ M=\d+ (.*) (\S*):(\d+) s=\d+$")


def raw_samples(profile):
    """The samples as `go tool pprof -raw` prints them: [(objects, bytes, frames leaf first)]."""
    lines = pprof("-raw", profile).splitlines()
    names = {}
    part = None
    rows = []
    for line in lines:
        if line in ("Samples:", "Locations", "Mappings"):
            part = line
            continue
        if part == "Samples:" and ":" in line and line.strip()[0].isdigit():
            values, ids = line.split(":", 1)
            objects, size = (int(v) for v in values.split())
            rows.append((objects, size, ids.split()))
        elif part == "Locations":
            found = LOCATION.match(line)
            if found:
                names[found.group(1)] = found.group(2)
    samples = [(objects, size, [names.get(i, "?") for i in ids]) for objects, size, ids in rows]
    check(samples, f"{profile}: go tool pprof -raw shows samples")
    return samples


def by_leaf(samples, unreachable=None):
    """Objects and bytes per leaf frame (the type); `unreachable`: only samples whose root is, or
    (False) is not, "(unreachable)"."""
    totals = collections.defaultdict(lambda: [0, 0])
    for objects, size, frames in samples:
        if unreachable is not None and (frames[-1] == UNREACHABLE) != unreachable:
            continue
        totals[frames[0]][0] += objects
        totals[frames[0]][1] += size
    return dict(totals)


def summary_of(snapshot):
    return json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)


def check_like_summary(label, samples, summary):
    reachable = {g["type"]: [g["count"], g["bytes"]] for g in summary["types"]}
    unreachable = {g["type"]: [g["count"], g["bytes"]] for g in summary["unreachable"]["by_type"]}
    for name, ours, theirs in (("reachable", by_leaf(samples, False), reachable),
                               ("unreachable", by_leaf(samples, True), unreachable)):
        wrong = {t: (ours.get(t), theirs.get(t)) for t in set(ours) | set(theirs)
                 if ours.get(t) != theirs.get(t)}
        check(not wrong, f"{label}: {name} objects and bytes per type as the summary's "
                         f"(pprof, summary): {dict(list(wrong.items())[:8])}")


def check_top(label, profile, type_name, expected):
    """-top by objects: the type's row shows `expected` objects and its share of the total."""
    text = pprof("-top", "-sample_index=inuse_objects", "-nodefraction=0", profile)
    total = re.search(r"of (\d+) total", text)
    row = re.search(r"^\s*(\d+)\s+([0-9.]+)%\s+[0-9.]+%\s+\d+\s+[0-9.]+%\s+" + re.escape(type_name)
                    + r"$", text, re.M)
    check(total and row and int(row.group(1)) == expected and
          abs(float(row.group(2)) - 100.0 * expected / int(total.group(1))) < 0.006,
          f"{label}: go tool pprof -top shows {expected} {type_name} and its share: "
          f"{row and row.group(0)} of {total and total.group(0)}")
    return int(total.group(1)) if total else None


def check_base(label, before_profile, after_profile, diff):
    """-base BEFORE: each type's change in objects is heapdiff's."""
    text = pprof("-top", "-sample_index=inuse_objects", "-nodefraction=0", "-base",
                 before_profile, after_profile)
    rows = {}
    for line in text.splitlines():
        found = re.match(r"^\s*(-?\d+)\s+-?[0-9.]+%\s+-?[0-9.]+%\s+-?\d+\s+-?[0-9.]+%\s+(.+)$", line)
        if found:
            rows[found.group(2)] = rows.get(found.group(2), 0) + int(found.group(1))
    expected = {t["type"]: t["delta_count"] for t in diff["grown"] if t["delta_count"]}
    wrong = {t: (rows.get(t, 0), n) for t, n in expected.items() if rows.get(t, 0) != n}
    check(expected and not wrong,
          f"{label}: -base gives heapdiff's change in objects per type (pprof, heapdiff): {wrong}")


def check_diff_profile(label, diff_path, diff, type_name, count, root):
    samples = raw_samples(diff_path)
    leaves = by_leaf(samples)
    expected = {t["type"]: t["new"] for t in diff["grown"]}
    wrong = {t: (leaves.get(t, [0])[0], n) for t, n in expected.items()
             if leaves.get(t, [0])[0] != n}
    check(leaves.get(type_name, [0])[0] == count and not wrong,
          f"{label}: heapdiff --format pprof holds heapdiff's new objects per type, {count} "
          f"{type_name} (pprof, heapdiff): {wrong}")
    # each retaining path heapdiff prints is a trace, root outermost, with its count
    traces = collections.Counter()
    text = pprof("-traces", "-sample_index=inuse_objects", diff_path)
    for block in text.split("-----------+-------------------------------------------------------"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines or not re.match(r"^\s*\d+\s+\S", lines[0]):
            continue
        value, leaf = lines[0].strip().split(None, 1)
        frames = [leaf] + [line.strip() for line in lines[1:]]
        traces[tuple(reversed(frames))] += int(value)
    grown = {t["type"]: t for t in diff["grown"]}
    retainers = grown.get(type_name, {}).get("retainers", [])
    check(retainers and all(traces.get(tuple(r["path"])) == r["count"] for r in retainers),
          f"{label}: -traces shows heapdiff's paths of {type_name} with their counts: "
          f"{[(r['path'], r['count'], traces.get(tuple(r['path']))) for r in retainers]}")
    check(sum(r["count"] for r in retainers if r["path"][0] == root) == count,
          f"{label}: the {count} new {type_name} are held from {root}: {retainers}")


@functools.cache
def python_story():
    python = "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else sys.executable
    return leak_story([python, LEAKY_SERVER], "global", "pprof-py")


@functools.cache
def c_story():
    return leak_story([LEAKY_SERVER_C], "global", "pprof-c")


class Python(Case):
    def test_top_and_summary(self):
        before, after = python_story()
        profile = export(after)
        summary = summary_of(after)
        total = check_top("python", profile, CONNECTION, 1100)
        live = sum(g["count"] for g in summary["types"]) + summary["unreachable"]["count"]
        check(total == live, f"python: the profile's total is every live object: {total}, {live}")
        check_like_summary("python", raw_samples(profile), summary)
        mode = stat.S_IMODE(os.stat(profile).st_mode)
        check(mode == 0o600, f"the profile is mode 0600: {oct(mode)}")
        comments = pprof("-comments", profile)
        check("live heap of python3" in comments and "retaining path" in comments,
              f"the comments say what the profile is: {comments}")

    def test_base_and_diff(self):
        before, after = python_story()
        diff = heapdiff_json(before, after)
        check_base("python", export(before), export(after), diff)
        check_diff_profile("python", diff_profile(before, after), diff, CONNECTION, 1000,
                           "module __main__._CONNECTIONS")

    def test_values_masked(self):
        before, after = python_story()
        def keys(profile):
            return [f for _, _, frames in raw_samples(profile) for f in frames if "['" in f]
        shown = keys(export(after, "--show-values", suffix="-values"))
        masked = keys(export(after))
        check(shown and not masked, f"dict keys read from memory in the frames only with "
                                    f"--show-values: {shown[:3]}, {masked[:3]}")


class C(Case):
    def test_c_heap(self):
        before, after = c_story()
        profile = export(after)
        check_top("C", profile, "struct conn", 1100)
        check_like_summary("C", raw_samples(profile), summary_of(after))
        diff = heapdiff_json(before, after)
        check_base("C", export(before), profile, diff)
        check_diff_profile("C", diff_profile(before, after), diff, "struct conn", 1000,
                           "global all_conns")


class Unseen(Case):
    def test_unseen_in_comments(self):
        ready = path("pprof-pool.ready")
        process = start([OWN_POOL, ready])
        wait_for_text(ready, process)
        snapshot = path("pprof-pool.snap")
        heapsnap("capture", str(process.pid), "-o", snapshot)
        process.kill()
        process.wait()
        out = snapshot.replace(".snap", ".pb.gz")
        result = subprocess.run([HEAPSNAP, "export", snapshot, "--format", "pprof", "-o", out],
                                capture_output=True, text=True, timeout=300)
        check(result.returncode == 0, f"own_pool: export exits 0: {result.stderr}")
        summary = summary_of(snapshot)
        unseen = summary["heap"]["unseen"]["bytes"]
        check(unseen >= 32 << 20, f"own_pool: the summary states its 32 MiB pool unseen: {unseen}")
        comments = pprof("-comments", out)
        check(re.search(r"warning: memory no walker reads: 3\d\.\d MiB", comments),
              f"own_pool: the comments state the memory no walker reads: {comments}")
        check(re.search(r"warning: memory no walker reads: 3\d\.\d MiB", result.stderr),
              f"own_pool: so does stderr: {result.stderr}")


class Sites(Case):
    def test_sites(self):
        directory = path("pprof-sites")
        record_file = path("pprof-sites-record")
        reader, writer = os.pipe()
        target = start([SITES_TARGET, record_file], stdin=reader,
                       env=hooked(directory, sites=True))
        try:
            if not check(wait_for_phrase(record_file, "phase 1"), "the sites target ran"):
                return
            os.write(writer, b"go\n")
            check(wait_for_phrase(record_file, "phase 2"), "the sites target allocated more")
            os.kill(target.pid, signal.SIGUSR2)
            snapshot = wait_for_snapshot(directory, [])
        finally:
            target.kill()
            target.wait()
            os.close(writer)
            os.close(reader)
        if not check(snapshot, "a snapshot with sites"):
            return
        lines, callers = read_sites_record(record_file)
        profile = export(snapshot, "--pprof-stacks", "sites", suffix="-sites")
        counts = collections.Counter()
        below = {}
        for objects, _, frames in raw_samples(profile):
            for function in lines:
                frame = f"{function} (sites.c:{lines[function]})"
                if len(frames) > 1 and frames[1] == frame:
                    counts[function] += objects
                    below[function] = frames[2] if len(frames) > 2 else None
        check(counts == {"make_small": 110, "make_medium": 210, "make_large": 310},
              f"sites: the blocks of each allocating function, as its record says: {dict(counts)}")
        check(all(below.get(f) == f"main (sites.c:{line})" for f, line in callers.items()),
              f"sites: main called each of them there: {below} {callers}")

    def test_no_sites_refused(self):
        _, after = python_story()
        out = path("no-sites.pb.gz")
        result = subprocess.run([HEAPSNAP, "export", after, "--format", "pprof", "-o", out,
                                 "--pprof-stacks", "sites"], capture_output=True, text=True,
                                timeout=300)
        check(result.returncode == 2 and "records no allocation sites" in result.stderr and
              not os.path.exists(out),
              f"--pprof-stacks sites without sites: exit 2, said: {result.returncode} "
              f"{result.stderr}")


class BadInput(Case):
    def run_refused(self, label, command, words, output=None):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        check(result.returncode == 2 and all(w in result.stderr for w in words),
              f"{label}: exit 2 and a message with {words}: {result.returncode} {result.stderr}")
        if output:
            check(not os.path.exists(output) or output in command[1:3],
                  f"{label}: no file left at {output}")

    def test_bad_inputs(self):
        before, after = python_story()
        size = os.path.getsize(before)
        self.run_refused("no -o", [HEAPSNAP, "export", after, "--format", "pprof"], ["-o"])
        missing = path("no-such-dir/heap.pb.gz")
        self.run_refused("a missing directory",
                         [HEAPSNAP, "export", after, "--format", "pprof", "-o", missing],
                         ["no-such-dir"], missing)
        self.run_refused("the snapshot as output",
                         [HEAPSNAP, "export", before, "--format", "pprof", "-o", before],
                         [before])
        self.run_refused("heapdiff: BEFORE as output",
                         [HEAPDIFF, before, after, "--format", "pprof", "-o", before], [before])
        check(os.path.getsize(before) == size, "the snapshot is intact")
        self.run_refused("heapdiff: no -o", [HEAPDIFF, before, after, "--format", "pprof"], ["-o"])
        self.run_refused("heapdiff: -o without pprof",
                         [HEAPDIFF, before, after, "-o", path("x.pb.gz")], ["--format pprof"])
        self.run_refused("--pprof-stacks with devtools",
                         [HEAPSNAP, "export", after, "--pprof-stacks", "sites", "-o",
                          path("x.heapsnapshot")], ["--pprof-stacks"])


if __name__ == "__main__":
    main()
