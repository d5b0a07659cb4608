//go:build !unix

package goroutine

import "net"

func readDatagram(pc net.PacketConn, buf []byte) (int, net.Addr, bool, error) {
	n, addr, err := pc.ReadFrom(buf)
	return n, addr, false, err
}
