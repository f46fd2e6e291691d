"""The glibc malloc walker against the target's own record (tests/targets/glibc_heap.c): every
block it holds is live with exactly its malloc_usable_size; no block it freed is live; the live
blocks it did not record are few and named (one tcache structure per thread, libc's own); the
walk with debug info and the walk by heuristics (--no-debuginfo) give the same answer; a smashed
chunk header is named in a warning and every other held block is still found."""
import functools
import json
import os
import random
import re
import subprocess

from common import HEAPSNAP, Case, check, decompress, heapsnap, main, path, read_core_memory
from glibc_target import check_sound_heap, listing, run_target

TARGET = os.environ.get("GLIBC_HEAP", "build/tests/glibc_heap")


def run(name, *args):
    return run_target(name, [TARGET, path(name), *args])


@functools.cache
def corrupted():
    """The target with a smashed chunk header, captured; once for every case."""
    return run("corrupt", "--corrupt")


def damage_of(snapshot, *options):
    return json.loads(heapsnap("summary", snapshot, "--format", "json", *options).stdout)["heap"]["heap_damage"]


def check_free_list(mode, kind, expected):
    # damaged free lists: a fast bin made to loop by a double free, a tcache link and an
    # unsorted-bin link overwritten; each is named in a warning, the walk ends, and nothing held is
    # lost
    record, snapshot = run(kind, mode)
    allocations, warnings = listing(snapshot)
    check(expected.format(record[kind]) in warnings, f"{mode}: warning {warnings!r}")
    live = {a["addr"] for a in allocations if a["state"] == "live"}
    missing = [hex(addr) for addr in record["held"] if addr not in live]
    check(not missing, f"{mode}: {len(missing)} held blocks lost: {missing[:5]}")
    # past the damage a list cannot be followed, so the chunks it still held look live: they
    # must all be of the damaged list's size, nothing else may be
    sizes = {a["addr"]: a["size"] for a in allocations}
    damaged_size = sizes.get(record[kind] + 16)
    wrongly_live = [hex(addr) for addr in record["freed"] if addr in live and sizes[addr] != damaged_size]
    check(damaged_size is not None and not wrongly_live,
          f"{mode}: freed blocks of other sizes ({damaged_size}) reported live: {wrongly_live}")


# damage to the arenas, heaps and free lists (issue 14): everything that can still be walked is,
# with debug info and by heuristics; the damage is named with its address in a warning and counted
# in the summary; no held block is lost, and no freed block is live but those of a list that could
# not be followed past the damage
DAMAGE = {
    "--arena-top": ("arena_top", "the main arena's top pointer (at {:#x}) is damaged"),
    "--thread-top": ("thread_top", "(at {:#x}) is damaged"),
    "--heap-size": ("heap_size", "heap_info at {:#x} has a damaged size"),
    "--heap-owner": ("heap_owner", "heap_info at {:#x} names arena"),
    "--tcache-key": ("tcache_key", "the free chunk at {:#x} in the tcache at"),
    "--bin-back": ("bin_back", "has a link the back link of which is damaged, to {:#x}"),
    "--bin-self": ("bin_self", "the free chunk at {0:#x} has a link to itself, {0:#x}"),
    "--nextsize": ("nextsize", "the free chunk at {:#x} has damaged size links"),
}


def check_damage(mode):
    kind, expected = DAMAGE[mode]
    record, snapshot = run(kind, mode)
    for options in ((), ("--no-debuginfo",)):
        label = f"{mode} {' '.join(options)}".strip()
        allocations, warnings = listing(snapshot, *options)
        check(expected.format(record[kind]) in warnings, f"{label}: warning {warnings!r}")
        live = {a["addr"]: a["size"] for a in allocations if a["state"] == "live"}
        wrong = [hex(addr) for addr, size in record["held"].items() if live.get(addr) != size]
        check(not wrong, f"{label}: {len(wrong)} held blocks not live with their size: {wrong[:5]}")
        freed_live = [hex(addr) for addr in record["freed"] if addr in live]
        check(not freed_live, f"{label}: freed blocks reported live: {freed_live[:5]}")
        damage = damage_of(snapshot, *options)
        check(damage["corrupt_spots"] >= 1 and damage["first_address"] is not None,
              f"{label}: the damage is counted in the summary: {damage}")
    text = heapsnap("summary", snapshot).stdout
    check("damaged: " in text and "corrupt spot" in text, f"{mode}: the text summary says the heap is damaged")


