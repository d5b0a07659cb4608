//go:build linux

package goroutine

import (
	"net"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg/sendmmsg moves.
const batchSize = 32

// batchConn reads and writes UDP datagrams in batches (recvmmsg/sendmmsg).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// newBatchConn returns a batching view of pc, or nil where there is none
// (Unix datagram sockets).
func newBatchConn(pc net.PacketConn) batchConn {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return nil
	}
	if a, ok := uc.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil && len(a.IP) == net.IPv6len {
		return ipv6.NewPacketConn(uc)
	}
	return ipv4.NewPacketConn(uc)
}

func truncatedFlag(flags int) bool { return flags&unix.MSG_TRUNC != 0 }

// batchBuffers are the receive buffers of one endpoint's batches: batchSize
// slots of maxDatagram bytes, mapped outside Go's heap so that release can
// hand their pages back (madvise(MADV_DONTNEED)) once the endpoint is
// quiet. A burst of large datagrams touches every slot, and 2 MiB would
// otherwise stay resident for the endpoint's life; the next datagram
// after a release faults in only the pages it fills.
type batchBuffers struct{ region []byte }

func newBatchBuffers() (*batchBuffers, [][]byte) {
	region, err := unix.Mmap(-1, 0, batchSize*maxDatagram, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil { // no mapping to be had: ordinary memory, never released
		region = make([]byte, batchSize*maxDatagram)
	}
	bufs := make([][]byte, batchSize)
	for i := range bufs {
		bufs[i] = region[i*maxDatagram : (i+1)*maxDatagram : (i+1)*maxDatagram]
	}
	return &batchBuffers{region: region}, bufs
}

// release hands the pages back; the buffers stay usable (zero-filled).
func (b *batchBuffers) release() { _ = unix.Madvise(b.region, unix.MADV_DONTNEED) }

// free unmaps the buffers; nothing may use them afterwards.
func (b *batchBuffers) free() { _ = unix.Munmap(b.region) }
