"""Real programs nobody here wrote, installed from Debian (scripts/setup), each against ground
truth of its own where it keeps some:

- nginx: a master and its forked worker holding 1,000 keep-alive connections; the worker's brk
  heap is several mappings (the part inherited from the master, the part it grew), and the walk
  crosses them: no chunk with an "impossible size", at least one block per open connection;
- memcached filled with 20,000 items: heapdiff's growth covers what memcached's own `stats slabs`
  says it malloc'd for them;
- a Python prefork server (tests/targets/prefork_server.py: the parent warms a cache, forks the
  worker that leaks Connections into a module-global list): heapdiff on the worker names the leak
  as on a single process;
- `python3 -m http.server` serving 1,000 requests: a report without warnings;
- redis-server (jemalloc, found by shape) filled with 100,000 keys between two snapshots: the
  heap is named jemalloc 5.3.0, and heapdiff shows 100,000 new blocks of the size classes
  redis gives each key (its dict entry, key and value objects), retained by global server;
- squid with a 64 MB memory cache: its big blocks are mostly never-touched pages, which a
  capture keeps as zeros; every mmapped chunk is found, as many and as large as malloc's own
  counters (gdb: mp_.n_mmaps, mp_.mmapped_mem), and the report has no warning;
- PHP (its objects in the Zend memory manager's heap, which no walker reads) doubling what it
  holds: heapdiff says the memory no walker reads grew, in text and markdown, warns of it, and a
  --fail-on-growth gate on objects cannot pass (exit 2).
Every summary made here satisfies the invariants (check_summary_invariants)."""
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import Case, check, check_summary_invariants, free_port, heapsnap, main, path, start

HEAPDIFF = os.environ.get("HEAPDIFF", "build/heapdiff")
HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = os.path.join(HERE, "..", "targets")
sys.path.insert(0, TARGETS)
from client import connect  # noqa: E402


def heapdiff(*args, expect=0):
    result = subprocess.run([HEAPDIFF, *args], capture_output=True, text=True, timeout=600)
    check(result.returncode == expect,
          f"heapdiff {' '.join(args)} exited {result.returncode}, not {expect}: {result.stderr[:500]}")
    return result


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def summary_of(label, snapshot):
    result = heapsnap("summary", snapshot, "--format", "json")
    summary = json.loads(result.stdout) if result.returncode == 0 else None
    if summary:
        check_summary_invariants(label, summary)
    return summary, result.stderr


def setUpModule():
    # a thousand connections at once, and the servers started from here inherit the limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socket.setdefaulttimeout(30)


# (servers' output goes nowhere: a server outliving the test must not hold the runner's pipe)
quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


# ---- nginx: master and a worker whose heap grew after the fork
def check_nginx():
    work = tempfile.mkdtemp(prefix="nginx-", dir=path(""))
    os.makedirs(os.path.join(work, "logs"))
    port = free_port()
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(f"""daemon off; master_process on; worker_processes 1;
error_log {work}/logs/error.log; pid {work}/nginx.pid;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_timeout 300s; keepalive_requests 100000;
  client_body_temp_path {work}/b; proxy_temp_path {work}/p; fastcgi_temp_path {work}/f;
  uwsgi_temp_path {work}/u; scgi_temp_path {work}/s;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "hi\\n"; }} }} }}
""")
    master = start(["nginx", "-c", os.path.join(work, "nginx.conf"), "-p", work], **quiet)
    workers = []
    if check(wait_port(port), "nginx listens"):
        workers = subprocess.run(["pgrep", "-P", str(master.pid)], capture_output=True, text=True).stdout.split()
        check(len(workers) == 1, f"one nginx worker: {workers}")
        held = []
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 600 + b"\r\n\r\n")
            s.recv(1000)
            held.append(s)
        worker = int(workers[0])
        heap_maps = [l for l in Path(f"/proc/{worker}/maps").read_text().splitlines(keepends=True) if l.rstrip().endswith("[heap]")]
        check(len(heap_maps) >= 2, f"the worker's brk heap is several mappings after fork: {heap_maps}")
        for label, pid in (("nginx master", master.pid), ("nginx worker", worker)):
            snapshot = path(label.replace(" ", "-") + ".snap")
            heapsnap("capture", str(pid), "-o", snapshot)
            summary, warnings = summary_of(label, snapshot)
            check("impossible size" not in warnings and "cannot be read" not in warnings,
                  f"{label}: the heap is walked whole: {warnings[:400]}")
            if label == "nginx worker" and summary:
                check(summary["heap"]["live_count"] >= 1000,
                      f"{label}: a block or more per open connection: {summary['heap']['live_count']}")
            # its title is rewritten ("nginx: worker process"): the program is still nginx
            program = json.loads(heapsnap("info", snapshot, "--format", "json").stdout).get("program")
            check(program == "nginx", f"{label}: the program is named nginx, not by its title: {program!r}")
        for s in held:
            s.close()
    for pid in workers:
        try:
            os.kill(int(pid), 9)
        except ProcessLookupError:
            pass
    master.kill()


