"""The leaking TCP server of the leaking-server story (docs/design/leaking-server.md): every
accepted connection makes a Connection with a ConnectionHandler that points back to it (a reference
cycle), and the Connection is appended to the module-global _CONNECTIONS and never removed.

    python3 leaky_server.py PORT_FILE [--variant global|class|cycle|fixed|bounded]

The bounded variant is a cache with a bound, not a leak: it keeps each Connection (without the
cycle) in _CONNECTIONS until BOUND are kept, then empties the list, so its memory rises and falls
back to its floor.

It listens on 127.0.0.1 (a free port, written to PORT_FILE) and serves one connection at a time:
reads until the client closes, echoing each packet back."""
import gc
import socket
import sys
import weakref

_CONNECTIONS = []
BOUND = 120


class ConnectionHandler:
    def __init__(self, conn):
        self._conn = conn
        self.packets = 0

    def handle(self, data):
        self.packets += 1
        return data


class Connection:
    registry = {}

    def __init__(self, sock, peer, variant):
        self.sock = sock
        self.peer = peer
        self.buffer = bytearray(512)
        if variant in ("fixed", "bounded"):
            self._conn_handler = ConnectionHandler(weakref.proxy(self))
        else:
            self._conn_handler = ConnectionHandler(self)


def serve(listener, variant):
    while True:
        sock, peer = listener.accept()
        conn = Connection(sock, peer, variant)
        if variant == "global":
            _CONNECTIONS.append(conn)
        elif variant == "bounded":
            if len(_CONNECTIONS) >= BOUND:
                _CONNECTIONS.clear()
            _CONNECTIONS.append(conn)
        elif variant == "class":
            Connection.registry[peer] = conn
        try:
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                sock.sendall(conn._conn_handler.handle(data))
        finally:
            sock.close()
            if variant == "fixed" and conn in _CONNECTIONS:
                _CONNECTIONS.remove(conn)
        del conn


def main():
    variant = "global"
    if "--variant" in sys.argv:
        variant = sys.argv[sys.argv.index("--variant") + 1]
    if variant == "cycle":
        gc.disable()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(listener.getsockname()[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    serve(listener, variant)


if __name__ == "__main__":
    main()
