#!/usr/bin/env python3
"""Seed 004's socketserver Unix stream client (sockit serve upper), Python 3.11.

usage: seed004_unix_client.py SOCKET_PATH DATA...
"""
import socket
import sys

TIMEOUT = 10  # seconds: never hang

FILE = sys.argv[1]
data = " ".join(sys.argv[2:])

with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
    sock.settimeout(TIMEOUT)
    sock.connect(FILE)
    sock.sendall(bytes(data + '\n', 'utf-8'))
    received = str(sock.recv(1024), 'utf-8')

print("Sent:     {}".format(data))
print("Received: {}".format(received))