class GlibcHeap(Case):
    def test_sound_heap(self):
        record, snapshot = run("heap")
        check_sound_heap("glibc on this machine", record, snapshot)
        summary = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)
        check(summary["heap"]["found_with"] == "debug info", "summary used debug info")
        allocations, _ = listing(snapshot)
        check(summary["heap"]["live_count"] == sum(a["state"] == "live" for a in allocations),
              "summary counts the live allocations")
        check(len([a for a in summary["heap"]["arenas"] if a["kind"] == "thread"]) == 4, "four thread arenas")
        ldd = subprocess.run(["ldd", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        check(summary["runtimes"]["glibc"] == ldd.split()[-1], f"glibc version {summary['runtimes']['glibc']} ({ldd})")
        heuristic_summary = json.loads(heapsnap("summary", snapshot, "--format", "json", "--no-debuginfo").stdout)
        check(heuristic_summary["heap"]["found_with"] == "heuristics", "--no-debuginfo uses heuristics")
        check(heuristic_summary["heap"]["arenas"] == summary["heap"]["arenas"], "same arenas both ways")

    def test_smashed_chunk_header(self):
        record, snapshot = corrupted()
        allocations, warnings = listing(snapshot)
        check(f"chunk at {record['corrupted']:#x} has an impossible size" in warnings,
              f"the warning names the smashed chunk: {warnings!r}")
        live = {a["addr"] for a in allocations if a["state"] == "live"}
        victim = record["corrupted"] + 16
        missing = [hex(addr) for addr in record["held"] if addr not in live and addr != victim]
        check(not missing, f"{len(missing)} other held blocks lost after the corruption: {missing[:5]}")

    def test_warnings_after_the_report_in_one_file(self):
        # a report and its warnings sent to one file: the report whole, then the warnings after it
        record, snapshot = corrupted()
        with open(path("one-file.txt"), "w") as both:
            subprocess.run([HEAPSNAP, "summary", snapshot], stdout=both, stderr=both, timeout=300)
        with open(path("one-file.txt")) as f:
            lines = f.read().splitlines()
        first_warning = next((i for i, l in enumerate(lines) if l.startswith("heapsnap summary: warning:")), None)
        count_line = next((i for i, l in enumerate(lines) if "(on stderr)" in l), None)
        check(first_warning is not None and count_line is not None and count_line < first_warning and
              all(l.startswith("heapsnap summary: warning:") for l in lines[first_warning:]),
              f"the warnings come after the whole report: {lines[-8:]}")
        check(lines[count_line].strip() in ("1 warning (on stderr)",) or
              lines[count_line].strip().split()[1] == "warnings", f"warnings counted in words: {lines[count_line]!r}")

    def test_fastbin_cycle(self):
        check_free_list("--fastbin-cycle", "cycle", "loops at chunk {:#x}")

    def test_tcache_link(self):
        check_free_list("--tcache-link", "tcache_link", "the free chunk at {:#x} has a broken link")

    def test_bin_link(self):
        check_free_list("--bin-link", "bin_link", "the free chunk at {:#x} has a broken link")

    def test_corrupt_spot_counted(self):
        # the smashed header is counted: one corrupt spot, and the bytes the walk skipped past it
        damage = damage_of(run("corrupt-again", "--corrupt")[1])
        check(damage["corrupt_spots"] == 1 and damage["bytes_not_walked"] > 0,
              f"the corrupt chunk is counted in the summary: {damage}")

    def test_damaged_arena_top(self):
        check_damage("--arena-top")

    def test_damaged_thread_top(self):
        check_damage("--thread-top")

    def test_damaged_heap_size(self):
        check_damage("--heap-size")

    def test_damaged_heap_owner(self):
        check_damage("--heap-owner")

    def test_damaged_tcache_key(self):
        check_damage("--tcache-key")

    def test_damaged_bin_back_link(self):
        check_damage("--bin-back")

    def test_damaged_bin_link_to_itself(self):
        check_damage("--bin-self")

    def test_damaged_nextsize_links(self):
        check_damage("--nextsize")

    def test_chunk_lookalike(self):
        # a mapping of the program's own that starts like an mmapped chunk whose size wraps the
        # address space around (the JVM's heap held such words): not a chunk, and the scan goes on
        # past it (it once looped over the same pages for ever)
        record, snapshot = run("lookalike", "--chunk-lookalike")
        result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl", check_ok=False, timeout=60)
        allocations = [json.loads(line) for line in result.stdout.splitlines()]
        live = {a["addr"]: a["size"] for a in allocations if a["state"] == "live"}
        check(result.returncode == 0 and record["lookalike"] + 16 not in live,
              f"a chunk look-alike is not listed: {result.returncode} {result.stderr[-300:]!r}")
        wrong = [hex(addr) for addr, size in record["held"].items() if live.get(addr) != size]
        check(not wrong, f"lookalike: {len(wrong)} held blocks not live with their size: {wrong[:5]}")

    def test_page_lookalikes(self):
        # pages in the middle of the program's own mapping that start like mmapped chunks and are
        # pointed to (CI met one in python3.11's heap): with libc's debug info, malloc's counters
        # (mp_.n_mmaps, mp_.mmapped_mem) account for the three real chunks, so both are left out
        # and the report is clean; by heuristics the small one is left out (too small for malloc
        # to have mmapped it, not filling a mapping) and a warning names it
        record, snapshot = run("page-lookalike", "--page-lookalike")
        allocations = check_sound_heap("page look-alikes", record, snapshot, heuristics_same=False)
        listed = {a["addr"] for a in allocations}
        check(record["lookalike"] + 16 not in listed and record["lookalike_large"] + 16 not in listed,
              "with malloc's counters, neither look-alike is listed")
        allocations, warnings = listing(snapshot, "--no-debuginfo")
        live = {a["addr"]: a["size"] for a in allocations if a["state"] == "live"}
        check(record["lookalike"] + 16 not in live, "by heuristics, the small look-alike is not listed")
        check(f"{record['lookalike']:#x}" in warnings and "mmapped chunk" in warnings,
              f"by heuristics, the warning names the small look-alike: {warnings!r}")
        wrong = [hex(addr) for addr, size in record["held"].items() if live.get(addr) != size]
        check(not wrong, f"page look-alikes by heuristics: {len(wrong)} held blocks not live: {wrong[:5]}")
        check(len([a for a in allocations if a["place"] == "mmapped" and a["addr"] in record["held"]]) == 3,
              "by heuristics, the three real mmapped blocks are listed")

    def test_own_pool(self):
        # 32 MiB the program mapped and filled itself, as an allocator heapsnap does not know
        # would: the report says how much memory lies outside every heap, and where; the glibc
        # heap is still listed
        record, snapshot = run("pool", "--own-pool")
        allocations, warnings = listing(snapshot)
        said = re.search(r"([0-9.]+) MiB of anonymous memory the process wrote to lies outside every "
                         r"heap walked, against [0-9.]+ MiB in them \(([0-9.]+) MiB of it in the mapping "
                         r"at 0x([0-9a-f]+)\)", warnings)
        check(said and 32.0 <= float(said.group(1)) < 33.0 and float(said.group(2)) >= 32.0 and
              int(said.group(3), 16) <= record["pool"],
              f"own pool at {record['pool']:#x}: the memory outside the heap is said: {warnings!r}")
        live = {a["addr"]: a["size"] for a in allocations if a["state"] == "live"}
        wrong = [hex(addr) for addr, size in record["held"].items() if live.get(addr) != size]
        check(not wrong, f"own pool: {len(wrong)} held blocks not live with their size: {wrong[:5]}")
        # (without it, check_sound_heap in test_sound_heap finds no warning at all)

    def test_random_damage(self):
        # random damage to the heap's memory: the walk must end (with warnings), never crash or hang
        record, snapshot = run("random")
        core = path("random.core")
        decompress(snapshot, core)
        heap_start = min(record["held"]) & ~0xFFF
        with open(core, "rb") as f:
            data = bytearray(f.read())
        original = read_core_memory(core, heap_start, 4096 * 16)
        offset = bytes(data).find(original[:4096]) if original else -1
        check(offset > 0, "found the main heap's bytes in the core")
        generator = random.Random(1234)
        outcomes = {"warned": 0, "clean": 0}
        for variant in range(40):
            damaged = bytearray(data)
            for _ in range(generator.choice([1, 5, 50])):
                at = offset + generator.randrange(4096 * 16)
                damaged[at] = generator.randrange(256)
            damaged_core = path("damaged.core")
            with open(damaged_core, "wb") as f:
                f.write(damaged)
            damaged_snapshot = path("damaged.snap")
            heapsnap("import", damaged_core, "-o", damaged_snapshot)
            result = heapsnap("list", damaged_snapshot, "--state", "all", check_ok=False, timeout=60)
            check(result.returncode == 0, f"variant {variant}: list exited {result.returncode}: {result.stderr[-300:]}")
            outcomes["warned" if result.stderr else "clean"] += 1
            os.unlink(damaged_snapshot)
        check(outcomes["warned"] > 10, f"the damage was noticed: {outcomes}")


if __name__ == "__main__":
    main()
