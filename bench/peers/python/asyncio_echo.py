"""Seed 001's asyncio echo server (EchoServerClientProtocol), ported to
Python 3.11: asyncio.run instead of get_event_loop, host and port from argv,
and the per-message prints removed (they would measure the terminal, not the
event loop). A UDP echo (asyncio.DatagramProtocol) on the same port when a
third argument "udp" is given.

usage: python3 asyncio_echo.py HOST PORT [udp]
"""
import asyncio
import sys


class EchoServerClientProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        self.transport.close()


class EchoDatagramProtocol(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def main(host, port, udp):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoServerClientProtocol, host, port, backlog=4096)
    for s in server.sockets:
        h, p = s.getsockname()[:2]
        print(f"listening tcp://{h}:{p}", flush=True)
    if udp:
        transport, _ = await loop.create_datagram_endpoint(EchoDatagramProtocol, local_addr=(host, port))
        h, p = transport.get_extra_info("sockname")[:2]
        print(f"listening udp://{h}:{p}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    try:
        asyncio.run(main(host, port, len(sys.argv) > 3 and sys.argv[3] == "udp"))
    except KeyboardInterrupt:
        pass
