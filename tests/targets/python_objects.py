"""A Python process holding known structures, for checking what heapsnap finds in its heap against
what the interpreter itself says.

    python3 python_objects.py RESULT_FILE

It builds instances of a plain class, of a __slots__ class, of classes with many and with few
attributes, dicts, lists, tuples, bytes, a module-global list of instances, a class-attribute dict,
and reference-cycle pairs it makes unreachable with the collector disabled (one of them with its
address left behind in a C buffer, as a stale pointer in a parser's arena or a C structure would
be: garbage all the same). Then it writes to
RESULT_FILE, as a Python literal: the number of objects gc.get_objects() lists per type (named
`module.QualName`, builtins bare) and the numbers it created, and waits, without allocating, until
killed; on SIGUSR1 (after the snapshot) it writes what the collector finds to be garbage. Runs on Python 2.7 syntax-free 3.x (3.8 and later)."""
import ctypes
import gc
import os
import signal
import sys

gc.disable()  # the cycles below must stay, unreachable, for heapsnap to find


class Plain:
    def __init__(self, number):
        self.number = number
        self.label = "plain-%d" % number


class Slotted:
    __slots__ = ("left", "right")

    def __init__(self, number):
        self.left = number
        self.right = [number]


class Many:
    def __init__(self, number):
        for k in range(24):
            setattr(self, "attribute_%d" % k, number + k)


class Few:
    def __init__(self):
        self.only = None


class Held:
    """Held only by a local variable of the frame that waits."""


class Registered:
    registry = {}  # a class attribute holding instances

    def __init__(self, key):
        Registered.registry[key] = self


class Connection:
    def __init__(self, number):
        self.number = number
        self._conn_handler = ConnectionHandler(self)


class ConnectionHandler:
    def __init__(self, conn):
        self._conn = conn


CREATED = {"Plain": 1500, "Slotted": 700, "Many": 40, "Few": 900, "Registered": 300,
           "cycles": 250, "bytes": 2000, "float": 1200}

_GLOBAL_LIST = [Plain(i) for i in range(CREATED["Plain"])]
_SLOTTED = [Slotted(i) for i in range(CREATED["Slotted"])]
_MANY = tuple(Many(i) for i in range(CREATED["Many"]))
_FEW = {i: Few() for i in range(CREATED["Few"])}
for i in range(CREATED["Registered"]):
    Registered("peer-%d" % i)
_BYTES = [("payload-%d" % i).encode() * 3 for i in range(CREATED["bytes"])]
_FLOATS = [i + 0.5 for i in range(CREATED["float"])]
for i in range(CREATED["cycles"]):
    Connection(i)  # unreachable at once: only the cycle holds the pair


class Stale:
    def __init__(self):
        self.other = None


# a C buffer (malloc'd memory a ctypes object owns) that still holds a pair's address after the
# pair became garbage: a pointer, but no reference (it is counted in no reference count)
_STALE_BUFFER = ctypes.create_string_buffer(1024)


def _leave_stale_pointer():
    first, second = Stale(), Stale()
    first.other, second.other = second, first
    ctypes.c_void_p.from_buffer(_STALE_BUFFER).value = id(first)


_leave_stale_pointer()


def type_name(cls):
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else module + "." + cls.__qualname__


def count_tracked():
    counts = {}
    for obj in gc.get_objects():
        name = type_name(type(obj))
        counts[name] = counts.get(name, 0) + 1
    return counts


def count_generations():
    """Per generation, the tracked objects by type (the lists get_objects makes are left out)."""
    counts = []
    for generation in range(3):
        by_type = {}
        for obj in gc.get_objects(generation):
            if type(obj) is not list:
                name = type_name(type(obj))
                by_type[name] = by_type.get(name, 0) + 1
        counts.append(by_type)
    return counts


# made before counting, and written with os.write: nothing made after the count survives it but
# the counts (a dict of str to int, which the collector does not track); the result dict holds a
# list so that the collector tracks it from the start, not from when the counts go in
_fd = os.open(sys.argv[1] + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
_result = {"gc": None, "generations": None, "created": CREATED, "tracked": []}
repr(_result)  # the first repr of a container makes the thread's dict and its "Py_Repr" list


def report_garbage(signal_number, frame):
    """On SIGUSR1, after the snapshot: what the cyclic collector finds to be garbage, by type (to
    RESULT_FILE.garbage), kept alive in gc.garbage so nothing is freed while it counts."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    counts = {}
    for obj in gc.garbage:
        name = type_name(type(obj))
        counts[name] = counts.get(name, 0) + 1
    with open(sys.argv[1] + ".garbage.tmp", "w") as out:
        out.write(repr(counts))
    os.rename(sys.argv[1] + ".garbage.tmp", sys.argv[1] + ".garbage")


signal.signal(signal.SIGUSR1, report_garbage)


def serve_forever():
    held = Held()  # noqa: F841 (a frame's local: its root is the frame)
    _result["generations"] = count_generations()  # first: its list is then counted by the next
    _result["gc"] = count_tracked()
    os.write(_fd, repr(_result).encode())
    os.close(_fd)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        os.read(0, 1)  # blocks until killed (stdin is a pipe nobody writes)


serve_forever()
