"""A snapshot is the memory at one instant, even of a process that rewrites its memory all the
time: the pre-copy made while it runs must be corrected, page by page, for everything written,
discarded or replaced before the freeze. page_writer keeps an invariant that any torn or stale
copy breaks (see tests/targets/page_writer.c); every capture must satisfy it: by freeze with the
pre-copy and without, and by fork (the default), whose clone is the memory at the clone."""
import os
import re
import struct
import time

from common import (check, decompress, finish, heapsnap, path, read_core_memory, soft_dirty_works,
                    start)

PAGE = 4096
ready = path("writer.ready")
writer = start([os.environ.get("PAGE_WRITER", "build/tests/page_writer"), ready])
deadline = time.time() + 20
while not (os.path.exists(ready) and open(ready).read().endswith("\n")) and time.time() < deadline:
    time.sleep(0.01)
_, address, pages = open(ready).read().split()
address, pages = int(address, 16), int(pages)


def check_snapshot(label, snapshot):
    core = path("consistency.core")
    decompress(snapshot, core)
    memory = read_core_memory(core, address, pages * PAGE)
    if not check(memory is not None, f"{label}: the region is in the snapshot"):
        return
    generation, position, discarded, discarded_generation = struct.unpack_from("<4Q", memory, 0)
    words = [struct.unpack_from("<Q", memory, page * PAGE)[0] for page in range(pages)]
    problems = []
    for page in range(1, pages):
        # the page being written at the freeze may hold either value
        expected = {generation} if page < position else {generation - 1}
        if page == position:
            expected = {generation, generation - 1}
        # the page discarded at the end of the previous generation reads 0 until rewritten
        if page == discarded and discarded_generation == generation - 1 and page >= position:
            expected = {0}
        if page == discarded and discarded_generation == generation - 1 and page == position:
            expected = {0, generation}
        # a discard of this generation's victim may have happened but not yet been recorded
        victim = 1 + generation % (pages - 1)
        if position == pages and page == victim and discarded_generation != generation:
            expected = expected | {0}
        if words[page] not in expected:
            problems.append((page, words[page], sorted(expected)))
    check(not problems, f"{label}: generation {generation} position {position}: {len(problems)} pages "
                        f"out of step, first {problems[:3]}")
    return generation


generations = []
precopied = forked = 0
for i in range(12):
    kind = ("freeze", "freeze", "fork", "no pre-copy")[i % 4]
    options = {"freeze": ["--method", "freeze"], "fork": [],
               "no pre-copy": ["--method", "freeze", "--no-precopy"]}[kind]
    snapshot = path("consistency.snap")
    result = heapsnap("capture", str(writer.pid), "-o", snapshot, *options)
    if "the rest before" in result.stdout:
        precopied += 1
    if kind == "fork":
        forked += "by fork" in result.stdout
    generations.append(check_snapshot(f"capture {i} ({kind})", snapshot))
check(forked == 3, f"the default capture ran by fork in {forked} of 3")
# the pre-copy runs exactly where the kernel tracks writes (CONFIG_MEM_SOFT_DIRTY); elsewhere
# every capture copies all memory while the target is frozen, and the invariant above is checked
# on that path alone
supported = soft_dirty_works()
print(f"soft-dirty tracking on this kernel: {supported}; pre-copied captures: {precopied}")
check(precopied == (6 if supported else 0),
      f"the pre-copy was used in {precopied} of 6 captures, soft-dirty support is {supported}")
check(len(set(generations)) == len(generations), f"the writer ran on between captures: {generations}")
finish()
