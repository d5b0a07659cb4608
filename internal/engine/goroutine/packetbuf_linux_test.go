//go:build linux

package goroutine

import (
	"bytes"
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sockit/sockit/proto"
)

// udpEcho echoes every datagram.
type udpEcho struct {
	proto.DatagramBase
	t proto.DatagramTransport
}

func (u *udpEcho) OnOpen(t proto.DatagramTransport) { u.t = t }
func (u *udpEcho) OnDatagram(d []byte, a net.Addr)  { _ = u.t.WriteTo(d, a) }

// TestBatchBuffersReleasedAndReused: after a burst of large datagrams and a
// quiet second the receive buffers' pages are handed back, and datagrams
// of every size are echoed whole before and after, across batches.
func TestBatchBuffersReleasedAndReused(t *testing.T) {
	e, _ := newEngine(t)
	bbc := make(chan *batchBuffers, 1)
	e.hookBatchBuffers = func(b *batchBuffers) { bbc <- b }
	pc := listenUDP(t)
	servePacket(t, e, pc, &udpEcho{})
	c, err := net.Dial("udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.UDPConn).SetReadBuffer(4 << 20)
	buf := make([]byte, maxDatagram)
	roundTrip := func(sizes ...int) {
		t.Helper()
		for _, n := range sizes {
			msg := bytes.Repeat([]byte{byte(n)}, n)
			_ = c.SetDeadline(time.Now().Add(wait))
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			got, err := c.Read(buf)
			if err != nil || !bytes.Equal(buf[:got], msg) {
				t.Fatalf("%d-byte datagram: echo of %d bytes, %v", n, got, err)
			}
		}
	}
	var big []int
	for i := range 2 * batchSize {
		big = append(big, 65507-i)
	}
	bb := <-bbc
	roundTrip(big...)
	roundTrip(1, 100, 5000)
	// Datagrams sent one at a time land in the first slot; the burst
	// filled at least that one's 16 pages.
	if n := resident(t, bb); n < 16 {
		t.Fatalf("%d pages resident after large datagrams, want at least 16", n)
	}
	deadline := time.Now().Add(releaseAfter + 2*time.Second)
	for resident(t, bb) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := resident(t, bb); n > 0 {
		t.Fatalf("%d pages still resident after a quiet %v", n, releaseAfter)
	}
	roundTrip(65507, 3, 40000)
}

// resident counts the buffers' pages in memory (mincore).
func resident(t *testing.T, bb *batchBuffers) int {
	t.Helper()
	vec := make([]byte, (len(bb.region)+unix.Getpagesize()-1)/unix.Getpagesize())
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&bb.region[0])), uintptr(len(bb.region)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}
