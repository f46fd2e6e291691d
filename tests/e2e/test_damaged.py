"""A damaged frame inside a snapshot: list, summary and heapdiff stop within seconds with exit 2 and
one message naming the file, the frame and its offset, rather than decompress the bad frame again
for every word they read and then answer for part of the memory."""
import json
import os
import re
import struct
import subprocess
import time
from pathlib import Path

from common import HEAPSNAP, Case, check, decompress, heapsnap, main, path, start_known_state

HEAPDIFF = os.environ.get("HEAPDIFF", "build/heapdiff")
SEEKABLE_MAGIC = 0x8F92EAB1
SKIPPABLE_MAGIC = 0x184D2A5E


FRAME_SIZE = 8 << 10


def recompress(core, snapshot):
    """Writes `core` as a seekable snapshot of FRAME_SIZE frames (heapsnap writes 4 MiB ones, more
    than known_state's whole core), each a zstd frame with its content size and checksum as
    heapsnap writes them; returns the file offset of every frame."""
    with open(core, "rb") as f:
        data = f.read()
    offsets, table, out = [], b"", b""
    chunk_file = path("chunk")
    for start in range(0, len(data), FRAME_SIZE):
        chunk = data[start:start + FRAME_SIZE]
        with open(chunk_file, "wb") as f:
            f.write(chunk)
        frame = subprocess.run(["zstd", "-q", "-c", "--check", chunk_file], check=True,
                               capture_output=True).stdout
        offsets.append(len(out))
        out += frame
        table += struct.pack("<II", len(frame), len(chunk))
    count = len(offsets)
    out += struct.pack("<II", SKIPPABLE_MAGIC, 8 * count + 9) + table
    out += struct.pack("<IBI", count, 0, SEEKABLE_MAGIC)
    with open(snapshot, "wb") as f:
        f.write(out)
    return offsets


def core_offset(core, address):
    """Where the byte at `address` of the process is in the core (its PT_LOAD's file offset)."""
    with open(core, "rb") as f:
        data = f.read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phnum, = struct.unpack_from("<H", data, 0x38)
    for i in range(phnum):
        kind, _, offset, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", data, phoff + 56 * i)
        if kind == 1 and vaddr <= address < vaddr + filesz:
            return offset + address - vaddr
    raise RuntimeError(f"no stored segment holds {address:#x}")

_captured = []


def captured():
    """known_state's record, its snapshot and the snapshot's core: captured once for every case."""
    if not _captured:
        process, record = start_known_state()
        snapshot = path("captured.snap")
        heapsnap("capture", str(record["pid"]), "-o", snapshot)
        process.kill()
        core = path("known_state.core")
        subprocess.run(["zstd", "-q", "-d", "-f", snapshot, "-o", core], check=True)
        _captured.append((record, snapshot, core))
    return _captured[0]


class Damage:
    """The snapshot recompressed in small frames (good.snap) and the same with the frame holding
    the first of known_state's heap blocks damaged (damaged.snap; every analysis reads that frame),
    with the time limit an analysis of it has: made once for every case."""
    made = None

    @classmethod
    def get(cls):
        if cls.made is None:
            cls.made = cls()
        return cls.made

    def __init__(self):
        self.record, _, core = captured()
        self.good = path("good.snap")
        self.offsets = recompress(core, self.good)
        self.damaged_frame = core_offset(core, self.record["blocks"][0][0]) // FRAME_SIZE
        self.frame_offset = self.offsets[self.damaged_frame]
        self.frame_size = self.offsets[self.damaged_frame + 1] - self.frame_offset
        self.info = heapsnap("info", "--verify", self.good, check_ok=False)
        began = time.monotonic()
        self.summary = heapsnap("summary", self.good, check_ok=False)
        # 20 s, or more for a build that takes long anyway (sanitizers on a loaded machine)
        self.limit = max(20, 3 * (time.monotonic() - began))
        self.damaged = path("damaged.snap")
        with open(self.good, "rb") as f:
            data = bytearray(f.read())
        start = self.frame_offset + self.frame_size // 2 - 128
        data[start:start + 256] = bytes(256)
        with open(self.damaged, "wb") as f:
            f.write(data)


