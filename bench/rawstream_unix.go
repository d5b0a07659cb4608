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

// writeAll writes b until all of it is written (nil, nil), the socket is
// full (the rest, EAGAIN) or the write fails (the rest, the error).
func writeAll(fd int, b []byte) ([]byte, error) {
	for len(b) > 0 {
		n, err := rawio.Write(fd, b)
		switch err {
		case nil:
			b = b[n:]
		case syscall.EINTR:
		default:
			return b, err
		}
	}
	return nil, nil
}

// send writes all of s.b, waiting for room as often as it must.
func (s *rawStream) send(fd uintptr) bool {
	rest, err := writeAll(int(fd), s.b)
	s.n += len(s.b) - len(rest)
	s.b = rest
	if err == syscall.EAGAIN {
		return false
	}
	s.errno = err
	return true
}

// exchange writes out in full and then reads into p, as Write and Read
// would, less one system call: the caller promises that every byte it
// awaits answers out (nothing else is in flight), so the read that would
// follow the write at once can only find nothing and is skipped; the
// goroutine goes straight to waiting for the answer.
//
// It is safe for the answer because Go's netpoller forgets the readiness
// recorded so far just before the callback runs, and records it again for
// anything arriving after that: the answer can only arrive after the write,
// so it wakes the wait. What it gives up is what arrived before: a FIN that
// came in behind the last echo (a read that returns data does not report
// the FIN queued after it, and its readiness is forgotten here), or stray
// bytes. A peer that closes for good answers the write with an RST, which
// wakes the wait at once; one that only shuts its side down and goes on
// reading would leave it waiting. The watchdog's probe covers that: after
// a tick with nothing heard it wakes the goroutine, which polls
// (runner.probed) and finds the EOF.
//
// When the socket's buffer is full (EAGAIN) it finishes with Write and Read.
// When the read fails before the write is done (a past deadline: a timeout
// or a probe), it still writes the rest, so that on return out has been
// written whole or a write error is returned.
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
	case len(w) > 0:
		if _, werr := s.Write(w); werr != nil {
			return 0, werr
		}
		if err == nil {
			return s.Read(p)
		}
	}
	return s.readResult(err)
}

// poll reads what is there without waiting: n > 0 bytes, io.EOF, or (0, nil)
// when nothing is. Deadlines do not apply.
func (s *rawStream) poll(p []byte) (int, error) {
	s.b, s.n, s.errno = p, 0, nil
	err := s.rc.Control(func(fd uintptr) { s.recv(fd) })
	s.b = nil
	if err == nil && s.errno == syscall.EAGAIN {
		return 0, nil
	}
	return s.readResult(err)
}

// sendThenRecv is exchange's RawConn.Read callback: the write first (false
// once written: nothing can be there to read yet), then reads as recv.
func (s *rawStream) sendThenRecv(fd uintptr) bool {
	if len(s.w) == 0 {
		return s.recv(fd)
	}
	rest, err := writeAll(int(fd), s.w)
	s.w = rest
	switch err {
	case nil:
		return false
	case syscall.EAGAIN: // exchange finishes the write
	default:
		s.werr = err
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
