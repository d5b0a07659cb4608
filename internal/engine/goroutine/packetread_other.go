//go:build unix && !linux

package goroutine

import (
	"io"
	"net"
	"syscall"
)

// packetReader reads one SOCK_SEQPACKET message and reports a message larger
// than the buffer (MSG_TRUNC) as ErrPacketTooLarge rather than returning its
// head as if it were whole.
type packetReader struct{ uc *net.UnixConn }

// newPacketReader returns a reader for nc, or nil if nc is no Unix socket.
func newPacketReader(nc net.Conn) *packetReader {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return nil
	}
	return &packetReader{uc}
}

func (r *packetReader) read(b []byte) (int, error) {
	n, _, flags, _, err := r.uc.ReadMsgUnix(b, nil)
	switch {
	case err != nil:
		return 0, err
	case flags&syscall.MSG_TRUNC != 0:
		return 0, ErrPacketTooLarge
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
