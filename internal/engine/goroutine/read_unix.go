//go:build unix

package goroutine

import (
	"net"
	"syscall"
)

// udpMsgReader and unixMsgReader are *net.UDPConn and *net.UnixConn, and
// the wrappers that embed them (endpoint's unixgram conn, which removes its
// socket file on Close): each reports MSG_TRUNC.
type udpMsgReader interface {
	ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error)
}

type unixMsgReader interface {
	ReadMsgUnix(b, oob []byte) (n, oobn, flags int, addr *net.UnixAddr, err error)
}

// readDatagram reads one datagram and reports whether the kernel truncated it.
func readDatagram(pc net.PacketConn, buf []byte) (int, net.Addr, bool, error) {
	switch c := pc.(type) {
	case udpMsgReader:
		n, _, flags, addr, err := c.ReadMsgUDP(buf, nil)
		if err != nil {
			return 0, nil, false, err
		}
		return n, addr, flags&syscall.MSG_TRUNC != 0, nil
	case unixMsgReader:
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
