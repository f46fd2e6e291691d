"""Running tests/targets/glibc_heap.c and checking a snapshot of it against its own record, for the
glibc walker's tests on this machine's glibc and on others (in Debian roots, tests/e2e/roots.py)."""
import json
import os
import time

from common import check, heapsnap, path, start

# live blocks that are libc's own, not the target's: the target records with write(2), not stdio,
# so the only ones are the dynamic thread vectors (DTV) that pthread_create callocs, one per
# created thread, all of one size
EXTRA_LIVE = 4


def read_record(name):
    """The target's record: held blocks (address -> usable size), freed ones, damage, threads."""
    record = {"held": {}, "freed": set()}
    with open(name) as f:
        lines = f.read().splitlines()
    for line in lines:
        words = line.split()
        if words[0] == "held":
            record["held"][int(words[1], 16)] = int(words[2])
        elif words[0] == "freed":
            record["freed"].add(int(words[1], 16))
        elif words[0] in ("corrupted", "cycle", "tcache_link", "bin_link", "bin_back", "bin_self",
                          "nextsize", "tcache_key", "arena_top", "thread_top", "heap_size",
                          "heap_owner", "lookalike", "lookalike_large", "pool"):
            record[words[0]] = int(words[1], 16)
        elif words[0] == "threads":
            record["threads"] = int(words[1])
    return record


def run_target(name, command, host_record_path=None):
    """Starts `command` (the target, its record file, its mode) and captures it once its record
    is written. The record is read at host_record_path, where a chroot puts it, or at command[1]."""
    host_record_path = host_record_path or command[1]
    process = start(command)
    deadline = time.time() + 30
    while not os.path.exists(host_record_path) and time.time() < deadline:
        time.sleep(0.02)
    record = read_record(host_record_path)
    record["pid"] = process.pid
    snapshot = path(name + ".snap")
    # chroot execs the target, so the pid started is the target's
    heapsnap("capture", str(process.pid), "-o", snapshot)
    return record, snapshot


def listing(snapshot, *options):
    result = heapsnap("list", snapshot, "--state", "all", "--format", "jsonl", *options)
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def check_sound_heap(label, record, snapshot, *options, heuristics_same=True):
    """Every held block live with its usable size, no freed block live, the freed ones found in
    the tcaches, fast bins and bins, the extras accounted for, the same answer by heuristics."""
    check(len(record["held"]) == 5 * 400 + 3 and len(record["freed"]) == 5 * 200,
          f"{label}: the target recorded {len(record['held'])} held and {len(record['freed'])} freed blocks")
    allocations, warnings = listing(snapshot, *options)
    check(warnings == "", f"{label}: no warnings on a sound heap: {warnings}")
    by_address = {a["addr"]: a for a in allocations}
    live = {a["addr"]: a for a in allocations if a["state"] == "live"}
    wrong = [(hex(addr), size, by_address.get(addr)) for addr, size in record["held"].items()
             if addr not in live or live[addr]["size"] != size]
    check(not wrong, f"{label}: {len(wrong)} held blocks not live with their usable size, first {wrong[:3]}")
    freed_live = [hex(addr) for addr in record["freed"] if addr in live]
    check(not freed_live, f"{label}: {len(freed_live)} freed blocks reported live: {freed_live[:5]}")
    places = {}
    for allocation in allocations:
        if allocation["addr"] in record["freed"]:
            places[allocation["place"]] = places.get(allocation["place"], 0) + 1
    check(places.get("tcache", 0) > 0 and places.get("fastbin", 0) > 0 and places.get("bin", 0) > 0,
          f"{label}: the freed blocks are in tcaches, fast bins and bins: {places}")
    check(sum(places.values()) == len(record["freed"]),
          f"{label}: every freed block is found at its address as a free chunk: "
          f"{sum(places.values())} of {len(record['freed'])}")
    extras = [a for a in live.values() if a["addr"] not in record["held"]]
    tcaches = [a for a in extras if a["type"] == "glibc tcache_perthread_struct"]
    check(len(tcaches) == record["threads"], f"{label}: one tcache structure per thread: {len(tcaches)}")
    others = [a for a in extras if a not in tcaches]
    check(len({a["size"] for a in others}) == 1, f"{label}: the unrecorded blocks are of one kind")
    check(len(others) == EXTRA_LIVE, f"{label}: {len(others)} live blocks nobody recorded, expected "
                                     f"{EXTRA_LIVE}: {[(hex(a['addr']), a['size']) for a in others]}")
    mmapped = [a for a in live.values() if a["place"] == "mmapped"]
    check(len(mmapped) == 3, f"{label}: the three mmapped blocks: {len(mmapped)}")
    heuristic, _ = listing(snapshot, "--no-debuginfo")
    check(heuristic == allocations or not heuristics_same, f"{label}: the walk by heuristics gives the same allocations")
    return allocations
