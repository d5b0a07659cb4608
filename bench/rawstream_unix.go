//go:build unix

package bench

import (
	"io"
	"net"
	"os"
	"syscall"

	"github.com/sockit/sockit/internal/rawio"
)

// rawStream reads and writes a TCP or Unix stream connection through its
// RawConn with raw system calls (internal/rawio): the generator's goroutines
// keep their P across each read and write instead of handing it to the
// scheduler for a call that cannot block. Waiting for readiness, deadlines
// and Close still go through Go's netpoller, as net.Conn's would. Only the
// connection's own goroutine reads, and only it writes.
type rawStream struct {
	net.Conn
	rc    syscall.RawConn
	rfn   func(fd uintptr) bool // s.recv, bound once
	wfn   func(fd uintptr) bool // s.send, bound once
	b     []byte
	n     int
	errno error
}

// fastStream returns c read and written through raw system calls, or c
// itself when it has no raw socket (TLS).
func fastStream(c net.Conn) net.Conn {
	rc := rawio.SocketOf(c)
	if rc == nil {
		return c
	}
	s := &rawStream{Conn: c, rc: rc}
	s.rfn, s.wfn = s.recv, s.send
	return s
}

func (s *rawStream) recv(fd uintptr) bool {
	for {
		s.n, s.errno = rawio.Read(int(fd), s.b)
		if s.errno != syscall.EINTR {
			return s.errno != syscall.EAGAIN
		}
	}
}

// send writes all of s.b, waiting for room as often as it must.
func (s *rawStream) send(fd uintptr) bool {
	for len(s.b) > 0 {
		n, err := rawio.Write(int(fd), s.b)
		switch err {
		case nil:
			s.n += n
			s.b = s.b[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.errno = err
			return true
		}
	}
	return true
}

func (s *rawStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.b, s.n, s.errno = p, 0, nil
	err := s.rc.Read(s.rfn)
	s.b = nil
	if err != nil {
		return 0, s.opError("read", err)
	}
	if s.errno != nil {
		return 0, s.opError("read", os.NewSyscallError("read", s.errno))
	}
	if s.n == 0 {
		return 0, io.EOF
	}
	return s.n, nil
}

func (s *rawStream) Write(p []byte) (int, error) {
	s.b, s.n, s.errno = p, 0, nil
	err := s.rc.Write(s.wfn)
	s.b = nil
	n := s.n
	if err == nil && s.errno != nil {
		err = os.NewSyscallError("write", s.errno)
	}
	if err != nil {
		return n, s.opError("write", err)
	}
	return n, nil
}

func (s *rawStream) opError(op string, err error) error {
	if _, ok := err.(*net.OpError); ok {
		return err
	}
	return &net.OpError{Op: op, Net: s.LocalAddr().Network(), Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
}
