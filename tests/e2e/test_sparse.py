"""A process with a huge, almost empty writable mapping (AddressSanitizer's 14 TiB shadow) is
captured by what it has touched, not by its size: the never-touched pages are recorded as such,
not copied, and what was touched reads back as gdb reads it live."""
import functools
import json
import os
import re

from common import Case, check, decompress, gdb, heapsnap, main, path, start_known_state

asan = os.environ.get("KNOWN_STATE_ASAN", "build/tests/known_state_asan")


@functools.cache
def captured():
    """The ASan target (left running, for gdb to read live), its largest writable mapping and its
    snapshot, made once for every case."""
    os.environ["ASAN_OPTIONS"] = "detect_leaks=0"
    process, record = start_known_state(executable=asan)
    pid = record["pid"]
    largest = 0
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if line.split()[1].startswith("rw"):
                largest = max(largest, end - start)
    snapshot = path("sparse.snap")
    result = heapsnap("capture", str(pid), "-o", snapshot)
    return pid, largest, snapshot, result


class Sparse(Case):
    def test_untouched_pages_not_stored(self):
        pid, largest, snapshot, result = captured()
        check(largest > 1 << 40, f"the target has a writable mapping over 1 TiB ({largest >> 30} GiB)")
        check(result.returncode == 0, f"capture: {result.stderr}")
        info = json.loads(heapsnap("info", snapshot, "--format", "json").stdout)
        check(info["regions"]["bytes_untouched"] > largest * 0.9,
              f"untouched {info['regions']['bytes_untouched'] >> 30} GiB of a {largest >> 30} GiB mapping")
        check(info["memory_bytes"] < 512 << 20, f"stored {info['memory_bytes'] >> 20} MiB")

    def test_touched_memory_reads_as_live(self):
        pid, largest, snapshot, result = captured()
        core = path("sparse.core")
        decompress(snapshot, core)
        commands = ["p known_counter", "p known_pair", "x/16xb known_blocks[9]"]
        values = lambda out: [l for l in out.splitlines() if re.match(r"^(\$\d+ =|0x[0-9a-f]+:)", l)]
        live = values(gdb(["-p", str(pid)], commands))
        offline = values(gdb([asan, core], commands))
        check(len(live) == 4 and live == offline, f"gdb live {live} vs snapshot {offline}")


if __name__ == "__main__":
    main()
