"""The jemalloc 5.3 walker on Debian's libjemalloc2, which is stripped: its heap is found by shape.

Ground truth one is the target's own record (tests/targets/known_heap.c: four threads, small,
large and huge blocks, every block it holds with malloc_usable_size, every block it freed), run
with jemalloc preloaded (captured by freeze and by fork), preloaded with its tcaches turned off
(MALLOC_CONF=tcache:false, which the walker says in a warning), preloaded with the HPA turned on
(MALLOC_CONF=hpa:true: the extents its small extent cache keeps are free, not damage), linked,
and linked in statically (found by shape among the executable's own data): every held block live
with exactly its usable size, no freed block live, the freed small blocks found free at their
address (in a thread's tcache or free in their slab), the freed large ones in a tcache or inside
a dirty extent.

Ground truth two is jemalloc's own accounting, printed by the target after an epoch:
stats.allocated counts a region cached in a tcache as allocated (the slab hands it out when the
tcache fills), so heapsnap's live bytes plus the bytes it finds in tcaches must equal it, and
the bytes it finds in tcaches must equal stats.arenas.<all>.tcache_bytes. Both are exact: jemalloc
counts usable sizes (size classes), which is what heapsnap lists, and the target allocates
nothing after reading them.

With JEMALLOC_DEBUG_LIB naming a jemalloc 5.3.0 built from source with -g (Debian's dbgsym is not
at hand; `autoconf && CFLAGS="-g -O2" ./configure --enable-prof && make lib/libjemalloc.so.2` in
its 5.3.0 tag, a VERSION file holding 5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c), the
layout table (analyze/allocators/jemalloc_layout.c) is checked against its DWARF, and the
walk on it against its symbols (the extent map found by shape must lie in arena_emap_global).

A damaged structure is said, not hidden: in a copy of the preloaded snapshot (decompressed,
patched, imported back with `heapsnap import`) one slab's free count in its extent descriptor
disagrees with its bitmap: the answer names the slab in a warning and counts one corrupt spot.

Explicit tcaches (tests/targets/explicit_tcaches.c: tcache.create, then mallocx and dallocx with
MALLOCX_TCACHE) hold freed blocks too: each held block live with its usable size, each freed one
not live and most in a tcache, and jemalloc's accounting as above.

Third, the leaking servers under LD_PRELOAD=libjemalloc.so.2, as on glibc: the C one (heapdiff
shows struct conn +1,000 retained by global all_conns) and the Python one on Debian's
python3.11 (pymalloc on top of jemalloc: __main__.Connection +1,000 retained by the module
global _CONNECTIONS). And a malloc that looks like jemalloc (it defines mallctl) without
jemalloc 5.3's extent map is refused with exit 2, not shown as an empty heap."""
import functools
import json
import os
import struct
import subprocess

from allocator_target import (check_impostor_refused, check_leak_stories, freed_not_reused,
                              live_and_free, run_target)
from common import (Case, block_finder, check, check_layout, check_walked_summary, heapsnap, main,
                    path)

TARGET = os.environ.get("KNOWN_HEAP", "build/tests/known_heap")
TARGET_LINKED = os.environ.get("JEMALLOC_HEAP_LINKED")
TARGET_STATIC = os.environ.get("JEMALLOC_HEAP_STATIC")
OWN_MALLOC_JEMALLOC = os.environ.get("OWN_MALLOC_JEMALLOC", "build/tests/own_malloc_jemalloc")
EXPLICIT_TCACHES = os.environ.get("JEMALLOC_EXPLICIT_TCACHES",
                                  "build/tests/jemalloc_explicit_tcaches")
LIBJEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
SMALL_MAX = 14336  # jemalloc 5.3's largest small size class (SC_SMALL_MAXCLASS)
THREADS, BLOCKS = 4, 3000

# `list` prints places in glibc's words until the allocator interface names them per allocator;
# the test speaks jemalloc's
# every place `list` may name on a jemalloc heap: jemalloc's own words, never glibc's
JEMALLOC_WORDS = {"in_use", "large", "tcache", "slab_free", "dirty", "metadata"}


