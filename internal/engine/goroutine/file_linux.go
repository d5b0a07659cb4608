//go:build linux

package goroutine

import (
	"github.com/sockit/sockit/internal/rawio"
	"github.com/sockit/sockit/proto"
)

// sendRegionZeroCopy sends a region with sendfile(2) when the connection is
// one of Go's own TCP or Unix sockets (looked through a PROXY protocol
// wrapper); handled is false for anything else (TLS).
func (c *conn) sendRegionZeroCopy(r fileRegion) (handled bool, err error) {
	rc := rawio.SocketOf(c.nc)
	if rc == nil {
		return false, nil
	}
	fsc, err := r.f.SyscallConn()
	if err != nil {
		return false, nil
	}
	off, left := r.off, r.n
	for left > 0 {
		var n int
		var serr error
		cerr := fsc.Read(func(ffd uintptr) bool {
			n, serr = rawio.SendfileConn(rc, int(ffd), &off, int(min(left, fileChunk)))
			return true
		})
		if serr == nil {
			serr = cerr
		}
		if n > 0 {
			left -= int64(n)
			c.progress(n)
		}
		if serr != nil {
			return true, serr
		}
		if n == 0 {
			return true, proto.ErrFileShort
		}
	}
	return true, nil
}
