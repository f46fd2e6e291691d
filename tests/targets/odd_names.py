"""Objects whose type names and dict keys are hard to draw: quotes, brackets, <, >, |, #, &,
backslashes, a newline, a backtick, non-ASCII, text that looks like an entity code, and terminal
escapes that would colour the text, clear the screen and ring the bell. They are
held in a module-global dict of lists, so their retaining paths run through the odd keys too:
`module __main__.REGISTRY -> dict['a"b'] -> list[*] -> __main__.<lambda>`.

    python3 odd_names.py STATE_FILE

It makes 10 objects of each class, writes "1" to STATE_FILE; on SIGUSR1 it makes 200 more of
each and writes "2"."""
import signal
import sys
import time

NAMES = ["<lambda>", 'a"b', "x|y[z]{w}(v)", "caf\u00e9 \u20ac \u4e2d", "back\\slash #quot; &amp;",
         "two\nlines", "`tick` %% -->|end|", "\x1b[31mred\x1b[2J\x07"]
KEYS = ['a"b', "<k>", "p|q", "new\nline", "\u00fc\u20ac", "#35;", "]]", "esc\x1b[0m"]
CLASSES = [type(name, (), {}) for name in NAMES]
REGISTRY = {key: [] for key in KEYS}


def make(count):
    for cls, key in zip(CLASSES, KEYS):
        REGISTRY[key].extend(cls() for _ in range(count))


def write_state(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    import os
    os.replace(path + ".tmp", path)


def main():
    state = sys.argv[1]
    # the main thread's name (comm) with a terminal escape, as a process may set it
    with open("/proc/self/comm", "w") as comm:
        comm.write("odd\x1b[31m")
    make(10)
    grown = []
    signal.signal(signal.SIGUSR1, lambda *_: grown.append(True))
    write_state(state, "1")
    while True:
        if grown:
            grown.clear()
            make(200)
            write_state(state, "2")
        time.sleep(0.02)


if __name__ == "__main__":
    main()