def check_heap(label, record, snapshot, method="heuristics", tcache=True, options=()):
    """The checks of the top of the file; with tcache False the target ran with jemalloc's
    tcaches turned off, which the walker says in one warning."""
    check(record["lines"] == THREADS * BLOCKS,
          f"{label}: the target recorded {len(record['held'])} held blocks, {record['lines']} in all")
    result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl", *options)
    allocations = [json.loads(line) for line in result.stdout.splitlines()]
    words = {allocation["place"] for allocation in allocations}
    check(words <= JEMALLOC_WORDS and {"in_use", "large", "slab_free"} <= words,
          f"{label}: places named in jemalloc's words: {sorted(words)}")
    expected = "" if tcache else "no thread's tcache was found"
    check(result.stderr == "" if tcache else
          result.stderr.count("warning") == 1 and expected in result.stderr,
          f"{label}: no warnings on a sound heap{'' if tcache else ' but ' + expected}: "
          f"{result.stderr[:600]}")
    live, free = live_and_free(label, allocations, record["held"])
    # (the huge blocks share one arena: memory one thread freed may be another's held block;
    # and jemalloc may hand a freed block's memory to itself: a thread's tcache bins, allocated
    # from arena 0 when the thread first allocates)
    freed = freed_not_reused(record)
    freed_live = [hex(addr) for addr in freed
                  if addr in live and live[addr]["place"] != "metadata"]
    check(not freed_live, f"{label}: {len(freed_live)} freed blocks reported live: {freed_live[:5]}")

    holder = block_finder(allocations)

    # freed small blocks: free at their address, in a tcache or in their slab, or, where a
    # slab emptied, in the dirty extent it became
    small = [addr for addr, asked in freed.items() if asked <= SMALL_MAX]
    places = {}
    for addr in small:
        around = holder(addr)
        if addr in free:
            place = free[addr]["place"]
        else:
            place = "dirty" if around and around["place"] == "dirty" else "not found"
        places[place] = places.get(place, 0) + 1
    check(set(places) <= {"tcache", "slab_free", "dirty"} and
          (places.get("tcache", 0) > 0) == tcache and places.get("slab_free", 0) > 0,
          f"{label}: the {len(small)} freed small blocks are in tcaches and free in slabs: {places}")
    # freed large blocks: in a tcache at their address, or inside a dirty extent, or given back
    # (the huge ones: their arena purges at once, and retained extents hold no memory); never
    # inside a live block of the program
    inside_live = []
    large_places = {}
    for addr, asked in freed.items():
        if asked <= SMALL_MAX:
            continue
        around = holder(addr)
        if around and around["state"] == "live" and around["place"] != "metadata":
            inside_live.append(hex(addr))
        place = around["place"] if around else "given back"
        large_places[place] = large_places.get(place, 0) + 1
    check(not inside_live, f"{label}: freed large blocks inside live ones: {inside_live[:5]}")
    check(set(large_places) <= {"tcache", "dirty", "given back", "metadata"} and
          ("tcache" in large_places) == tcache,
          f"{label}: freed large blocks are cached, dirty or given back: {large_places}")

    # the blocks nobody recorded: one tcache stack block per thread, and the few blocks the
    # C library allocates (a thread's DTV)
    extras = [a for a in live.values() if a["addr"] not in record["held"]]
    check(len(extras) <= 2 * THREADS, f"{label}: {len(extras)} live blocks nobody recorded: {extras[:4]}")

    # jemalloc's own accounting
    live_bytes = sum(a["size"] for a in live.values())
    tcache_bytes = sum(a["size"] for a in free.values() if a["place"] == "tcache")
    check(tcache_bytes == record["tcache_bytes"],
          f"{label}: bytes found in tcaches {tcache_bytes:,} = jemalloc's tcache_bytes "
          f"{record['tcache_bytes']:,}")
    check(live_bytes + tcache_bytes == record["allocated"],
          f"{label}: live {live_bytes:,} + tcache {tcache_bytes:,} = {live_bytes + tcache_bytes:,} "
          f"bytes = jemalloc's stats.allocated {record['allocated']:,}")
    print(f"{label}: {len(live):,} live blocks ({len(record['held']):,} held by the target), "
          f"{live_bytes:,} live bytes + {tcache_bytes:,} in tcaches = {live_bytes + tcache_bytes:,}; "
          f"stats.allocated {record['allocated']:,}; freed small blocks by place {places}, large "
          f"{large_places}")

    heap = check_walked_summary(label, snapshot, "jemalloc", "5.3.0", method, options)
    arenas = [a["kind"] for a in heap["arenas"]]
    check(len(arenas) >= 3 and all(a.startswith("arena ") for a in arenas),
          f"{label}: the four threads' blocks are in several arenas: {arenas}")


