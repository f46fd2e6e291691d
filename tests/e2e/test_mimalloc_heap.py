"""The mimalloc 2.0 walker on Debian's libmimalloc.so.2 (2.0.9, stripped, a release build): its
segments are found by shape.

Ground truth one is the target's own record (tests/targets/known_heap.c, which serves jemalloc
and mimalloc alike: four threads, small, large and 10 MiB blocks, every block it holds with
malloc_usable_size, every block it freed), run with mimalloc preloaded (captured by freeze and by
fork) and linked (libmimalloc-dev): every held block live with exactly its usable size, no
freed block live; the blocks a thread freed of its own after the visit below wait in their
page's local_free list (or, where that emptied the page, in a free span), those it freed of
the next thread's in the xthread_free list of their page or the thread_delayed_free list of their
heap (both "thread_free"), the rest in their page's free list (or a free span).

Ground truth two is mimalloc's own enumeration: a release build keeps no statistics of blocks
(MI_STAT is 0: mi_stats_print shows 0 pages with thousands of blocks live), so each thread runs
mi_heap_visit_blocks on its own heap once it has filled and freed, and records every block it
visits with its usable size; the blocks freed after the visit are recorded apart. The live
blocks heapsnap finds must be exactly the visited ones less those freed after, address by
address and size by size, and so their bytes.

With MIMALLOC_DEBUGINFO_LIB naming a mimalloc 2.0.9 built from its tag with debug info (Debian's
dbgsym is not at hand), the layouts are checked against its DWARF and the walk against its
symbols (the main heap found by its cookie must be _mi_heap_main); with MIMALLOC_SECURE_LIB
naming one built with -DMI_SECURE=ON, the walk of its encoded free lists; with
MIMALLOC_DEBUG_LIB naming a debug build (-DCMAKE_BUILD_TYPE=Debug), the walk of its encoded
lists, its heaps' other layout and its padding (usable sizes are the sizes asked).

A damaged free list is said, not hidden: in a copy of the snapshot (decompressed, patched,
imported back) one link of a page's free list points between blocks: a warning names the link's
address and the damage is counted. And the C leaking server under LD_PRELOAD=libmimalloc.so.2
tells the same story as on glibc: heapdiff shows struct conn +1,000, retained by global
all_conns; so does the Python one on Debian's python3.11 (pymalloc on top of mimalloc:
__main__.Connection +1,000, retained by _CONNECTIONS). Threads that end holding blocks leave
abandoned segments, whose blocks are live; a malloc that defines mi_malloc but has no segment is
refused with exit 2."""
import json
import os
import struct
import time
from pathlib import Path

from allocator_target import check_impostor_refused, check_leak_stories, run_target
from common import (Case, block_finder, capture_when_recorded, check, check_layout,
                    check_walked_summary, decompress, give_up, heapsnap, main, path, program_headers,
                    read_core_memory, start)

TARGET = os.environ.get("KNOWN_HEAP", "build/tests/known_heap")
TARGET_LINKED = os.environ.get("MIMALLOC_HEAP_LINKED")
DEAD_THREAD = os.environ.get("DEAD_THREAD", "build/tests/dead_thread")
FREED_THREAD_HEAP = os.environ.get("FREED_THREAD_HEAP", "build/tests/freed_thread_heap")
OWN_MALLOC_MIMALLOC = os.environ.get("OWN_MALLOC_MIMALLOC", "build/tests/own_malloc_mimalloc")
LIBMIMALLOC = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"
MEDIUM_MAX = 128 << 10  # MI_MEDIUM_OBJ_SIZE_MAX: larger blocks have a page of their own
THREADS, BLOCKS = 4, 3000

# every place `list` may name on a mimalloc heap, in mimalloc's words
MIMALLOC_WORDS = {"in_use", "large", "page_free", "local_free", "thread_free", "free_span",
                  "retained"}


