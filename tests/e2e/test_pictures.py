"""heapdiff's pictures of the retaining paths: the ```mermaid flowchart in the markdown report and
`--format dot`, checked by the tools that draw them, against the paths of the JSON report.

- the leaking-server story (docs/design/leaking-server.md; tests/targets/leaky_server.py, the
  module-global list, on Debian's python3.11): the markdown has one ```mermaid block, after the
  retainers' table and before the collapsed paths; mermaid's own parser (the npm package `mermaid`,
  run under jsdom by tests/tools/mermaid/parse.mjs) accepts it as a flowchart; its nodes and edges
  are those of the JSON's retaining paths (a node for each root and each grown type, a step node
  per distinct prefix of a path, edges labelled with the number of objects taking them);
  `dot -Tsvg` accepts `--format dot` without a warning and the SVG it draws has the same nodes,
  edges and labels.
- Type names and dict keys that break naive graph text (tests/targets/odd_names.py: quotes,
  brackets, <, >, |, #, &, backslashes, a newline, a backtick, non-ASCII, entity lookalikes), with
  --show-values so the keys are in the paths: both pictures parse, and every label reads back as
  the JSON's text (control characters shown as \\n, \\xNN). Without --show-values the keys stay
  masked in the pictures as in the JSON.
- Node ids are unique and the same in two runs of heapdiff on the same snapshots.

Needs graphviz (dot) and the npm packages in tests/tools/mermaid (scripts/setup installs both);
fails, naming what to run, when either is missing."""
import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree

from common import Case, check, give_up, heapsnap, main, path, start

HEAPDIFF = os.environ.get("HEAPDIFF", "build/heapdiff")
HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = os.path.join(HERE, "..", "targets")
MERMAID = os.path.join(HERE, "..", "tools", "mermaid")
PYTHON = "/usr/bin/python3.11"
sys.path.insert(0, TARGETS)
from client import connect  # noqa: E402


def need_tools():
    """The tools must be there: a picture nobody parsed is not tested."""
    missing = []
    if subprocess.run(["sh", "-c", "command -v dot"], capture_output=True).returncode != 0:
        missing.append("graphviz's dot (Debian package graphviz)")
    if subprocess.run(["sh", "-c", "command -v node"], capture_output=True).returncode != 0:
        missing.append("node (Debian package nodejs)")
    if not os.path.isdir(os.path.join(MERMAID, "node_modules", "mermaid")) or \
            not os.path.isdir(os.path.join(MERMAID, "node_modules", "jsdom")):
        missing.append(f"the npm packages of {os.path.normpath(MERMAID)} (npm ci there)")
    if not os.path.exists(PYTHON):
        missing.append(f"{PYTHON} (Debian package python3.11)")
    if missing:
        give_up("missing " + "; ".join(missing) + ": run scripts/setup")