def patch_slab_free_count(snapshot, slab, damaged):
    """Writes `damaged`: `snapshot` with the free count (e_bits' nfree, bits 28-37) of the
    extent descriptor of the one-page slab at `slab` off by one. The descriptor is found in the
    core as a 128-byte aligned edata_t whose e_addr is the slab and whose e_bits say active slab
    of size class 64 (index 4)."""
    core = damaged + ".core"
    subprocess.run(["zstd", "-q", "-d", "-f", snapshot, "-o", core], check=True)
    with open(core, "r+b") as f:
        data = bytearray(f.read())
        phoff = struct.unpack_from("<Q", data, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        found = []
        for i in range(phnum):
            p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
                "<IIQQQQ", data, phoff + i * phentsize)
            if p_type != 1:  # PT_LOAD
                continue
            # e_addr sits 8 bytes into a 128-byte aligned edata_t
            first = (8 - p_vaddr) % 128
            first += 128 if first < 8 else 0
            for offset in range(p_offset + first, p_offset + p_filesz - 8, 128):
                if struct.unpack_from("<Q", data, offset)[0] != slab:
                    continue
                bits = struct.unpack_from("<Q", data, offset - 8)[0]
                if bits >> 12 & 1 and bits >> 17 & 7 == 0 and bits >> 20 & 0xff == 4:
                    found.append(offset - 8)
        check(len(found) == 1,
              f"the slab 0x{slab:x}'s extent descriptor is found once in the core: {found}")
        for offset in found[:1]:
            bits = struct.unpack_from("<Q", data, offset)[0]
            struct.pack_into("<Q", data, offset, bits ^ (1 << 28))
        f.seek(0)
        f.write(data)
    heapsnap("import", core, "-o", damaged)
    os.unlink(core)


def check_explicit_tcaches(label, record, snapshot):
    """tests/targets/explicit_tcaches.c: every held block live with its usable size, no freed block
    live, the blocks freed into the explicit tcaches found there, and jemalloc's accounting as in
    check_heap (stats.arenas.<all>.tcache_bytes counts explicit tcaches too)."""
    result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl")
    check(result.stderr == "", f"{label}: no warnings: {result.stderr[:600]}")
    allocations = [json.loads(line) for line in result.stdout.splitlines()]
    live, free = live_and_free(label, allocations, record["held"])
    freed = freed_not_reused(record)
    freed_live = [hex(addr) for addr in freed if addr in live]
    check(not freed_live, f"{label}: {len(freed_live)} freed blocks reported live: {freed_live[:5]}")
    places = {}
    for addr in freed:
        place = free[addr]["place"] if addr in free else "inside a free extent or given back"
        places[place] = places.get(place, 0) + 1
    check(places.get("tcache", 0) > len(freed) // 3,
          f"{label}: the {len(freed)} freed blocks are mostly in the explicit tcaches: {places}")
    live_bytes = sum(a["size"] for a in live.values())
    tcache_bytes = sum(a["size"] for a in free.values() if a["place"] == "tcache")
    check(tcache_bytes == record["tcache_bytes"] and
          live_bytes + tcache_bytes == record["allocated"],
          f"{label}: bytes in tcaches {tcache_bytes:,} = jemalloc's tcache_bytes "
          f"{record['tcache_bytes']:,}, live + tcache {live_bytes + tcache_bytes:,} = "
          f"stats.allocated {record['allocated']:,}")
    print(f"{label}: {len(live):,} live blocks ({len(record['held']):,} held), freed blocks by "
          f"place {places}")
    check_walked_summary(label, snapshot, "jemalloc", "5.3.0", "heuristics")


