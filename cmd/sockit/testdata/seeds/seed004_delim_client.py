#!/usr/bin/env python3
"""Seed 004's comma-delimited TCP client, Python 3.11.

usage: seed004_delim_client.py HOST PORT [ITEMS]

Against `sockit serve echo --frame delim:, --greeting Hello,World,Bye,Bye,Yingxuan`:
the greeting's complete items (those followed by a comma) are sent back, each
with its comma, and printed; the echo server answers each one, and the client
prints those too. The seed loops forever; this one stops after echoing ITEMS
items (default 4) and reading as many back.
"""
import socket
import sys

TIMEOUT = 10  # seconds: never hang


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    items = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    buffer = b''
    echoed = 0    # items sent back
    received = 0  # complete items received: the greeting's, then the echoes

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect((host, port))
    while received < 2 * items:
        receive_data = s.recv(128)
        if not receive_data:
            print('server closed the connection')
            break
        buffer = buffer + receive_data
        l = buffer.split(sep=b',')
        for item in l[:-1]:
            received += 1
            if echoed < items:
                s.send(item + b',')
                echoed += 1
            print('get data {}'.format(item.decode()))
        # An item without its comma yet waits for more bytes.
        buffer = l[-1]
    s.close()


if __name__ == '__main__':
    main()
