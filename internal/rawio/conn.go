//go:build unix

package rawio

import (
	"net"
	"syscall"
)

// SocketOf returns the RawConn of c when c is one of Go's own TCP or Unix
// connections, whose descriptors Go keeps non-blocking: the only sockets the
// calls of this package may be given. It returns nil for anything else (a
// TLS connection, a wrapper, a descriptor of unknown mode).
func SocketOf(c net.Conn) syscall.RawConn {
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
