#!/usr/bin/env python3
"""Seed 001's asyncio EchoClientProtocol (sockit serve echo), Python 3.11.

usage: seed001_echo_protocol_client.py HOST PORT [MESSAGE...]

Writes the messages (default: 'Hello world!' and '你好'), half-closes with
write_eof(), and prints what came back once the server closes the connection.
The seed prints every data_received chunk; how the kernel splits the echo is
not fixed, so this one prints the data once, whole.
"""
import asyncio
import sys

TIMEOUT = 10  # seconds: never hang


class EchoClientProtocol(asyncio.Protocol):
    def __init__(self, messages, on_con_lost):
        self.messages = messages
        self.on_con_lost = on_con_lost
        self.received = b''

    def connection_made(self, transport):
        for m in self.messages:
            transport.write(m.encode())
            print('Data sent: {!r}'.format(m))
        # All messages sent: tell the server nothing more will come.
        transport.write_eof()

    def data_received(self, data):
        self.received += data

    def connection_lost(self, exc):
        print('Data received: {!r}'.format(self.received.decode()))
        print('The server closed the connection')
        if not self.on_con_lost.done():
            self.on_con_lost.set_result(True)


async def main(host, port, messages):
    loop = asyncio.get_running_loop()
    on_con_lost = loop.create_future()
    transport, protocol = await asyncio.wait_for(
        loop.create_connection(
            lambda: EchoClientProtocol(messages, on_con_lost), host, port),
        TIMEOUT)
    try:
        await asyncio.wait_for(on_con_lost, TIMEOUT)
    finally:
        transport.close()


if __name__ == '__main__':
    messages = sys.argv[3:] or ['Hello world!', '你好']
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), messages))
