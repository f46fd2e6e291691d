"""`heapsnap watch` on the CPython seed server (tests/targets/leaky_server.py), its client driven in
step with the captures: after each capture's line the test makes a batch of connections, so the
test knows how many Connection objects the server holds at every capture (the server keeps each
one: the program's source says so) and checks watch's metrics against that count.

- leak: the global variant leaks every Connection; watch names __main__.Connection a suspect
  within a few captures, with _CONNECTIONS in its retaining path; the metrics count exactly the
  connections made; DIR never holds more than the first snapshot and the latest --keep; the
  heapdiff report is written and --exec is run with its path; exit 1.
- bounded: the bounded variant empties its list every 120 connections (a cache with a bound):
  memory rises and falls back; watch names no suspect and exits 0.
- target exit: watch stops when the process exits, with its final line, exit 0.
- max disk: when the first and the latest snapshot do not fit --max-disk, it says so, keeps
  both and exits 2.
- sigterm: SIGTERM while the first capture of a large heap is being written: the capture is
  finished (the snapshot whole, `heapsnap info --verify` passes), no temporary file is left,
  the target still runs and serves, watch exits 0.
- prometheus: Debian's prometheus and prometheus-node-exporter, started on loopback ports with
  the textfile collector reading watch's --metrics directory: a PromQL query over the HTTP API
  returns heapsnap_objects{type="__main__.Connection"} rising to the count of connections made;
  `promtool check metrics` passes on the file."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from common import HEAPSNAP, Case, check, free_port, give_up, main, path, start, wait_for_text

TARGETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets")
sys.path.insert(0, TARGETS)
from client import connect  # noqa: E402  (the client the demo runs)

PYTHON = "/usr/bin/python3"
BATCH = 40
CAPTURE_LINE = re.compile(r"^heapsnap watch: capture (\d+): (\S+): ")
SAMPLE = re.compile(r'^(\w+)\{pid="\d+",program="[^"]*",type="((?:[^"\\]|\\.)*)"\} (\S+)$')


def start_server(name, variant):
    port_file = path(f"port-{name}")
    server = start([PYTHON, os.path.join(TARGETS, "leaky_server.py"), port_file, "--variant",
                    variant])
    return server, int(wait_for_text(port_file, server))


def type_samples(metrics_file, family):
    """{type: value} of one family in a metrics file."""
    samples = {}
    with open(metrics_file) as f:
        for line in f:
            match = SAMPLE.match(line.strip())
            if match and match.group(1) == family:
                samples[match.group(2)] = float(match.group(3))
    return samples


def watch_in_step(name, server, port, captures, extra=(), on_capture=None, settle=0):
    """Runs watch on `server` every 3 s (room for the batch before the next capture on a busy
    machine); after each capture's line, makes BATCH connections (and
    calls on_capture(number, connections made before it)); after `captures` captures waits
    `settle` seconds and sends SIGTERM. Returns (exit status, stdout, stderr lines, directory,
    connections made)."""
    directory = path(f"watch-{name}")
    os.makedirs(directory, exist_ok=True)
    watch = start([HEAPSNAP, "watch", str(server.pid), "--every", "3s", "--for", "10m", "--dir",
                   directory, "-v", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  text=True)
    made, lines = 0, []
    for line in watch.stderr:
        lines.append(line)
        match = CAPTURE_LINE.match(line)
        if not match:
            continue
        number = int(match.group(1))
        if on_capture:
            on_capture(number, made, directory)
        if number >= captures:
            time.sleep(settle)
            watch.send_signal(signal.SIGTERM)
            break
        connect(port, BATCH)
        made += BATCH
    lines += watch.stderr.readlines()
    stdout = watch.stdout.read()
    status = watch.wait(timeout=600)
    return status, stdout, lines, directory, made


class Watch(Case):
    def test_leak(self):
        server, port = start_server("leak", "global")
        exec_log = path("exec-leak.log")
        metrics = path("watch-leak.prom")
        counted = []

        def on_capture(number, made, directory):
            counted.append((number, made,
                            type_samples(metrics, "heapsnap_objects").get("__main__.Connection", 0)))
            snapshots = [f for f in os.listdir(directory) if f.endswith(".snap")]
            check(len(snapshots) <= 1 + 3, f"capture {number}: at most the first and 3 kept: "
                  f"{sorted(snapshots)}")

        status, stdout, lines, directory, made = watch_in_step(
            "leak", server, port, 8,
            ["--keep", "3", "--metrics", metrics, "--top", "1000", "--exec", f"echo >> {exec_log}"],
            on_capture)
        check(status == 1, f"watch exits 1 when it found a suspect: {status}\n{''.join(lines)[-3000:]}")
        suspects = [line for line in stdout.splitlines() if line.startswith("leak suspect: ")]
        connection = [line for line in suspects if line.startswith("leak suspect: __main__.Connection: ")]
        check(len(connection) == 1, f"__main__.Connection is named once: {stdout}")
        if connection:
            check("held by: module __main__._CONNECTIONS -> list[*] -> __main__.Connection"
                  in connection[0], f"its path is the program's: {connection[0]}")
            check(re.search(r": \+[\d,]+ objects/hour, \+[\d.]+ [KMG]?i?B/hour ", connection[0]),
                  f"its rates per hour: {connection[0]}")
        check(stdout.count("leak report: ") >= 1, f"a report line: {stdout}")
        # named within a few captures: by the sixth (5 rising points after the first at 0)
        named_at = [int(CAPTURE_LINE.match(line).group(1)) for line in lines
                    if CAPTURE_LINE.match(line) and not line.rstrip().endswith(", 0 leak suspects")]
        check(named_at and named_at[0] <= 6, f"named by capture 6: {named_at}")
        check("str" not in [s.split(":")[0][len("leak suspect: "):] for s in suspects],
              f"str, which does not grow by much, is no suspect: {suspects}")
        # the metrics against the client's count: exact, the server keeping every Connection
        for number, made_before, value in counted:
            check(value == made_before, f"capture {number}: heapsnap_objects of "
                  f"__main__.Connection is {value}, the connections made {made_before}")
        check(not type_samples(metrics, "heapsnap_retained_bytes"),
              "no retained bytes without --retained (no object graph per capture)")
        check(oct(os.stat(metrics).st_mode & 0o777) == "0o644",
              "the metrics file is readable by node_exporter's own user (0644)")
        report = os.path.join(directory, f"heapsnap-{server.pid}-leak.md")
        check(os.path.exists(report) and os.path.exists(report[:-3] + ".html"),
              "the markdown and HTML reports are in DIR")
        if os.path.exists(report):
            with open(report) as f:
                text = f.read()
            check("`__main__.Connection`" in text, "the report names the type")
            check(oct(os.stat(report).st_mode & 0o777) == "0o600", "the report is 0600")
        executed = []
        if os.path.exists(exec_log):
            with open(exec_log) as f:
                executed = f.read().split()
        # once per report: a report is written each time a type becomes a suspect
        check(executed and set(executed) == {report}
              and len(executed) == stdout.count("leak report: "),
              f"--exec ran with the report's path after each report: {executed}")
        final = stdout.strip().splitlines()[-1] if stdout.strip() else ""
        check(final.startswith("heapsnap watch: stopped by SIGTERM: 8 captures")
              and "__main__.Connection" in final, f"the final line: {final}")
        check(re.search(r"capture 1 cost the watcher [\d.]+ s of CPU, [\d.]+ [KMG]iB of memory",
                        "".join(lines)), "-v gives the watcher's cost")
        snapshots = sorted(f for f in os.listdir(directory) if f.endswith(".snap"))
        check(len(snapshots) == 4, f"the first and the latest 3 kept: {snapshots}")
        # summary --format openmetrics of the latest: what promtool accepts, the same count
        one = path("summary-leak.prom")
        with open(one, "w") as f:
            ran = subprocess.run([HEAPSNAP, "summary", "--format", "openmetrics",
                                  os.path.join(directory, snapshots[-1])], stdout=f,
                                 stderr=subprocess.PIPE, text=True, timeout=600)
        check(ran.returncode == 0, f"summary --format openmetrics: {ran.stderr[-500:]}")
        with open(one) as f:
            promtool = subprocess.run(["/usr/bin/promtool", "check", "metrics"], stdin=f,
                                      capture_output=True, text=True, timeout=60)
        check(promtool.returncode == 0, f"promtool accepts it: {promtool.stdout} {promtool.stderr}")
        with open(one) as f:
            check(f.read().endswith("\n# EOF\n"), "it ends with # EOF")
        objects = type_samples(one, "heapsnap_objects")
        check(len(objects) == 21 and "(other)" in objects, f"20 types and (other): {sorted(objects)}")
        if "__main__.Connection" in objects and counted:
            check(objects["__main__.Connection"] == counted[-1][1],
                  f"summary counts the connections made: {objects['__main__.Connection']}")
        check(type_samples(one, "heapsnap_retained_bytes"), "with retained bytes")
        server.kill()

    def test_bounded(self):
        server, port = start_server("bounded", "bounded")
        metrics = path("watch-bounded.prom")
        status, stdout, lines, directory, made = watch_in_step(
            "bounded", server, port, 10, ["--metrics", metrics, "--top", "3"])
        check(status == 0, f"no suspect, exit 0: {status}\n{stdout}\n{''.join(lines)[-3000:]}")
        check("leak suspect: " not in stdout, f"no suspect named: {stdout}")
        check("no leak suspect" in stdout, f"the final line says so: {stdout}")
        report = os.path.join(directory, f"heapsnap-{server.pid}-leak.md")
        check(not os.path.exists(report), "no report")
        # --top 3: three types and "(other)", which sums the rest: together every live object
        objects = type_samples(metrics, "heapsnap_objects")
        check(len(objects) == 4 and "(other)" in objects, f"3 types and (other): {objects}")
        latest = max((f for f in os.listdir(directory) if f.endswith(".snap")),
                     key=lambda f: os.stat(os.path.join(directory, f)).st_mtime)
        summary = json.loads(subprocess.run(
            [HEAPSNAP, "summary", "--format", "json", os.path.join(directory, latest)],
            capture_output=True, text=True, timeout=600).stdout)
        live = sum(t["count"] for t in summary["types"]) + summary["unreachable"]["count"]
        check(sum(objects.values()) == live,
              f"the series add up to the live objects, reachable or not ({live}): {objects}")
        server.kill()

    def test_sigterm(self):
        ready = path("big-ready")
        # incompressible memory, so that writing the snapshot takes a while
        big = start([PYTHON, "-c", "import os, sys, time\n"
                     "blocks = [os.urandom(1 << 20) for _ in range(192)]\n"
                     "open(sys.argv[1], 'w').write('ready')\n"
                     "while True: time.sleep(0.05)\n", ready])
        wait_for_text(ready, big)
        directory = path("watch-sigterm")
        os.makedirs(directory)
        watch = start([HEAPSNAP, "watch", str(big.pid), "--every", "1h", "--dir", directory],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        fd_dir = f"/proc/{watch.pid}/fd"
        deadline, mid_write = time.time() + 120, False
        while time.time() < deadline and watch.poll() is None and not mid_write:
            try:
                targets = [os.readlink(os.path.join(fd_dir, fd)) for fd in os.listdir(fd_dir)]
            except OSError:
                targets = []
            # the snapshot being written: an unnamed file in DIR (O_TMPFILE) or a temporary name
            mid_write = any(t.startswith(directory + "/") for t in targets)
            if not mid_write:
                time.sleep(0.005)
        if not check(mid_write, "watch was seen writing its first snapshot"):
            return
        watch.send_signal(signal.SIGTERM)
        stdout, stderr = watch.communicate(timeout=600)
        check(watch.returncode == 0, f"exit 0 after SIGTERM: {watch.returncode} {stderr[-2000:]}")
        check("stopped by SIGTERM: 1 capture" in stdout, f"the final line: {stdout}")
        files = os.listdir(directory)
        check(len(files) == 1 and files[0].endswith(".snap"), f"one snapshot, nothing else: {files}")
        for name in files:
            verify = subprocess.run([HEAPSNAP, "info", "--verify", os.path.join(directory, name)],
                                    capture_output=True, text=True, timeout=600)
            check(verify.returncode == 0, f"the snapshot is whole: {verify.stderr[-1000:]}")
        with open(f"/proc/{big.pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        check(big.poll() is None and state in "RS", f"the target runs: state {state}")
        big.kill()

    def test_target_exit(self):
        # a process that lives about 5 seconds: watch ends with it, with its final line
        short = start([PYTHON, "-c", "import time\nx = [str(i) for i in range(10000)]\n"
                       "time.sleep(5)\n"])
        directory = path("watch-exit")
        os.makedirs(directory)
        watch = subprocess.run([HEAPSNAP, "watch", str(short.pid), "--every", "1s", "--dir",
                                directory], capture_output=True, text=True, timeout=600)
        short.wait()
        check(watch.returncode == 0, f"exit 0, no suspect: {watch.returncode} {watch.stderr[-1000:]}")
        check(re.search(r"^heapsnap watch: the process exited: \d+ captures? in \d+ s, "
                        r"\d+ snapshots? kept in .*; no leak suspect", watch.stdout, re.M),
              f"the final line: {watch.stdout}")
        check("heapsnap watch: capture 1: " in watch.stderr, f"it captured: {watch.stderr[-500:]}")

    def test_max_disk(self):
        server, port = start_server("max-disk", "global")
        directory = path("watch-max-disk")
        os.makedirs(directory)
        # the limit: one and a half snapshots of the server, as `heapsnap capture` writes one
        probe = path("max-disk-probe.snap")
        subprocess.run([HEAPSNAP, "capture", str(server.pid), "-o", probe], check=True,
                       capture_output=True, timeout=600)
        limit = os.stat(probe).st_size * 3 // 2
        watch = subprocess.run([HEAPSNAP, "watch", str(server.pid), "--every", "0.2s", "--for",
                                "2m", "--dir", directory, "--max-disk", str(limit)],
                               capture_output=True, text=True, timeout=600)
        check(watch.returncode == 2, f"exit 2 when two snapshots do not fit: {watch.returncode}")
        check(re.search(r"take \d+ bytes together, more than --max-disk allows \(%d\)" % limit,
                        watch.stderr), f"it says why: {watch.stderr[-1000:]}")
        snapshots = [f for f in os.listdir(directory) if f.endswith(".snap")]
        check(len(snapshots) == 2, f"both kept: {snapshots}")
        check("stopped on an error: 2 captures" in watch.stdout, f"the final line: {watch.stdout}")
        server.kill()

    def test_prometheus(self):
        for tool in ("prometheus", "prometheus-node-exporter", "promtool"):
            if not os.path.exists(f"/usr/bin/{tool}"):
                give_up(f"/usr/bin/{tool} is missing: run scripts/setup (Debian's prometheus "
                        "and prometheus-node-exporter)")
        textfiles = path("textfiles")
        os.makedirs(textfiles)
        exporter_port, prometheus_port = free_port(), free_port()
        exporter = start(["/usr/bin/prometheus-node-exporter",
                          f"--web.listen-address=127.0.0.1:{exporter_port}",
                          "--collector.disable-defaults", "--collector.textfile",
                          f"--collector.textfile.directory={textfiles}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        config = path("prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: heapsnap\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{exporter_port}']\n")
        prometheus = start(["/usr/bin/prometheus", f"--config.file={config}",
                            f"--storage.tsdb.path={path('tsdb')}",
                            f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        api = f"http://127.0.0.1:{prometheus_port}"
        check(wait_http(f"{api}/-/ready"), "prometheus became ready")
        server, port = start_server("prometheus", "global")
        metrics = os.path.join(textfiles, "heapsnap.prom")
        counts = []

        def on_capture(number, made, directory):
            counts.append(made)

        started = time.time()
        # (the last capture's file scraped a few times before the end)
        status, stdout, lines, _, made = watch_in_step(
            "prometheus", server, port, 5, ["--metrics", metrics, "--retained", "--top", "1000"],
            on_capture,
            settle=4)
        check(status in (0, 1), f"watch ran: {status} {''.join(lines)[-2000:]}")
        with open(metrics) as f:
            promtool = subprocess.run(["/usr/bin/promtool", "check", "metrics"], stdin=f,
                                      capture_output=True, text=True, timeout=60)
        check(promtool.returncode == 0, f"promtool check metrics passes: {promtool.stdout} "
              f"{promtool.stderr}")
        query = urllib.parse.urlencode({
            "query": 'heapsnap_objects{type="__main__.Connection"}', "start": f"{started:.3f}",
            "end": f"{time.time():.3f}", "step": "1"})
        try:
            with urllib.request.urlopen(f"{api}/api/v1/query_range?{query}", timeout=30) as r:
                answer = json.load(r)
        except OSError as e:
            answer = {"error": str(e)}
        results = answer.get("data", {}).get("result", [])
        check(len(results) == 1, f"one series of __main__.Connection: {answer}")
        if results:
            values = [float(v) for _, v in results[0]["values"]]
            check(values == sorted(values) and values[-1] > values[0],
                  f"it rises: {values}")
            # (the first capture has no Connection yet: no sample; the last is exact)
            check(set(values) <= set(float(c) for c in counts) and values[-1] == counts[-1],
                  f"every value is a count of connections made ({counts}): {sorted(set(values))}")
        retained = query_value(api, 'heapsnap_retained_bytes{type="__main__.Connection"}')
        check(retained is not None and retained > 0, f"--retained: retained bytes scraped: {retained}")
        suspect = query_value(api, 'heapsnap_leak_suspect{type="__main__.Connection"}')
        check(suspect is not None, "heapsnap_leak_suspect of __main__.Connection is scraped")
        for process in (exporter, prometheus, server):
            process.terminate()
            process.wait(timeout=60)


def wait_http(url, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def query_value(api, promql):
    query = urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(f"{api}/api/v1/query?{query}", timeout=30) as r:
            result = json.load(r)["data"]["result"]
    except (OSError, KeyError, ValueError):
        return None
    return float(result[0]["value"][1]) if result else None


if __name__ == "__main__":
    main()
