"""A Python process whose objects are held by containers implemented in C and by subclasses of the
built-in containers, for checking that heapsnap gives their items a path from the module global
that holds them (not `external references to T`).

    python3 python_containers.py RESULT_FILE

At module level it builds a deque, an OrderedDict, a defaultdict of lists, the caches of two
functools.lru_cache functions (unbounded, and bounded: its entries are linked list elements), a
Python subclass of each of dict, list and set, and a C object that holds a Python object in a field
its type does not list in tp_members (itertools.repeat) and one whose tp_members name it
(functools.partial); each
holds instances of a class of its own. An anonymous mapping holds a stale pointer to the deque's
first block, which must stay the deque's part. Then it writes to RESULT_FILE, as a Python literal: the
number of instances of each class gc.get_objects() lists and the number each container holds by
its own account (len), and waits, without allocating, until killed; on SIGUSR1 the deque and the
OrderedDict grow (RESULT_FILE.grown: their lengths). Runs on 3.8 and later."""
import collections
import ctypes
import functools
import gc
import itertools
import os
import signal
import sys

gc.disable()  # nothing below is garbage; the counts must not move while heapsnap looks


class InDeque:
    pass


class InOrderedDict:
    pass


class InDefaultDict:
    pass


class InCache:
    pass


class InBoundedCache:
    pass


class InDictSubclass:
    pass


class InListSubclass:
    pass


class InSetSubclass:
    pass


class InRepeat:
    pass


class InPartial:
    pass


class InDequeSubclass:
    pass


class InSubclassAttribute:
    pass


class DequeSubclass(collections.deque):
    pass


class DictSubclass(dict):
    pass


class ListSubclass(list):
    pass


class SetSubclass(set):
    pass


CREATED = {"InDeque": 1000, "InOrderedDict": 700, "InDefaultDict": 900, "InCache": 600,
           "InBoundedCache": 200, "InDictSubclass": 500, "InListSubclass": 400,
           "InSetSubclass": 300, "InRepeat": 1, "InPartial": 1, "InDequeSubclass": 100,
           "InSubclassAttribute": 1}

DQ = collections.deque(InDeque() for _ in range(CREATED["InDeque"]))
OD = collections.OrderedDict((i, InOrderedDict()) for i in range(CREATED["InOrderedDict"]))
DD = collections.defaultdict(list)
for i in range(CREATED["InDefaultDict"]):
    DD[i % 100].append(InDefaultDict())


@functools.lru_cache(maxsize=None)
def cached(number):
    return InCache()


@functools.lru_cache(maxsize=256)
def bounded(number):
    return InBoundedCache()


for i in range(CREATED["InCache"]):
    cached(i)
for i in range(CREATED["InBoundedCache"]):
    bounded(i)

DICT_SUBCLASS = DictSubclass((i, InDictSubclass()) for i in range(CREATED["InDictSubclass"]))
LIST_SUBCLASS = ListSubclass(InListSubclass() for _ in range(CREATED["InListSubclass"]))
SET_SUBCLASS = SetSubclass(InSetSubclass() for _ in range(CREATED["InSetSubclass"]))
DEQUE_SUBCLASS = DequeSubclass(InDequeSubclass() for _ in range(CREATED["InDequeSubclass"]))
DEQUE_SUBCLASS.note = InSubclassAttribute()  # an attribute of a subclass of a C container
# a stale pointer to the deque's first block in memory no model reads (an anonymous mapping):
# the block is still the deque's part, on its path (leftblock is at 24 in 3.8 to 3.13)
# (by libc: Python's mmap maps anonymous memory shared, and MAP_NORESERVE keeps the kernel from
# merging the mapping with a neighbour that holds allocations)
_libc = ctypes.CDLL(None)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                       ctypes.c_long]
STALE = _libc.mmap(None, 8192, 3, 0x02 | 0x20 | 0x4000, -1, 0)  # rw, private anonymous noreserve
ctypes.c_uint64.from_address(STALE).value = ctypes.c_uint64.from_address(id(DQ) + 24).value
REPEAT = itertools.repeat(InRepeat(), 3)  # repeatobject.element: no tp_members
PARTIAL = functools.partial(print, InPartial())  # partial.args: in tp_members


def type_name(cls):
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else module + "." + cls.__qualname__


def count_instances():
    counts = {}
    for obj in gc.get_objects():
        name = type_name(type(obj))
        if name.startswith("__main__.In"):
            counts[name] = counts.get(name, 0) + 1
    return counts


_fd = os.open(sys.argv[1] + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
_result = {"created": CREATED, "gc": None,
           "held": {"DQ": len(DQ), "OD": len(OD), "DD": sum(len(v) for v in DD.values()),
                    "cached": cached.cache_info().currsize,
                    "bounded": bounded.cache_info().currsize,
                    "DICT_SUBCLASS": len(DICT_SUBCLASS), "LIST_SUBCLASS": len(LIST_SUBCLASS),
                    "SET_SUBCLASS": len(SET_SUBCLASS)},
           # the deque's blocks, as the deque counts them (deque_sizeof: its struct and blocks)
           "deque_blocks": (sys.getsizeof(DQ) - 16 - collections.deque.__basicsize__) // 528}


GROWTH = 50  # items added to the deque and to the OrderedDict on SIGUSR1


def grow(signal_number, frame):
    """On SIGUSR1, after a first snapshot: the deque and the OrderedDict grow (heapdiff's grown
    containers), then RESULT_FILE.grown says so."""
    for i in range(GROWTH):
        DQ.append(InDeque())
        OD[CREATED["InOrderedDict"] + i] = InOrderedDict()
    with open(sys.argv[1] + ".grown.tmp", "w") as out:
        out.write(repr({"DQ": len(DQ), "OD": len(OD)}))
    os.rename(sys.argv[1] + ".grown.tmp", sys.argv[1] + ".grown")


signal.signal(signal.SIGUSR1, grow)


def serve_forever():
    _result["gc"] = count_instances()
    os.write(_fd, repr(_result).encode())
    os.close(_fd)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        os.read(0, 1)  # blocks until killed (stdin is a pipe nobody writes)


serve_forever()
