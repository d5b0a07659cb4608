#!/usr/bin/env python3
"""Seed 001's asyncio UDP time client (sockit serve daytime over UDP), Python 3.11.

usage: seed001_udp_time_client.py HOST PORT [COUNT [INTERVAL]]

Asks for the time COUNT times (default 3), INTERVAL seconds apart (default 0.1),
each time on a new datagram endpoint, and prints each answer.
"""
import asyncio
import sys

TIMEOUT = 10  # seconds: never hang


class EchoClientProtocol:
    def __init__(self, message, on_con_lost):
        self.message = message
        self.on_con_lost = on_con_lost
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.transport.sendto(self.message.encode())

    def datagram_received(self, data, addr):
        print('Now is :', data.decode())
        self.transport.close()

    def error_received(self, exc):
        print('Error received:', exc)
        self.transport.close()

    def connection_lost(self, exc):
        if not self.on_con_lost.done():
            self.on_con_lost.set_result(True)


async def main(host, port, count, interval):
    loop = asyncio.get_running_loop()
    message = "ask for me"
    for i in range(count):
        on_con_lost = loop.create_future()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: EchoClientProtocol(message, on_con_lost),
            remote_addr=(host, port))
        try:
            await asyncio.wait_for(on_con_lost, TIMEOUT)
        finally:
            transport.close()
        if i + 1 < count:
            await asyncio.sleep(interval)


if __name__ == '__main__':
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), count, interval))
