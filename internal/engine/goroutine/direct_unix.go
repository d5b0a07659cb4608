//go:build unix

package goroutine

import (
	"errors"
	"net"
	"syscall"
)

// directWriter returns a function that writes as much of b as the socket
// accepts now, without blocking, or nil if nc has no raw socket (TLS). It lets
// a Write with an empty buffer go straight to the kernel from the caller's
// goroutine, which saves a goroutine hand-off per reply on the common
// request/response path.
func directWriter(nc net.Conn) func(b []byte) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func(b []byte) (int, error) {
		var n int
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			for {
				n, werr = syscall.Write(int(fd), b)
				if werr != syscall.EINTR {
					return true // never wait for writability here
				}
			}
		})
		if err != nil {
			return 0, err
		}
		if n < 0 {
			n = 0
		}
		if errors.Is(werr, syscall.EAGAIN) {
			werr = nil
		}
		return n, werr
	}
}
