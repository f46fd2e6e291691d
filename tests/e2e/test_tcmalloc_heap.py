"""The tcmalloc walker on Debian's gperftools 2.10 (libtcmalloc_minimal.so.4 and libtcmalloc.so.4,
stripped): its page map, size classes and caches are found by shape.

Ground truth one is the known-heap target's own record (tests/targets/known_heap.c, which
serves tcmalloc unchanged: four threads, small, large and 10 MiB blocks, every block it holds
with malloc_usable_size, every block it freed), run with libtcmalloc_minimal.so.4 preloaded
(captured by freeze and by fork), linked with -ltcmalloc, and linked in statically from
libtcmalloc_minimal.a (whose symbols the executable keeps, so the shapes are checked against
Static::pageheap_, sizemap_, central_cache_ and ThreadCache::thread_heaps_). Every held block is
live with exactly its usable size; no freed block is live; freed small blocks are free at their
address, in a thread cache, a transfer slot or their span's free list, or inside a free span of
the page heap (their span emptied), or given back; freed large blocks in the page heap or given
back. tcmalloc's threads share its central caches and page heap, so memory one thread freed may
be allocated again by another before the record is written: a freed block that lies in a held
one (the same address, or a span carved anew) is the held block's, and is not checked as freed.

Ground truth two is tcmalloc's own count, generic.current_allocated_bytes (read by the target
with MallocExtension_GetNumericProperty after its last allocation). tcmalloc computes it as the
page heap's bytes in use minus the free objects in the thread caches, the transfer slots and
the spans' free lists, and minus each small-object span's tail that no object fills (the
central caches' "overhead"): that is the sum of the usable sizes of the live objects, small
(the size class) and large (the span's pages), which is what heapsnap lists as live. So the
comparison is exact, not within a rounding.

A damaged structure is said, not hidden: in a copy of the preloaded snapshot (decompressed,
patched, imported back) one small-object span's free list points inside an object, and in
another one thread cache's free list does: each answer names the span or the thread in a warning
and counts the damage. A malloc that calls itself tcmalloc (it
defines tc_malloc) without gperftools 2.10's structures is refused with exit 2, not shown as an
empty heap. And the leaking servers under tcmalloc tell the same story as on glibc: the C one
(heapdiff shows struct conn +1,000 retained by global all_conns) and the Python one on Debian's
python3.11 (pymalloc on top of tcmalloc: __main__.Connection +1,000 retained by the module
global _CONNECTIONS).

With GPERFTOOLS_SRC naming the src directory of gperftools 2.10's sources (git tag
gperftools-2.10; Debian's source package is not at hand), the layout the walker holds
(analyze/allocators/tcmalloc_heap.c: offsets in Span, CentralFreeList, ThreadCache, SizeMap and
PageHeap) is checked against those headers, compiled with a minimal config.h.

A missing library fails the test with what to install (scripts/setup installs them)."""
import functools
import json
import os
import struct
import subprocess

from allocator_target import (check_impostor_refused, check_leak_stories, freed_not_reused,
                              live_and_free, run_target)
from common import (Case, block_finder, check, decompress, give_up, heapsnap, main, path,
                    program_headers, read_core_memory)

TARGET = os.environ.get("KNOWN_HEAP", "build/tests/known_heap")
TARGET_LINKED = os.environ.get("TCMALLOC_HEAP_LINKED")
TARGET_STATIC = os.environ.get("TCMALLOC_HEAP_STATIC")
OWN_MALLOC_TCMALLOC = os.environ.get("OWN_MALLOC_TCMALLOC", "build/tests/own_malloc_tcmalloc")
LOOKUP = os.environ.get("LOOKUP", "build/tests/lookup")
THREAD_HEAPS = "_ZN8tcmalloc11ThreadCache13thread_heaps_E"  # exported by Debian's libraries
LIBTCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
SMALL_MAX = 256 * 1024  # kMaxSize: the largest size class
PAGE = 8192
THREADS, BLOCKS = 4, 3000
# every place `list` may name on a tcmalloc heap: tcmalloc's own words
TCMALLOC_WORDS = {"in_use", "large", "thread_cache", "transfer_cache", "central_free", "page_heap"}


