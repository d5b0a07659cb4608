//go:build !unix

package goroutine

import "net"

// packetReader is not needed without Unix sockets: unixpacket connections
// never occur.
type packetReader struct{}

func newPacketReader(net.Conn) *packetReader { return nil }

func (*packetReader) read([]byte) (int, error) { return 0, nil }