def check_heap(label, record, snapshot, method="heuristics", options=(), padded=False):
    """The checks of the top of the file. `padded`: a debug build, whose malloc_usable_size is
    the size asked (its padding says so), while mi_heap_visit_blocks gives the block's bytes
    before the padding: the visited sizes then only bound the live ones."""
    check(len(record["held"]) + len(record["freed"]) == THREADS * BLOCKS and
          record["version"] == 209,
          f"{label}: the target recorded {len(record['held'])} held and {len(record['freed'])} "
          f"freed blocks under mimalloc {record['version']}")
    started = time.time()
    result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl", *options)
    seconds = time.time() - started
    allocations = [json.loads(line) for line in result.stdout.splitlines()]
    words = {allocation["place"] for allocation in allocations}
    check(words <= MIMALLOC_WORDS and
          {"in_use", "large", "page_free", "local_free", "thread_free"} <= words,
          f"{label}: places named in mimalloc's words: {sorted(words)}")
    check(result.stderr == "", f"{label}: no warnings on a sound heap: {result.stderr[:600]}")
    live = {a["addr"]: a for a in allocations if a["state"] == "live"}
    free = {a["addr"]: a for a in allocations if a["state"] == "free"}
    wrong = [(hex(addr), size, live.get(addr) or free.get(addr))
             for addr, size in record["held"].items()
             if addr not in live or live[addr]["size"] != size]
    check(not wrong, f"{label}: {len(wrong)} of {len(record['held'])} held blocks not live with "
                     f"their usable size, first {wrong[:3]}")
    freed = {addr: asked for addr, asked in record["freed"].items() if addr not in record["held"]}
    freed_live = [hex(addr) for addr in freed if addr in live]
    check(not freed_live, f"{label}: {len(freed_live)} freed blocks reported live: {freed_live[:5]}")

    holder = block_finder(allocations)

    def place_of(addr):
        """Where a freed block is: its place when free at its address, "free_span" or "retained"
        when inside one, "given back" when in no block (decommitted), "LIVE" inside a live one."""
        if addr in free:
            return free[addr]["place"]
        around = holder(addr)
        if around is None:
            return "given back"
        return around["place"] if around["place"] in ("free_span", "retained") else "LIVE"

    def count(addresses):
        places = {}
        for addr in addresses:
            place = place_of(addr)
            places[place] = places.get(place, 0) + 1
        return places

    # the thread that freed a block says where it waits: the owner's late frees in local_free,
    # the other thread's in thread_free, the early ones (collected into the free lists by the
    # visit) in page_free; a page that emptied became part of a free span (or was given back)
    late = [addr for addr in record["late"] if addr in freed]
    # (the target frees index 5 of every 12 of its own and 8 of every 12 of the next thread's;
    # the record does not say which thread freed a late block, so both kinds are told by place)
    late_places = count(late)
    check(set(late_places) <= {"local_free", "thread_free", "free_span", "given back"} and
          late_places.get("thread_free", 0) == len(late) // 2 and
          late_places.get("local_free", 0) > len(late) // 4,
          f"{label}: the {len(late)} blocks freed after the visit: the other threads' half in "
          f"thread_free, the owners' in local_free or a free span: {late_places}")
    early = [addr for addr in freed if addr not in record["late"]]
    early_small = count(addr for addr in early if freed[addr] <= MEDIUM_MAX)
    early_large = count(addr for addr in early if freed[addr] > MEDIUM_MAX)
    check(set(early_small) <= {"page_free", "free_span", "given back"} and
          early_small.get("page_free", 0) > 0,
          f"{label}: the freed small blocks, collected by the visit, are in page_free: "
          f"{early_small}")
    check(set(early_large) <= {"free_span", "given back"},
          f"{label}: freed large blocks are in free spans or given back: {early_large}")

    # mimalloc's own enumeration, less what was freed after it
    truth = {addr: size for addr, size in record["visited"].items() if addr not in record["late"]}
    missing = [(hex(a), s, live.get(a, {}).get("size")) for a, s in truth.items()
               if a not in live or (live[a]["size"] > s if padded else live[a]["size"] != s)]
    extra = [(hex(a), live[a]["size"]) for a in live if a not in truth]
    live_bytes, truth_bytes = sum(a["size"] for a in live.values()), sum(truth.values())
    check(not missing and not extra and (live_bytes <= truth_bytes if padded else
                                         live_bytes == truth_bytes),
          f"{label}: live blocks = mimalloc's mi_heap_visit_blocks less the late frees: "
          f"{len(missing)} missing or of another size {missing[:3]}, {len(extra)} extra "
          f"{extra[:3]}; {live_bytes:,} bytes against {truth_bytes:,}")
    print(f"{label}: {len(live):,} live blocks, {live_bytes:,} bytes; mimalloc's visit less the "
          f"late frees: {len(truth):,} blocks, {truth_bytes:,} bytes; late frees by place "
          f"{late_places}, early small {early_small}, large {early_large}; list took "
          f"{seconds:.2f} s")

    heap = check_walked_summary(label, snapshot, "mimalloc", "2.0.9", method, options)
    arenas = sorted(a["kind"] for a in heap["arenas"])
    check(len(arenas) == THREADS and all(a.startswith("thread ") and a != "thread ?" for a in arenas),
          f"{label}: one heap per thread, named by its thread: {arenas}")
    text = heapsnap("summary", snapshot).stdout.splitlines()
    check(len(text) > 1 and text[1].startswith("mimalloc 2.0.9"),
          f"{label}: the summary names mimalloc 2.0.9: {text[:2]}")