def expect_damage_named(what, command):
    d = Damage.get()
    damaged, damaged_frame, frame_offset, limit = d.damaged, d.damaged_frame, d.frame_offset, d.limit
    began = time.monotonic()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        check(False, f"{what}: still running after {limit:.0f} s on a damaged frame")
        return
    took = time.monotonic() - began
    check(result.returncode == 2, f"{what}: exit {result.returncode} (stderr {result.stderr!r})")
    message = f"{damaged}: corrupt zstd frame {damaged_frame} at offset {frame_offset}"
    check(message in result.stderr, f"{what}: {message!r} not in {result.stderr!r}")
    check(len(result.stderr.strip().splitlines()) == 1,
          f"{what}: one line of error expected, got {result.stderr!r}")
    print(f"{what}: exit {result.returncode} in {took:.1f} s")


# asked to go on: the frame's memory is unreadable, a warning says so and names the frame, and
# every block the target recorded outside the frame is still found (the walk resumes after it)
def check_list_goes_on():
    d = Damage.get()
    record, _, core = captured()
    damaged, damaged_frame, frame_offset, limit = d.damaged, d.damaged_frame, d.frame_offset, d.limit
    went_on = heapsnap("list", damaged, "--damaged-frames-unreadable", "--format", "jsonl", check_ok=False,
                       timeout=limit)
    check(went_on.returncode == 0, f"list --damaged-frames-unreadable: exit {went_on.returncode} {went_on.stderr!r}")
    check(f"corrupt zstd frame {damaged_frame} at offset {frame_offset}" in went_on.stderr and
          "treated as unreadable" in went_on.stderr, f"the damaged frame is warned about: {went_on.stderr!r}")
    listed = {json.loads(line)["addr"] for line in went_on.stdout.splitlines()}
    frame_start, frame_end = damaged_frame * FRAME_SIZE, (damaged_frame + 1) * FRAME_SIZE
    outside = [address for address, _ in record["blocks"]
               if not frame_start - 64 <= core_offset(core, address) < frame_end + 64]
    lost = [hex(address) for address in outside if address not in listed]
    after_frame = [a for a in outside if core_offset(core, a) >= frame_end and (a >> 26) == (record["blocks"][0][0] >> 26)]
    check(len(outside) > 20 and after_frame and not lost,
          f"{len(lost)} of the {len(outside)} blocks outside the damaged frame lost ({len(after_frame)} "
          f"after it in its heap): {lost[:5]}")


def check_summary_goes_on():
    d = Damage.get()
    record, _, core = captured()
    damaged, damaged_frame, limit = d.damaged, d.damaged_frame, d.limit
    frame_start, frame_end = damaged_frame * FRAME_SIZE, (damaged_frame + 1) * FRAME_SIZE
    summary = heapsnap("summary", damaged, "--damaged-frames-unreadable", "--format", "json", check_ok=False,
                       timeout=limit)
    check(summary.returncode == 0 and any("treated as unreadable" in w for w in json.loads(summary.stdout)["warnings"]),
          f"summary --damaged-frames-unreadable warns in its report: {summary.returncode} {summary.stderr[-300:]!r}")
    # and says how much it could not see: the frame's memory (a frame holds FRAME_SIZE bytes of the
    # core, memory or notes), and the blocks found in it, which the target's record places there
    said = re.search(r"([0-9.]+) KiB of the process's memory, in which (\d+) live blocks",
                     " ".join(json.loads(summary.stdout)["warnings"]) if summary.returncode == 0 else "")
    inside = [a for a, _ in record["blocks"] if frame_start <= core_offset(core, a) < frame_end]
    check(said and 0 < float(said.group(1)) <= FRAME_SIZE / 1024 and
          int(said.group(2)) <= len(inside) + 64,
          f"the warning says how much memory and how many blocks were not seen: "
          f"{said.group(0) if said else None} ({len(inside)} recorded blocks in the frame)")


