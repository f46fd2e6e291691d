"""scripts/demo, as the README's quick start runs it: it tells the leaking-server story, keeps
its snapshots and reports in the folder named on its command line, and ends with next commands
that work on them.

- exit 0; before.snap, after.snap, report.txt, report.md and report.json in the folder;
- the report says what the server did (tests/targets/leaky_server.py keeps every Connection in a
  module-global list): 1,000 new __main__.Connection, by module __main__._CONNECTIONS -> list[*];
- every command the demo suggests runs on the kept files and exits 0."""
import json
import os
import shlex
import subprocess

from common import check, finish, path

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
folder = path("demo-output")
run = subprocess.run(["bash", "scripts/demo", folder], cwd=ROOT, capture_output=True, text=True,
                     timeout=500)
check(run.returncode == 0, f"scripts/demo exited {run.returncode}: {run.stderr[-2000:]}")
for name in ("before.snap", "after.snap", "report.txt", "report.md", "report.json", "report.html"):
    check(os.path.getsize(os.path.join(folder, name)) > 0 if
          os.path.exists(os.path.join(folder, name)) else False, f"the demo kept {name}")
check(not os.path.exists(os.path.join(folder, "port")), "the demo removed its port file")
report = json.load(open(os.path.join(folder, "report.json"))) \
    if os.path.exists(os.path.join(folder, "report.json")) else {}
grown = {t["type"]: t for t in report.get("grown", [])}
connection = grown.get("__main__.Connection", {})
check(connection.get("new") == 1000 and connection.get("retainers", [{}])[0].get("path") ==
      ["module __main__._CONNECTIONS", "list[*]", "__main__.Connection"],
      f"the report has 1,000 new Connections kept by the list: {connection}")
printed = open(os.path.join(folder, "report.txt")).read() \
    if os.path.exists(os.path.join(folder, "report.txt")) else ""
check("module __main__._CONNECTIONS -> list[*] -> __main__.Connection" in printed,
      "report.txt names the list that keeps the Connections")
check(printed in run.stdout, "report.txt is the report the demo printed")
page = open(os.path.join(folder, "report.html")).read() \
    if os.path.exists(os.path.join(folder, "report.html")) else ""
check(page.startswith("<!DOCTYPE html>") and "__main__.Connection" in page and "<script" in page,
      "report.html is the HTML report of the same story")
suggested = [line.strip() for line in run.stdout.splitlines() if line.startswith("   build/")]
check(len(suggested) >= 4, f"the demo ends with next commands: {suggested}")
for command in suggested:
    result = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    check(result.returncode == 0 and result.stdout,
          f"the suggested `{command}` exits {result.returncode}: {result.stderr[-500:]}")
finish()