def patch_word(core, address, value):
    """Replaces the 8 bytes at `address` in the uncompressed core `core` by `value`."""
    with open(core, "r+b") as f:
        for p_type, p_offset, p_vaddr, p_filesz, _ in program_headers(f):
            if p_type == 1 and p_vaddr <= address and address + 8 <= p_vaddr + p_filesz:
                f.seek(p_offset + address - p_vaddr)
                f.write(struct.pack("<Q", value))
                return True
    return False


def need_library():
    """Every case needs Debian's libmimalloc.so.2: a case without it fails at once."""
    if not os.path.exists(LIBMIMALLOC):
        give_up(f"{LIBMIMALLOC} is installed (apt-get install libmimalloc2.0, or scripts/setup)")


_preloaded = []


def preloaded():
    """The known heap with mimalloc preloaded, captured by freeze once for every case."""
    if not _preloaded:
        _preloaded.append(run_target("preloaded", [TARGET], env=dict(os.environ, LD_PRELOAD=LIBMIMALLOC)))
    return _preloaded[0]


# a page's free list with a link between blocks: a warning naming the link, damage counted
def check_damaged_free_list():
    record, snapshot = preloaded()
    result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl")
    allocations = [json.loads(line) for line in result.stdout.splitlines()]
    by_address = {a["addr"]: a for a in allocations}
    core = path("damaged.core")
    decompress(snapshot, core)
    candidates = sorted(a["addr"] for a in allocations if a["place"] == "page_free" and a["size"] >= 64)
    block = link = None
    for address in candidates[len(candidates) // 2:]:
        link, = struct.unpack("<Q", read_core_memory(core, address, 8) or bytes(8))
        if by_address.get(link, {}).get("place") == "page_free":
            block = address
            break
    if check(block is not None and patch_word(core, block, link + 8),
             "a page_free block linking to another is patched in the core"):
        damaged = path("damaged.snap")
        heapsnap("import", core, "-o", damaged)
        result = heapsnap("list", damaged, "--state", "all", "--format", "jsonl")
        check("the free list of the page" in result.stderr and f"at 0x{block:x}," in result.stderr,
              f"the damaged link at 0x{block:x} is named in a warning: {result.stderr[:500]!r}")
        summary = json.loads(heapsnap("summary", damaged, "--format", "json").stdout)
        check(summary["heap"]["heap_damage"]["corrupt_spots"] >= 1,
              f"the damage is counted: {summary['heap']['heap_damage']}")
    os.unlink(core)


# the layouts against a build's DWARF, and the main heap found by its cookie against the symbol
# _mi_heap_main: with MIMALLOC_DEBUGINFO_LIB naming mimalloc 2.0.9 built from its v2.0.9 tag as a
# release build with debug info (cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo, then make mimalloc)
LAYOUT = {  # what analyze/allocators/mimalloc_heap.c holds
    "sizeof(mi_page_t)": 80, "(long)&((mi_segment_t*)0)->slices": 264,
    "(long)&((mi_segment_t*)0)->commit_mask": 112, "(long)&((mi_segment_t*)0)->used": 208,
    "(long)&((mi_segment_t*)0)->cookie": 216,
    "(long)&((mi_segment_t*)0)->segment_slices": 224,
    "(long)&((mi_segment_t*)0)->segment_info_slices": 232,
    "(long)&((mi_segment_t*)0)->kind": 240, "(long)&((mi_segment_t*)0)->slice_entries": 248,
    "(long)&((mi_segment_t*)0)->thread_id": 256, "(long)&((mi_page_t*)0)->capacity": 10,
    "(long)&((mi_page_t*)0)->reserved": 12, "(long)&((mi_page_t*)0)->free": 16,
    "(long)&((mi_page_t*)0)->used": 24, "(long)&((mi_page_t*)0)->xblock_size": 28,
    "(long)&((mi_page_t*)0)->local_free": 32, "(long)&((mi_page_t*)0)->xthread_free": 40,
    "(long)&((mi_page_t*)0)->xheap": 48,
    "(long)&((mi_heap_t*)0)->thread_delayed_free": 2840,
    "(long)&((mi_heap_t*)0)->thread_id": 2848, "(long)&((mi_heap_t*)0)->cookie": 2864,
    "sizeof(mi_heap_t)": 3064,
}


# threads that ended holding blocks: their segments are abandoned (owned by no thread), their
# blocks live in the "abandoned" heap, their free blocks retained
def check_abandoned():
    record_path = path("dead_thread.record")
    process = start([DEAD_THREAD, record_path], env=dict(os.environ, LD_PRELOAD=LIBMIMALLOC))
    deadline = time.time() + 30
    while not os.path.exists(record_path) and time.time() < deadline:
        time.sleep(0.02)
    lost = {int(w[1], 16) for w in map(str.split, Path(record_path).read_text().splitlines(keepends=True)) if w[0] == "lost"}
    snapshot = path("dead_thread.snap")
    heapsnap("capture", str(process.pid), "-o", snapshot)
    process.kill()
    result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl")
    listed = {a["addr"]: a for a in map(json.loads, result.stdout.splitlines())}
    states = {}
    for addr in lost:
        key = (listed[addr]["state"], listed[addr]["place"]) if addr in listed else "not listed"
        states[key] = states.get(key, 0) + 1
    check(len(lost) == 200 and states == {("live", "in_use"): 200} and result.stderr == "",
          f"the 200 blocks of the ended threads are live: {states} {result.stderr[:300]!r}")
    arenas = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)["heap"]["arenas"]
    abandoned = [a for a in arenas if a["kind"] == "abandoned"]
    check(abandoned and abandoned[0]["live_count"] >= 200,
          f"the ended threads' segments are abandoned, their blocks in that heap: {arenas}")


