"""Allocation sites per type and per path in the reports, against the target's own source:
tests/targets/conn_sites.c, preloaded with the hook and HEAPSNAP_SITES=1, records the lines where
conn_new and job_new call the allocator and where accept_loop, queue_jobs and retry_jobs call
them; it makes 5 connections at its one site and 200 the hook cannot see (glibc's own
__libc_calloc: no site recorded, as if made before recording began), then 1,000 connections,
300 jobs from queue_jobs, 100 from retry_jobs, 50 sessions from open_sessions alone and 300 unseen
connections. Two snapshots by
signal, around the second batch:

- heapdiff JSON: struct conn has 1,300 new, 1,000 of them at conn_new's line with accept_loop's
  call next on the stack, 300 with no recorded site, no more sites; struct job 300 at job_new
  called from queue_jobs and 100 from retry_jobs; each retaining path names the sites of the
  objects at its end (job_queue's path only queue_jobs' site, retry_queue's only retry_jobs'),
  and its sites and unsited objects add up to its count;
- heapdiff text and markdown: the same counts and sites on lines of their own, no longer than
  the rest of the report's; struct session, of one site, on one line ("50 new struct session,
  allocated at open_sessions ..."); the HTML pages of heapdiff and summary (headless Chromium)
  carry the JSON and show them (a page without sites is byte for byte what it was:
  bench/same_reports);
- summary of the second snapshot: 1,505 struct conn, 1,005 at conn_new (two sites: main calls
  accept_loop from two lines, told apart by a third frame in text) and 500 without; the text
  names both of main's lines;
- `list --sites`: each struct conn at conn_new's line or without a site, as many as the summary;
  on a snapshot without sites, exit 2 with the reason;
- the same snapshot saying its sites were sampled (INFO's sites_sample_bytes): JSON and text say
  so; the hook's own snapshot says nothing of sampling;
- a ptrace capture of the same process (no sites in it): no site key, no site line;
- a CPython process with sites on: its Python types carry none (their C stacks are the
  interpreter's; see docs/hook.md)."""
import functools
import glob
import json
import os
import re
import signal
import subprocess

from common import Case, check, decompress, heapsnap, main, path, start
from hook_target import hooked, wait_for_file, wait_for_snapshot
from test_hook import PYTHON_TARGET, wait_for_text
from test_html_report import embedded_json, render, require_browser

CONN_SITES = os.environ.get("CONN_SITES_TARGET", "build/tests/conn_sites")
HEAPDIFF = os.environ.get("HEAPDIFF", "build/heapdiff")
LONGEST_LINE = 110  # a report's path lines are about that long; its footer is longer


def run(program, *args, expect=0):
    result = subprocess.run([program, *args], capture_output=True, text=True, timeout=600)
    check(result.returncode == expect,
          f"{os.path.basename(program)} {' '.join(args)} exited {result.returncode}, not "
          f"{expect}: {result.stderr[-2000:]}")
    return result


def stop(target, reader, writer):
    target.kill()
    target.wait()
    os.close(writer)
    os.close(reader)


@functools.cache
def made_story():
    """The target's record and its snapshots, made once for every case."""
    return Story()


class Story:
    def __init__(self):
        directory = path("sites-report")
        self.record_file = path("conn-sites-record")
        reader, writer = os.pipe()
        target = start([CONN_SITES, self.record_file], stdin=reader,
                       env=hooked(directory, sites=True))
        self.first = self.second = self.ptrace = None
        if check(wait_for_text(self.record_file, "phase 1"), "the target made its first batch"):
            os.kill(target.pid, signal.SIGUSR2)
            self.first = wait_for_snapshot(directory, [])
            os.write(writer, b"go\n")
            if check(wait_for_text(self.record_file, "phase 2"), "the target made its second"):
                os.kill(target.pid, signal.SIGUSR2)
                self.second = wait_for_snapshot(directory, [self.first])
                self.ptrace = path("conn-sites-ptrace.snap")
                heapsnap("capture", str(target.pid), "-o", self.ptrace)
        stop(target, reader, writer)
        self.sites, self.callers = {}, {}
        with open(self.record_file) as f:
            for line in f:
                words = line.split()
                if words[0] == "site":
                    self.sites[words[1]] = int(words[2])
                elif words[0] == "caller":
                    self.callers[words[1]] = int(words[2])
        check(self.first and self.second, "two snapshots with sites")

    def frame(self, function):
        line = self.sites.get(function) or self.callers.get(function)
        return f"{function} (conn_sites.c:{line})"


