"""Load on an echo server: THREADS threads, each opening a connection, making 1 to 8 requests on
it (random bytes, 1 B to 48 KiB, sent whole, then the echo read until it is as long) and
closing it, again and again, until SIGTERM; each request is checked: the echo must be exactly the
bytes sent, with no reset, no early end and no timeout (TIMEOUT seconds for each step).

    python3 load_client.py PORT THREADS RESULT_FILE [TIMEOUT]

It prints "ready" once every thread has made a request. On SIGTERM each thread finishes the
request it is making (a request is never cut short by the client) and the totals are written to
RESULT_FILE as JSON: requests, connections, failed, failures (the first ten, each a string), the
slowest request in seconds."""
import json
import os
import random
import signal
import socket
import sys
import threading
import time

SIZES = [1, 17, 200, 1500, 4096, 20000, 49152]


class Worker(threading.Thread):
    def __init__(self, port, timeout, seed, stop):
        super().__init__(daemon=True)
        self.port, self.timeout, self.stop = port, timeout, stop
        self.random = random.Random(seed)
        self.requests = self.connections = self.failed = 0
        self.failures = []
        self.slowest = 0.0
        self.first = threading.Event()

    def request(self, sock):
        size = self.random.choice(SIZES)
        message = self.random.randbytes(self.random.randint(1, size))
        began = time.monotonic()
        sock.sendall(message)
        received = bytearray()
        while len(received) < len(message):
            data = sock.recv(65536)
            if not data:
                raise EOFError(f"connection closed after {len(received)} of {len(message)} bytes")
            received += data
        self.slowest = max(self.slowest, time.monotonic() - began)
        if received != message:
            raise ValueError(f"wrong answer: {len(received)} bytes differ from the "
                             f"{len(message)} sent")

    def fail(self, what):
        self.failed += 1
        if len(self.failures) < 10:
            self.failures.append(what)

    def run(self):
        while not self.stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            except OSError as e:
                self.fail(f"connect: {e!r}")
                continue
            self.connections += 1
            with sock:
                for _ in range(self.random.randint(1, 8)):
                    try:
                        self.request(sock)
                        self.requests += 1
                        self.first.set()
                    except (OSError, EOFError, ValueError) as e:
                        self.requests += 1
                        self.fail(f"request: {e!r}")
                        break
                    if self.stop.is_set():
                        break


def main():
    port, threads, result_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seed = os.getpid()
    workers = [Worker(port, timeout, seed * 100 + i, stop) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        while not worker.first.wait(0.1) and worker.is_alive():
            pass
    print("ready", flush=True)
    while not stop.wait(0.1):
        pass
    for worker in workers:
        worker.join()
    totals = {"requests": sum(w.requests for w in workers),
              "connections": sum(w.connections for w in workers),
              "failed": sum(w.failed for w in workers),
              "failures": [f for w in workers for f in w.failures][:10],
              "slowest": max(w.slowest for w in workers)}
    with open(result_file + ".tmp", "w") as f:
        json.dump(totals, f)
    os.rename(result_file + ".tmp", result_file)


if __name__ == "__main__":
    main()
