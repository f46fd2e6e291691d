"""The fixed server of the three-snapshots test: like leaky_server.py's fixed variant (the
ConnectionHandler holds only a weakref.proxy of its Connection), but serving many connections at
once from a single-threaded selectors loop, and pruning each Connection from the module-global
_CONNECTIONS when it closes, so a burst of connections leaves nothing behind.

    python3 burst_server.py PORT_FILE STATUS_FILE

It listens on 127.0.0.1 (a free port, written to PORT_FILE) and echoes every packet back. After
every accept and every close it writes the number of live connections to STATUS_FILE, so a test
can wait until the server has seen its closes before it takes a snapshot. Both files are written
to a .tmp first and renamed, so a reader never sees half a number."""
import os
import resource
import selectors
import socket
import sys
import weakref

# keyed by the socket's fileno; a Connection leaves before its socket closes, so a reused fd
# never finds a stale entry
_CONNECTIONS = {}


class ConnectionHandler:
    def __init__(self, conn):
        self._conn = conn
        self.packets = 0

    def handle(self, data):
        self.packets += 1
        return data


class Connection:
    def __init__(self, sock, peer):
        self.sock = sock
        self.peer = peer
        self.buffer = bytearray(512)
        self._conn_handler = ConnectionHandler(weakref.proxy(self))
        # echo bytes the socket would not take yet; the shared empty bytes until that happens,
        # so an idle Connection has no extra object
        self.outgoing = b""


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def raise_fd_limit():
    """A test holds 1,000 connections open at once: more than the usual soft limit of 1024 fds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # an unlimited hard limit cannot be the soft one (the kernel caps it at fs.nr_open)
    for wanted in (hard, 1 << 20, 65536, 4096):
        if wanted == resource.RLIM_INFINITY or (hard != resource.RLIM_INFINITY and wanted > hard):
            continue
        if wanted <= soft:
            return
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return
        except (ValueError, OSError):
            continue


class Server:
    def __init__(self, status_file):
        self.status_file = status_file
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1024)
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, None)

    def report(self):
        write_atomically(self.status_file, str(len(_CONNECTIONS)))

    def accept(self):
        # drain the whole backlog: a burst arrives faster than one accept per select
        while True:
            try:
                sock, peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # out of fds, or a connection reset while queued: try again next time
            sock.setblocking(False)
            conn = Connection(sock, peer)
            _CONNECTIONS[sock.fileno()] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)
            self.report()

    def close(self, key):
        self.selector.unregister(key.fileobj)
        _CONNECTIONS.pop(key.fd, None)
        key.fileobj.close()
        self.report()

    def flush(self, key):
        """Sends what it can of the pending echo; False when the connection is broken."""
        conn = key.data
        try:
            sent = conn.sock.send(conn.outgoing)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return False
        conn.outgoing = conn.outgoing[sent:]
        # wait for room to write only while something waits to be sent
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outgoing else 0)
        if events != key.events:
            self.selector.modify(conn.sock, events, conn)
        return True

    def readable(self, key):
        conn = key.data
        try:
            data = conn.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # a reset: the connection is over, as with EOF
        if not data:
            self.close(key)
            return
        conn.outgoing += conn._conn_handler.handle(data)
        if not self.flush(key):
            self.close(key)

    def dispatch(self, ready):
        # in a function of its own: a loop variable in run would keep the last closed
        # Connection alive (through its selector key) while run waits in the next select
        for key, events in ready:
            if key.data is None:
                self.accept()
                continue
            if events & selectors.EVENT_WRITE:
                if not self.flush(key):
                    self.close(key)
                    continue
            if events & selectors.EVENT_READ:
                self.readable(key)

    def run(self):
        while True:
            self.dispatch(self.selector.select())


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: python3 burst_server.py PORT_FILE STATUS_FILE")
    raise_fd_limit()
    server = Server(sys.argv[2])
    server.report()
    write_atomically(sys.argv[1], str(server.listener.getsockname()[1]))
    server.run()


if __name__ == "__main__":
    main()
