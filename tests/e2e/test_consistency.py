"""A snapshot is the memory at one instant, even of a process that rewrites its memory all the
time: the pre-copy made while it runs must be corrected, page by page, for everything written,
discarded or replaced before the freeze. page_writer keeps an invariant that any torn or stale
copy breaks (see tests/targets/page_writer.c); every capture must satisfy it: by freeze with the
pre-copy and without, and by fork (the default), whose clone is the memory at the clone."""
import os
import struct
import time
from pathlib import Path

from common import Case, check, decompress, heapsnap, main, path, read_core_memory, soft_dirty_works, start

PAGE = 4096
KINDS = ("freeze", "freeze", "fork", "no pre-copy")
_writer = []
_captures = []


def writer():
    """page_writer, started once: (process, address, pages) of the region it rewrites."""
    if not _writer:
        ready = path("writer.ready")
        process = start([os.environ.get("PAGE_WRITER", "build/tests/page_writer"), ready])
        deadline = time.time() + 20
        while not (os.path.exists(ready) and Path(ready).read_text().endswith("\n")) and time.time() < deadline:
            time.sleep(0.01)
        _, address, pages = Path(ready).read_text().split()
        _writer.append((process, int(address, 16), int(pages)))
    return _writer[0]


def captures():
    """The twelve captures of the writer, made once one after the other for every case, as
    (label, kind, capture's stdout, the region as the snapshot holds it or None: its first page's
    four words and every page's first word)."""
    if not _captures:
        process, address, pages = writer()
        for i in range(12):
            kind = KINDS[i % 4]
            options = {"freeze": ["--method", "freeze"], "fork": [],
                       "no pre-copy": ["--method", "freeze", "--no-precopy"]}[kind]
            snapshot = path("consistency.snap")
            result = heapsnap("capture", str(process.pid), "-o", snapshot, *options)
            core = path("consistency.core")
            decompress(snapshot, core)
            memory = read_core_memory(core, address, pages * PAGE)
            region = None
            if memory is not None:
                region = (struct.unpack_from("<4Q", memory, 0),
                          [struct.unpack_from("<Q", memory, page * PAGE)[0] for page in range(pages)])
            _captures.append((f"capture {i} ({kind})", kind, result.stdout, region))
    return _captures


def check_snapshot(label, region):
    _, address, pages = writer()
    if not check(region is not None, f"{label}: the region is in the snapshot"):
        return
    (generation, position, discarded, discarded_generation), words = region
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


def check_kind(kind):
    for label, kind_made, _, region in captures():
        if kind_made == kind:
            check_snapshot(label, region)


class Consistency(Case):
    def test_freeze_with_precopy(self):
        check_kind("freeze")

    def test_freeze_without_precopy(self):
        check_kind("no pre-copy")

    def test_fork(self):
        check_kind("fork")
        forked = sum("by fork" in stdout for _, kind, stdout, _ in captures() if kind == "fork")
        check(forked == 3, f"the default capture ran by fork in {forked} of 3")

    def test_precopy_where_soft_dirty_works(self):
        # the pre-copy runs exactly where the kernel tracks writes (CONFIG_MEM_SOFT_DIRTY); elsewhere
        # every capture copies all memory while the target is frozen, and the invariant above is checked
        # on that path alone
        precopied = sum("the rest before" in stdout for _, _, stdout, _ in captures())
        supported = soft_dirty_works()
        print(f"soft-dirty tracking on this kernel: {supported}; pre-copied captures: {precopied}")
        check(precopied == (6 if supported else 0),
              f"the pre-copy was used in {precopied} of 6 captures, soft-dirty support is {supported}")

    def test_writer_ran_between_captures(self):
        generations = [region[0][0] if region is not None else None for _, _, _, region in captures()]
        check(len(set(generations)) == len(generations), f"the writer ran on between captures: {generations}")


if __name__ == "__main__":
    main()