def note_headers(data):
    """(offset of its type field, owner, type) of each note of the core's PT_NOTE segment."""
    phoff, phnum = struct.unpack_from("<Q", data, 0x20)[0], struct.unpack_from("<H", data, 0x38)[0]
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + 56 * i)
        if p_type == 4:
            at, end = p_offset, p_offset + p_filesz
    while at < end:
        namesz, descsz, kind = struct.unpack_from("<III", data, at)
        yield at + 8, bytes(data[at + 12:at + 12 + namesz]).rstrip(b"\0"), kind
        at += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)


_pristine = []


def pristine_core():
    """The core of good.snap, decompressed once for every case."""
    if not _pristine:
        raw = path("notes.core")
        decompress(Damage.get().good, raw)
        _pristine.append(Path(raw).read_bytes())
    return _pristine[0]


# one flipped bit in a note's type: the NT_FILE note (the files would be lost, and every type
# with them), every NT_PRSTATUS note (the threads, whose stacks are roots), a HEAPSNAP note of a
# type none is: the snapshot is named damaged (exit 2), never answered around
FLIPS = {"NT_FILE": (lambda owner, kind: owner == b"CORE" and kind == 0x46494C45, "no NT_FILE note"),
         "NT_PRSTATUS": (lambda owner, kind: owner == b"CORE" and kind == 1, "holds no thread"),
         "HEAPSNAP": (lambda owner, kind: owner == b"HEAPSNAP" and kind == 3, "is none heapsnap writes")}


def check_flipped_note_type(label):
    which, said = FLIPS[label]
    pristine = pristine_core()
    data = bytearray(pristine)
    flipped = 0
    for type_at, owner, kind in list(note_headers(pristine)):
        if which(owner, kind):
            data[type_at + 3] ^= 0x40  # a bit of the type's top byte: no known type
            flipped += 1
    damaged_raw = path(f"notes-{label}.core")
    Path(damaged_raw).write_bytes(data)
    result = heapsnap("summary", damaged_raw, check_ok=False)
    check(flipped >= 1 and result.returncode == 2 and "is damaged" in result.stderr and
          (said in result.stderr or "none heapsnap writes" in result.stderr),
          f"a flipped bit in the type of {label}: exit 2 naming the damage: {result.returncode} "
          f"{result.stderr[-300:]!r}")


# a frame from elsewhere (valid zstd, its own checksum right, another content): the seek table's
# checksum for the frame tells it (the file and the frame are named); and a snapshot whose table
# has no checksums (as heapsnap wrote before it kept them) still reads
def seek_table(data):
    count, descriptor = struct.unpack_from("<IB", data, len(data) - 9)
    entry_size = 12 if descriptor & 0x80 else 8
    start = len(data) - 9 - count * entry_size
    entries = [struct.unpack_from("<II", data, start + i * entry_size) for i in range(count)]
    return start, entry_size, entries