# a thread that freed all it allocated and ended: its segments go to mimalloc's segment cache,
# where their page descriptors are stale: all of them free ("cached", retained), no damage
# (unless the cache gave them back to the system already: then they are not in the snapshot)
def check_freed_thread():
    record_path, snapshot = capture_when_recorded("freed-thread", [FREED_THREAD_HEAP],
                                                  env=dict(os.environ, LD_PRELOAD=LIBMIMALLOC))
    held = [int(w[1], 16) for w in map(str.split, Path(record_path).read_text().splitlines(keepends=True)) if w[0] == "held"]
    result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl")
    listed = [json.loads(line) for line in result.stdout.splitlines()]
    live = {a["addr"] for a in listed if a["state"] == "live"}
    check(result.stderr == "" and held and held[0] in live and len(live) < 20,
          f"freed thread: no warnings, the main thread's block live, the 400,000 freed ones not: "
          f"{len(live)} live, {result.stderr[:300]!r}")
    arenas = json.loads(heapsnap("summary", snapshot, "--format", "json").stdout)["heap"]["arenas"]
    cached = [a for a in arenas if a["kind"] == "cached"]
    check(all(a["live_count"] == 0 for a in cached),
          f"freed thread: its cached segments hold nothing live: {cached}")
    print(f"freed thread: arenas {[(a['kind'], a['live_count'], a['free_bytes']) for a in arenas]}")


