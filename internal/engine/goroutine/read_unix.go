//go:build unix

package goroutine

import (
	"net"
	"syscall"
)

// readDatagram reads one datagram and reports whether the kernel truncated it.
func readDatagram(pc net.PacketConn, buf []byte) (int, net.Addr, bool, error) {
	switch c := pc.(type) {
	case *net.UDPConn:
		n, _, flags, addr, err := c.ReadMsgUDP(buf, nil)
		if err != nil {
			return 0, nil, false, err
		}
		return n, addr, flags&syscall.MSG_TRUNC != 0, nil
	case *net.UnixConn:
		n, _, flags, addr, err := c.ReadMsgUnix(buf, nil)
		if err != nil {
			return 0, nil, false, err
		}
		var a net.Addr
		if addr != nil {
			a = addr
		}
		return n, a, flags&syscall.MSG_TRUNC != 0, nil
	}
	n, addr, err := pc.ReadFrom(buf)
	return n, addr, false, err
}
