// Package sockit is a network toolkit for Go: one library and one binary
// (cmd/sockit) that bring Python's socket, socketserver and asyncio world to
// Go, done properly.
//
// Bytes flow one way, and each concept lives in its own package:
//
//	endpoint  parse "tcp://host:port", "udp://…", "unix:…", "fd://N"; listen, dial, socket options, TLS
//	server    Server: listeners, the engine, limits and hooks, lifecycle (Serve, Shutdown, Close)
//	proto     the asyncio-style Protocol/Transport model every engine runs
//	frame     the message framings (raw, line, delim, fixed, len, close) as decoders and encoders
//	service   the built-in services (echo, discard, chargen, daytime, hello, upper, reply, files, http)
//	client    the client side of the commands (send, connect, listen, relay, http, fetch, download)
//	bench     the load generator
//
// The engines that run protocols (a goroutine engine everywhere, an epoll
// event-loop engine on Linux) are in internal/engine; internal/conntest is the
// one conformance suite that every engine, transport and service runs.
package sockit