def heapdiff(*args):
    result = subprocess.run([HEAPDIFF, *args], capture_output=True, text=True, timeout=600)
    check(result.returncode == 0,
          f"heapdiff {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result.stdout


def wait_for(file, process, text=None):
    deadline = time.time() + 30
    while True:
        if os.path.exists(file):
            with open(file) as f:
                content = f.read().strip()
            if text is None or content == text:
                return content
        if process.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{file} never said {text}")
        time.sleep(0.02)


def visible(text):
    """A label as the pictures show it: control characters as \\n, \\t, \\xNN."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def expected_graph(diff, top=10):
    """What the pictures must hold, from the JSON's retaining paths: ({id prefix: Counter of
    labels}, Counter of (from label, to label, count)). Roots by text, types by text, a step per
    distinct (node before it, text); edge counts summed over the paths that take them."""
    nodes = {}  # key -> (kind, label)
    edges = collections.Counter()
    for grown in diff["grown"][:top]:
        for retainer in grown.get("retainers", []):
            elements = [visible(e) for e in retainer["path"]]
            if len(elements) < 2:
                nodes.setdefault(("type", elements[-1]), ("type", elements[-1]))
                continue
            keys = [("root", elements[0])]
            for k in range(1, len(elements) - 1):
                keys.append(("step", keys[-1], elements[k]))
            keys.append(("type", elements[-1]))
            for key, label in zip(keys, elements):
                nodes.setdefault(key, (key[0], label))
            for a, b in zip(keys, keys[1:]):
                edges[(a, b)] += retainer["count"]
    labels = {kind: collections.Counter() for kind in ("root", "step", "type")}
    for kind, label in nodes.values():
        labels[kind][label] += 1
    labelled = collections.Counter()
    for (a, b), count in edges.items():
        labelled[(nodes[a][1], nodes[b][1], f"{count:,}")] += 1
    return labels, labelled


def picture_graph(nodes, edges):
    """The same from a parsed picture: nodes {id: label}, edges [(from id, to id, label)]."""
    labels = {kind: collections.Counter() for kind in ("root", "step", "type")}
    for node_id, label in nodes.items():
        kind = re.match(r"(root|step|type)\d+$", node_id)
        check(kind, f"node id {node_id!r} is root, step or type and a number")
        if kind:
            labels[kind.group(1)][label] += 1
    labelled = collections.Counter((nodes.get(a), nodes.get(b), label) for a, b, label in edges)
    return labels, labelled


def mermaid_blocks(markdown):
    return re.findall(r"^```mermaid\n(.*?)^```$", markdown, re.S | re.M)


def parse_mermaid(name, text):
    """mermaid's parser on `text`: (nodes {id: label}, edges [(from, to, label)]), or None."""
    file = path(name + ".mmd")
    with open(file, "w") as f:
        f.write(text)
    result = subprocess.run(["node", os.path.join(MERMAID, "parse.mjs"), file],
                            capture_output=True, text=True, timeout=300)
    if not check(result.returncode == 0,
                 f"{name}: mermaid parses the flowchart: {result.stderr}\n{text}"):
        return None
    parsed = json.loads(result.stdout)[0]
    check(parsed["type"].startswith("flowchart"), f"{name}: mermaid reads a flowchart: {parsed}")
    ids = [n["id"] for n in parsed["nodes"]]
    check(len(ids) == len(set(ids)), f"{name}: mermaid node ids are unique: {ids}")
    return ({n["id"]: n["label"] for n in parsed["nodes"]},
            [(e["from"], e["to"], e["label"]) for e in parsed["edges"]])


def draw_dot(name, text):
    """dot -Tsvg on `text`: the drawn (nodes {id: label}, edges [(from, to, label)]), or None."""
    result = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True,
                            timeout=120)
    if not check(result.returncode == 0 and not result.stderr,
                 f"{name}: dot -Tsvg draws it without a warning (exit {result.returncode}): "
                 f"{result.stderr.decode(errors='replace')}\n{text}"):
        return None
    with open(path(name + ".svg"), "wb") as f:
        f.write(result.stdout)
    svg = "{http://www.w3.org/2000/svg}"
    root = ElementTree.fromstring(result.stdout)
    nodes, edges = {}, []
    for group in root.iter(svg + "g"):
        title = group.find(svg + "title")
        texts = ["".join(t.itertext()) for t in group.iter(svg + "text")]
        if group.get("class") == "node":
            check(len(texts) == 1, f"{name}: node {title.text} is drawn as one line: {texts}")
            nodes[title.text] = "".join(texts)
        elif group.get("class") == "edge":
            tail, head = title.text.split("->")
            edges.append((tail, head, "".join(texts)))
    return nodes, edges


def compare(name, diff, picture, top=10):
    if picture is None:
        return
    want_nodes, want_edges = expected_graph(diff, top)
    got_nodes, got_edges = picture_graph(*picture)
    check(got_nodes == want_nodes,
          f"{name}: the nodes are the JSON paths' roots, steps and types:\n"
          f"  got  {got_nodes}\n  want {want_nodes}")
    check(got_edges == want_edges,
          f"{name}: the edges and their counts are the JSON paths':\n"
          f"  got  {sorted(got_edges.items())}\n  want {sorted(want_edges.items())}")


def snapshots(args, grow):
    """Starts a target, snapshots it, lets `grow(process)` run, snapshots it again."""
    state = path(f"state-{len(args)}-{time.time_ns()}")
    process = start([*args, state])
    before, after = state + "-before.snap", state + "-after.snap"
    wait_for(state, process)
    heapsnap("capture", str(process.pid), "-o", before)
    grow(process, state)
    heapsnap("capture", str(process.pid), "-o", after)
    process.kill()
    process.wait()
    return before, after


# ---- the story: the module-global list ----
_story = []


