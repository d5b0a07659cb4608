//go:build !unix

package goroutine

import "net"

// lazyReader is the Unix read path that holds no buffer while idle; other
// systems use the plain read path.
type lazyReader struct{}

func newLazyReader(net.Conn) *lazyReader { return nil }

func (*lazyReader) read() ([]byte, error) { panic("unreachable") }

func (*lazyReader) close() {}
