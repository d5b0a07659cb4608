//go:build unix

package goroutine

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// unixgramSender sends on a Unix datagram socket without ever waiting. The
// kernel charges a Unix datagram to its sender until the receiver reads it,
// and a peer connected to the server is not held to max_dgram_qlen: one that
// sends and never reads fills the server's send buffer with its unread
// replies. net's WriteTo would then wait for room, and that peer would stall
// the endpoint's loop, and every other peer with it, for as long as it lives.
// A datagram the kernel cannot take now is dropped instead, as UDP drops it,
// with an error that wraps EAGAIN; the endpoint keeps reading, and replies go
// out again once that peer reads or closes.
//
// A connected socket (a client's) talks to one peer only: waiting for that
// peer to read is back-pressure, not a stall of others, so it keeps net's
// blocking writes.
type unixgramSender struct {
	rc syscall.RawConn
}

func newUnixgramSender(pc net.PacketConn) *unixgramSender {
	sc, ok := pc.(syscall.Conn) // a *net.UnixConn, or a wrapper that embeds one
	if !ok || pc.LocalAddr() == nil || pc.LocalAddr().Network() != "unixgram" {
		return nil
	}
	if rc, ok := pc.(interface{ RemoteAddr() net.Addr }); ok && rc.RemoteAddr() != nil {
		return nil // connected: wait for the one peer
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &unixgramSender{rc: rc}
}

// send writes b to addr (nil: the connected peer) once.
func (s *unixgramSender) send(b []byte, addr net.Addr) error {
	var sa unix.Sockaddr
	if addr != nil {
		ua, ok := addr.(*net.UnixAddr)
		if !ok {
			return fmt.Errorf("sockit: %T is not a Unix socket address", addr)
		}
		sa = &unix.SockaddrUnix{Name: ua.Name}
	}
	var serr error
	err := s.rc.Write(func(fd uintptr) bool {
		for {
			if sa == nil {
				_, serr = unix.Write(int(fd), b)
			} else {
				serr = unix.Sendto(int(fd), b, 0, sa)
			}
			if serr != unix.EINTR {
				return true // done, sent or not: never wait for room
			}
		}
	})
	if err != nil {
		return err // the socket is closed
	}
	switch {
	case serr == nil:
		return nil
	case serr == unix.EAGAIN:
		return fmt.Errorf("datagram of %d bytes to %v dropped (a peer that does not read holds the send buffer): %w", len(b), addr, os.NewSyscallError("sendto", serr))
	}
	return os.NewSyscallError("sendto", serr)
}