# ---- memcached: growth against its own statistics
def memcached_stats(port, command):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(command.encode() + b"\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            data += s.recv(65536)
    return {line.split()[1].split(":")[-1]: line.split()[2] for line in data.decode().splitlines()
            if line.startswith("STAT")}


def check_memcached():
    port = free_port()
    memcached = start(["memcached", "-u", "root", "-l", "127.0.0.1", "-p", str(port), "-m", "256", "-t", "2"],
                      **quiet)
    if check(wait_port(port), "memcached listens"):
        before = path("memcached-before.snap")
        malloced_before = int(memcached_stats(port, "stats slabs").get("total_malloced", 0))
        heapsnap("capture", str(memcached.pid), "-o", before)
        with socket.create_connection(("127.0.0.1", port)) as s:
            value = b"v" * 1000
            for i in range(20000):
                s.sendall(b"set key%d 0 0 %d noreply\r\n%s\r\n" % (i, len(value), value))
            s.sendall(b"get key19999\r\n")
            reply = b""
            while not reply.endswith(b"END\r\n"):
                reply += s.recv(65536)
        malloced = int(memcached_stats(port, "stats slabs")["total_malloced"]) - malloced_before
        after = path("memcached-after.snap")
        heapsnap("capture", str(memcached.pid), "-o", after)
        summary_of("memcached after", after)
        diff = json.loads(heapdiff("--format", "json", before, after).stdout)
        grown_bytes = sum(g["delta_bytes"] for g in diff["grown"] if g["delta_bytes"] > 0)
        check(malloced >= 20000 * 1000 and grown_bytes >= malloced,
              f"memcached: heapdiff's growth {grown_bytes} covers the {malloced} bytes it says it malloc'd")
    memcached.kill()


# ---- a Python prefork server: the leak, seen in the forked worker
def check_prefork():
    info = path("prefork.info")
    parent = start(["/usr/bin/python3.11", os.path.join(TARGETS, "prefork_server.py"), info], **quiet)
    worker = None
    deadline = time.time() + 30
    while not os.path.exists(info) and time.time() < deadline:
        time.sleep(0.05)
    if check(os.path.exists(info), "the prefork server started its worker"):
        worker, port = map(int, Path(info).read_text().split())
        connect(port, 100)
        before, after = path("prefork-before.snap"), path("prefork-after.snap")
        heapsnap("capture", str(worker), "-o", before)
        connect(port, 1000)
        heapsnap("capture", str(worker), "-o", after)
        summary, warnings = summary_of("prefork worker", after)
        check("impossible size" not in warnings, f"prefork worker: the heap is walked whole: {warnings[:400]}")
        diff = json.loads(heapdiff("--format", "json", before, after).stdout)
        grown = {g["type"]: g for g in diff["grown"]}
        conn = grown.get("leaky_server.Connection", {})
        check(conn.get("new") == 1000 and conn.get("delta_count") == 1000,
              f"prefork worker: 1,000 new Connections: {conn and {k: conn[k] for k in ('new', 'delta_count')}}")
        paths = [r["path"][:2] for r in conn.get("retainers", []) if r["count"] == 1000]
        check(["module leaky_server._CONNECTIONS", "list[*]"] in paths,
              f"prefork worker: held by the module-global list: {[r['path'] for r in conn.get('retainers', [])]}")
    if worker:
        try:
            os.kill(worker, 9)
        except ProcessLookupError:
            pass
    parent.kill()


# ---- python3 -m http.server: 1,000 requests, a report without warnings
def check_http_server():
    port = free_port()
    served = tempfile.mkdtemp(prefix="served-", dir=path(""))
    with open(os.path.join(served, "index.html"), "w") as f:
        f.write("hello\n")
    server = start(["/usr/bin/python3.11", "-m", "http.server", str(port), "--bind", "127.0.0.1",
                    "--directory", served], **quiet)
    if check(wait_port(port), "http.server listens"):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/").read()
        before, after = path("http-before.snap"), path("http-after.snap")
        heapsnap("capture", str(server.pid), "-o", before)
        for _ in range(1000):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/").read()
        heapsnap("capture", str(server.pid), "-o", after)
        summary, warnings = summary_of("http.server", after)
        check(warnings == "", f"http.server: summary without warnings: {warnings[:400]}")
        result = heapdiff(before, after)
        check(result.stderr == "", f"http.server: heapdiff without warnings: {result.stderr[:400]}")
    server.kill()


# ---- redis on jemalloc: 100,000 keys between two snapshots


def redis_set_commands(count):
    """RESP for `count` SETs, for redis-cli --pipe."""
    commands = []
    for i in range(count):
        key, value = f"key:{i}", f"value-{i:08d}"
        commands.append(f"*3\r\n$3\r\nSET\r\n${len(key)}\r\n{key}\r\n${len(value)}\r\n{value}\r\n")
    return "".join(commands)


def check_redis():
    port = free_port()
    redis = start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", path("")], **quiet)
    if check(wait_port(port), "redis listens"):
        before, after = path("redis-before.snap"), path("redis-after.snap")
        heapsnap("capture", str(redis.pid), "-o", before)
        filled = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=redis_set_commands(100000),
                                capture_output=True, text=True, timeout=120)
        check("errors: 0, replies: 100000" in filled.stdout, f"redis: 100,000 keys set: {filled.stdout!r}")
        heapsnap("capture", str(redis.pid), "-o", after)
        summary_of("redis", after)  # (the invariants)
        result = heapsnap("summary", after)
        check(result.stdout.splitlines()[1].startswith("jemalloc 5.3.0, structures found with heuristics"),
              f"redis: the heap is jemalloc's, found by shape: {result.stdout[:200]!r}")
        header = heapdiff(before, after).stdout.splitlines()[0]
        check(header.endswith("(jemalloc 5.3.0)"), f"redis: heapdiff names jemalloc: {header!r}")
        diff = json.loads(heapdiff(before, after, "--format", "json").stdout)
        by_size = {g["type"]: g for g in diff["grown"]}
        for size in ("size 16", "size 32", "size 48"):
            grown = by_size.get(size, {})
            held = [r for r in grown.get("retainers", []) if r["path"][0] == "global server"]
            check(grown.get("new", 0) >= 99000 and sum(r["count"] for r in held) >= 99000,
                  f"redis: about 100,000 new blocks of {size}, retained by global server: "
                  f"{grown.get('new')} {grown.get('retainers', [])[:2]}")
        check("redis-server" in heapsnap("info", after).stdout,
              "redis: the process is named as it was started, redis-server")
    redis.kill()


