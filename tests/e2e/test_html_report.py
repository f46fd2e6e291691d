"""The HTML reports (`heapdiff --format html`, `heapsnap summary --format html`) rendered in headless
Chromium: Debian's /usr/bin/chromium (CHROMIUM overrides it) driven by puppeteer-core from
tests/tools/browser (installed there by `npm ci`, from scripts/setup or by this test when missing).
A missing browser, node or puppeteer-core is a failure that says what to install, never a skip.

On the leaky server of docs/design/leaking-server.md (tests/targets/leaky_server.py, two snapshots,
1,000 connections between them), and on a class whose name is made of HTML's special characters
(tests/targets/odd_html_names.py):
- the page loads with no console error or warning, no page error and no request at all (the page
  is whole: no network, no external script or font);
- the JSON in the page equals `--format json`'s, with and without --show-values (values masked as in
  every format: the server's peer address is nowhere in the page unless asked);
- each grown type's row is in the DOM in the JSON's order, with the JSON's type and numbers
  (data-value) and the text report's formatting of them (the cells of `--format markdown`);
- a click on a column header sorts the rows by it, descending; a second click, ascending;
- for each grown type with retaining paths, an SVG graph whose first steps carry the shapes'
  signatures and whose edges join each path's steps in order, with the objects and retained bytes
  of the shape on them;
- unreachable cycles are drawn as rings with the JSON's shape, count and signature;
- the header is the text report's first line, and every line of its footer is in the page's;
- dark mode (prefers-color-scheme) and print change the colours;
- a type named `<lambda> & "quoted" ... </script><img ...>` is shown as text: no element made of it;
- `heapsnap summary --format html`: the same checks on the types table.
The screenshots (light and dark) and a PDF of the printed page are kept in
$HTML_REPORT_ARTIFACTS (build/tests/html-report by default) for CI to keep as artifacts."""
import functools
import glob
import json
import os
import re
import subprocess
import sys

from common import (Case, check, give_up, heapsnap, leak_story, main, path, require_npm_tools, start,
                    wait_for_text)