@functools.cache
def preloaded():
    """known_heap run with jemalloc preloaded, captured by freeze; once for every case."""
    return run_target("preloaded", [TARGET], env=dict(os.environ, LD_PRELOAD=LIBJEMALLOC))


@functools.cache
def static():
    """known_heap with jemalloc linked in statically, captured; once for every case."""
    return run_target("static", [TARGET_STATIC])


class JemallocHeap(Case):
    def test_preloaded(self):
        record, snapshot = preloaded()
        check_heap("preloaded", record, snapshot)

    def test_large_bss_statics_named(self):
        # known_heap's static `blocks` lies past the file's last page, in the anonymous mapping
        # that carries the rest of a large .bss: its words are still the static's (nm and
        # readelf say where it is), not unnamed data
        record, snapshot = preloaded()
        symbols = subprocess.run(["nm", "-S", TARGET], capture_output=True, text=True).stdout
        blocks = next((int(w[0], 16) for w in map(str.split, symbols.splitlines())
                       if len(w) == 4 and w[3] == "blocks"), None)
        loads = [line.split() for line in subprocess.run(["readelf", "-lW", TARGET], capture_output=True,
                                                         text=True).stdout.splitlines()
                 if line.split()[:1] == ["LOAD"]]
        file_end = max(int(w[2], 16) + int(w[4], 16) for w in loads)  # p_vaddr + p_filesz
        check(blocks is not None and blocks > (file_end + 4095) & ~4095,
              f"blocks ({blocks and hex(blocks)}) lies past the file's pages (to {file_end:#x})")
        listed = heapsnap("list", snapshot, "--format", "jsonl", "--paths").stdout.splitlines()
        roots = {a["addr"]: (a.get("path") or [""])[0] for a in map(json.loads, listed)}
        held = [roots.get(address, "") for address in record["held"]]
        unnamed = [root for root in held if root.startswith("data of known_heap")]
        named = [root for root in held if root == "static blocks (known_heap)"]
        check(not unnamed and len(named) >= len(held) * 9 // 10,
              f"the held blocks' root is the static that holds them: {len(named)} of {len(held)}, "
              f"{len(unnamed)} unnamed ({unnamed[:2]})")

    def test_damaged_slab_free_count(self):
        # a slab whose free count disagrees with its bitmap: a warning naming it, one corrupt spot
        record, snapshot = preloaded()
        result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl")
        slabs = sorted(a["addr"] for a in map(json.loads, result.stdout.splitlines())
                       if a["size"] == 64 and a["addr"] % 4096 == 0)
        if check(slabs, "a one-page slab of 64-byte regions is in the heap"):
            damaged = path("damaged.snap")
            patch_slab_free_count(snapshot, slabs[0], damaged)
            result = heapsnap("list", damaged, "--state", "all", "--format", "jsonl")
            check(f"the slab at 0x{slabs[0]:x}" in result.stderr and
                  "free regions but its bitmap shows" in result.stderr,
                  f"the damaged slab is named in a warning: {result.stderr[:400]!r}")
            summary = json.loads(heapsnap("summary", damaged, "--format", "json").stdout)
            check(summary["heap"]["heap_damage"]["corrupt_spots"] == 1,
                  f"one corrupt spot is counted: {summary['heap']['heap_damage']}")

    def test_captured_by_fork(self):
        # captured by fork: the clone has one thread, but the snapshot keeps every thread's
        # registers, so every thread's tcache is found
        record, snapshot = run_target("fork", [TARGET], env=dict(os.environ, LD_PRELOAD=LIBJEMALLOC),
                                      method="fork")
        check_heap("fork", record, snapshot)

    def test_tcaches_off(self):
        # tcaches turned off: every freed small block is free in its slab, live bytes are
        # stats.allocated with nothing cached
        record, snapshot = run_target("no-tcache", [TARGET],
                                      env=dict(os.environ, LD_PRELOAD=LIBJEMALLOC, MALLOC_CONF="tcache:false"))
        check_heap("no-tcache", record, snapshot, tcache=False)

    def test_hpa(self):
        # jemalloc's HPA (MALLOC_CONF=hpa:true): extents handed out from hugepage-sized
        # pageslabs; those it takes back wait in its small extent cache still active, the map's
        # elements for them as their last use left them: free, not damage
        record, snapshot = run_target("hpa", [TARGET],
                                      env=dict(os.environ, LD_PRELOAD=LIBJEMALLOC, MALLOC_CONF="hpa:true"))
        check_heap("hpa", record, snapshot)

    def test_explicit_tcaches(self):
        # explicit tcaches (tcache.create; mallocx and dallocx with MALLOCX_TCACHE): jemalloc's
        # array of them found by shape, each walked as a thread's tcache is
        record, snapshot = run_target("explicit-tcaches", [EXPLICIT_TCACHES],
                                      env=dict(os.environ, LD_PRELOAD=LIBJEMALLOC))
        check_explicit_tcaches("explicit-tcaches", record, snapshot)

    def test_linked(self):
        if TARGET_LINKED:
            record, snapshot = run_target("linked", [TARGET_LINKED])
            check_heap("linked", record, snapshot)
        else:
            print("the linked build is skipped: libjemalloc-dev is not installed")

    def test_impostor_refused(self):
        # a malloc that calls itself jemalloc (it defines mallctl) without jemalloc 5.3's extent
        # map: refused, exit 2, rather than an empty heap
        check_impostor_refused(OWN_MALLOC_JEMALLOC, "not-jemalloc", ["no extent map", "jemalloc"])

    # jemalloc linked into the executable, which keeps its symbols: the map found by shape is
    # checked against arena_emap_global, or not with --no-debuginfo
    def test_static_linked(self):
        if TARGET_STATIC:
            record, snapshot = static()
            check_heap("static", record, snapshot, method="heuristics, checked by symbols")
        else:
            print("the static build is skipped: libjemalloc-dev's libjemalloc_pic.a is not installed")

    def test_static_linked_no_debuginfo(self):
        if TARGET_STATIC:
            record, snapshot = static()
            check_heap("static --no-debuginfo", record, snapshot, options=("--no-debuginfo",))
        else:
            print("the static build is skipped: libjemalloc-dev's libjemalloc_pic.a is not installed")

    def test_debug_build(self):
        # the layouts against a debug build's DWARF, and the shape-found map against its symbols
        DEBUG_LIB = os.environ.get("JEMALLOC_DEBUG_LIB")
        if DEBUG_LIB:
            layout = {  # what analyze/allocators/jemalloc_layout.c holds
                "sizeof(edata_t)": 128, "(long)&((edata_t*)0)->e_addr": 8,
                "(long)&((edata_t*)0)->e_size_esn": 16, "(long)&((edata_t*)0)->e_slab_data": 64,
                "sizeof(slab_data_t)": 64, "sizeof(cache_bin_t)": 24,
                "(long)&((cache_bin_t*)0)->low_bits_empty": 20, "(long)&((tcache_t*)0)->bins": 8,
                "sizeof(((tcache_t*)0)->bins)/sizeof(cache_bin_t)": 73,
                "(long)&((tcache_slow_t*)0)->cache_bin_array_descriptor.bins": 32,
                "(long)&((tcache_slow_t*)0)->arena": 40, "(long)&((tcache_slow_t*)0)->dyn_alloc": 160,
                "(long)&((tcache_slow_t*)0)->tcache": 168, "sizeof(tcache_slow_t)": 176,
                "sizeof(tcache_t)": 1760, "(long)&((edata_t*)0)->e_ps": 24,
                "(long)&((hpdata_t*)0)->h_address": 0, "sizeof(tcaches_t)": 8,
                "sizeof(je_arena_emap_global.rtree.root)/8": 1 << 18,
            }
            check_layout(DEBUG_LIB, layout)
            record, snapshot = run_target("debug", [TARGET], env=dict(os.environ, LD_PRELOAD=DEBUG_LIB))
            check_heap("debug", record, snapshot, method="heuristics, checked by symbols")
        else:
            print("the debug build is skipped: JEMALLOC_DEBUG_LIB is not set")

    def test_leak_stories(self):
        # the leaking servers, C and Python, under LD_PRELOAD=libjemalloc.so.2
        check_leak_stories(LIBJEMALLOC, "jemalloc")


if __name__ == "__main__":
    main()
