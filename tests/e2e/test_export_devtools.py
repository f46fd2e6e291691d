"""`heapsnap export --format devtools` read by memlab (npm @memlab/core and @memlab/api, from
tests/tools/memlab: installed there by `npm ci`, from scripts/setup or by this test when missing;
tests/tools/memlab/check.js does the reading). A missing node or memlab is a failure that says
what to install, never a skip.

On the leaking server of docs/design/leaking-server.md (tests/targets/leaky_server.py), captured
after 100, 1,100 and 2,100 connections (the test's own count), each snapshot exported:
- the document is what DevTools' loader assumes: node_count and edge_count exact, the nodes' edge
  counts summing to edge_count, every to_node a node's first field, 32-bit unsigned numbers only,
  unique ids, node 0 the root (id 1), element edges numbered and others naming a string, strings
  last;
- memlab's parser finds as many nodes of each type, with the same self sizes, as `heapsnap summary
  --format json` counts objects and bytes (reachable and unreachable; a block that is part of an
  object, named "(part of TYPE)", adds to TYPE's bytes), as many heap nodes as the summary's live
  allocations, and the root's children are the summary's roots (and "(unreachable)");
- 1,100 __main__.Connection nodes, and memlab's path from its roots to each names the root and the
  holder heapsnap's own path to it names (`heapsnap list --paths`): `module __main__._CONNECTIONS`
  and a list;
- ids are stable: the 100 connections of the first snapshot have the same ids in the second
  (DevTools' Comparison view and memlab match objects by id);
- memlab's find-leaks on the three exports (its three-snapshot filter: new in TARGET, alive in
  FINAL) reports a trace from `module __main__._CONNECTIONS` to a leaked __main__.Connection; on
  the fixed server (which frees its connections) no trace has a leaked Connection;
- the cycle variant (gc disabled): memlab's path to each unreachable Connection comes from
  "(unreachable)", as many as the summary's unreachable Connection objects;
- the C twin (tests/targets/leaky_server.c, a global linked list): memlab's retainers of each
  `struct conn` name the root and holder heapsnap's paths name (`global all_conns`), through
  property edges named by the member (`next`);
- dict keys read from memory are masked ("[*]") unless --show-values; the file is mode 0600;
  a bad --format, a missing snapshot and a terminal as output are refused with exit status 2."""
import collections
import functools
import json
import os
import stat
import subprocess
import sys

from common import (HEAPSNAP, Case, check, give_up, heapsnap, leak_story, main, path,
                    require_npm_tools)

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = os.path.join(HERE, "..", "targets")
MEMLAB_TOOLS = os.path.normpath(os.path.join(HERE, "..", "tools", "memlab"))
LEAKY_SERVER = os.path.join(TARGETS, "leaky_server.py")
LEAKY_SERVER_C = os.environ.get("LEAKY_SERVER_C", "build/tests/leaky_server_c")
CONNECTION = "__main__.Connection"


@functools.cache
def tools():
    """memlab's npm packages installed, and the Python the leaky server runs on; once."""
    require_npm_tools(MEMLAB_TOOLS, "@memlab/api", "to read the exports")
    return pick_python()


def pick_python():
    for candidate in ["/usr/bin/python3.11", sys.executable]:
        if os.path.exists(candidate):
            return candidate
    give_up("no Python 3 to run the leaky server with")


def export(snapshot, *options):
    out = snapshot.replace(".snap", "".join(options).replace("-", "") + ".heapsnapshot")
    heapsnap("export", snapshot, "--format", "devtools", "-o", out, *options)
    return out


def memlab(*args):
    result = subprocess.run(["node", os.path.join(MEMLAB_TOOLS, "check.js"), *args],
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        give_up(f"memlab check.js {args[0]} failed: {result.stderr[-3000:]}")
    return json.loads(result.stdout)


def summary_of(snapshot):
    return json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)


def heapsnap_retainers(snapshot, type_name):
    """(root, holder step) of heapsnap's path to each object of the type (parts left out)."""
    lines = heapsnap("list", snapshot, "--format", "jsonl", "--paths").stdout.splitlines()
    counts = collections.Counter()
    for line in lines:
        entry = json.loads(line)
        if entry.get("type") != type_name or entry.get("python") == "part":
            continue
        steps = entry.get("path")
        counts[(steps[0], steps[-2]) if steps else None] += 1
    return counts


