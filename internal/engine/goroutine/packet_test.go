package goroutine

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/proto"
)

// dgramRecorder is a datagram protocol running onOpen.
type dgramRecorder struct {
	proto.DatagramBase
	onOpen func(proto.DatagramTransport)
}

func (d *dgramRecorder) OnOpen(t proto.DatagramTransport) {
	if d.onOpen != nil {
		d.onOpen(t)
	}
}

// servePacket runs e.ServePacket(pc) until the test ends.
func servePacket(t *testing.T, e *Engine, pc net.PacketConn, p proto.DatagramProtocol) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- e.ServePacket(pc, p, engine.Options{}) }()
	t.Cleanup(func() {
		_ = pc.Close()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("ServePacket did not return")
		}
	})
}

func listenUDP(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// An event posted after the endpoint ran its events but before it armed its
// blocking read must still run at once.
func TestPacketWakeBeforeArmingReadIsNotLost(t *testing.T) {
	e, _ := newEngine(t)
	var armed atomic.Bool
	var ep atomic.Pointer[packetEndpoint]
	ran := make(chan struct{})
	e.hookBeforeArm = func() {
		if !armed.CompareAndSwap(true, false) {
			return
		}
		posted := make(chan struct{})
		go func() { ep.Load().post(func() { close(ran) }); close(posted) }()
		<-posted
	}
	p := &dgramRecorder{onOpen: func(t proto.DatagramTransport) {
		ep.Store(t.(*packetEndpoint))
		armed.Store(true)
	}}
	servePacket(t, e, listenUDP(t), p)
	select {
	case <-ran:
	case <-time.After(2 * time.Second):
		t.Fatal("an event posted just before the read was armed did not run")
	}
}

// The transport handed to OnOpen is complete: a goroutine started there may
// send at once (no data race with the endpoint's setup, run with -race).
func TestPacketWriteToFromOnOpenGoroutine(t *testing.T) {
	e, _ := newEngine(t)
	peer := listenUDP(t)
	sent := make(chan error, 1)
	p := &dgramRecorder{onOpen: func(tr proto.DatagramTransport) {
		go func() { sent <- tr.WriteTo([]byte("hi"), peer.LocalAddr()) }()
	}}
	servePacket(t, e, listenUDP(t), p)
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("WriteTo did not return")
	}
	_ = peer.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 16)
	if n, _, err := peer.ReadFrom(buf); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}
