#!/usr/bin/env python3
"""Seed 001's asyncio chat client (sockit serve reply), Python 3.11.

usage: seed001_chat_client.py HOST PORT MESSAGE...

The seed reads each message with input(); here they come from the command line.
Each message is sent and its answer awaited before the next one goes (the
server reads with read(100) and no framing). After Bye the server closes.
"""
import asyncio
import sys

TIMEOUT = 10  # seconds: never hang


async def tcp_echo_client(host, port, messages):
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port), TIMEOUT)
    said_bye = False
    for message in messages:
        print('You said: %s' % message)
        writer.write(message.encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(100), TIMEOUT)
        print('Receive: %r' % data.decode())
        if message == 'Bye':
            said_bye = True
            break

    if said_bye:
        rest = await asyncio.wait_for(reader.read(100), TIMEOUT)
        print('The server closed the connection' if rest == b''
              else 'Unexpected: %r' % rest.decode())
    print('Close the socket')
    writer.close()
    await writer.wait_closed()


if __name__ == '__main__':
    asyncio.run(tcp_echo_client(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))