def memlab_retainers(loaded):
    """(root, holder node) of memlab's path to each node: its steps are "NAME -EDGE->"."""
    counts = collections.Counter()
    for key, count in loaded["retainers"].items():
        steps = [step.rsplit(" -", 1)[0].strip() for step in key.split("->")]
        # steps[0] is the synthetic root (""), steps[1] a root, steps[-2] the holder
        counts[(steps[1], steps[-2]) if len(steps) >= 3 else key] += count
    return counts


def check_same_retainers(label, exported, snapshot, type_name):
    """memlab's (root, holder) for each object of the type, as heapsnap's (holder step "list[*]"
    starts with the holder's type "list")."""
    ours = heapsnap_retainers(snapshot, type_name)
    theirs = memlab_retainers(exported)
    matched = collections.Counter()
    for (root, holder), count in theirs.items():
        for (our_root, step), _ in ours.items():
            if our_root == root and step.startswith(holder):
                matched[(our_root, step)] += count
                break
    check(matched == ours and sum(theirs.values()) == sum(ours.values()),
          f"{label}: memlab's retainers of {type_name} {dict(theirs)} are heapsnap's {dict(ours)}")
    return theirs


def check_format(label, loaded):
    check(loaded["format"] == [], f"{label}: the document as DevTools reads it: {loaded['format']}")


def check_types(label, loaded, summary):
    """Per type: objects and bytes as the summary counts them."""
    expected = collections.defaultdict(lambda: [0, 0])
    for group in summary["types"] + summary["unreachable"]["by_type"]:
        expected[group["type"]][0] += group["count"]
        expected[group["type"]][1] += group["bytes"]
    found = collections.defaultdict(lambda: [0, 0])
    nodes = 0
    for name, entry in loaded["types"].items():
        nodes += entry["count"]
        if name.startswith("(part of ") and name.endswith(")"):
            found[name[len("(part of "):-1]][1] += entry["self_size"]
        else:
            found[name][0] += entry["count"]
            found[name][1] += entry["self_size"]
    wrong = {name: (found.get(name), expected.get(name)) for name in set(found) | set(expected)
             if found.get(name) != expected.get(name)}
    check(not wrong, f"{label}: per type [objects, bytes] (export, summary) differ: "
                     f"{dict(list(wrong.items())[:10])}")
    check(nodes == summary["heap"]["live_count"],
          f"{label}: {nodes} heap nodes, the summary's live allocations are "
          f"{summary['heap']['live_count']}")
    roots = set(loaded["roots"]) - {"(unreachable)"}
    summary_roots = {root["root"] for root in summary["roots"]}
    check("(unreachable)" in loaded["roots"] and roots == summary_roots,
          f"{label}: the root's children are the summary's {len(summary_roots)} roots and "
          f"(unreachable): {len(roots)} others, differing in "
          f"{sorted(roots ^ summary_roots)[:5]}")


def leak_traces(baseline, target, final):
    return memlab("leaks", baseline, target, final)["traces"]


def leaked_through(traces, type_name, root):
    return [trace for trace in traces
            if any(step["name"] == type_name and step["leaked"] for step in trace) and
            any(step["name"] == root for step in trace)]


@functools.cache
def global_story():
    """The leak held by a module global, three snapshots, each exported; once for every case."""
    python = tools()
    baseline, target, final = leak_story([python, LEAKY_SERVER], "global", "global",
                                         connections=(100, 1000, 1000))
    exports = [export(snapshot) for snapshot in (baseline, target, final)]
    return (baseline, target, final), exports


@functools.cache
def global_target_loaded():
    """memlab's reading of the global story's second export (after 1,100 connections)."""
    _, exports = global_story()
    return memlab("load", exports[1], CONNECTION)


