"""`heapsnap capture PID --sites DURATION`: allocation sites recorded from outside with eBPF.

Ground truth is the target's source: tests/targets/sites_server.c, built with -O2
-fomit-frame-pointer (its stacks are unwound by CFI, not frame pointers), records the line of
each allocating call and of each call on the way to it. While a client connects 1,000 times
during the window, each connection makes a session (session_new) with a buffer (buffer_new,
called from session_new) and a scratch block freed at once (read_request); odd connections are
closed (both blocks freed). So the snapshot's sites must be exactly: 500 session_new blocks whose
stack goes serve_client -> accept_loop, and 500 buffer_new blocks whose stack goes session_new ->
serve_client, at the recorded lines; nothing from read_request nor from the closed sessions (freed
during the window); the 50 startup blocks made before the window have no site. heapdiff from a
snapshot taken before the window shows the same 500 + 500 new blocks by site. The same on
jemalloc (the server linked with libjemalloc), and with tcmalloc and mimalloc preloaded. Sampling is marked as estimates; a live map too
small (--sites-max) is warned about with the count it lost, which info gives too.

Refusals exit 2 with their reason and the alternative (the hook), and write nothing: heapsnap
run as nobody (no CAP_BPF), heapsnap under a seccomp filter refusing bpf(), a target that exits during the window, a program with a malloc of
its own that no walker knows.

These cases need BPF: as root on a kernel with uprobes they run; where the kernel refuses BPF to
root (a container without the capabilities, a kernel without uprobes), each case is skipped with
the kernel's refusal, never passed."""
import ctypes
import json
import os
import socket
import subprocess
import time

from common import (HEAPDIFF, HEAPSNAP, Case, check, give_up, heapsnap, main, path, start,
                    wait_for_text)

SERVER = os.environ.get("SITES_SERVER", "build/tests/sites_server")
SERVER_JEMALLOC = os.environ.get("SITES_SERVER_JEMALLOC", "build/tests/sites_server_jemalloc")
OWN_MALLOC = os.environ.get("OWN_MALLOC", "build/tests/own_malloc")
LIBTCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
LIBMIMALLOC = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"
CONNECTIONS = 1000
WINDOW = "30s"  # ended early by SIGINT once the client is done: no tight timing


def read_record(record_file):
    sites, callers, port = {}, {}, None
    with open(record_file) as f:
        for line in f:
            words = line.split()
            if words[0] == "site":
                sites[words[1]] = int(words[2])
            elif words[0] == "caller":
                callers[words[1]] = int(words[2])
            elif words[0] == "port":
                port = int(words[1])
    return sites, callers, port


def connect_clients(port, count):
    # paced (a thousand a second at most): heapsnap unwinds every stack as it comes, and a
    # client faster than it on a busy machine would fill the ring buffer (said, but not the test)
    for _ in range(count):
        time.sleep(0.001)
        with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
            client.sendall(b"hello")
            client.recv(16)


def start_window(case, pid, output, *options):
    """Starts `capture PID --sites` and waits until its probes are attached; returns the capture's
    process and its stderr file. Skips the case when the kernel refuses BPF to root."""
    errors = path(os.path.basename(output) + ".stderr")
    with open(errors, "w") as stderr:
        capture = subprocess.Popen([HEAPSNAP, "capture", str(pid), "--sites", WINDOW, "-o",
                                    output, *options], stdout=subprocess.PIPE, stderr=stderr,
                                   text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        with open(errors) as f:
            text = f.read()
        if "recording the allocation sites" in text:
            return capture, errors
        if capture.poll() is not None:
            if "the kernel refused" in text or "has no uprobes" in text:
                case.skipTest(f"BPF refused by this kernel: {text.strip()}")
            give_up(f"capture --sites failed before its window: {text}")
        time.sleep(0.05)
    give_up("capture --sites never said it was recording")


def end_window(capture, errors):
    capture.send_signal(2)  # SIGINT ends the window early, and the capture goes on
    out, _ = capture.communicate(timeout=300)
    with open(errors) as f:
        return capture.returncode, out, f.read()


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]