def check_foreign_frame():
    _, snapshot, _ = captured()
    whole = Path(snapshot).read_bytes()  # (as heapsnap writes it: good.snap was made here)
    start, entry_size, entries = seek_table(whole)
    check(entry_size == 12, f"the seek table keeps a checksum per frame: entries of {entry_size} bytes")
    k = len(entries) // 2
    offset = sum(size for size, _ in entries[:k])
    frame = whole[offset:offset + entries[k][0]]
    content = subprocess.run(["zstd", "-q", "-d", "-c"], input=frame, capture_output=True, check=True).stdout
    changed = bytearray(content)
    changed[len(changed) // 2] ^= 0xFF
    other = subprocess.run(["zstd", "-q", "-c", "--check"], input=bytes(changed), capture_output=True,
                           check=True).stdout
    table = bytearray(whole[start - 8:])  # its skippable frame's header too
    struct.pack_into("<I", table, 8 + k * entry_size, len(other))
    struct.pack_into("<I", table, 4, len(table) - 8)
    foreign = path("foreign-frame.snap")
    Path(foreign).write_bytes(whole[:offset] + other + whole[offset + entries[k][0]:start - 8] + bytes(table))
    result = heapsnap("info", "--verify", foreign, check_ok=False)
    check(result.returncode == 2 and f"zstd frame {k} at offset {offset} is not this snapshot's" in result.stderr
          and "foreign-frame.snap" in result.stderr,
          f"a frame from elsewhere is named: {result.returncode} {result.stderr[-300:]!r}")


def check_no_checksums():
    _, snapshot, _ = captured()
    whole = Path(snapshot).read_bytes()
    start, entry_size, entries = seek_table(whole)
    old_style = bytearray()
    for size, decompressed in entries:
        old_style += struct.pack("<II", size, decompressed)
    old_style += struct.pack("<IBI", len(entries), 0, 0x8F92EAB1)
    old_table = struct.pack("<II", 0x184D2A5E, len(old_style)) + bytes(old_style)
    old = path("no-checksums.snap")
    Path(old).write_bytes(whole[:start - 8] + old_table)
    result = heapsnap("info", "--verify", old, check_ok=False)
    check(result.returncode == 0, f"a snapshot without checksums still reads: {result.returncode} {result.stderr[-300:]!r}")
    check(heapsnap("summary", old, "--format", "json", check_ok=False).returncode == 0,
          "and is analysed")


# memory that could not be read at capture, where a live block lies: the report says how many blocks
# and bytes it could not see (the ABSENT note's first range moved onto a block the target recorded)
def check_block_in_absent_memory():
    record, snapshot, _ = captured()
    raw = path("absent.core")
    decompress(snapshot, raw)
    data = bytearray(Path(raw).read_bytes())
    for type_at, owner, kind in note_headers(bytes(data)):
        if owner == b"HEAPSNAP" and kind == 4:
            namesz, = struct.unpack_from("<I", data, type_at - 8)
            desc = type_at + 4 + ((namesz + 3) & ~3)
    block, size = record["blocks"][0]
    struct.pack_into("<QQ", data, desc, block, block + size)
    Path(raw).write_bytes(data)
    result = heapsnap("summary", raw, "--format", "json", check_ok=False)
    warnings = json.loads(result.stdout)["warnings"] if result.returncode == 0 else []
    said = [w for w in warnings if "in memory that could not be read" in w]
    check(result.returncode == 0 and said and said[0].startswith("1 live block ("),
          f"a block in unreadable memory is counted in a warning: {result.returncode} {said or warnings} "
          f"{result.stderr[-300:]!r}")


class Damaged(Case):
    def test_recompressed_snapshot(self):
        d = Damage.get()
        check(0 < d.damaged_frame < len(d.offsets) - 1, f"the heap is in frame {d.damaged_frame} of {len(d.offsets)}")
        check(d.info.returncode == 0, f"the recompressed snapshot is whole: {d.info.stderr!r}")
        check(d.summary.returncode == 0, f"the recompressed snapshot is analysed: {d.summary.stderr!r}")

    def test_info_verify_finds_damage(self):
        d = Damage.get()
        verified = heapsnap("info", "--verify", d.damaged, check_ok=False)
        check(verified.returncode == 2 and f"frame {d.damaged_frame}" in verified.stderr,
              f"info --verify finds the damage: exit {verified.returncode}, {verified.stderr!r}")

    def test_list_stops(self):
        expect_damage_named("list", [HEAPSNAP, "list", Damage.get().damaged])

    def test_summary_stops(self):
        expect_damage_named("summary", [HEAPSNAP, "summary", Damage.get().damaged])

    def test_heapdiff_stops_damaged_before(self):
        d = Damage.get()
        expect_damage_named("heapdiff", [HEAPDIFF, d.damaged, d.good])

    def test_heapdiff_stops_damaged_after(self):
        d = Damage.get()
        expect_damage_named("heapdiff (damaged after)", [HEAPDIFF, d.good, d.damaged])

    def test_list_damaged_frames_unreadable(self):
        check_list_goes_on()

    def test_summary_damaged_frames_unreadable(self):
        check_summary_goes_on()

    def test_flipped_type_nt_file(self):
        check_flipped_note_type("NT_FILE")

    def test_flipped_type_nt_prstatus(self):
        check_flipped_note_type("NT_PRSTATUS")

    def test_flipped_type_heapsnap_note(self):
        check_flipped_note_type("HEAPSNAP")

    def test_foreign_frame(self):
        check_foreign_frame()

    def test_seek_table_without_checksums(self):
        check_no_checksums()

    def test_block_in_unreadable_memory(self):
        check_block_in_absent_memory()


if __name__ == "__main__":
    main()
