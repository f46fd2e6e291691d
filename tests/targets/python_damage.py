"""A Python process that damages some of its own objects through ctypes, for checking that heapsnap
warns about each damaged object by its address and still finds everything else.

    python3 python_damage.py RESULT_FILE

At module level it builds ITEMS, a list of instances of Item; LISTS, a list of lists of Inner;
TABLES, a list of dicts of str to Keyed. It writes RESULT_FILE + ".before" and waits for SIGUSR1
(a snapshot before the damage), then damages chosen objects by writing their memory:

- the type pointer (ob_type) of three Items: 0, an unmapped address, the address of a bytes object
  (a heap block that is no type);
- the reference count of two Items: 0 and 2^50;
- the collector's next link of one Item (in its GC header): an unmapped address, which breaks the
  collector's list there;
- one inner list's item array pointer (ob_item): an unmapped address; another's size (ob_size):
  far beyond its item array;
- one dict's keys table pointer (ma_keys): an unmapped address.

The collector is off and nothing touches a damaged object again, so the process lives on. Then it
writes RESULT_FILE, as a Python literal: the addresses of the damaged objects (of the object, as
id() gives them) by kind, and the number of instances of each class it holds (undamaged, and all),
and waits until killed. Runs on 3.8 and later."""
import ctypes
import gc
import os
import signal
import sys

gc.disable()  # the collector must never walk the damaged objects


class Item:
    def __init__(self, n):
        self.n = n


class Inner:
    pass


class Keyed:
    pass


ITEM_COUNT = 300
LIST_COUNT, PER_LIST = 10, 20
TABLE_COUNT, PER_TABLE = 6, 12

ITEMS = [Item(i) for i in range(ITEM_COUNT)]
LISTS = [[Inner() for _ in range(PER_LIST)] for _ in range(LIST_COUNT)]
TABLES = [{f"key{k}": Keyed() for k in range(PER_TABLE)} for _ in range(TABLE_COUNT)]
NOT_A_TYPE = b"x" * 200  # a heap block: the bytes object's own

WORD = ctypes.sizeof(ctypes.c_void_p)
UNMAPPED = 0xdead0000  # below any mapping of a 64-bit process


def word_at(address):
    return ctypes.c_ssize_t.from_address(address)


def write_record(name, record):
    with open(name + ".tmp", "w") as out:
        out.write(repr(record))
    os.rename(name + ".tmp", name)


def wait_for_signal():
    while True:
        os.read(0, 1)  # blocks until a signal or until killed (stdin is a pipe nobody writes)


class Damage(Exception):
    pass


def damage(signal_number, frame):
    raise Damage()


signal.signal(signal.SIGUSR1, damage)
counts = {"Item": ITEM_COUNT, "Inner": LIST_COUNT * PER_LIST, "Keyed": TABLE_COUNT * PER_TABLE}
write_record(sys.argv[1] + ".before", {"counts": counts})
try:
    wait_for_signal()
except Damage:
    pass

# every address is taken before any damage: id() holds no reference past its call
type_zero, type_unmapped, type_not_a_type, refcount_zero, refcount_huge, links_broken = (
    id(ITEMS[i]) for i in (3, 50, 120, 200, 250, 280))
list_items_unmapped, list_size_huge = id(LISTS[2]), id(LISTS[7])
dict_keys_unmapped = id(TABLES[4])
not_a_type = id(NOT_A_TYPE)
# PyListObject: ob_refcnt, ob_type, ob_size, ob_item, allocated; PyDictObject: ob_refcnt, ob_type,
# ma_used, ma_version_tag, ma_keys (3.8 to 3.13 alike)
word_at(type_zero + WORD).value = 0
word_at(type_unmapped + WORD).value = UNMAPPED
word_at(type_not_a_type + WORD).value = not_a_type
word_at(refcount_zero).value = 0
word_at(refcount_huge).value = 1 << 50
# the collector's header is the two words before the object: its next link, then its previous
word_at(links_broken - 2 * WORD).value = UNMAPPED
word_at(list_items_unmapped + 3 * WORD).value = UNMAPPED
word_at(list_size_huge + 2 * WORD).value = 1 << 24
word_at(dict_keys_unmapped + 4 * WORD).value = UNMAPPED

write_record(sys.argv[1], {
    "damaged_type": [type_zero, type_unmapped, type_not_a_type],
    "damaged_refcount": [refcount_zero, refcount_huge],
    "damaged_links": [links_broken],
    "damaged_list": [list_items_unmapped, list_size_huge],
    "damaged_dict": [dict_keys_unmapped],
    # what is still whole: each class's instances less those whose type is damaged
    "typed": {"Item": ITEM_COUNT - 3, "Inner": LIST_COUNT * PER_LIST,
              "Keyed": TABLE_COUNT * PER_TABLE},
})
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
wait_for_signal()
