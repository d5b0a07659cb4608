//go:build linux

// Package epoll is the Linux event-loop engine: a few loops (one per core by
// default), each an epoll instance running the callbacks of the connections
// it owns on one goroutine, with non-blocking sockets, one shared read buffer
// per loop (an idle connection holds no buffer), direct writes and writev
// when the write buffer is empty, and an eventfd for wake-ups from other
// goroutines. Socket I/O uses raw system calls (internal/rawio). The loops
// accept from a served listener themselves (accept.go). Lock order and who
// may touch what: LOCKS.md beside this file.
//
// A connection keeps little of its own: 128 bytes, with its addresses
// shared with other connections (LocalAddr, and RemoteAddr of Unix peers,
// return values shared by many connections: read-only) or kept inline (an
// IP peer's, made into a new net.Addr at each RemoteAddr call); its write
// queue, timers and limits exist only while in use.
//
// Shutdown or Close called from a callback runs on a loop, which cannot run
// anything else until the callback returns: so it waits for the connections
// of the other loops only, and not for a loop whose callback is itself
// inside Shutdown (two callbacks on two loops calling Shutdown at once would
// otherwise wait for each other until the deadline). Every connection of the caller's loop (the
// caller's own, the others it serves, and any handed to it but not opened
// yet) is closed gracefully by that loop once the callback returns, aborted
// at ctx's deadline if it has one, and the loop then stops. Called from a
// callback, Shutdown's result therefore covers the other loops only.
//
// A loop whose epoll wait fails stops: each of its connections gets the
// error through OnError and OnClose(err), new connections go to the other
// loops, and Shutdown and Close do not wait for it.
package epoll
