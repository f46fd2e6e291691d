"""scripts/demo, as the README's quick start runs it: it tells the leaking-server story, keeps
its snapshots and reports in the folder named on its command line, and ends with next commands
that work on them.

- exit 0; before.snap, after.snap, report.txt, report.md and report.json in the folder;
- the report says what the server did (tests/targets/leaky_server.py keeps every Connection in a
  module-global list): 1,000 new __main__.Connection, by module __main__._CONNECTIONS -> list[*];
- every command the demo suggests runs on the kept files and exits 0."""
import functools
import json
import os
import subprocess

from common import Case, check, main, path

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
folder = path("demo-output")


@functools.cache
def demo():
    """scripts/demo's run, once for every case."""
    return subprocess.run(["bash", "scripts/demo", folder], cwd=ROOT, capture_output=True,
                          text=True, timeout=500)


def kept_text(name):
    """The text of a file the demo kept, or "" when it kept none."""
    if not os.path.exists(os.path.join(folder, name)):
        return ""
    with open(os.path.join(folder, name)) as f:
        return f.read()


class Demo(Case):
    def test_exits_and_keeps_files(self):
        run = demo()
        check(run.returncode == 0, f"scripts/demo exited {run.returncode}: {run.stderr[-2000:]}")
        for name in ("before.snap", "after.snap", "report.txt", "report.md", "report.json", "report.html"):
            check(os.path.getsize(os.path.join(folder, name)) > 0 if
                  os.path.exists(os.path.join(folder, name)) else False, f"the demo kept {name}")
        check(not os.path.exists(os.path.join(folder, "port")), "the demo removed its port file")

    def test_report_json_names_the_connections(self):
        demo()
        report = json.loads(kept_text("report.json") or "{}")
        grown = {t["type"]: t for t in report.get("grown", [])}
        connection = grown.get("__main__.Connection", {})
        check(connection.get("new") == 1000 and connection.get("retainers", [{}])[0].get("path") ==
              ["module __main__._CONNECTIONS", "list[*]", "__main__.Connection"],
              f"the report has 1,000 new Connections kept by the list: {connection}")

    def test_report_txt_is_the_printed_report(self):
        run = demo()
        printed = kept_text("report.txt")
        check("module __main__._CONNECTIONS -> list[*] -> __main__.Connection" in printed,
              "report.txt names the list that keeps the Connections")
        check(printed in run.stdout, "report.txt is the report the demo printed")

    def test_report_html(self):
        demo()
        page = kept_text("report.html")
        check(page.startswith("<!DOCTYPE html>") and "__main__.Connection" in page and "<script" in page,
              "report.html is the HTML report of the same story")

    def test_suggested_commands_work(self):
        run = demo()
        suggested = [line.strip() for line in run.stdout.splitlines() if line.startswith("   build/")]
        check(len(suggested) >= 4, f"the demo ends with next commands: {suggested}")
        for command in suggested:
            result = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True,
                                    timeout=300)
            check(result.returncode == 0 and result.stdout,
                  f"the suggested `{command}` exits {result.returncode}: {result.stderr[-500:]}")


if __name__ == "__main__":
    main()
