//go:build unix

package goroutine

import (
	"errors"
	"net"
	"syscall"

	"github.com/sockit/sockit/internal/rawio"
)

// directWriter returns a function that writes as much of b as the socket
// accepts now, without blocking, or nil if nc has no raw socket (TLS). It lets
// a Write with an empty buffer go straight to the kernel from the caller's
// goroutine, which saves a goroutine hand-off per reply on the common
// request/response path.
func directWriter(nc net.Conn) func(b []byte) (int, error) {
	rc := rawio.SocketOf(nc) // Go's non-blocking socket: a raw write never blocks
	if rc == nil {
		return nil
	}
	d := &direct{rc: rc}
	d.fn = d.write // one method value per connection, not one closure per write
	return d.try
}

// direct holds the state of a non-blocking write so that no closure is
// allocated per call. Its callers serialise calls (conn.mu).
type direct struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	b   []byte
	n   int
	err error
}

func (d *direct) write(fd uintptr) bool {
	for {
		d.n, d.err = rawio.Write(int(fd), d.b)
		if d.err != syscall.EINTR {
			return true // never wait for writability here
		}
	}
}

func (d *direct) try(b []byte) (int, error) {
	d.b = b
	err := d.rc.Write(d.fn)
	n, werr := d.n, d.err
	d.b, d.err = nil, nil
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