def check_heap(label, record, snapshot, method, options=()):
    check(record["lines"] == THREADS * BLOCKS and len(record["held"]) == THREADS * BLOCKS * 2 // 3,
          f"{label}: the target recorded {len(record['held'])} held blocks, {record['lines']} in all")
    check("current_allocated_bytes" in record, f"{label}: the target read tcmalloc's counter")
    result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl", *options)
    allocations = [json.loads(line) for line in result.stdout.splitlines()]
    words = {allocation["place"] for allocation in allocations}
    check(words <= TCMALLOC_WORDS and {"in_use", "large", "thread_cache", "central_free"} <= words,
          f"{label}: places named in tcmalloc's words: {sorted(words)}")
    check(result.stderr == "", f"{label}: no warnings on a sound heap: {result.stderr[:600]}")
    live, free = live_and_free(label, allocations, record["held"])
    # memory freed by one thread and allocated again by another is held (the record's own
    # blocks say which: a freed address inside a held block)
    freed = freed_not_reused(record)
    check(len(freed) > len(record["freed"]) // 3,
          f"{label}: most freed blocks were not allocated again: {len(freed)} of {len(record['freed'])}")
    freed_live = [hex(addr) for addr in freed if addr in live]
    check(not freed_live, f"{label}: {len(freed_live)} freed blocks reported live: {freed_live[:5]}")

    holder = block_finder(allocations)

    places, large_places, inside_live = {}, {}, []
    for addr, asked in freed.items():
        around = holder(addr)
        if around and around["state"] == "live":
            inside_live.append(hex(addr))
        if asked <= SMALL_MAX and addr in free:
            place = free[addr]["place"]
        else:
            place = around["place"] if around else "given back"
        into = places if asked <= SMALL_MAX else large_places
        into[place] = into.get(place, 0) + 1
    check(not inside_live, f"{label}: freed blocks inside live ones: {inside_live[:5]}")
    check(set(places) <= {"thread_cache", "transfer_cache", "central_free", "page_heap", "given back"}
          and places.get("thread_cache", 0) > 0 and places.get("central_free", 0) > 0,
          f"{label}: the freed small blocks are in thread caches, transfer slots and their spans: {places}")
    # (a freed large block's pages may since be a small-object span, its address a free object)
    check(set(large_places) <= {"page_heap", "given back", "thread_cache", "transfer_cache",
                                "central_free"} and large_places.get("page_heap", 0) > 0,
          f"{label}: the freed large blocks are free, mostly in the page heap, or given back: "
          f"{large_places}")

    # the blocks nobody recorded: the few the C library allocates (a thread's DTV, stdio) and,
    # in libtcmalloc.so.4, its own objects (MallocExtension's)
    extras = [a for a in live.values() if a["addr"] not in record["held"]]
    check(len(extras) <= 4 * THREADS, f"{label}: {len(extras)} live blocks nobody recorded: {extras[:4]}")

    # tcmalloc's own count (see the top of the file: exact)
    live_bytes = sum(a["size"] for a in live.values())
    counter = record.get("current_allocated_bytes")
    check(live_bytes == counter,
          f"{label}: live bytes {live_bytes:,} = tcmalloc's generic.current_allocated_bytes {counter}")
    cached = {}
    for a in free.values():
        cached[a["place"]] = cached.get(a["place"], 0) + a["size"]
    print(f"{label}: {len(live):,} live blocks ({len(record['held']):,} held by the target), "
          f"{live_bytes:,} live bytes; current_allocated_bytes {counter:,}; free bytes by place "
          f"{cached}; freed small blocks by place {places}, large {large_places}")

    summary = json.loads(heapsnap("summary", snapshot, "--format", "json", *options).stdout)
    heap = summary["heap"]
    check(heap["allocator"] == "tcmalloc", f"{label}: the allocator is named: {heap['allocator']}")
    check(summary["runtimes"].get("gperftools") == "2.10" and "glibc" not in summary["runtimes"],
          f"{label}: gperftools' version 2.10 is read, and not given as glibc's: {summary['runtimes']}")
    check(heap["found_with"] == method, f"{label}: found {method}: {heap['found_with']}")
    check(heap["heap_damage"]["corrupt_spots"] == 0, f"{label}: no damage: {heap['heap_damage']}")
    text = heapsnap("summary", snapshot, *options).stdout.splitlines()
    check(len(text) > 1 and text[1].startswith("tcmalloc 2.10"),
          f"{label}: the summary names tcmalloc 2.10: {text[:2]}")


