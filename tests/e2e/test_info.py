"""`heapsnap info` reports what /proc, readelf, gdb and the file system say about the same process
and file: pid, executable, threads with their names and registers, modules with their load
addresses and build-ids, sizes. Text and JSON say the same things."""
import datetime
import json
import os
import re
import shutil
from pathlib import Path

from common import (KNOWN_STATE, Case, build_id, check, decompress, gdb, heapsnap, main, path,
                    start_known_state)

_captured = []


def captured():
    """known_state's pid, its snapshot, the pause the capture printed and `info`'s JSON of the
    snapshot: captured once for every case (the target stays, parked, for /proc and gdb)."""
    if not _captured:
        process, record = start_known_state()
        pid = record["pid"]
        snapshot = path("info.snap")
        line = heapsnap("capture", str(pid), "-o", snapshot).stdout
        pause_printed = float(re.search(r"target paused ([\d.]+) ms", line).group(1))
        info = json.loads(heapsnap("info", snapshot, "--format", "json").stdout)
        _captured.append((pid, snapshot, pause_printed, info))
    return _captured[0]


def maps_of(pid):
    return [l.split() for l in Path(f"/proc/{pid}/maps").read_text().splitlines(keepends=True)]


def expected_modules(pid):
    modules = {}
    for fields in maps_of(pid):
        if len(fields) >= 6 and fields[2] == "00000000" and fields[5].startswith("/"):
            with open(fields[5], "rb") as f:
                if f.read(4) == b"\x7fELF":
                    modules.setdefault(fields[5], int(fields[0].split("-")[0], 16))
    return modules


class Info(Case):
    def test_process(self):
        pid, snapshot, pause_printed, info = captured()
        check(info["schema"] == "heapsnap.info/1", "schema")
        check(info["pid"] == pid, "pid")
        check(info["exe"] == os.readlink(f"/proc/{pid}/exe"), f"exe {info['exe']}")
        captured_at = datetime.datetime.strptime(info["captured_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        age = (datetime.datetime.now(datetime.timezone.utc) - captured_at).total_seconds()
        check(-2 < age < 60, f"captured_at {info['captured_at']} is now")
        check(abs(info["pause_ms"] - pause_printed) < 0.06 and info["pause_ms"] > 0, "pause_ms matches capture")

    def test_threads(self):
        pid, snapshot, pause_printed, info = captured()
        tasks = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        check(sorted(t["tid"] for t in info["threads"]) == tasks, "threads are the process's tasks")
        for thread in info["threads"]:
            comm = Path(f"/proc/{pid}/task/{thread['tid']}/comm").read_text().strip()
            check(thread["name"] == comm, f"thread {thread['tid']} name {thread['name']!r} != {comm!r}")
        # registers: the threads are parked in pause(), so gdb attached now sees the same pc and sp
        live = gdb(["-p", str(pid)], ["thread apply all info registers rip rsp"])
        registers = {}
        tid = None
        for l in live.splitlines():
            m = re.match(r"^Thread \d+ \(.*?LWP (\d+)\)", l)
            if m:
                tid = int(m.group(1))
            m = re.match(r"^(rip|rsp)\s+(0x[0-9a-f]+)", l)
            if m and tid:
                registers.setdefault(tid, {})[m.group(1)] = int(m.group(2), 16)
        for thread in info["threads"]:
            want = registers.get(thread["tid"], {})
            check(want.get("rip") == thread["pc"] and want.get("rsp") == thread["sp"],
                  f"thread {thread['tid']}: pc/sp {thread['pc']:#x}/{thread['sp']:#x} vs gdb {want}")

    def test_modules(self):
        pid, snapshot, pause_printed, info = captured()
        expected = expected_modules(pid)
        got_modules = {m["path"]: m for m in info["modules"]}
        check(set(got_modules) == set(expected), f"modules {sorted(got_modules)} vs {sorted(expected)}")
        for name, base in expected.items():
            module = got_modules.get(name, {})
            check(module.get("base") == base, f"{name} base")
            check(module.get("build_id") == build_id(name), f"{name} build-id {module.get('build_id')}")

    def test_sizes(self):
        pid, snapshot, pause_printed, info = captured()
        maps = maps_of(pid)
        check(info["file_bytes"] == os.stat(snapshot).st_size, "file_bytes is the file's size")
        core = path("info.core")
        decompress(snapshot, core)
        check(info["core_bytes"] == os.stat(core).st_size, "core_bytes is the decompressed size")
        check(abs(info["compression_ratio"] - info["core_bytes"] / info["file_bytes"]) < 1e-6, "ratio")
        check(info["memory_bytes"] == info["regions"]["bytes_with_contents"], "memory_bytes")
        writable = sum(int(f[0].split("-")[1], 16) - int(f[0].split("-")[0], 16) for f in maps if f[1][1] == "w")
        check(0 < info["memory_bytes"] <= writable + 64 * 4096 * len(maps), "memory_bytes within the writable size")
        check(info["regions"]["count"] >= len([f for f in maps if f[-1] != "[vsyscall]"]), "every mapping is a region")

    def test_text(self):
        pid, snapshot, pause_printed, info = captured()
        tasks = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        text = heapsnap("info", snapshot).stdout
        check(f"pid {pid}" in text and info["exe"] in text, "text names pid and exe")
        check(f"threads   {len(tasks)}" in text, "text counts threads")
        for name in expected_modules(pid):
            check(name in text and (build_id(name) or "") in text, f"text lists {name} with its build-id")

    def test_odd_executable_name(self):
        # a name with a quote, a backslash and a byte that is not UTF-8 still gives valid JSON
        odd = os.path.join(os.fsencode(path("")), b'known"\\state\xff')
        shutil.copy(os.fsencode(KNOWN_STATE), odd)
        os.chmod(odd, 0o755)
        odd_process, odd_record = start_known_state(executable=odd)
        odd_snapshot = path("odd.snap")
        heapsnap("capture", str(odd_record["pid"]), "-o", odd_snapshot)
        document = heapsnap("info", odd_snapshot, "--format", "json").stdout
        try:
            odd_info = json.loads(document)
            check(odd_info["exe"].endswith('known"\\state\xff'), f"odd exe {odd_info['exe']!r}")
        except ValueError as error:
            check(False, f"info JSON for an odd executable name is invalid: {error}: {document[:300]!r}")


if __name__ == "__main__":
    main()
