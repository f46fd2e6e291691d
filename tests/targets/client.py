"""Opens COUNT connections one after another to the server on 127.0.0.1:PORT, sends a few packets
on each (reading the echo), and closes it.

    python3 client.py PORT COUNT"""
import socket
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])
for i in range(count):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for packet in range(3):
            message = f"hello {i} {packet}".encode()
            sock.sendall(message)
            received = b""
            while len(received) < len(message):
                received += sock.recv(4096)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)
