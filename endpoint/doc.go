// Package endpoint parses, listens on and dials sockit endpoints, the one
// address syntax every sockit command and library package shares
// (SPEC section 2):
//
//	tcp://HOST:PORT   tcp4://   tcp6://      TCP (a bare HOST:PORT or :PORT means tcp)
//	udp://HOST:PORT   udp4://   udp6://      UDP
//	tls://HOST:PORT                          TCP with TLS
//	unix:///abs/path.sock  unix:rel/path     Unix stream socket
//	unixgram:PATH     unixpacket:PATH        Unix datagram and seqpacket sockets
//	fd://N                                   an inherited, already open socket
//
// IPv6 hosts go in brackets (tcp://[::1]:80). An empty host listens on all
// addresses (tcp://:7788, dual-stack where the system allows it). Scheme names
// are matched without regard to case. A host literally named like a scheme
// must be written with its scheme (tcp://tcp:80), since "tcp:80" reads as a
// scheme with its "//" missing.
//
// [Parse] turns text into an [Endpoint]; bad input gives a [*ParseError] whose
// message is one line naming the input and the problem. [Endpoint.String] is
// canonical: Parse(e.String()) == e for every parsed endpoint.
//
// [ListenConfig] and [Dialer] open sockets. Their zero values use the system
// defaults. Failures are [*OpError] values naming the operation and the
// endpoint; errors.Is sees the cause (for example syscall.EADDRINUSE).
//
// # Unix socket files
//
// Listening on a Unix path follows SPEC section 2: an existing socket file
// nothing answers on is stale and removed; a socket that answers is an
// "address in use" error wrapping syscall.EADDRINUSE; a path that is not a
// socket is never removed (the error wraps fs.ErrExist). The socket file is
// removed when the listener or packet conn is closed, but only a file this
// package bound (never one reached through fd://N). On Linux a path starting
// with "@" names an abstract socket, which has no file at all.
//
// The staleness probe cannot be atomic: two processes starting at the same
// instant on the same stale path may both remove it. Supervise servers so that
// one instance owns a path.
//
// A Unix datagram client binds a temporary path of its own in os.TempDir so
// replies can reach it; the net.Conn [Dialer.Dial] returns removes it on Close.
//
// # Socket options
//
// [ListenConfig.ReusePort] sets SO_REUSEPORT on IP sockets (several listeners,
// in one process or many, share a port and the kernel spreads connections).
// [ListenConfig.Backlog] sets the listen(2) backlog: the socket is created the
// standard way and listen(2) is called again with the requested backlog, which
// Linux and the BSDs apply to a listening socket; the kernel caps it at its
// own limit (net.core.somaxconn on Linux). Neither option exists on Windows,
// where asking for them is an error.
//
// TCP connections from [Dialer.Dial] and from TCP listeners have TCP_NODELAY
// on (Go's default); [SetNoDelay] changes it.
//
// # Socket activation
//
// [ListenFDs] returns the sockets systemd (or any supervisor speaking its
// LISTEN_PID/LISTEN_FDS protocol) handed to the process. A supervisor can also
// just pass a listening socket as descriptor N and name it fd://N; listening
// on fd://N takes ownership of that descriptor.
//
// Every type here is safe for concurrent use once built; the values returned
// (listeners, conns) follow the concurrency rules of package net.
package endpoint
