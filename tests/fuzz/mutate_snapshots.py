#!/usr/bin/env python3
"""The damage campaign, structure-aware: takes a snapshot, changes one field of its structure,
and holds `heapsnap summary` to one of three answers. The fields are those a writer's bug, a
disk or a copy could garble and that a reader must check: the ELF header, a program header, a note
header, a seek table entry or its footer, a byte of a compressed frame. (A change inside a note's
payload or inside the memory's bytes is a different process state, not damage: it is not made
here.)

Each mutated snapshot must give
    refused  exit 2, with the reason on stderr;
    same     exit 0 and the same answer as the original (the JSON summary, its file name aside);
    warned   exit 0, another answer, and a warning the original had not.
Anything else fails the campaign: a different answer in silence, a crash, a sanitizer report, a
hang (over 20 s) or more than 1 GiB of memory. Prints the count of each outcome, and each failure
with the mutation that caused it (the mutated file is kept).

    mutate_snapshots.py HEAPSNAP SNAPSHOT WORK_DIR [--seconds N] [--seed N]

tests/e2e/test_mutations.py runs it for a minute in CI; bench/mutations for as long as asked."""
import argparse
import json
import os
import random
import resource
import struct
import subprocess
import sys
import time

SKIPPABLE_MAGIC = 0x184D2A5E
SEEKABLE_MAGIC = 0x8F92EAB1
FRAME_SIZE = 4 << 20
SANITIZER_SIGNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def compress(core, work):
    """The core as heapsnap writes it: 4 MiB zstd frames with checksums, then a seek table with
    a checksum per frame (the frame's own, its last four bytes)."""
    out, table = b"", b""
    for start in range(0, len(core), FRAME_SIZE):
        chunk = core[start:start + FRAME_SIZE]
        frame = subprocess.run(["zstd", "-q", "-c", "--check"], input=chunk, check=True,
                               capture_output=True).stdout
        out += frame
        table += struct.pack("<II", len(frame), len(chunk)) + frame[-4:]
    count = len(table) // 12
    return out + struct.pack("<II", SKIPPABLE_MAGIC, 12 * count + 9) + table + \
        struct.pack("<IBI", count, 0x80, SEEKABLE_MAGIC)


def notes_of(core):
    """(offset, namesz, descsz) of each note of the core's PT_NOTE segments."""
    phoff, = struct.unpack_from("<Q", core, 0x20)
    phnum, = struct.unpack_from("<H", core, 0x38)
    notes = []
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", core, phoff + 56 * i)
        if p_type != 4:
            continue
        at = p_offset
        while at + 12 <= p_offset + p_filesz:
            namesz, descsz, _ = struct.unpack_from("<III", core, at)
            notes.append(at)
            at += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return notes