def site_key(site):
    """(innermost frame, its caller's frame) of a JSON site."""
    return tuple(site["stack"][:2])


def grown_type(diff, name):
    return next((g for g in diff.get("grown", []) if g["type"] == name), {})


def check_lines_short(label, lines):
    long = [line for line in lines if len(line) > LONGEST_LINE]
    check(not long, f"{label}: the site lines are at most {LONGEST_LINE} characters: {long[:3]}")


class SitesReport(Case):
    def test_heapdiff_json(self):
        story = made_story()
        if not story.second:
            return
        diff = json.loads(run(HEAPDIFF, "--format", "json", story.first, story.second).stdout)
        conn, job = grown_type(diff, "struct conn"), grown_type(diff, "struct job")
        accept = (story.frame("conn_new"), story.frame("accept_loop"))
        queued = (story.frame("job_new"), story.frame("queue_jobs"))
        retried = (story.frame("job_new"), story.frame("retry_jobs"))
        conn_sites = {site_key(s): s["new"] for s in conn.get("sites", [])}
        check(conn.get("new") == 1300 and conn_sites == {accept: 1000},
              f"1,300 new struct conn, 1,000 at {accept}: {conn.get('new')}, {conn_sites}")
        check(conn.get("without_site", {}).get("new") == 300,
              f"300 new struct conn with no recorded site: {conn.get('without_site')}")
        check(conn.get("sites_more", {}).get("sites") == 0, "no more sites for struct conn")
        site = (conn.get("sites") or [{}])[0]
        check(os.path.basename(site.get("file") or "") == "conn_sites.c" and
              site.get("function") == "conn_new" and site.get("line") == story.sites["conn_new"],
              f"the site's function, file and line are conn_new's call of calloc: {site}")
        job_sites = {site_key(s): s["new"] for s in job.get("sites", [])}
        check(job.get("new") == 400 and job_sites == {queued: 300, retried: 100} and
              job.get("without_site", {}).get("new") == 0,
              f"400 new struct job: 300 from queue_jobs, 100 from retry_jobs: {job_sites}")
        # each path names the sites of its own objects
        for retainer in job.get("retainers", []):
            path_sites = {site_key(s): s["count"] for s in retainer.get("sites", [])}
            roots = {"global job_queue": queued, "global retry_queue": retried}
            expected = roots[retainer["path"][0]]
            check(path_sites == {expected: retainer["count"]},
                  f"the path {retainer['path']} names {expected}: {path_sites}")
        for retainer in conn.get("retainers", []):
            path_sites = {site_key(s): s["count"] for s in retainer.get("sites", [])}
            without = retainer.get("without_site", {}).get("count")
            check(set(path_sites) <= {accept} and
                  sum(path_sites.values()) + without == retainer["count"],
                  f"the path {retainer['path']}: its sites and unsited objects make its count "
                  f"({path_sites}, {without}, {retainer['count']})")
        long_path = next((r for r in conn.get("retainers", []) if len(r["path"]) == 3), {})
        check({site_key(s): s["count"] for s in long_path.get("sites", [])} == {accept: 1000},
              f"the list's path holds the 1,000 connections from accept_loop: {long_path}")

    def test_heapdiff_text_markdown(self):
        story = made_story()
        if not story.second:
            return
        text = run(HEAPDIFF, story.first, story.second).stdout
        conn_new, accept = story.frame("conn_new"), story.frame("accept_loop")
        job_new = story.frame("job_new")
        for label, report in (("text", text), ("markdown", run(HEAPDIFF, "--format", "markdown",
                                                                story.first, story.second).stdout)):
            lines = report.splitlines()
            wanted = [rf"^\s*1,300 new struct conn$",
                      rf"^\s+1,000  {re.escape(conn_new)} <- {re.escape(accept)}$",
                      r"^\s+300  with no recorded site \(made before recording began, or unseen\)$",
                      rf"^\s+300  {re.escape(job_new)} <- {re.escape(story.frame('queue_jobs'))}$",
                      rf"^\s+100  {re.escape(job_new)} <- {re.escape(story.frame('retry_jobs'))}$",
                      rf"^\s+1,000 at {re.escape(conn_new)} <- {re.escape(accept)}$",
                      rf"^\s*50 new struct session, allocated at "
                      rf"{re.escape(story.frame('open_sessions'))} <- main \(conn_sites\.c:\d+\)$"]
            for pattern in wanted:
                check(any(re.match(pattern, line) for line in lines),
                      f"heapdiff {label} has a line matching {pattern!r}")
            check_lines_short(f"heapdiff {label}",
                              [line for line in lines if conn_new in line or job_new in line])
        check("Where the new objects were allocated (innermost frame first):" in text,
              "the text's section is titled")

    def test_heapdiff_html(self):
        story = made_story()
        if not story.second:
            return
        require_browser()
        diff = json.loads(run(HEAPDIFF, "--format", "json", story.first, story.second).stdout)
        page = run(HEAPDIFF, "--format", "html", story.first, story.second).stdout
        check(embedded_json(page) == diff, "the page carries heapdiff's JSON")
        facts = render("sites-diff", page, "grown", "new")
        shown = facts.get("text", "")
        frames = f"{story.frame('conn_new')} <- {story.frame('accept_loop')} <- main (conn_sites.c:"
        check(f"1,000 at {frames}" in shown,
              f"the page shows the 1,000 connections at {frames}...")
        check("300 with no recorded site" in shown, "the page shows the 300 without a site")
        check(f"300 at {story.frame('job_new')} <- {story.frame('queue_jobs')}" in shown,
              "the page shows the jobs from queue_jobs")
        summary = json.loads(heapsnap("summary", story.second, "--format", "json").stdout)
        page = heapsnap("summary", story.second, "--format", "html").stdout
        check(embedded_json(page) == summary, "the summary's page carries its JSON")
        shown = render("sites-summary", page, "types", "count").get("text", "")
        check(f"1,000 at {frames}" in shown and "500 with no recorded site" in shown,
              "the summary's page shows the connections' sites and those without")

    def test_summary(self):
        story = made_story()
        if not story.second:
            return
        summary = json.loads(heapsnap("summary", story.second, "--format", "json").stdout)
        conn = next((t for t in summary["types"] if t["type"] == "struct conn"), {})
        accept = (story.frame("conn_new"), story.frame("accept_loop"))
        by_site = {}
        for site in conn.get("sites", []):
            by_site[site_key(site)] = by_site.get(site_key(site), 0) + site["count"]
        check(conn.get("count") == 1505 and by_site == {accept: 1005} and
              len(conn.get("sites", [])) == 2 and conn.get("without_site", {}).get("count") == 500,
              f"1,505 struct conn: 1,005 at {accept} (two sites), 500 without: {by_site}, "
              f"{conn.get('without_site')}")
        mains = sorted(s["stack"][2] for s in conn.get("sites", []) if len(s["stack"]) > 2)
        text = heapsnap("summary", story.second).stdout
        lines = text.splitlines()
        for main_frame in mains:
            check(any(line.endswith(f"<- {main_frame}") and "conn_new" in line for line in lines),
                  f"the summary's text tells the two sites apart by main's line: {main_frame}")
        check(any(re.match(r"^\s+500  with no recorded site", line) for line in lines),
              "the summary's text has the 500 connections without a site")
        check_lines_short("summary text", [line for line in lines if "conn_new" in line])

    def test_list_sites(self):
        story = made_story()
        if not story.second:
            return
        lines = [json.loads(line) for line in
                 heapsnap("list", story.second, "--sites", "--format", "jsonl").stdout.splitlines()]
        conns = [a for a in lines if a["type"] == "struct conn"]
        at_site = [a for a in conns if a["site"] and a["site"]["function"] == "conn_new" and
                   a["site"]["line"] == story.sites["conn_new"]]
        without = [a for a in conns if a["site"] is None]
        check(len(conns) == 1505 and len(at_site) == 1005 and len(without) == 500,
              f"list --sites: 1,505 struct conn, 1,005 at conn_new, 500 without "
              f"({len(conns)}, {len(at_site)}, {len(without)})")
        text = heapsnap("list", story.second, "--sites").stdout
        check(text.count(f"struct conn  at {story.frame('conn_new')} <- "
                         f"{story.frame('accept_loop')}") == 1005,
              "the text listing names the site after the type")
        refused = run(os.environ.get("HEAPSNAP", "build/heapsnap"), "list", story.ptrace,
                      "--sites", expect=2)
        check("records no allocation sites" in refused.stderr,
              f"list --sites on a snapshot without sites says why: {refused.stderr}")

    def test_sampled(self):
        # the same snapshot saying its sites were sampled (INFO's sites_sample_bytes, written in
        # place of kernel_release in the decompressed core, which every analysis reads)
        story = made_story()
        if not story.second:
            return
        core = path("conn-sites-sampled.core")
        decompress(story.second, core)
        with open(core, "rb") as f:
            data = bytearray(f.read())
        found = re.search(rb"kernel_release=[^\n]*\n", data)
        if not check(found, "the INFO note has kernel_release"):
            return
        key = b"sites_sample_bytes="
        data[found.start():found.end()] = \
            key + b"524288".zfill(found.end() - found.start() - len(key) - 1) + b"\n"
        with open(core, "wb") as f:
            f.write(data)
        note = "(sampled: one allocation per 512 KiB on average was recorded"
        diff = json.loads(run(HEAPDIFF, "--format", "json", story.first, core).stdout)
        text = run(HEAPDIFF, story.first, core).stdout
        summary = json.loads(heapsnap("summary", core, "--format", "json").stdout)
        check(diff.get("sites_sample_bytes") == 524288 and
              summary.get("sites_sample_bytes") == 524288,
              f"JSON says the sites were sampled: {diff.get('sites_sample_bytes')}, "
              f"{summary.get('sites_sample_bytes')}")
        check(note in text and note in heapsnap("summary", core).stdout,
              "text says the sites were sampled, under the sites' titles")
        plain = json.loads(run(HEAPDIFF, "--format", "json", story.first, story.second).stdout)
        check("sites_sample_bytes" not in plain and
              note not in run(HEAPDIFF, story.first, story.second).stdout,
              "the hook's snapshot (every allocation recorded) says nothing of sampling")

    def test_without_sites(self):
        story = made_story()
        if not story.ptrace:
            return
        summary = json.loads(heapsnap("summary", story.ptrace, "--format", "json").stdout)
        check(all("sites" not in t and "without_site" not in t for t in summary["types"]),
              "a snapshot without sites: no type has sites")
        diff = json.loads(run(HEAPDIFF, "--format", "json", story.first, story.ptrace).stdout)
        check(diff["grown"] and all("sites" not in g for g in diff["grown"]),
              "heapdiff to a snapshot without sites: no grown type has sites")
        text = heapsnap("summary", story.ptrace).stdout
        check("where they were allocated" not in text and "allocated at" not in text,
              "a snapshot without sites: no site line in the summary")

    def test_python_types_without_c_sites(self):
        pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
        pythons = sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.11.*", "bin",
                                                "python3.11")))
        if not check(pythons, "pyenv's CPython 3.11 is present"):
            return
        directory = path("sites-python")
        result_file = path("sites-python-result")
        reader, writer = os.pipe()
        target = start([pythons[-1], PYTHON_TARGET, result_file], stdin=reader,
                       env=hooked(directory, sites=True))
        if check(wait_for_file(result_file, target, 60), "the Python target ran"):
            os.kill(target.pid, signal.SIGUSR2)
            snapshot = wait_for_snapshot(directory, [])
            summary = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout) \
                if snapshot else {}
            python_types = [t for t in summary.get("types", [])
                            if t["type"].startswith("__main__.")]
            check(python_types and "sites" in summary,
                  "the Python snapshot records sites and has the target's classes")
            check(all("sites" not in t for t in python_types),
                  f"no Python type gets C sites: "
                  f"{[t['type'] for t in python_types if 'sites' in t][:5]}")
        stop(target, reader, writer)


if __name__ == "__main__":
    main()