def patch_span_free_list(snapshot, base, damaged):
    """Writes `damaged`: `snapshot` with the free list (`objects`) of the one-page small-object
    span at `base` pointing 8 bytes into its first object. The Span is found in the core as 8
    aligned bytes holding its start page and length 1, its size class non-zero and location in
    use, and its free list inside it."""
    core = damaged + ".core"
    decompress(snapshot, core)
    with open(core, "r+b") as f:
        data = bytearray(f.read())
        phoff = struct.unpack_from("<Q", data, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        aligned = set()
        for i in range(phnum):
            p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
                "<IIQQQQ", data, phoff + i * phentsize)
            if p_type == 1:
                aligned.add((p_offset - p_vaddr) % 8)
        found, at = [], data.find(struct.pack("<QQ", base // PAGE, 1))
        while at >= 0:
            objects, bits = struct.unpack_from("<QI", data, at + 32)
            if (at % 8 in aligned and bits >> 16 & 0xff and bits >> 24 & 3 == 0 and
                    base <= objects < base + PAGE):
                found.append(at)
            at = data.find(struct.pack("<QQ", base // PAGE, 1), at + 1)
        check(len(found) == 1, f"the span 0x{base:x}'s descriptor is found once in the core: {found}")
        for offset in found[:1]:
            struct.pack_into("<Q", data, offset + 32, base + 8)
        f.seek(0)
        f.write(data)
    heapsnap("import", core, "-o", damaged)
    os.unlink(core)


def patch_thread_cache(snapshot, damaged):
    """Writes `damaged`: `snapshot` with the first free list of the first thread cache (found
    through ThreadCache::thread_heaps_, which the library exports) that holds objects pointing 4
    bytes into its first object (where no object starts: they are 8-byte aligned). Returns that
    pointer, or None when there is no such list."""
    core = damaged + ".core"
    decompress(snapshot, core)
    found = subprocess.run([LOOKUP, snapshot, "symbol", "libtcmalloc_minimal", THREAD_HEAPS],
                           capture_output=True, text=True)
    check(found.returncode == 0, f"{THREAD_HEAPS} is in the library's symbols: {found.stderr}")
    if found.returncode != 0:
        return None
    cache, = struct.unpack("<Q", read_core_memory(core, int(found.stdout.split()[0], 16), 8))
    lists = read_core_memory(core, cache, 128 * 32)
    k = next((k for k in range(1, 128) if struct.unpack_from("<QI", lists, k * 32)[0] and
              struct.unpack_from("<QI", lists, k * 32)[1]), None)
    if k is None:
        return None
    bad = struct.unpack_from("<Q", lists, k * 32)[0] + 4
    with open(core, "r+b") as f:
        for p_type, p_offset, p_vaddr, p_filesz, _ in program_headers(f):
            if p_type == 1 and p_vaddr <= cache + k * 32 < p_vaddr + p_filesz:
                f.seek(p_offset + cache + k * 32 - p_vaddr)
                f.write(struct.pack("<Q", bad))
                break
    heapsnap("import", core, "-o", damaged)
    os.unlink(core)
    return bad


@functools.cache
def preloaded():
    """known_heap run with libtcmalloc_minimal.so.4 preloaded, captured; once for every case."""
    if not os.path.exists(LIBTCMALLOC):
        give_up(f"{LIBTCMALLOC} is not installed (scripts/setup installs libtcmalloc-minimal4)")
    return run_target("preloaded", [TARGET], env=dict(os.environ, LD_PRELOAD=LIBTCMALLOC))


@functools.cache
def static():
    """known_heap with tcmalloc linked in statically, captured; once for every case."""
    return run_target("static", [TARGET_STATIC])


class TcmallocHeap(Case):
    def test_packages_installed(self):
        missing = [name for name, file in (("libtcmalloc-minimal4", LIBTCMALLOC),) if not os.path.exists(file)]
        missing += ["libgoogle-perftools-dev (the linked build)"] if not TARGET_LINKED else []
        missing += ["libgoogle-perftools-dev (libtcmalloc_minimal.a, the static build)"] if not TARGET_STATIC else []
        check(not missing, f"tcmalloc's packages are installed (scripts/setup installs them): install {missing}")

    def test_preloaded(self):
        record, snapshot = preloaded()
        check_heap("preloaded", record, snapshot, "heuristics, checked by symbols")

    def test_preloaded_no_debuginfo(self):
        record, snapshot = preloaded()
        check_heap("preloaded --no-debuginfo", record, snapshot, "heuristics", options=("--no-debuginfo",))

    def test_damaged_span_free_list(self):
        record, snapshot = preloaded()
        # a span whose free list points inside an object: a warning naming it, counted as damage
        result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl")
        listed = [json.loads(line) for line in result.stdout.splitlines()]
        # (64 bytes is a class of one-page spans: 128 objects fill 8 KiB)
        one_page = sorted({a["addr"] // PAGE * PAGE for a in listed
                           if a["place"] == "central_free" and a["size"] == 64})
        if check(one_page, "a one-page span of small objects with free ones is in the heap"):
            base = one_page[0]
            damaged = path("damaged.snap")
            patch_span_free_list(snapshot, base, damaged)
            result = heapsnap("list", damaged, "--state", "all", "--format", "jsonl")
            check(f"the free list of the span at 0x{base:x}" in result.stderr and
                  f"holds 0x{base + 8:x}" in result.stderr,
                  f"the damaged span is named in a warning: {result.stderr[:400]!r}")
            summary = json.loads(heapsnap("summary", damaged, "--format", "json").stdout)
            check(summary["heap"]["heap_damage"]["corrupt_spots"] >= 1 and
                  summary["heap"]["heap_damage"]["first_address"] is not None,
                  f"the damage is counted: {summary['heap']['heap_damage']}")

    def test_damaged_thread_cache(self):
        record, snapshot = preloaded()
        # a thread cache's free list pointing inside an object: a warning naming the thread
        damaged = path("damaged-cache.snap")
        bad = patch_thread_cache(snapshot, damaged)
        if check(bad, "a thread cache holds objects"):
            result = heapsnap("list", damaged, "--state", "all", "--format", "jsonl")
            check("the thread cache of thread " in result.stderr and f"holds 0x{bad:x}" in result.stderr,
                  f"the damaged thread cache is named in a warning: {result.stderr[:400]!r}")
            summary = json.loads(heapsnap("summary", damaged, "--format", "json").stdout)
            check(summary["heap"]["heap_damage"]["corrupt_spots"] >= 1,
                  f"the damage is counted: {summary['heap']['heap_damage']}")

    def test_captured_by_fork(self):
        # captured by fork: the clone has one thread, but the snapshot keeps every thread's
        # registers, so every thread's cache is still told by its owner
        if not os.path.exists(LIBTCMALLOC):
            give_up(f"{LIBTCMALLOC} is not installed (scripts/setup installs libtcmalloc-minimal4)")
        env = dict(os.environ, LD_PRELOAD=LIBTCMALLOC)
        record, snapshot = run_target("fork", [TARGET], env=env, method="fork")
        check_heap("fork", record, snapshot, "heuristics, checked by symbols")

    def test_linked(self):
        if TARGET_LINKED:
            record, snapshot = run_target("linked", [TARGET_LINKED])
            check_heap("linked", record, snapshot, "heuristics, checked by symbols")

    # linked in statically: the executable keeps the symbols of Static's members
    def test_static_linked(self):
        if TARGET_STATIC:
            record, snapshot = static()
            check_heap("static", record, snapshot, "heuristics, checked by symbols")

    def test_static_linked_no_debuginfo(self):
        if TARGET_STATIC:
            record, snapshot = static()
            check_heap("static --no-debuginfo", record, snapshot, "heuristics", options=("--no-debuginfo",))

    def test_impostor_refused(self):
        # a malloc that calls itself tcmalloc (it defines tc_malloc) without gperftools 2.10's
        # size classes and page map: refused, exit 2, rather than an empty heap
        check_impostor_refused(OWN_MALLOC_TCMALLOC, "not-tcmalloc", ["tcmalloc", "no heap to show"])

    def test_layout_against_headers(self):
        # the layout table against gperftools 2.10's own headers, when its sources are given
        GPERFTOOLS_SRC = os.environ.get("GPERFTOOLS_SRC")
        if GPERFTOOLS_SRC:
            layout = {  # what analyze/allocators/tcmalloc_heap.c holds
                "offsetof(Span, start)": 0, "offsetof(Span, length)": 8, "offsetof(Span, objects)": 32,
                "sizeof(Span)": 48, "offsetof(CentralFreeList, size_class_)": 8,
                "offsetof(CentralFreeList, empty_)": 16, "offsetof(CentralFreeList, tc_slots_)": 128,
                "offsetof(CentralFreeList, used_slots_)": 1152, "sizeof(CentralFreeListPadded)": 1216,
                "sizeof(ThreadCache::FreeList)": 32, "offsetof(ThreadCache::FreeList, length_)": 8,
                "offsetof(ThreadCache, tid_)": 4128, "offsetof(ThreadCache, next_)": 4144,
                "offsetof(ThreadCache, prev_)": 4152, "sizeof(ThreadCache)": 4160,
                "offsetof(SizeMap, class_to_pages_) - offsetof(SizeMap, class_to_size_)": 516,
                "offsetof(SizeMap, num_size_classes) - offsetof(SizeMap, class_to_pages_)": 1024,
                "sizeof(PageHeap::PageMap) / 8": (1 << 17) + 1, "kPageShift": 13, "kClassSizesMax": 128,
            }
            work = path("gperftools-layout")
            os.makedirs(work, exist_ok=True)
            with open(os.path.join(work, "config.h"), "w") as f:
                f.write("".join(f"#define {name} 1\n" for name in (
                    "HAVE_STDINT_H", "HAVE_INTTYPES_H", "HAVE_SYS_TYPES_H", "HAVE_UNISTD_H",
                    "HAVE_PTHREAD", "HAVE_TLS", "HAVE___ATTRIBUTE__", "HAVE_BUILTIN_EXPECT",
                    "HAVE_FEATURES_H", "HAVE_SCHED_H", "HAVE_MMAP", "STDC_HEADERS")) +
                    '#define PERFTOOLS_DLL_DECL\n#define PRIdS "ld"\n#define PRIuS "lu"\n#define PRIxS "lx"\n')
            with open(os.path.join(work, "layout.cc"), "w") as f:
                f.write('#include "config.h"\n#include <cstddef>\n#include <cstdio>\n'
                        "#define private public\n#define protected public\n" +
                        "".join(f'#include "{h}"\n' for h in ("span.h", "central_freelist.h",
                                                              "thread_cache.h", "common.h", "page_heap.h")) +
                        "using namespace tcmalloc;\nint main() {\n" +
                        "".join(f'  printf("%zu\\n", (size_t)({e}));\n' for e in layout) + "}\n")
            built = subprocess.run(["g++", "-std=c++11", "-I", work, "-I", GPERFTOOLS_SRC,
                                    "-I", os.path.join(GPERFTOOLS_SRC, "base"), "-o",
                                    os.path.join(work, "layout"), os.path.join(work, "layout.cc")],
                                   capture_output=True, text=True)
            check(built.returncode == 0, f"gperftools' headers compile: {built.stderr[-500:]}")
            if built.returncode == 0:
                printed = subprocess.run([os.path.join(work, "layout")], capture_output=True,
                                         text=True).stdout.split()
                wrong = [(e, want, got) for (e, want), got in zip(layout.items(), map(int, printed))
                         if want != got]
                check(len(printed) == len(layout) and not wrong,
                      f"the layout table agrees with gperftools 2.10's headers: {wrong or printed}")
        else:
            print("the layout check is skipped: GPERFTOOLS_SRC is not set")

    def test_leak_stories(self):
        if os.path.exists(LIBTCMALLOC):
            check_leak_stories(LIBTCMALLOC, "tcmalloc")


if __name__ == "__main__":
    main()
