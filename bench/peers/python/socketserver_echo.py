"""Seed 004's socketserver server (MyHandler on ThreadingTCPServer), ported
to Python 3.11 as an echo: host and port from argv, the handler loops over
recv(1024) and sendall until the peer closes (the seed answered one message),
no prints. A ThreadingUDPServer echo on the same port when a third argument
"udp" is given.

usage: python3 socketserver_echo.py HOST PORT [udp]
"""
import socketserver
import sys
import threading


class MyHandler(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            try:
                data = self.request.recv(1024)
            except ConnectionError:
                return
            if not data:
                return
            self.request.sendall(data)


class MyUDPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data, socket = self.request
        socket.sendto(data, self.client_address)


class MyThreadingTCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 4096


class MyThreadingUDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    HOST, PORT = sys.argv[1], int(sys.argv[2])
    server = MyThreadingTCPServer((HOST, PORT), MyHandler)
    h, p = server.server_address[:2]
    print(f"listening tcp://{h}:{p}", flush=True)
    if len(sys.argv) > 3 and sys.argv[3] == "udp":
        userver = MyThreadingUDPServer((HOST, PORT), MyUDPHandler)
        h, p = userver.server_address[:2]
        print(f"listening udp://{h}:{p}", flush=True)
        threading.Thread(target=userver.serve_forever, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