class MimallocHeap(Case):
    def setUp(self):
        super().setUp()
        need_library()

    def test_preloaded(self):
        record, snapshot = preloaded()
        check_heap("preloaded", record, snapshot)

    def test_damaged_free_list_named(self):
        check_damaged_free_list()

    def test_fork(self):
        # captured by fork: the snapshot keeps every thread's registers, so every heap is named
        record, snapshot = run_target("fork", [TARGET], env=dict(os.environ, LD_PRELOAD=LIBMIMALLOC),
                                      method="fork")
        check_heap("fork", record, snapshot)

    def test_linked(self):
        if check(TARGET_LINKED is not None,
                 "the target linked with -lmimalloc is built (apt-get install libmimalloc-dev, or "
                 "scripts/setup, then meson setup --reconfigure)"):
            record, snapshot = run_target("linked", [TARGET_LINKED])
            check_heap("linked", record, snapshot)

    def test_release_build_with_debuginfo(self):
        debug_lib = os.environ.get("MIMALLOC_DEBUGINFO_LIB")
        if not debug_lib:
            self.skipTest("the release build with debug info is skipped: MIMALLOC_DEBUGINFO_LIB is not set")
        check_layout(debug_lib, LAYOUT)
        record, snapshot = run_target("debuginfo", [TARGET], env=dict(os.environ, LD_PRELOAD=debug_lib))
        check_heap("debuginfo", record, snapshot, method="heuristics, checked by symbols")
        check_heap("debuginfo --no-debuginfo", record, snapshot, options=("--no-debuginfo",))

    def test_secure_build(self):
        # a secure build (cmake -DMI_SECURE=ON, with debug info): its pages are 96 bytes, their free
        # lists encoded with each page's keys, the heaps' thread_delayed_free lists with the heap's,
        # and the last slice of each segment a guard page
        secure_lib = os.environ.get("MIMALLOC_SECURE_LIB")
        if not secure_lib:
            self.skipTest("the secure build is skipped: MIMALLOC_SECURE_LIB is not set")
        record, snapshot = run_target("secure", [TARGET], env=dict(os.environ, LD_PRELOAD=secure_lib))
        check_heap("secure", record, snapshot, method="heuristics, checked by symbols")

    def test_debug_build(self):
        # a debug build (cmake -DCMAKE_BUILD_TYPE=Debug: libmimalloc-debug.so): encoded free lists,
        # its heap's fields 8 bytes further, and padding after each block that says the size asked
        debug_build_lib = os.environ.get("MIMALLOC_DEBUG_LIB")
        if not debug_build_lib:
            self.skipTest("the debug build is skipped: MIMALLOC_DEBUG_LIB is not set")
        record, snapshot = run_target("debug build", [TARGET],
                                      env=dict(os.environ, LD_PRELOAD=debug_build_lib))
        check_heap("debug build", record, snapshot, method="heuristics, checked by symbols",
                   padded=True)

    def test_abandoned_segments(self):
        check_abandoned()

    def test_freed_thread_segment_cache(self):
        check_freed_thread()

    def test_impostor_refused(self):
        # a malloc that calls itself mimalloc (it defines mi_malloc) with no segment: refused, exit 2
        check_impostor_refused(OWN_MALLOC_MIMALLOC, "not-mimalloc", ["no segment was found"])

    def test_leaking_servers(self):
        # the leaking servers on mimalloc: the same stories as on glibc
        check_leak_stories(LIBMIMALLOC, "mimalloc")


if __name__ == "__main__":
    main()