def refuse_bpf():
    """In the child before exec: a seccomp filter answering bpf() (321 on x86-64) with EPERM."""
    program = (SockFilter * 4)(
        SockFilter(0x20, 0, 0, 0),                  # load the system call's number
        SockFilter(0x15, 0, 1, 321),                # bpf?
        SockFilter(0x06, 0, 0, 0x00050000 | 1),     # SECCOMP_RET_ERRNO | EPERM
        SockFilter(0x06, 0, 0, 0x7fff0000))         # SECCOMP_RET_ALLOW
    libc = ctypes.CDLL(None, use_errno=True)
    fprog = SockFprog(4, program)
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
        os._exit(99)  # PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP with SECCOMP_MODE_FILTER


class SitesByBpf(Case):
    def window_over_clients(self, label, connections, options=(), server=SERVER, preload=None,
                            before=None):
        """Starts the server, captures it into `before` when given, records a --sites window
        (with `options`) while `connections` clients come, and kills the server; returns the
        server's record file, the snapshot, the capture's exit status and its stderr."""
        record_file = path(f"{label}.record")
        if preload and not os.path.exists(preload):
            give_up(f"{preload} is not installed (scripts/setup installs it)")
        target = start([server, record_file],
                       env=dict(os.environ, LD_PRELOAD=preload) if preload else None)
        wait_for_text(record_file, target)
        _, _, port = read_record(record_file)
        if before:
            heapsnap("capture", str(target.pid), "-o", before)
        output = path(f"{label}.snap")
        capture, errors = start_window(self, target.pid, output, *options)
        connect_clients(port, connections)
        status, _, err = end_window(capture, errors)
        target.kill()
        target.wait()
        return record_file, output, status, err

    def recorded_server(self, label, server, allocator, preload=None):
        before = path(f"{label}-before.snap")
        record_file, after, status, err = self.window_over_clients(
            label, CONNECTIONS, server=server, preload=preload, before=before)
        # (the server writes where it allocates as it first does: once clients came)
        sites, callers, _ = read_record(record_file)
        if not check(set(sites) == {"session_new", "buffer_new"} and len(callers) == 3,
                     f"{label}: the server recorded its sites and their callers"):
            return
        if not check(status == 0 and os.path.exists(after),
                     f"{label}: capture --sites exited {status}: {err}"):
            return
        check(f"{allocator}'s malloc" in err, f"{label}: the window names {allocator}: {err}")
        check("ended early by the interrupt" in err, f"{label}: Ctrl-C ended the window: {err}")
        check("blocks allocated before the window have none" in err,
              f"{label}: what has no site is said: {err}")

        expected = {
            ("session_new", sites["session_new"]): [
                f"serve_client (sites_server.c:{callers['session_new']})",
                f"accept_loop (sites_server.c:{callers['serve_client']})"],
            ("buffer_new", sites["buffer_new"]): [
                f"session_new (sites_server.c:{callers['buffer_new']})",
                f"serve_client (sites_server.c:{callers['session_new']})"],
        }
        summary = json.loads(heapsnap("summary", after, "--format", "json").stdout)
        found = {(s["function"], s["line"]): s for s in summary.get("sites", [])}
        # the 50 startup blocks, made before the window, are among those said to have none
        said = [w for w in summary.get("warnings", []) if "recorded by BPF only during" in w]
        check(len(said) == 1 and f"{CONNECTIONS:,} live allocations have one" in said[0]
              and int(said[0].split(" have none")[0].split()[-1].replace(",", "")) >= 50,
              f"{label}: the summary says which blocks have no site: {said}")
        check(set(found) == set(expected),
              f"{label}: the sites are session_new's and buffer_new's lines, nothing from "
              f"read_request or startup_block: {sorted(found)}, expected {sorted(expected)}")
        for key, callers_expected in expected.items():
            site = found.get(key)
            if site is None:
                continue
            check(site["count"] == CONNECTIONS // 2,
                  f"{label}: {key[0]}: {CONNECTIONS // 2} live blocks (the closed sessions' "
                  f"were freed in the window): {site['count']}")
            check(site["stack"][1:3] == callers_expected,
                  f"{label}: {key[0]}'s stack, unwound without frame pointers: {site['stack']}, "
                  f"expected its callers {callers_expected}")

        diff = json.loads(subprocess.run([HEAPDIFF, "--format", "json", before, after],
                                         capture_output=True, text=True).stdout)
        grown = {(s["function"], s["line"]): s["new"] for s in diff.get("sites", [])}
        check(grown == {key: CONNECTIONS // 2 for key in expected},
              f"{label}: heapdiff names the new blocks' sites: {grown}")
        text = heapsnap("summary", after).stdout
        check("by the site that made them (recorded by eBPF, capture --sites)" in text
              and "recorded by the hook" not in text,
              f"{label}: the text says who recorded the sites: {text[-800:]}")

        info = json.loads(heapsnap("info", after, "--format", "json").stdout)
        recorded = info.get("allocation_sites", {})
        check(recorded.get("recorded_by") == "bpf" and recorded.get("allocator") == allocator
              and recorded.get("live_with_site") == CONNECTIONS
              and recorded.get("estimates") is False,
              f"{label}: info says what the window recorded: {recorded}")
        # each connection calls the allocator three times (scratch, session, buffer)
        check(recorded.get("allocations_seen", 0) >= 3 * CONNECTIONS,
              f"{label}: the window saw every allocation: {recorded}")

    def test_glibc(self):
        self.recorded_server("glibc", SERVER, "glibc")

    def test_jemalloc(self):
        self.recorded_server("jemalloc", SERVER_JEMALLOC, "jemalloc")

    def test_tcmalloc_and_mimalloc_preloaded(self):
        self.recorded_server("tcmalloc", SERVER, "tcmalloc", preload=LIBTCMALLOC)
        self.recorded_server("mimalloc", SERVER, "mimalloc", preload=LIBMIMALLOC)

    def test_sampled(self):
        _, output, status, err = self.window_over_clients(
            "sampled", CONNECTIONS, ["--sites-sample", "65536"])
        if not check(status == 0, f"capture --sites-sample exited {status}: {err}"):
            return
        check("counts by site are estimates" in err, f"sampling is said: {err}")
        info = json.loads(heapsnap("info", output, "--format", "json").stdout)
        recorded = info.get("allocation_sites", {})
        # 1,000 sessions and buffers live of 744 KiB made: about 5 sampled at 64 KiB, never all
        check(recorded.get("sample_bytes") == 65536 and recorded.get("estimates") is True and
              recorded.get("live_with_site", CONNECTIONS) < CONNECTIONS // 4,
              f"a sampled window records a sample, marked as estimates: {recorded}")
        text = heapsnap("info", output).stdout
        check("counts by site are estimates" in text, f"info says the sample: {text}")
        summary = json.loads(heapsnap("summary", output, "--format", "json").stdout)
        check(any("sampled" in w and "estimates" in w for w in summary.get("warnings", [])),
              f"the summary says its sites are a sample: {summary.get('warnings')}")

    def test_map_full(self):
        # 3,000 connections leave 3,000 blocks live: more than a map of 1,024 holds
        _, output, status, err = self.window_over_clients(
            "full", 3 * CONNECTIONS, ["--sites-max", "1024"])
        if not check(status == 0, f"capture --sites-max exited {status}: {err}"):
            return
        recorded = json.loads(heapsnap("info", output, "--format", "json").stdout).get(
            "allocation_sites", {})
        lost = recorded.get("map_full", 0)
        # (a slow heapsnap may also lose stacks to a full ring buffer: counted as unrecorded too)
        check(lost > 0 and recorded.get("unrecorded", 0) >= 3 * CONNECTIONS - 1024 and
              recorded.get("live_with_site", 0) <= 1024,
              f"a full map: at most 1,024 recorded, the rest counted as unrecorded: {recorded}")
        # heapsnap drops the stacks of freed allocations as it goes (at 4 x 1,024 stacks here):
        # never one of a live allocation
        check(recorded.get("live_with_site", 0) > 0 and "could not be unwound" not in err,
              f"every allocation in the map has its stack: {recorded} {err}")
        check(f"warning: {lost:,} allocations made during the window were not recorded" in err
              and "--sites-max 1024" in err, f"the full map is warned about: {err}")

    def test_refused_without_privileges(self):
        record_file = path("nobody.record")
        # both as nobody: heapsnap may read the target's maps, and only BPF is refused
        os.chmod(os.path.dirname(record_file), 0o777)
        target = start(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SERVER,
                        record_file])
        wait_for_text(record_file, target)
        output = path("nobody.snap")
        result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 HEAPSNAP, "capture", str(target.pid), "--sites", "5s", "-o",
                                 output], capture_output=True, text=True, timeout=120)
        target.kill()
        target.wait()
        check(result.returncode == 2, f"unprivileged --sites exits 2: {result.returncode}")
        check("CAP_BPF" in result.stderr and "HEAPSNAP_SITES=1" in result.stderr,
              f"the refusal says why and names the hook: {result.stderr}")
        check(not os.path.exists(output), "nothing written")

    def test_refused_under_seccomp(self):
        # heapsnap started under a seccomp filter that answers bpf() with EPERM, as a container
        # runtime's default profile does
        target = start(["sleep", "60"])
        output = path("seccomp.snap")
        result = subprocess.run([HEAPSNAP, "capture", str(target.pid), "--sites", "5s", "-o",
                                 output], capture_output=True, text=True, timeout=120,
                                preexec_fn=refuse_bpf)
        target.kill()
        target.wait()
        check(result.returncode == 2 and "seccomp filter that refuses bpf()" in result.stderr
              and "HEAPSNAP_SITES=1" in result.stderr,
              f"under seccomp: exit 2, the reason and the hook: {result.returncode} "
              f"{result.stderr}")
        check(not os.path.exists(output), "nothing written")

    def test_target_exits_during_window(self):
        target = start(["sleep", "3"])
        time.sleep(0.3)
        output = path("gone.snap")
        result = subprocess.run([HEAPSNAP, "capture", str(target.pid), "--sites", "60s", "-o",
                                 output], capture_output=True, text=True, timeout=300)
        if "the kernel refused" in result.stderr:
            self.skipTest(f"BPF refused by this kernel: {result.stderr.strip()}")
        check(result.returncode == 2, f"a target gone in the window: exit 2: {result.returncode}")
        check("exited during the recording window" in result.stderr and
              "no snapshot written" in result.stderr and "allocator calls seen" in result.stderr,
              f"what was recorded is said: {result.stderr}")
        check(not os.path.exists(output), "nothing written as if complete")

    def test_unknown_allocator_refused(self):
        ready = path("own-malloc.ready")
        target = start([OWN_MALLOC, ready])
        wait_for_text(ready, target)
        result = heapsnap("capture", str(target.pid), "--sites", "5s", "-o",
                          path("own.snap"), check_ok=False)
        target.kill()
        target.wait()
        check(result.returncode == 2 and "an allocator heapsnap does not know" in result.stderr
              and "HEAPSNAP_SITES" not in result.stdout,
              f"a malloc no walker knows is refused: {result.returncode} {result.stderr}")
        check(not os.path.exists(path("own.snap")), "nothing written")


if __name__ == "__main__":
    main()
