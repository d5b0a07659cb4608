//go:build !unix

package proxy

import "net"

// peekHeader has no MSG_PEEK here: readHeader reads the header a byte at a
// time instead.
func peekHeader(net.Conn, []byte) (int, error) { return 0, errNoPeek }
