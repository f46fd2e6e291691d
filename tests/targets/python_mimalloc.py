"""A Python process for checking heapsnap on CPython's mimalloc (3.13+, run with
PYTHONMALLOC=mimalloc or mimalloc_debug) against what the interpreter itself says.

    PYTHONMALLOC=mimalloc python3.13 python_mimalloc.py RESULT_FILE

It keeps 5,000 Connection objects (each with a bytes buffer) in the module-global list `keep`,
a few other objects whose ids it records, and frees 2,000 Freed objects after recording their
ids (after it has written RESULT_FILE.before and read a byte from stdin: a snapshot taken in
between is the "before" of heapdiff). Then it writes to RESULT_FILE, as a Python literal: the addresses (id()) and type names of
the recorded live objects, the addresses of the freed ones, and the number of objects
gc.get_objects() lists per type (named `module.QualName`, builtins bare); and waits, without
allocating, until killed."""
import gc
import os
import sys

gc.disable()  # nothing is to be collected between the count and the snapshot


class Connection:
    def __init__(self, i):
        self.i = i
        self.buf = b"x" * 100


class Freed:
    # slots: instances of a size nothing made after they are freed has, so their blocks stay free
    __slots__ = tuple(f"a{k}" for k in range(21))

    def __init__(self, i):
        self.a0 = i


def type_name(cls):
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else module + "." + cls.__qualname__


with open(sys.argv[1] + ".before", "w"):
    pass
os.read(0, 1)  # the test may take the "before" snapshot here, then writes a byte
keep = [Connection(i) for i in range(5000)]
others = [{"k": 1, "j": 2}, (1.5, "tuple"), bytearray(b"abc" * 50), {1, 2, 3}, [1, 2, 3],
          "a string made at run time " + str(len(keep)), 12345678901234567890]
live = [(id(obj), type_name(type(obj))) for obj in keep[::50] + others]
live += [(id(c.buf), "bytes") for c in keep[::250]]
freed = [Freed(i) for i in range(2000)]
freed_ids = [id(obj) for obj in freed]
del freed  # each Freed goes back to mimalloc as its reference count drops

_fd = os.open(sys.argv[1] + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
_result = {"live": live, "freed": freed_ids, "gc": None}
repr(_result)  # the first repr of a container makes the thread's dict and its "Py_Repr" list


def count_tracked():
    counts = {}
    for obj in gc.get_objects():
        name = type_name(type(obj))
        counts[name] = counts.get(name, 0) + 1
    return counts


def serve():
    _result["gc"] = count_tracked()
    os.write(_fd, repr(_result).encode())
    os.close(_fd)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        os.read(0, 1)  # blocks until killed (stdin is a pipe nobody writes)


serve()
