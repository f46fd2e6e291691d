"""A Python target whose memory is held by module globals, alone or together: DATA (a list of
dicts, each holding a list of one str) is bound to two globals when run with `alias`, and to one
otherwise; SOLO is a list held by one global only. It writes to the file named by its first
argument what it holds, from sys.getsizeof (a lower bound of the allocator's blocks), then sleeps.
"""
import json
import sys
import time

DATA = [{"tags": [str(i)]} for i in range(100_000)]
if "alias" in sys.argv[2:]:
    ALIAS = DATA
SOLO = [bytearray(100) for _ in range(2_000)]


def deep_size(root):
    seen, stack, total = set(), [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.values())  # keys: interned, shared with the code
        elif isinstance(obj, list):
            stack.extend(obj)
    return total


record = {"data_bytes": deep_size(DATA), "data_objects": 1 + 3 * len(DATA),
          "solo_bytes": deep_size(SOLO)}
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump(record, f)
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(3600)
