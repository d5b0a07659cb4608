package client

import (
	"io"
	"net"
)

// chunkConn returns data in reads of at most chunk bytes.
type chunkConn struct {
	net.Conn
	data  []byte
	chunk int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.chunk, len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// RecordResponseHeader reads data through a wireConn in chunks and returns
// what the recorder kept (for FuzzWireConn).
func RecordResponseHeader(data []byte, chunk int) []byte {
	rec := &wireRecorder{}
	c := rec.wrap(&chunkConn{data: data, chunk: chunk})
	_, _ = io.Copy(io.Discard, c)
	return rec.raw()
}