def flip(data, offset, width, generator):
    """Flips one bit of the `width`-byte field at `offset`, or sets it to a value that matters
    (0, all ones, a large number); says which."""
    choice = generator.random()
    if choice < 0.6:
        bit = generator.randrange(width * 8)
        data[offset + bit // 8] ^= 1 << (bit % 8)
        return f"bit {bit}"
    value = generator.choice([0, (1 << (8 * width)) - 1, 1 << (8 * width - 2), 1])
    data[offset:offset + width] = value.to_bytes(width, "little")
    return f"set to {value:#x}"


ELF_FIELDS = [("e_ident", 0, 1), ("e_type", 0x10, 2), ("e_machine", 0x12, 2), ("e_phoff", 0x20, 8),
              ("e_phentsize", 0x36, 2), ("e_phnum", 0x38, 2)]
PHDR_FIELDS = [("p_type", 0, 4), ("p_flags", 4, 4), ("p_offset", 8, 8), ("p_vaddr", 16, 8),
               ("p_filesz", 32, 8), ("p_memsz", 40, 8)]
NOTE_FIELDS = [("namesz", 0, 4), ("descsz", 4, 4), ("type", 8, 4)]


def mutate(core, snapshot, generator, work):
    """One mutated snapshot's bytes, and what was changed."""
    kind = generator.choice(["elf", "phdr", "note", "table", "frame"])
    if kind in ("elf", "phdr", "note"):
        data = bytearray(core)
        if kind == "elf":
            name, offset, width = generator.choice(ELF_FIELDS)
            if name == "e_ident":
                offset = generator.randrange(16)
            what = f"ELF header {name}"
        elif kind == "phdr":
            phoff, = struct.unpack_from("<Q", core, 0x20)
            phnum, = struct.unpack_from("<H", core, 0x38)
            index = generator.randrange(phnum)
            name, field, width = generator.choice(PHDR_FIELDS)
            offset = phoff + 56 * index + field
            what = f"program header {index} {name}"
        else:
            notes = notes_of(core)
            index = generator.randrange(len(notes))
            name, field, width = generator.choice(NOTE_FIELDS)
            offset = notes[index] + field
            what = f"note {index} {name}"
        how = flip(data, offset, width, generator)
        return compress(bytes(data), work), f"{what}: {how}"
    data = bytearray(snapshot)
    count, = struct.unpack_from("<I", snapshot, len(snapshot) - 9)
    table = len(snapshot) - 9 - 12 * count
    if kind == "table":
        if generator.random() < 0.2:
            offset = len(snapshot) - 9 + generator.choice([0, 4, 5])
            width = 1 if offset == len(snapshot) - 5 else 4
            what = "seek table footer"
        else:
            index = generator.randrange(count)
            name, field = generator.choice([("compressed size", 0), ("decompressed size", 4),
                                            ("checksum", 8)])
            offset, width = table + 12 * index + field, 4
            what = f"seek table entry {index} {name}"
        return bytes(data), f"{what}: {flip(data, offset, width, generator)}"
    offset = generator.randrange(table - 8)
    bit = generator.randrange(8)
    data[offset] ^= 1 << bit
    return bytes(data), f"compressed byte {offset} bit {bit}"


def answer(heapsnap, snapshot):
    """The summary's outcome: (exit code, JSON or None, stderr, seconds), or None on a hang."""
    began = time.monotonic()
    try:
        result = subprocess.run([heapsnap, "summary", "--format", "json", snapshot],
                                capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return None
    summary = None
    if result.returncode == 0:
        try:
            summary = json.loads(result.stdout)
        except ValueError:
            pass
    return result.returncode, summary, result.stderr, time.monotonic() - began


def comparable(summary):
    """The answer without what names the file."""
    summary = dict(summary)
    summary.pop("file", None)
    summary.pop("warnings", None)
    return json.dumps(summary, sort_keys=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("heapsnap")
    parser.add_argument("snapshot")
    parser.add_argument("work")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    options = parser.parse_args()
    os.makedirs(options.work, exist_ok=True)
    snapshot = open(options.snapshot, "rb").read()
    core = subprocess.run(["zstd", "-q", "-d", "-c", options.snapshot], check=True,
                          capture_output=True).stdout
    original = answer(options.heapsnap, options.snapshot)
    if original is None or original[0] != 0 or original[1] is None:
        sys.exit(f"the original snapshot is not analysed: {original}")
    baseline, baseline_warnings = comparable(original[1]), set(original[1]["warnings"])
    generator = random.Random(options.seed)
    counts = {"refused": 0, "same": 0, "warned": 0}
    failures = []
    deadline = time.monotonic() + options.seconds
    tried = 0
    while time.monotonic() < deadline:
        tried += 1
        data, what = mutate(core, snapshot, generator, options.work)
        mutated = os.path.join(options.work, f"mutated-{tried}.snap")
        with open(mutated, "wb") as f:
            f.write(data)
        outcome = answer(options.heapsnap, mutated)
        failure = None
        if outcome is None:
            failure = "a hang (over 20 s)"
        else:
            code, summary, errors, _ = outcome
            if any(sign in errors for sign in SANITIZER_SIGNS):
                failure = "a sanitizer report: " + errors[-600:]
            elif code == 2 and errors.strip():
                counts["refused"] += 1
            elif code == 0 and summary is not None and comparable(summary) == baseline:
                counts["same"] += 1
            elif code == 0 and summary is not None and set(summary["warnings"]) - baseline_warnings:
                counts["warned"] += 1
            elif code == 0:
                failure = "a different answer in silence"
            else:
                failure = f"exit {code}: {errors[-600:]}"
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if failure is None and peak_mib > 1024:
            failure = f"{peak_mib:.0f} MiB of memory"
        if failure:
            failures.append(f"{what}: {failure} ({mutated})")
        else:
            os.unlink(mutated)
    print(f"{tried} mutated snapshots (seed {options.seed}): {counts['refused']} refused, "
          f"{counts['same']} the same answer, {counts['warned']} warned, {len(failures)} failed")
    for failure in failures:
        print("FAIL:", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
