"""Seed 004's selectors echo server, ported to Python 3.11: host and port
from argv, listen backlog raised from 100 to 4096 (10,000 connections), the
per-message prints removed. Like the seed it reads with recv(1000) and
answers with send ("hope it won't block"). A UDP echo in the same selector
when a third argument "udp" is given.

usage: python3 selectors_echo.py HOST PORT [udp]
"""
import selectors
import socket
import sys

sel = selectors.DefaultSelector()


def accept(sock, mask):
    conn, addr = sock.accept()  # Should be ready
    conn.setblocking(False)
    sel.register(conn, selectors.EVENT_READ, read)


def read(conn, mask):
    try:
        data = conn.recv(1000)  # Should be ready
    except ConnectionError:
        data = b""
    if data:
        try:
            conn.send(data)  # Hope it won't block
        except (BlockingIOError, ConnectionError):
            pass
    else:
        sel.unregister(conn)
        conn.close()


def read_udp(sock, mask):
    try:
        data, addr = sock.recvfrom(65536)
    except BlockingIOError:
        return
    sock.sendto(data, addr)


host, port = sys.argv[1], int(sys.argv[2])
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((host, port))
sock.listen(4096)
sock.setblocking(False)
sel.register(sock, selectors.EVENT_READ, accept)
h, p = sock.getsockname()[:2]
print(f"listening tcp://{h}:{p}", flush=True)
if len(sys.argv) > 3 and sys.argv[3] == "udp":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((host, port))
    u.setblocking(False)
    sel.register(u, selectors.EVENT_READ, read_udp)
    h, p = u.getsockname()[:2]
    print(f"listening udp://{h}:{p}", flush=True)

try:
    while True:
        events = sel.select()
        for key, mask in events:
            callback = key.data
            callback(key.fileobj, mask)
except KeyboardInterrupt:
    pass
