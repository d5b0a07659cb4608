//go:build unix

package rawio

import (
	"net"
	"syscall"
)

// SocketOf returns the RawConn of c when c is one of Go's own TCP or Unix
// connections, whose descriptors Go keeps non-blocking: the only sockets the
// calls of this package may be given. It returns nil for anything else (a
// TLS connection, a wrapper, a descriptor of unknown mode), except that a
// connection past its PROXY header (endpoint/proxy's Conn, a Socketer) is
// looked through: its bytes from then on are the socket's.
func SocketOf(c net.Conn) syscall.RawConn {
	if s, ok := c.(Socketer); ok {
		c = s.Socket()
	}
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// Socketer is a connection that carries one of Go's sockets beneath
// addresses of its own: engines serve the socket and keep the wrapper's
// addresses.
type Socketer interface {
	net.Conn
	Socket() net.Conn
}
