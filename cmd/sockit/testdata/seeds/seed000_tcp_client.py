#!/usr/bin/env python3
"""Seed 000's TCP client for the hello server (sockit serve hello), Python 3.11.

usage: seed000_tcp_client.py HOST PORT NAME...

Connects, prints the greeting (Welcome!), sends each name and prints the reply
(Hello, NAME!), then sends exit and checks that the server closes.
"""
import socket
import sys

TIMEOUT = 10  # seconds: never hang


def main():
    host, port, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect((host, port))
    # The server greets first; wait for it so replies never shift by one.
    print(s.recv(1024).decode('utf-8'))
    for name in names:
        # Send one message and wait for its answer, as the seed does.
        s.send(name.encode('utf-8'))
        print(s.recv(1024).decode('utf-8'))
    s.send(b'exit')
    rest = s.recv(1024)
    print('closed' if rest == b'' else 'unexpected: %r' % rest)
    s.close()


if __name__ == '__main__':
    main()
