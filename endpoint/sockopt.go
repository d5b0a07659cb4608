package endpoint

import (
	"net"
)

// SetNoDelay turns TCP_NODELAY on or off for c, looking through wrappers
// that expose their transport with a NetConn method (such as *tls.Conn). It
// does nothing for connections that are not TCP. TCP_NODELAY is on by
// default for every TCP connection Go makes.
func SetNoDelay(c net.Conn, on bool) error {
	for range 8 { // wrappers of wrappers, bounded
		switch x := c.(type) {
		case *net.TCPConn:
			return x.SetNoDelay(on)
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
	return nil
}
