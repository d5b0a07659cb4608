//go:build !unix

package goroutine

import "net"

// unixgramSender exists only where Unix datagram sockets do.
type unixgramSender struct{}

func newUnixgramSender(net.PacketConn) *unixgramSender { return nil }

func (*unixgramSender) send([]byte, net.Addr) error { return nil }
