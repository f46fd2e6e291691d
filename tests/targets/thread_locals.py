"""A Python target for what reports may show: REG maps secret-looking keys (values read from
memory) to Item objects, and 20 threads each hold 3 Items in a local of the same function. It
writes "ready" to the file named by its first argument, then sleeps."""
import os
import sys
import threading
import time


class Item:
    pass


REG = {f"SECRET-TOKEN-12345-key{i}": Item() for i in range(5)}
started = threading.Barrier(21)


def hold():
    held = [Item() for _ in range(3)]
    started.wait()
    time.sleep(3600)
    return held


for _ in range(20):
    threading.Thread(target=hold, daemon=True).start()
started.wait()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("ready")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(3600)
