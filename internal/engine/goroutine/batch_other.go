//go:build !linux

package goroutine

import (
	"net"

	"golang.org/x/net/ipv4"
)

const batchSize = 32

type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// newBatchConn has no batching outside Linux.
func newBatchConn(net.PacketConn) batchConn { return nil }

func truncatedFlag(int) bool { return false }

// batchBuffers are never used where there is no batching.
type batchBuffers struct{}

func newBatchBuffers() (*batchBuffers, [][]byte) {
	bufs := make([][]byte, batchSize)
	for i := range bufs {
		bufs[i] = make([]byte, maxDatagram)
	}
	return &batchBuffers{}, bufs
}

func (*batchBuffers) release() {}
func (*batchBuffers) free()    {}