def story():
    """The leaking server's two snapshots and heapdiff's JSON of them: made once for every case."""
    if not _story:
        state = path("port")
        server = start([PYTHON, os.path.join(TARGETS, "leaky_server.py"), state, "--variant", "global"])
        port = int(wait_for(state, server))
        connect(port, 100)
        before, after = path("story-before.snap"), path("story-after.snap")
        heapsnap("capture", str(server.pid), "-o", before)
        connect(port, 500)
        heapsnap("capture", str(server.pid), "-o", after)
        server.kill()
        server.wait()

        diff = json.loads(heapdiff("--format", "json", before, after))
        _story.append((before, after, diff))
    return _story[0]


def check_story_json():
    before, after, diff = story()
    connection = next((g for g in diff["grown"] if g["type"] == "__main__.Connection"), None)
    check(connection and any(r["path"][:2] == ["module __main__._CONNECTIONS", "list[*]"]
                             and r["count"] == 500 for r in connection.get("retainers", [])),
          f"story: the JSON has the 500 new Connections held by _CONNECTIONS: {connection}")


def check_story_mermaid():
    before, after, diff = story()
    markdown = heapdiff("--format", "markdown", before, after)
    blocks = mermaid_blocks(markdown)
    check(len(blocks) == 1, f"story: one ```mermaid block in the markdown, not {len(blocks)}")
    keeps = markdown.find("#### What keeps the new objects alive")
    block_at = markdown.find("```mermaid")
    details = markdown.find("<details><summary>Retaining paths")
    check(0 <= keeps < block_at < details,
          "story: the flowchart is under the retainers' table, before the collapsed paths")
    if blocks:
        picture = parse_mermaid("story", blocks[0])
        compare("story mermaid", diff, picture)
        if picture:
            steps = {(picture[0].get(a), picture[0].get(b)): c for a, b, c in picture[1]}
            check(steps.get(("list[*]", "__main__.Connection")) == "500"
                  and ("module __main__._CONNECTIONS", "list[*]") in steps,
                  f"story mermaid: _CONNECTIONS -> list[*] -> Connection, 500 on the last step: "
                  f"{picture}")


def check_story_dot():
    before, after, diff = story()
    dot = heapdiff("--format", "dot", before, after)
    check(dot.lstrip().startswith("//") and "digraph heapdiff {" in dot,
          f"story: --format dot is a digraph:\n{dot}")
    compare("story dot", diff, draw_dot("story", dot))
    check(heapdiff("--format", "dot", before, after) == dot,
          "story: the same DOT, ids and all, from a second run")


# --top bounds both pictures as it bounds the paths
def check_story_dot_top_1():
    before, after, diff = story()
    top1 = json.loads(heapdiff("--format", "json", "--top", "1", before, after))
    compare("story dot --top 1", top1,
            draw_dot("story-top1", heapdiff("--format", "dot", "--top", "1", before, after)), top=1)


# ---- names that break naive graph text ----
def odd_grow(process, state):
    process.send_signal(signal.SIGUSR1)
    wait_for(state, process, "2")


_odd = []


def odd_snapshots():
    """odd_names.py's two snapshots, made once for every case."""
    if not _odd:
        _odd.append(snapshots([PYTHON, os.path.join(TARGETS, "odd_names.py")], odd_grow))
    return _odd[0]


def check_odd_names(values):
    before, after = odd_snapshots()
    name = "odd names" + (" --show-values" if values else "")
    diff = json.loads(heapdiff("--format", "json", *values, before, after))
    elements = {e for g in diff["grown"][:10] for r in g.get("retainers", []) for e in r["path"]}
    # (control characters in a name are made visible where the name enters the analysis:
    # "two\\nlines", every format alike)
    odd = [t for t in ("__main__.<lambda>", '__main__.a"b', "__main__.two\\nlines",
                       "__main__.caf\u00e9 \u20ac \u4e2d", "__main__.\\x1b[31mred\\x1b[2J\\x07")
           if t in elements]
    check(len(odd) == 5, f"{name}: the odd type names are in the JSON's paths: {elements}")
    if values:
        check("dict['a\"b']" in elements and "dict['new\\nline']" in elements,
              f"{name}: the odd keys are in the paths: {elements}")
    else:
        check(not any("['" in e for e in elements), f"{name}: keys masked: {elements}")
    markdown = heapdiff("--format", "markdown", *values, before, after)
    blocks = mermaid_blocks(markdown)
    if check(len(blocks) == 1, f"{name}: one ```mermaid block:\n{markdown}"):
        compare(name + " mermaid", diff, parse_mermaid(name.replace(" ", "-"), blocks[0]))
        check(all(ord(c) < 128 for c in blocks[0]), f"{name}: the flowchart is ASCII")
    dot = heapdiff("--format", "dot", *values, before, after)
    check(all(ord(c) < 128 for c in dot), f"{name}: the DOT is ASCII")
    compare(name + " dot", diff, draw_dot(name.replace(" ", "-"), dot))


