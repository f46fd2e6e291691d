"""Opens COUNT connections one after another to the server on 127.0.0.1:PORT, sends a few packets
on each (reading the echo), and closes it.

    python3 client.py PORT COUNT

The tests import connect() from here."""
import socket
import sys


def connect(port, count):
    for i in range(count):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            for packet in range(3):
                message = f"hello {i} {packet}".encode()
                sock.sendall(message)
                received = b""
                while len(received) < len(message):
                    received += sock.recv(4096)
            # half-close, then wait for the server's close: once this returns, the server has
            # finished with the connection
            sock.shutdown(socket.SHUT_WR)
            sock.recv(1)


if __name__ == "__main__":
    connect(int(sys.argv[1]), int(sys.argv[2]))
