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
	xfn   func(fd uintptr) bool // s.sendThenRecv, bound once
	b     []byte
	n     int
	errno error
	w     []byte // exchange: what is left to write
	werr  error  // exchange: the write's error
}

// fastStream returns c read and written through raw system calls, or c
// itself when it has no raw socket (TLS).
func fastStream(c net.Conn) net.Conn {
	rc := rawio.SocketOf(c)
	if rc == nil {
		return c
	}
	s := &rawStream{Conn: c, rc: rc}
	s.rfn, s.wfn, s.xfn = s.recv, s.send, s.sendThenRecv
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

// exchange writes out in full and then reads into p, as Write and Read
// would, less one system call: the caller promises that every byte it
// awaits answers out (nothing else is in flight), so the read that would
// follow the write at once can only find nothing and is skipped; the
// goroutine goes straight to waiting for the answer.
//
// It is safe because the wait for readability is armed (Go's netpoller
// forgets any earlier readiness) before the write: any byte arriving after
// the write, and the answer can only arrive after it, wakes the wait. What
// it gives up: a peer's FIN or stray bytes that land in the microsecond
// between the last read and exchange are seen only with the next event on
// the socket (the peer's answer, or its RST to the write, or the run's
// timeout), not at once.
//
// When the socket's buffer is full (EAGAIN) it finishes with Write and Read.
func (s *rawStream) exchange(out, p []byte) (int, error) {
	s.w, s.werr = out, nil
	s.b, s.n, s.errno = p, 0, nil
	err := s.rc.Read(s.xfn)
	s.b = nil
	w, werr := s.w, s.werr
	s.w, s.werr = nil, nil
	switch {
	case werr != nil:
		return 0, s.opError("write", os.NewSyscallError("write", werr))
	case len(w) > 0 && err == nil:
		if _, err := s.Write(w); err != nil {
			return 0, err
		}
		return s.Read(p)
	}
	return s.readResult(err)
}

// sendThenRecv is exchange's RawConn.Read callback: the write first (false
// once written: nothing can be there to read yet), then reads as recv.
func (s *rawStream) sendThenRecv(fd uintptr) bool {
	for len(s.w) > 0 {
		n, err := rawio.Write(int(fd), s.w)
		switch err {
		case nil:
			s.w = s.w[n:]
			if len(s.w) == 0 {
				return false
			}
		case syscall.EINTR:
		default: // EAGAIN: exchange finishes the write; any other: fails
			if err != syscall.EAGAIN {
				s.werr = err
			}
			return true
		}
	}
	return s.recv(fd)
}

func (s *rawStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.b, s.n, s.errno = p, 0, nil
	err := s.rc.Read(s.rfn)
	s.b = nil
	return s.readResult(err)
}

// readResult turns a read through the RawConn into Read's results.
func (s *rawStream) readResult(err error) (int, error) {
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
