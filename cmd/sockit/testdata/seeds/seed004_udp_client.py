#!/usr/bin/env python3
"""Seed 004's socketserver UDP client (sockit serve upper), Python 3.11.

usage: seed004_udp_client.py HOST PORT DATA...
"""
import socket
import sys

TIMEOUT = 10  # seconds: never hang

HOST, PORT = sys.argv[1], int(sys.argv[2])
data = " ".join(sys.argv[3:])

# SOCK_DGRAM is the socket type to use for UDP sockets
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(TIMEOUT)

# As you can see, there is no connect() call; UDP has no connections.
# Instead, data is directly sent to the recipient via sendto().
sock.sendto(bytes(data + "\n", "utf-8"), (HOST, PORT))
received = str(sock.recv(1024), "utf-8")
sock.close()

print("Sent:     {}".format(data))
print("Received: {}".format(received))