# ---- text and markdown: no control character from the process reaches the reader ----
# (a name with terminal escapes would colour, clear the screen, ring the bell; one with a
# newline would print a forged line)
def check_no_control_characters():
    before, after = odd_snapshots()
    outputs = {"heapdiff text": heapdiff(before, after),
               "heapdiff text --show-values": heapdiff("--show-values", before, after),
               "heapdiff markdown": heapdiff("--format", "markdown", before, after),
               "summary text": heapsnap("summary", after, "--type", "__main__.*").stdout,
               "summary text --show-values": heapsnap("summary", after, "--type", "__main__.*",
                                                      "--show-values").stdout,
               "list text": heapsnap("list", after, "--paths").stdout,
               "info text": heapsnap("info", after).stdout}
    for label, text in outputs.items():
        controls = sorted({c for c in text if (ord(c) < 32 and c != "\n") or ord(c) == 127})
        check(not controls, f"{label}: no control character: {controls}")
        check(not any(line.startswith("lines") for line in text.splitlines()),
              f"{label}: no line forged by a name's newline")
        check("\\x1b[31mred" in text or label.startswith(("list", "info")),
              f"{label}: the escapes are shown as text")


# ---- heapsnap summary --format dot: the paths the summary shows ----
def check_summary_dot(values):
    before, after = odd_snapshots()
    name = "summary dot" + (" --show-values" if values else "")
    summary = json.loads(heapsnap("summary", after, "--format", "json", "--type", "__main__.*",
                                  *values).stdout)
    shown = [t for t in summary["types"] if "retainers" in t]
    check(len(shown) >= 7, f"{name}: the summary has the paths of the odd types: "
          f"{[t['type'] for t in shown]}")
    dot = heapsnap("summary", after, "--format", "dot", "--type", "__main__.*", *values).stdout
    check("digraph heapsnap_summary {" in dot and all(ord(c) < 128 for c in dot),
          f"{name}: an ASCII digraph:\n{dot}")
    compare(name, {"grown": shown}, draw_dot(name.replace(" ", "-"), dot), top=len(shown))


# ---- the options ----
def check_options():
    before, after = odd_snapshots()
    usage = subprocess.run([HEAPDIFF, "--help"], capture_output=True, text=True).stdout
    check("dot" in usage and "mermaid" in usage, f"heapdiff --help names dot and mermaid:\n{usage}")
    bad = subprocess.run([HEAPDIFF, "--format", "svg", before, after], capture_output=True, text=True)
    check(bad.returncode == 2 and "text, markdown, json, dot, html or pprof" in bad.stderr,
          f"--format svg is refused, naming the formats: {bad.returncode} {bad.stderr}")
    usage = heapsnap("summary", "--help").stdout
    check("dot" in usage, f"heapsnap summary --help names dot:\n{usage}")
    completion = os.path.join(HERE, "..", "..", "cli", "completion.bash")
    # (the words an option takes are read from the program's --help: the built one)
    offered = subprocess.run(["bash", "-c", f"source {completion}; COMP_WORDS=({HEAPDIFF} --format d); "
                              "COMP_CWORD=2; _heapdiff; printf '%s\\n' \"${COMPREPLY[@]}\""],
                             capture_output=True, text=True).stdout.split()
    check(offered == ["dot"], f"bash completes heapdiff --format d to dot: {offered}")


class Pictures(Case):
    def setUp(self):
        super().setUp()
        need_tools()

    def test_story_json(self):
        check_story_json()

    def test_story_mermaid(self):
        check_story_mermaid()

    def test_story_dot(self):
        check_story_dot()

    def test_story_top_1_bounds_dot(self):
        check_story_dot_top_1()

    def test_odd_names_show_values(self):
        check_odd_names(["--show-values"])

    def test_odd_names_masked(self):
        check_odd_names([])

    def test_no_control_characters_in_text(self):
        check_no_control_characters()

    def test_summary_dot_show_values(self):
        check_summary_dot(["--show-values"])

    def test_summary_dot_masked(self):
        check_summary_dot([])

    def test_options(self):
        check_options()


if __name__ == "__main__":
    main()
