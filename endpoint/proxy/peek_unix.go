//go:build unix

package proxy

import (
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peekHeader waits until buf's start holds a whole header, peeking
// (MSG_PEEK) at what the socket has received, and returns its length
// with exactly the header's bytes taken off the socket. While the header
// is incomplete every byte received belongs to it, so those are read at
// once (and an end of stream is then seen as one); once it is complete
// only its remaining bytes are read. A header that arrives in pieces waits
// for each in Go's poller: a slow header costs a parked goroutine, never a
// busy one.
func peekHeader(nc net.Conn, buf []byte) (int, error) {
	var rc syscall.RawConn
	switch c := nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		var err error
		if rc, err = c.(syscall.Conn).SyscallConn(); err != nil {
			return 0, errNoPeek
		}
	default:
		return 0, errNoPeek
	}
	have, n := 0, 0
	var herr, perr error
	err := rc.Read(func(fd uintptr) bool {
		for {
			m, _, err := unix.Recvfrom(int(fd), buf[have:], unix.MSG_PEEK)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false
			case err != nil:
				perr = err
				return true
			case m == 0:
				perr = io.EOF
				return true
			}
			n, herr = headerLen(buf[:have+m])
			if herr != nil || n > 0 {
				return true
			}
			// All of it is header: take it and wait for the rest.
			r, _, err := unix.Recvfrom(int(fd), buf[have:have+m], 0)
			if err != nil {
				perr = err
				return true
			}
			have += r
		}
	})
	switch {
	case err != nil:
		return 0, readErr(err)
	case perr != nil:
		return 0, readErr(perr)
	case herr != nil:
		return 0, herr
	}
	// The rest of the header is there: take exactly it.
	if _, err := io.ReadFull(nc, buf[have:n]); err != nil {
		return 0, readErr(err)
	}
	return n, nil
}
