# Seed 001's asyncio get_url, ported to Python 3.11 and pointed at a local
# server: N URLs http://HOST:PORT/hello/1..N fetched at once over raw asyncio
# streams (HTTP/1.1, Connection: close, as the seed does), every step bounded
# by a timeout. Prints the wall time in seconds and the number of failures.
#
#   python3 asyncio_fetch.py HOST PORT N
import asyncio
import sys
import time

TIMEOUT = 30


async def get_url(host, port, path):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
    writer.write("GET {} HTTP/1.1\r\nHost:{}\r\nConnection:close\r\n\r\n".format(path, host).encode("utf8"))
    data = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    header, _, body = data.partition(b"\r\n\r\n")
    if not header.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(header[:40])
    return body


async def main(host, port, n):
    tasks = [asyncio.ensure_future(get_url(host, port, "/hello/%d" % i)) for i in range(1, n + 1)]
    failures = 0
    for task in asyncio.as_completed(tasks):
        try:
            await task
        except Exception:
            failures += 1
    return failures


if __name__ == "__main__":
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    start = time.time()
    failures = asyncio.run(main(host, port, n))
    print("%.3f %d" % (time.time() - start, failures))
