//go:build unix

package goroutine

import (
	"errors"
	"net"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sockit/sockit/proto"
)

// dgramEcho answers every datagram with itself and counts the replies the
// kernel refused for a full send buffer.
type dgramEcho struct {
	proto.DatagramBase
	t    proto.DatagramTransport
	full atomic.Int64
}

func (d *dgramEcho) OnOpen(t proto.DatagramTransport) { d.t = t }

func (d *dgramEcho) OnDatagram(b []byte, addr net.Addr) {
	if err := d.t.WriteTo(b, addr); errors.Is(err, syscall.EAGAIN) {
		d.full.Add(1)
	}
}

func dialUnixgram(t *testing.T, dir, name, server string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: filepath.Join(dir, name), Net: "unixgram"}, &net.UnixAddr{Name: server, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A Unix datagram peer connected to the server that sends and never reads
// holds the server's send buffer with its unread replies (the kernel does not
// limit its queue to max_dgram_qlen). The endpoint must not wait for room:
// it keeps reading (the flood goes through at once instead of stalling both
// sides), drops the replies it cannot send, and answers others again once
// that peer is gone.
func TestUnixgramPeerThatDoesNotReadDoesNotStallTheEndpoint(t *testing.T) {
	e, _ := newEngine(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	pc, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &dgramEcho{}
	servePacket(t, e, pc, p)

	flood := dialUnixgram(t, dir, "flood.sock", path)
	_ = flood.SetWriteDeadline(time.Now().Add(wait))
	msg := make([]byte, 512)
	for i := range 5000 {
		if _, err := flood.Write(msg); err != nil {
			t.Fatalf("the server stopped reading after %d datagrams: %v", i, err)
		}
	}
	deadline := time.Now().Add(wait)
	for p.full.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("5,000 unread replies never filled the send buffer: the test proves nothing here")
		}
		time.Sleep(5 * time.Millisecond)
	}
	flood.Close() // frees the replies it held

	good := dialUnixgram(t, dir, "good.sock", path)
	buf := make([]byte, 64)
	for {
		if time.Now().After(deadline) {
			t.Fatal("no echo after the non-reading peer closed")
		}
		if _, err := good.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		_ = good.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := good.Read(buf)
		if err == nil && string(buf[:n]) == "ping" {
			return
		}
	}
}
