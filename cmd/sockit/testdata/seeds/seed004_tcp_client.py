#!/usr/bin/env python3
"""Seed 004's socketserver TCP client (sockit serve upper), Python 3.11.

usage: seed004_tcp_client.py HOST PORT DATA...
"""
import socket
import sys

TIMEOUT = 10  # seconds: never hang

HOST, PORT = sys.argv[1], int(sys.argv[2])
data = " ".join(sys.argv[3:])

# Create a socket (SOCK_STREAM means a TCP socket)
with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.settimeout(TIMEOUT)
    # Connect to server and send data
    sock.connect((HOST, PORT))
    sock.sendall(bytes(data + "\n", "utf-8"))

    # Receive data from the server and shut down
    received = str(sock.recv(1024), "utf-8")

print("Sent:     {}".format(data))
print("Received: {}".format(received))