# ---- squid: big blocks whose pages were mostly never written
def check_squid():
    port = free_port()
    work = tempfile.mkdtemp(prefix="squid-", dir=path(""))
    os.chmod(work, 0o777)  # (squid runs as the proxy user)
    with open(os.path.join(work, "squid.conf"), "w") as f:
        f.write(f"""http_port 127.0.0.1:{port}
cache_mem 64 MB
pid_filename {work}/squid.pid
cache_log {work}/cache.log
access_log none
cache_store_log none
coredump_dir {work}
http_access deny all
shutdown_lifetime 1 seconds
""")
    squid = start(["squid", "-N", "-f", os.path.join(work, "squid.conf")], **quiet)
    if check(wait_port(port), "squid listens"):
        snapshot = path("squid.snap")
        heapsnap("capture", str(squid.pid), "-o", snapshot)
        summary, warnings = summary_of("squid", snapshot)
        check(warnings == "", f"squid: a report without warnings: {warnings[:400]}")
        listed = [line.split() for line in heapsnap("list", snapshot).stdout.splitlines()]
        mmapped = [int(fields[1]) + 16 for fields in listed if fields[3] == "mmapped"]
        counted = subprocess.run(["gdb", "-nx", "-batch", "-iex", "set auto-load off", "-ex", "p mp_.n_mmaps",
                                  "-ex", "p mp_.mmapped_mem", "-p", str(squid.pid)],
                                 capture_output=True, text=True, timeout=120).stdout
        values = [int(line.split("=")[1]) for line in counted.splitlines() if line.startswith("$")]
        check(len(values) == 2 and values == [len(mmapped), sum(mmapped)] and values[1] >= 8 << 20,
              f"squid: the mmapped chunks are malloc's own count and bytes (gdb {values}, heapsnap "
              f"{len(mmapped)} of {sum(mmapped)} bytes)")
    squid.kill()


