"""A Python process in which a dict that is cyclic garbage in one snapshot is freed and its memory
handed to a new dict, held by a module global, before the next: the same address, the same type,
but another object, which heapdiff must count as new and not as a container that lived through and
grew.

    python3 reused_dict.py RESULT_FILE

It makes GARBAGE dicts of 3 items, each in a cycle with itself, and lets go of them (the
collector is off, so they wait for it), then writes their addresses to RESULT_FILE and waits. On
SIGUSR1 it collects them and makes NEW dicts of 27 items, kept in the module global KEPT, then writes to RESULT_FILE.grown the addresses of the new dicts that took a garbage
dict's place (there are some: dicts freed last are handed out first), and waits."""
import gc
import os
import signal
import sys
import time

GARBAGE = 50
NEW = 400  # (more than the interpreter's free list of dicts holds: then freed blocks are reused)
gc.disable()
KEPT = []
grow = False


def on_signal(number, frame):
    global grow
    grow = True


signal.signal(signal.SIGUSR1, on_signal)


def write(name, text):
    with open(name + ".tmp", "w") as out:
        out.write(text)
    os.rename(name + ".tmp", name)


def make_garbage():
    addresses = []
    for i in range(GARBAGE):
        d = {"a": i, "b": i + 1}
        d["self"] = d
        addresses.append(id(d))
    return addresses


garbage = make_garbage()
write(sys.argv[1], repr(garbage))
while not grow:
    time.sleep(0.02)
gc.collect()
for i in range(NEW):
    KEPT.append({f"key{k}": k for k in range(27)})
reused = [id(d) for d in KEPT if id(d) in set(garbage)]
write(sys.argv[1] + ".grown", repr(reused))
while True:
    time.sleep(1)
