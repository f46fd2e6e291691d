"""A prefork server, as gunicorn, uwsgi or celery run one: the parent warms a cache (malloc'd
buffers, so that the heap the worker inherits is large), opens the listening socket, then forks
the worker that serves with leaky_server.py's code (its Connections leak into the module-global
_CONNECTIONS). Writes "WORKER_PID PORT" to the file named by its first argument.

    python3 prefork_server.py INFO_FILE"""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import leaky_server  # noqa: E402

CACHE = [bytearray(4000 + i % 64) for i in range(5000)]

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
worker = os.fork()
if worker == 0:
    leaky_server.serve(listener, "global")
    os._exit(0)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"{worker} {listener.getsockname()[1]}")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
try:
    os.waitpid(worker, 0)
finally:
    try:
        os.kill(worker, 9)
    except ProcessLookupError:
        pass
