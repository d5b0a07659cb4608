//go:build linux

package goroutine

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// packetReader reads one SOCK_SEQPACKET message with recvmsg and reports a
// message larger than the buffer (MSG_TRUNC: the kernel dropped its rest) as
// ErrPacketTooLarge rather than returning its head as if it were whole. Its
// state lives in the struct, so a read allocates nothing. Only the
// connection's loop calls read.
type packetReader struct {
	nc  net.Conn
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	msg unix.Msghdr
	iov unix.Iovec
	n   int
	err syscall.Errno
}

// newPacketReader returns a reader for nc, or nil if nc has no raw socket.
func newPacketReader(nc net.Conn) *packetReader {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &packetReader{nc: nc, rc: rc}
	r.fn = r.recv // one method value per connection, not one closure per read
	return r
}

func (r *packetReader) recv(fd uintptr) bool {
	for {
		r.msg.Flags = 0
		n, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), 0)
		switch e {
		case 0:
			r.n, r.err = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait for the socket to be readable (or a deadline)
		}
		r.n, r.err = 0, e
		return true
	}
}

// read reads one message into b (len(b) > 0). A zero-length read is the end
// of the stream, as net.UnixConn.Read has it on SOCK_SEQPACKET.
func (r *packetReader) read(b []byte) (int, error) {
	r.iov.Base = &b[0]
	r.iov.SetLen(len(b))
	r.msg.Iov = &r.iov
	r.msg.SetIovlen(1)
	err := r.rc.Read(r.fn)
	n, errno, flags := r.n, r.err, r.msg.Flags
	r.iov.Base, r.msg.Iov = nil, nil
	switch {
	case err != nil: // closed, or a deadline: a *net.OpError like Read's
		return 0, err
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "unixpacket", Source: r.nc.LocalAddr(), Addr: r.nc.RemoteAddr(), Err: os.NewSyscallError("recvmsg", errno)}
	case flags&unix.MSG_TRUNC != 0:
		return 0, ErrPacketTooLarge
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
