//go:build linux

package rawio

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Sendfile is sendfile(2): up to n bytes of the file file from *off to the
// socket sock, *off advanced by what was sent; EINTR is retried. On a
// non-blocking socket it returns EAGAIN when the send buffer is full and
// (0, nil) at the end of the file.
func Sendfile(sock, file int, off *int64, n int) (int, error) {
	for {
		m, err := unix.Sendfile(sock, file, off, n)
		if err == unix.EINTR {
			continue
		}
		if m < 0 {
			m = 0
		}
		return m, err
	}
}

// SendfileConn sends up to n bytes of file from *off to the socket of rc,
// waiting for writability through Go's poller as a Write on it would. It
// returns what was sent: fewer than n bytes at the end of the file (with a
// nil error), or when the socket took some and then was full.
func SendfileConn(rc syscall.RawConn, file int, off *int64, n int) (int, error) {
	sent := 0
	var serr error
	err := rc.Write(func(fd uintptr) bool {
		for sent < n {
			m, err := Sendfile(int(fd), file, off, n-sent)
			sent += m
			switch {
			case err == unix.EAGAIN:
				return sent > 0 // wait for writability only when nothing went
			case err != nil:
				serr = err
				return true
			case m == 0:
				return true // the end of the file
			}
		}
		return true
	})
	if serr != nil {
		return sent, serr
	}
	return sent, err
}
