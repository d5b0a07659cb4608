// Package soak drives a server with a long, mixed load of well-behaved and
// bad clients and reports whether anything was lost (sockit soak, SPEC
// section 5).
//
// Well-behaved clients speak the server's service and framing and check
// every reply byte: each message is counted sent, then answered or lost.
// Bad clients are mixed in at a set rate each: resets mid-message, half-open
// stalls, slowloris writers, oversized frames and 4 GiB length headers,
// garbage, connection floods, clients that never read, TLS clients stalled
// in the handshake, UDP floods and 0- and 65,507-byte datagrams (see Fault).
// With a PID the server's process is sampled from /proc (fds, RSS, threads;
// goroutines from a Prometheus /metrics URL) at the start, at its peak and
// after the load, when each must be back within Tolerance of its start.
//
// A connection the server closes before answering anything (as a server past
// its --max-conns does) is not a loss: its messages are sent again on a new
// connection and counted as refused. Everything else that keeps a reply from
// coming, or makes it differ by a byte, is.
//
// Run refuses targets outside loopback unless Config.AllowRemote is set.
package soak
