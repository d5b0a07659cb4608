# Seed 001's print_http_header (HEAD over asyncio streams), ported to Python
# 3.11: async/await instead of @asyncio.coroutine, host/port/path from argv,
# every step bounded by a timeout.
import asyncio
import sys

TIMEOUT = 10


async def print_http_header(host, port, path):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
    query = ("HEAD {path} HTTP/1.0\r\nHost: {hostname}\r\n\r\n").format(path=path or "/", hostname=host)
    writer.write(query.encode("latin-1"))
    await asyncio.wait_for(writer.drain(), TIMEOUT)
    while True:
        line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        if not line:
            break
        line = line.decode("latin1").rstrip()
        if line:
            print("HTTP header> %s" % line)
    writer.close()
    await writer.wait_closed()


host = sys.argv[1]
port = int(sys.argv[2])
path = sys.argv[3] if len(sys.argv) > 3 else "/"
asyncio.run(print_http_header(host, port, path))
