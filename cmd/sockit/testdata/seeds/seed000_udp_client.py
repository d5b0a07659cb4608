#!/usr/bin/env python3
"""Seed 000's UDP client (sockit serve hello over UDP), Python 3.11.

usage: seed000_udp_client.py HOST PORT

Sends Michael, Tracy and Sarah as datagrams and prints each reply.
"""
import socket
import sys

TIMEOUT = 10  # seconds: never hang


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    for data in [b'Michael', b'Tracy', b'Sarah']:
        # No connect(): UDP sends each datagram to the address given.
        s.sendto(data, (host, port))
        print(s.recv(1024).decode('utf-8'))
    s.close()


if __name__ == '__main__':
    main()