# ---- PHP: its heap is the Zend memory manager's, which no walker reads; it doubles
def check_php():
    ready = path("php.ready")
    php = start(["php", os.path.join(TARGETS, "growing_holder.php"), ready], **quiet)
    deadline = time.time() + 120
    while not os.path.exists(ready) and time.time() < deadline:
        time.sleep(0.05)
    before, after = path("php-before.snap"), path("php-after.snap")
    heapsnap("capture", str(php.pid), "-o", before)
    Path(ready + ".grow").write_text("")
    while not os.path.exists(ready + ".grown") and time.time() < deadline:
        time.sleep(0.05)
    heapsnap("capture", str(php.pid), "-o", after)
    result = heapdiff(before, after)
    line = next((l for l in result.stdout.splitlines()[:6] if "memory no walker reads:" in l), "")
    grown = line.split("(+")[-1].rstrip(")").split() if "(+" in line else ["0", "B"]
    check(grown[1] == "MiB" and float(grown[0]) >= 30,
          f"php: heapdiff's header says the memory no walker reads grew: {result.stdout[:600]}")
    check("memory no walker reads grew by" in result.stderr, f"php: heapdiff warns of it: {result.stderr[-400:]}")
    markdown = heapdiff(before, after, "--format", "markdown").stdout
    check("**Memory no walker reads:**" in markdown, "php: the markdown report says it")
    heapdiff("--fail-on-growth", "*=1", before, after, expect=2)
    php.kill()


class RealPrograms(Case):
    def test_nginx_master_and_worker(self):
        check_nginx()

    def test_memcached(self):
        check_memcached()

    def test_python_prefork_server(self):
        check_prefork()

    def test_python_http_server(self):
        check_http_server()

    def test_redis_on_jemalloc(self):
        check_redis()

    def test_squid_mmapped_chunks(self):
        check_squid()

    def test_php_unseen_growth(self):
        check_php()


if __name__ == "__main__":
    main()
