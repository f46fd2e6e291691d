"""A target for the HTML report's escaping test: instances of a class whose name is made of what
HTML treats specially (<lambda>, quotes, &, a closing script tag, an element with a handler), kept
in a module-global list. Each line on stdin ("N") adds N more; after each, the count held so far is
written to the file named by the first argument (written whole, then renamed).

    python3 odd_names.py READY_FILE"""
import os
import sys

Odd = type("<lambda> & \"quoted\" 'single' </script><img src=x onerror=alert(1)>", (), {})
HELD = []


def grow(count, ready):
    HELD.extend(Odd() for _ in range(count))
    with open(ready + ".tmp", "w") as f:
        f.write(str(len(HELD)))
    os.rename(ready + ".tmp", ready)


def main():
    ready = sys.argv[1]
    grow(100, ready)
    for line in sys.stdin:
        grow(int(line), ready)


if __name__ == "__main__":
    main()