HEAPDIFF = os.environ.get("HEAPDIFF", "build/heapdiff")
HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = os.path.join(HERE, "..", "targets")
BROWSER_TOOLS = os.path.normpath(os.path.join(HERE, "..", "tools", "browser"))
ARTIFACTS = os.path.abspath(os.environ.get("HTML_REPORT_ARTIFACTS", "build/tests/html-report"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LEAKY_SERVER = os.path.join(TARGETS, "leaky_server.py")
LEAKY_SERVER_C = os.environ.get("LEAKY_SERVER_C", "build/tests/leaky_server_c")


def require_browser():
    if not os.access(CHROMIUM, os.X_OK):
        give_up(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (scripts/setup does), "
                "or set CHROMIUM to a Chromium binary")
    require_npm_tools(BROWSER_TOOLS, "puppeteer-core", "to drive Chromium")


def pick_python():
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.11.*", "bin", "python3.11")))
    for candidate in found[-1:] + ["/usr/bin/python3.11", sys.executable]:
        if candidate and os.path.exists(candidate):
            return candidate
    give_up("no Python 3.11 to run the leaky server with")


def odd_names_story(python):
    ready = path("odd-ready")
    target = start([python, os.path.join(TARGETS, "odd_html_names.py"), ready], stdin=subprocess.PIPE,
                   text=True)
    held = wait_for_text(ready, target)
    before, after = path("odd-before.snap"), path("odd-after.snap")
    heapsnap("capture", str(target.pid), "-o", before)
    target.stdin.write("500\n")
    target.stdin.flush()
    wait_for_text(ready, target, held)
    heapsnap("capture", str(target.pid), "-o", after)
    target.kill()
    target.wait()
    return before, after


def run(program, *args):
    result = subprocess.run([program, *args], capture_output=True, text=True, timeout=600)
    check(result.returncode == 0,
          f"{os.path.basename(program)} {' '.join(args)} exited {result.returncode}: "
          f"{result.stderr[-2000:]}")
    return result.stdout


def embedded_json(page):
    found = re.search(r'<script type="application/json" id="report-data">\n(.*?)</script>', page,
                      re.S)
    check(found is not None, "the page carries its JSON in #report-data")
    return json.loads(found.group(1)) if found else None


def render(name, page, table, column):
    """Writes the page under ARTIFACTS, opens it in Chromium, returns what check_page.js saw."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    page_file = os.path.join(ARTIFACTS, name + ".html")
    with open(page_file, "w") as f:
        f.write(page)
    result = subprocess.run(["node", os.path.join(BROWSER_TOOLS, "check_page.js"), page_file,
                             os.path.join(ARTIFACTS, name), table, column],
                            capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, CHROMIUM=CHROMIUM))
    if result.returncode != 0:
        give_up(f"{name}: Chromium could not render the page (check_page.js exited "
                f"{result.returncode}): {result.stderr[-3000:]}")
    facts = json.loads(result.stdout)
    check(facts["console"] == [], f"{name}: no console errors or warnings: {facts['console']}")
    check(facts["page_errors"] == [], f"{name}: no page errors: {facts['page_errors']}")
    check(facts["requests"] == [], f"{name}: the page asks the network for nothing: "
                                   f"{facts['requests']}")
    for shot in facts.get("screenshots", []):
        check(os.path.getsize(shot) > 10000, f"{name}: {shot} was written")
    check(facts["background_dark"] != facts["background_light"],
          f"{name}: dark mode changes the background ({facts['background_dark']})")
    check(facts["background_print"] == "rgb(255, 255, 255)",
          f"{name}: printed on white, even in dark mode ({facts['background_print']})")
    return facts


def check_sorting(name, facts, rows, key):
    """The first click sorts by `key` descending, the second ascending (ties in the JSON's order)."""
    values = [row[key] for row in rows]
    types = [row["type"] for row in rows]
    sorting = facts["sorting"]
    check(sorting["before"]["types"] == types, f"{name}: rows in the JSON's order before a click")
    descending = sorted(range(len(rows)), key=lambda i: (-values[i], i))
    ascending = sorted(range(len(rows)), key=lambda i: (values[i], i))
    check(sorting["first_click"]["sort"] == "descending" and
          sorting["first_click"]["types"] == [types[i] for i in descending],
          f"{name}: a click on {key} sorts descending: {sorting['first_click']}")
    check(sorting["second_click"]["sort"] == "ascending" and
          sorting["second_click"]["types"] == [types[i] for i in ascending],
          f"{name}: a second click sorts ascending: {sorting['second_click']}")
    check(len(set(values)) > 1, f"{name}: the sorted column has more than one value: {values}")


def check_rows(name, dom_rows, json_rows, keys):
    check(len(dom_rows) == len(json_rows),
          f"{name}: {len(json_rows)} rows as in the JSON, not {len(dom_rows)}")
    for dom, entry in zip(dom_rows, json_rows):
        check(dom["type"] == entry["type"] and dom["cells"]["type"]["text"] == entry["type"],
              f"{name}: row of {entry['type']!r} shows {dom['type']!r}")
        for key in keys:
            check(dom["cells"][key]["value"] == str(entry[key]),
                  f"{name}: {entry['type']} {key} is {entry[key]} in the JSON, "
                  f"{dom['cells'][key]['value']} in the DOM")


def markdown_cells(markdown):
    """The grown types table of `--format markdown`: {type: [new, freed, delta, bytes, after]}."""
    cells = {}
    for line in markdown.splitlines():
        found = re.match(r"^\| (.*) \| `(.*)` \|$", line)
        if found and "---" not in line:
            values = found.group(1).split(" | ")
            if len(values) == 5:
                cells.setdefault(found.group(2).replace("\\|", "|").replace("'", "`"), values)
    return cells


def check_graphs(name, facts, grown):
    graphs = {graph["type"]: graph for graph in facts["graphs"]}
    drawn = [entry for entry in grown if entry.get("retainers")]
    check(drawn, f"{name}: some grown types have retaining paths")
    for entry in drawn:
        graph = graphs.get(entry["type"])
        if not check(graph and graph["svg"] and graph["width"] > 0 and graph["height"] > 0,
                     f"{name}: an SVG graph of {entry['type']}'s retaining paths"):
            continue
        edges = {}  # (a label may come back in a path: one pair of labels, several edges)
        for edge in graph["edges"]:
            edges.setdefault((edge["from"], edge["to"]), []).append(edge)
        for retainer in entry["retainers"]:
            steps = retainer["path"]
            root = [node for node in graph["nodes"] if node["root"] and node["label"] == steps[0]
                    and f"[{retainer['signature']}]" in node["signatures"]]
            check(root, f"{name}: {entry['type']}: the root {steps[0]!r} is drawn with the "
                        f"signature {retainer['signature']}")
            check(any(node["target"] and node["label"] == steps[-1] for node in graph["nodes"]),
                  f"{name}: {entry['type']}: the path ends at {steps[-1]!r}")
            for step, following in zip(steps, steps[1:]):
                found = edges.get((step, following), [])
                check(any(edge["count"] >= retainer["count"] and
                          edge["retained"] >= retainer["retained_bytes"] for edge in found),
                      f"{name}: {entry['type']}: an edge {step!r} -> {following!r} carrying at "
                      f"least {retainer['count']} objects, {retainer['retained_bytes']} bytes: "
                      f"{found}")
        if len(entry["retainers"]) == 1:
            retainer = entry["retainers"][0]
            check(all(edge["count"] == retainer["count"] and
                      edge["retained"] == retainer["retained_bytes"] for edge in graph["edges"]) and
                  len(graph["edges"]) == len(retainer["path"]) - 1,
                  f"{name}: {entry['type']}: one shape, its edges each carry its numbers")


def check_header_footer(name, facts, text_report):
    lines = text_report.rstrip("\n").splitlines()
    check(facts["header"] == lines[0], f"{name}: the header is the text report's first line: "
                                       f"{facts['header']!r} vs {lines[0]!r}")
    footer = lines[[i for i, line in enumerate(lines) if line.startswith("-- heapdiff")][-1]:]
    page_footer = re.sub(r"\s+", " ", facts["footer"])
    for line in footer[1:]:
        line = re.sub(r"\s+", " ", line.strip())
        check(line in page_footer, f"{name}: the footer line {line!r} is in the page's")
    check(footer[0].replace("-- ", "") in page_footer, f"{name}: the footer names the version")


@functools.cache
def tools():
    """Chromium and puppeteer-core, and the Python the leaky server runs on; once."""
    require_browser()
    python = pick_python()
    print(f"pages, screenshots and PDFs go to {ARTIFACTS}")
    return python


@functools.cache
def global_story():
    """The leak held by a module global, two snapshots; once for every case."""
    return leak_story([tools(), LEAKY_SERVER], "global", "global")


@functools.cache
def class_story():
    """The class registry (the peers' addresses are values), two snapshots; once."""
    return leak_story([tools(), LEAKY_SERVER], "class", "class")


# values masked unless --show-values (the class registry: the peers' addresses are values)
def check_values(options):
    before, after = class_story()
    diff = json.loads(run(HEAPDIFF, "--format", "json", *options, before, after))
    page = run(HEAPDIFF, "--format", "html", *options, before, after)
    label = "class " + " ".join(options)
    check(embedded_json(page) == diff, f"{label}: the page's JSON is --format json's")
    facts = render("heapdiff-class" + "-".join(options), page, "grown", "new")
    if options:
        check("127.0.0.1" in facts["text"], f"{label}: the values are shown when asked")
    else:
        check("127.0.0.1" not in page and "127.0.0.1" not in facts["text"],
              f"{label}: no value read from memory in the page")


class HtmlReport(Case):
    @classmethod
    def tearDownClass(cls):
        print(f"screenshots: {ARTIFACTS}/*.png, printed: {ARTIFACTS}/*.pdf")

    def test_global_list(self):
        # the module-global list: paths, containers, sorting, header and footer
        before, after = global_story()
        diff = json.loads(run(HEAPDIFF, "--format", "json", before, after))
        page = run(HEAPDIFF, "--format", "html", before, after)
        check(embedded_json(page) == diff, "global: the page's JSON is --format json's")
        facts = render("heapdiff-global", page, "grown", "new_retained_bytes")
        grown = diff["grown"]
        check(any(entry["type"] == "__main__.Connection" for entry in grown),
              "global: __main__.Connection grew")
        check_rows("global", facts["tables"]["grown"], grown,
                   ["new", "freed", "delta_count", "delta_bytes", "count_after", "new_retained_bytes"])
        formatted = markdown_cells(run(HEAPDIFF, "--format", "markdown", before, after))
        for dom in facts["tables"]["grown"]:
            shown = [dom["cells"][key]["text"] for key in
                     ["new", "freed", "delta_count", "delta_bytes", "count_after"]]
            check(formatted.get(dom["type"]) == shown,
                  f"global: {dom['type']} reads {shown}, as the markdown's {formatted.get(dom['type'])}")
        check_sorting("global", facts, grown, "new_retained_bytes")
        check_graphs("global", facts, grown)
        top = grown[0]
        check(facts["graphs"] and facts["graphs"][0]["type"] == top["type"],
              f"global: the first graph is the top type's, {top['type']}")
        check(any(cell["name"] == top["retainers"][0]["path"][0] for cell in facts["icicle"]),
              "global: the icicle has the top type's root")
        check(facts["tables"]["containers"][0]["cells"]["items_after"]["value"] ==
              str(diff["grown_containers"][0]["items_after"]), "global: the grown list's items")
        check_header_footer("global", facts, run(HEAPDIFF, "--color", "never", before, after))

    def test_cycle_rings(self):
        python = tools()
        # the cycle only: rings
        before, after = leak_story([python, LEAKY_SERVER], "cycle", "cycle")
        diff = json.loads(run(HEAPDIFF, "--format", "json", before, after))
        page = run(HEAPDIFF, "--format", "html", before, after)
        check(embedded_json(page) == diff, "cycle: the page's JSON is --format json's")
        facts = render("heapdiff-cycle", page, "grown", "delta_bytes")
        check_rows("cycle", facts["tables"]["grown"], diff["grown"], ["new", "delta_bytes"])
        check_sorting("cycle", facts, diff["grown"], "delta_bytes")
        cycles = diff["unreachable"]["cycles"]
        check(cycles, "cycle: the JSON has cycles")
        rings = {ring["signature"]: ring for ring in facts["rings"]}
        for cycle in cycles:
            ring = rings.get(cycle["signature"])
            check(ring and ring["steps"] in (cycle["shape"], cycle["shape"][:-1]) and
                  f"{cycle['count']:,} cycles" in ring["captions"],
                  f"cycle: a ring of {cycle['shape']} ({cycle['count']} cycles): {ring}")
        check([row["type"] for row in facts["tables"]["unreachable"]] ==
              [entry["type"] for entry in diff["unreachable"]["by_type"]],
              "cycle: the unreachable types as in the JSON")

    def test_c_lost_pointers(self):
        tools()
        # the C twin's lost pointers: a ring whose shape ends where it began
        before, after = leak_story([LEAKY_SERVER_C], "lost", "c-lost")
        diff = json.loads(run(HEAPDIFF, "--format", "json", before, after))
        facts = render("heapdiff-c-lost", run(HEAPDIFF, "--format", "html", before, after), "grown",
                       "delta_bytes")
        check_rows("c lost", facts["tables"]["grown"], diff["grown"], ["new", "delta_bytes"])
        rings = {ring["signature"]: ring for ring in facts["rings"]}
        check(diff["unreachable"]["cycles"], "c lost: the JSON has cycles")
        for cycle in diff["unreachable"]["cycles"]:
            ring = rings.get(cycle["signature"])
            check(ring and ring["steps"] == cycle["shape"][:-1],
                  f"c lost: a ring of {cycle['shape']}, drawn once round: {ring}")

    def test_three_snapshots(self):
        python = tools()
        # three snapshots: what a burst left behind (the list is never pruned: all of it)
        baseline, target, final = leak_story([python, LEAKY_SERVER], "global", "three", (50, 300, 200))
        diff = json.loads(run(HEAPDIFF, "--format", "json", baseline, target, final))
        page = run(HEAPDIFF, "--format", "html", baseline, target, final)
        check(embedded_json(page) == diff, "three: the page's JSON is --format json's")
        facts = render("heapdiff-three", page, "grown", "new_bytes")
        check_rows("three", facts["tables"]["grown"], diff["grown"],
                   ["new", "new_in_target", "new_bytes", "count_after", "new_retained_bytes"])
        check_sorting("three", facts, diff["grown"], "new_bytes")
        check_graphs("three", facts, diff["grown"])
        check_header_footer("three", facts, run(HEAPDIFF, "--color", "never", baseline, target, final))

    # values masked unless --show-values (the class registry: the peers' addresses are values)
    def test_values_masked(self):
        check_values([])

    def test_values_shown(self):
        check_values(["--show-values"])

    def test_odd_names(self):
        python = tools()
        # a type name made of markup stays text
        before, after = odd_names_story(python)
        diff = json.loads(run(HEAPDIFF, "--format", "json", before, after))
        page = run(HEAPDIFF, "--format", "html", before, after)
        odd = [entry for entry in diff["grown"] if "onerror" in entry["type"]]
        check(odd and odd[0]["new"] == 500, f"odd: the class of odd name grew by 500: {odd}")
        check(page.count("</script>") == 2, "odd: nothing in the data ends a script element")
        facts = render("heapdiff-odd-names", page, "grown", "new")
        check(odd and any(row["type"] == odd[0]["type"] and row["cells"]["type"]["text"] == odd[0]["type"]
                          for row in facts["tables"]["grown"]),
              "odd: the odd name is in the table as it is in the JSON")
        check("img" not in facts["html_elements"] and "b" not in facts["html_elements"],
              f"odd: no element made of the name: {facts['html_elements']}")
        check(odd and any(graph["type"] == odd[0]["type"] for graph in facts["graphs"]),
              "odd: its retaining paths are drawn")

    def test_summary_html(self):
        # heapsnap summary --format html
        global_story()
        summary_file = path("global-after.snap")
        summary = json.loads(heapsnap("summary", "--format", "json", summary_file).stdout)
        page = heapsnap("summary", "--format", "html", summary_file).stdout
        check(embedded_json(page) == summary, "summary: the page's JSON is --format json's")
        facts = render("summary", page, "types", "count")
        check_rows("summary", facts["tables"]["types"], summary["types"], ["count", "bytes",
                                                                           "retained_bytes"])
        check_sorting("summary", facts, summary["types"], "count")
        check_graphs("summary", facts, summary["types"])
        check(facts["header"].startswith(f"heapsnap summary: pid {summary['pid']} "),
              f"summary: the header names the process: {facts['header']}")


if __name__ == "__main__":
    main()