class ExportDevtools(Case):
    def test_refusals(self):
        # a missing snapshot, --format json, a terminal as output
        snapshot = path("errors-missing.snap")
        result = heapsnap("export", snapshot, "-o", path("x.heapsnapshot"), check_ok=False)
        check(result.returncode == 2 and snapshot in result.stderr,
              f"a missing snapshot: exit 2 naming it, not {result.returncode}: {result.stderr}")
        result = heapsnap("export", snapshot, "--format", "json", check_ok=False)
        check(result.returncode == 2 and "devtools" in result.stderr,
              f"--format json: exit 2 saying devtools, not {result.returncode}: {result.stderr}")
        # a terminal as standard output (a pseudo-terminal the test opens) is refused
        import pty
        leader, follower = pty.openpty()
        result = subprocess.run([HEAPSNAP, "export", snapshot], stdout=follower,
                                stderr=subprocess.PIPE, text=True, timeout=60)
        os.close(leader)
        os.close(follower)
        check(result.returncode == 2 and "terminal" in result.stderr,
              f"a terminal as output: exit 2, not {result.returncode}: {result.stderr}")

    def test_global_leak_export(self):
        # the leak held by a module global: the document, its types, the Connections' retainers
        (baseline, target, final), exports = global_story()
        mode = stat.S_IMODE(os.stat(exports[1]).st_mode)
        check(mode == 0o600, f"the export's mode is 0600, not {oct(mode)}")
        loaded = global_target_loaded()
        check_format("global target", loaded)
        check_types("global target", loaded, summary_of(target))
        check(len(loaded["ids"]) == 1100,
              f"1,100 {CONNECTION} nodes after 1,100 connections, not {len(loaded['ids'])}")
        retainers = check_same_retainers("global target", loaded, target, CONNECTION)
        check(retainers.get(("module __main__._CONNECTIONS", "list")) == 1100,
              f"memlab: all 1,100 Connection held by module __main__._CONNECTIONS's list: "
              f"{dict(retainers)}")

    def test_ids_stable(self):
        _, exports = global_story()
        loaded = global_target_loaded()
        before = memlab("load", exports[0], CONNECTION)
        check_format("global baseline", before)
        kept = set(before["ids"]) & set(loaded["ids"])
        check(len(before["ids"]) == 100 and kept == set(before["ids"]),
              f"the 100 connections of the first snapshot keep their ids in the second: "
              f"{len(kept)} of {len(before['ids'])}")

    def test_find_leaks_global(self):
        _, exports = global_story()
        traces = leak_traces(*exports)
        check(leaked_through(traces, CONNECTION, "module __main__._CONNECTIONS"),
              f"memlab find-leaks names {CONNECTION} held by module __main__._CONNECTIONS: "
              f"{json.dumps(traces)[:2000]}")

    def test_dict_keys_masked(self):
        # masking: no dict key from memory unless --show-values
        (baseline, target, final), exports = global_story()

        def keys_shown(exported):
            with open(exported) as f:
                strings = json.load(f)["strings"]
            return [s for s in strings if s.startswith("['") or (s.startswith("[") and s[1:2].isdigit())]
        shown = export(target, "--show-values")
        check(keys_shown(exports[1]) == [], f"dict keys masked: {keys_shown(exports[1])[:5]}")
        check(keys_shown(shown) != [], "with --show-values, dict keys are edge names")

    def test_fixed_server_no_leak(self):
        # the fixed server frees what it made: memlab finds no Connection left behind
        python = tools()
        fixed = leak_story([python, LEAKY_SERVER], "fixed", "fixed", connections=(100, 1000, 1000))
        traces = leak_traces(*[export(snapshot) for snapshot in fixed])
        check(not leaked_through(traces, CONNECTION, ""),
              f"fixed server: memlab reports no leaked {CONNECTION}: {json.dumps(traces)[:2000]}")

    def test_cycle_unreachable(self):
        # garbage in cycles: under "(unreachable)", as many as the summary says
        python = tools()
        _, after = leak_story([python, LEAKY_SERVER], "cycle", "cycle")
        loaded = memlab("load", export(after), CONNECTION)
        check_format("cycle", loaded)
        summary = summary_of(after)
        check_types("cycle", loaded, summary)
        unreachable = sum(group["count"] for group in summary["unreachable"]["by_type"]
                          if group["type"] == CONNECTION)
        from_unreachable = sum(count for (root, _), count in memlab_retainers(loaded).items()
                               if root == "(unreachable)")
        check(unreachable >= 1000 and from_unreachable == unreachable,
              f"cycle: {from_unreachable} Connection reached from (unreachable) by memlab, the "
              f"summary's unreachable ones are {unreachable}")

    def test_c_twin(self):
        # the C twin: native structs, a global linked list
        tools()
        _, after = leak_story([LEAKY_SERVER_C], "global", "c-global")
        loaded = memlab("load", export(after), "struct conn")
        check_format("C global", loaded)
        check_types("C global", loaded, summary_of(after))
        retainers = check_same_retainers("C global", loaded, after, "struct conn")
        check(sum(count for (root, _), count in retainers.items() if root == "global all_conns")
              >= 1100, f"C: struct conn held from global all_conns: {dict(retainers)}")
        # a C struct's pointers are named by their members, as heapsnap's paths name the step
        linked = sum(count for key, count in loaded["retainers"].items()
                     if "struct conn -next-> struct conn" in key)
        check(linked >= 1000, f"C: memlab's paths go through struct conn's member next: "
                              f"{list(loaded['retainers'])[:3]}")


if __name__ == "__main__":
    main()
