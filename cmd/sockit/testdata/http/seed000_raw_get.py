# Seed 000's raw-socket HTTP client, ported to Python 3.11: host, port and
# path from argv, a timeout on every socket operation. It prints the header
# section, a line "----", then the body (the seed wrote it to sina.html).
import socket
import sys

host = sys.argv[1]
port = int(sys.argv[2])
path = sys.argv[3] if len(sys.argv) > 3 else "/"

# 创建一个socket并建立连接 (with a timeout, so a silent server cannot hang us):
s = socket.create_connection((host, port), timeout=10)
# 发送数据:
s.send(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path.encode(), host.encode()))

# 接收数据:
buffer = []
while True:
    # 每次最多接收1k字节:
    d = s.recv(1024)
    if d:
        buffer.append(d)
    else:
        break
data = b"".join(buffer)
# 关闭连接:
s.close()

header, html = data.split(b"\r\n\r\n", 1)
print(header.decode("utf-8"))
print("----")
sys.stdout.flush()
sys.stdout.buffer.write(html)
