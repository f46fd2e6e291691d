"""The structure-aware damage campaign (tests/fuzz/mutate_snapshots.py) for a minute: one field of
a snapshot's structure changed at a time (ELF header, program header, note header, seek table,
compressed frame), and `heapsnap summary` must refuse it (exit 2), give the original's answer, or
warn; a different answer in silence, a crash, a sanitizer report, a hang or more than 1 GiB fails.
The snapshot is known_state's, captured here; the seed is printed, to replay a failure.
bench/mutations runs the campaign for as long as asked."""
import os
import struct
import subprocess
import sys

from common import HEAPSNAP, Case, check, heapsnap, main, path, start_known_state

CAMPAIGN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "mutate_snapshots.py")
_snapshot = []


def snapshot():
    """known_state's snapshot, captured once for every case."""
    if not _snapshot:
        process, record = start_known_state()
        _snapshot.append(path("mutations.snap"))
        heapsnap("capture", str(record["pid"]), "-o", _snapshot[0])
        process.kill()
    return _snapshot[0]


def check_note_type_changed(old_type, new_type):
    # what one random campaign once found: a HEAPSNAP note's type changed into another of heapsnap's
    # own (the info note made a second threads note: the snapshot read as a foreign core, its answer
    # changed in silence; the layout note made a second threads note) is refused
    sys.path.insert(0, os.path.dirname(CAMPAIGN))
    from mutate_snapshots import compress, notes_of
    core = subprocess.run(["zstd", "-qdc", snapshot()], capture_output=True, check=True).stdout
    data = bytearray(core)
    found = [at for at in notes_of(core) if core[at + 12:at + 20] == b"HEAPSNAP" and
             struct.unpack_from("<I", core, at + 8)[0] == old_type]
    check(len(found) == 1, f"the snapshot has one HEAPSNAP note of type {old_type}")
    struct.pack_into("<I", data, found[0] + 8, new_type)
    damaged = path(f"note-{old_type}-as-{new_type}.snap")
    with open(damaged, "wb") as out:
        out.write(compress(bytes(data), path("mutations-work")))
    refused = heapsnap("summary", damaged, check_ok=False)
    check(refused.returncode == 2 and "is damaged" in refused.stderr,
          f"a HEAPSNAP note of type {old_type} made one of type {new_type} is refused: "
          f"{refused.returncode} {refused.stderr!r}")


def check_info_note_name_size_changed(flip):
    # what another random campaign found: the info note's name size with one bit flipped put every
    # note after it out of step, the layout note among them, and the snapshot read as a foreign
    # core, its threads' names gone in silence; a name that is not one string is refused
    sys.path.insert(0, os.path.dirname(CAMPAIGN))
    from mutate_snapshots import compress, notes_of
    core = subprocess.run(["zstd", "-qdc", snapshot()], capture_output=True, check=True).stdout
    data = bytearray(core)
    found = [at for at in notes_of(core) if core[at + 12:at + 20] == b"HEAPSNAP" and
             struct.unpack_from("<I", core, at + 8)[0] == 1]
    check(len(found) == 1, "the snapshot has one HEAPSNAP info note")
    namesz = struct.unpack_from("<I", core, found[0])[0]
    struct.pack_into("<I", data, found[0], namesz ^ flip)
    damaged = path(f"info-namesz-{flip}.snap")
    with open(damaged, "wb") as out:
        out.write(compress(bytes(data), path("mutations-work")))
    refused = heapsnap("summary", damaged, check_ok=False)
    check(refused.returncode == 2 and "is not one string" in refused.stderr,
          f"the info note's name size {namesz} made {namesz ^ flip} is refused: "
          f"{refused.returncode} {refused.stderr!r}")


class Mutations(Case):
    def test_info_note_name_size_grown(self):
        check_info_note_name_size_changed(1 << 9)

    def test_info_note_name_size_shrunk(self):
        check_info_note_name_size_changed(1 << 3)

    def test_info_note_made_threads_note(self):
        check_note_type_changed(1, 3)

    def test_layout_note_made_threads_note(self):
        check_note_type_changed(7, 3)

    def test_campaign(self):
        result = subprocess.run([sys.executable, CAMPAIGN, HEAPSNAP, snapshot(), path("mutations"),
                                 "--seconds", "60"], capture_output=True, text=True, timeout=600)
        print(result.stdout)
        check(result.returncode == 0, f"the campaign found what it must not: {result.stdout[-3000:]} "
                                      f"{result.stderr[-1000:]}")
        counts = result.stdout.splitlines()[0] if result.stdout else ""
        check(" refused" in counts and int(counts.split()[0]) >= 20,
              f"the campaign ran (at least 20 mutated snapshots): {counts!r}")


if __name__ == "__main__":
    main()
