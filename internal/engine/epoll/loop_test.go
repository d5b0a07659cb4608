//go:build linux

package epoll

// Tests of the loop's internals (timer heap, wait errors, eventfd life). Real
// sockets on loopback; every wait is bounded.

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newTestEngine starts a one-loop engine; it is closed when the test ends.
func newTestEngine(t *testing.T) (*Engine, *loop) {
	t.Helper()
	e, err := New(engine.Config{Loops: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, e.loops[0]
}

// pair returns a connected loopback TCP pair: the server side (to hand to the
// engine) and the client side (closed when the test ends).
func pair(t *testing.T) (server, client net.Conn) {
	return dialPair(t, net.Dialer{Timeout: 5 * time.Second})
}

// dialPair is pair with the client dialed by d.
func dialPair(t *testing.T, d net.Dialer) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = d.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return server, client
}

// onLoop runs f on l's goroutine and waits for it (bounded).
func onLoop(t *testing.T, l *loop, f func()) {
	t.Helper()
	done := make(chan struct{})
	if !l.post(func() { f(); close(done) }) {
		t.Fatal("loop has ended")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not run the task")
	}
}

// lineProto echoes, and is busy between a byte and the next '\n'.
type lineProto struct {
	proto.Base
	t      proto.Transport
	busy   bool
	closed chan error
}

func (p *lineProto) OnOpen(t proto.Transport) { p.t = t }
func (p *lineProto) OnData(d []byte) {
	p.busy = d[len(d)-1] != '\n'
	// A stopped AfterFunc must leave the heap at once.
	p.t.AfterFunc(time.Hour, func() {}).Stop()
	_ = p.t.Write(d)
}
func (p *lineProto) Idle() bool { return !p.busy }
func (p *lineProto) OnClose(err error) {
	if p.closed != nil {
		p.closed <- err
	}
}

func roundTrip(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, len(s))); err != nil {
		t.Fatal(err)
	}
}

// Bug 3: stopped timers stayed in the heap until their (distant) time, and
// every message start allocated a new read timer. Now Stop removes the timer
// and the connection's read and idle timers are reused.
func TestStoppedTimersLeaveHeapAndConnTimersAreReused(t *testing.T) {
	e, l := newTestEngine(t)
	sc, cc := pair(t)
	p := &lineProto{}
	opts := engine.Options{Logger: quiet, ReadTimeout: time.Hour, IdleTimeout: time.Hour}
	if err := e.ServeConn(sc, func(proto.ConnInfo) proto.Protocol { return p }, opts, nil); err != nil {
		t.Fatal(err)
	}
	var first *timer
	for i := 0; i < 200; i++ {
		roundTrip(t, cc, "a")   // a message starts: read timer armed
		roundTrip(t, cc, "b\n") // and ends: read timer stopped
		roundTrip(t, cc, "c")   // starts again
		var rt *timer
		onLoop(t, l, func() {
			for _, c := range l.conns.all() {
				rt = c.tm.readTimer
			}
		})
		if first == nil {
			first = rt
		} else if rt != first {
			t.Fatalf("round %d: a new read timer was allocated for a new message", i)
		}
		roundTrip(t, cc, "\n")
	}
	// Stop from another goroutine too.
	var tr proto.Transport
	onLoop(t, l, func() { tr = p.t })
	for i := 0; i < 100; i++ {
		if !tr.AfterFunc(time.Hour, func() {}).Stop() {
			t.Fatal("Stop of a pending timer returned false")
		}
	}
	var n, wheeled int
	var idle *timer
	onLoop(t, l, func() {
		n, wheeled = len(l.timers), l.wheel.n
		for _, c := range l.conns.all() {
			idle = c.tm.idleTimer
		}
	})
	// Left: no AfterFunc timer, and on the wheel the idle timer only (the
	// read timer is stopped: the last message ended).
	if n != 0 || wheeled != 1 {
		t.Fatalf("after 600 stopped timers the heap holds %d, the wheel %d; want 0 and 1 (the idle timer)", n, wheeled)
	}
	onLoop(t, l, func() {
		if !idle.inWheel {
			t.Error("the timer left is not the idle timer")
		}
	})
}

// Bug 3 (idle timer): the idle check re-arms the same timer.
func TestIdleTimerIsReused(t *testing.T) {
	e, l := newTestEngine(t)
	sc, cc := pair(t)
	p := &lineProto{}
	opts := engine.Options{Logger: quiet, IdleTimeout: 30 * time.Millisecond}
	if err := e.ServeConn(sc, func(proto.ConnInfo) proto.Protocol { return p }, opts, nil); err != nil {
		t.Fatal(err)
	}
	var first *timer
	last := 0
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		roundTrip(t, cc, "x\n")
		var it *timer
		n := 0
		onLoop(t, l, func() {
			n = len(l.timers) + l.wheel.n
			for _, c := range l.conns.all() {
				it = c.tm.idleTimer
			}
		})
		if first == nil {
			first = it
		} else if it != first {
			t.Fatal("the idle check allocated a new timer")
		}
		last = n
		time.Sleep(10 * time.Millisecond)
	}
	if last != 1 {
		t.Fatalf("the loop holds %d timers, want 1 (the idle timer)", last)
	}
}

// Bug 5: an error from epoll_wait ended the loop silently: its connections
// never got OnClose, Shutdown waited for them until the deadline, descriptors
// leaked. Now the loop quits, reports the error (OnError) and closes them.
func TestWaitErrorClosesTheLoopsConnections(t *testing.T) {
	e, l := newTestEngine(t)
	sc, cc := pair(t)
	p := &lineProto{closed: make(chan error, 1)}
	var reported atomic.Pointer[error]
	var released atomic.Bool
	opts := engine.Options{Logger: quiet, OnError: func(_ net.Addr, err error) { reported.Store(&err) }}
	if err := e.ServeConn(sc, func(proto.ConnInfo) proto.Protocol { return p }, opts, func() { released.Store(true) }); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, cc, "hi\n")
	// Make the next epoll_wait fail for real: maxevents 0 is EINVAL.
	onLoop(t, l, func() { l.events = l.events[:0] })
	select {
	case err := <-p.closed:
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("OnClose(%v), want the wait error (EINVAL)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connection of a failed loop never got OnClose")
	}
	if r := reported.Load(); r == nil || !errors.Is(*r, unix.EINVAL) {
		t.Error("OnError not called with the wait error")
	}
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
		t.Fatal("failed loop did not end")
	}
	if !released.Load() {
		t.Error("release not called")
	}
	if l.post(func() {}) {
		t.Error("a failed loop still takes tasks")
	}
	// The peer sees the connection closed.
	if b, err := io.ReadAll(cc); err != nil || len(b) != 0 {
		t.Errorf("peer: %q, %v; want EOF", b, err)
	}
	// New connections are refused cleanly (the only loop is gone), and
	// Close returns at once.
	sc2, _ := pair(t)
	if err := e.ServeConn(sc2, func(proto.ConnInfo) proto.Protocol { return &lineProto{} }, opts, nil); !errors.Is(err, engine.ErrEngineClosed) {
		t.Errorf("ServeConn on a failed engine = %v, want ErrEngineClosed", err)
	}
	start := time.Now()
	_ = e.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
}

// Bug 6: a second Close (or any stop after the loop ended) wrote to the loop's
// eventfd after the loop had closed it: to a closed descriptor, or to
// whatever file reused the number. Here an eventfd of ours reuses the number
// and must receive nothing.
func TestCloseTwiceWritesNothingToAReusedEventfd(t *testing.T) {
	e, l := newTestEngine(t)
	sc, cc := pair(t)
	if err := e.ServeConn(sc, func(proto.ConnInfo) proto.Protocol { return &lineProto{} }, engine.Options{Logger: quiet}, nil); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, cc, "x\n")
	efd := l.efd
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not end")
	}
	// Take descriptor numbers until we hold the loop's old eventfd number.
	var mine []int
	defer func() {
		for _, fd := range mine {
			unix.Close(fd)
		}
	}()
	reused := -1
	for i := 0; i < 256 && reused < 0; i++ {
		fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, fd)
		if fd == efd {
			reused = fd
		}
	}
	if reused < 0 {
		t.Skip("could not reuse the loop's eventfd number")
	}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ { // concurrently, too
		wg.Add(1)
		go func() { defer wg.Done(); _ = e.Close() }()
	}
	wg.Wait()
	_ = e.Close()
	l.stop()
	l.wake()
	var b [8]byte
	if n, err := unix.Read(reused, b[:]); err != unix.EAGAIN {
		t.Fatalf("a closed engine wrote to a descriptor it no longer owns: read %d bytes %v, %v", n, b[:n], err)
	}
}

// smallBufferPair is pair with small socket buffers (the client's receive
// buffer set before it connects, so the window it offers is small too): a
// burst of a few KiB already fills them.
func smallBufferPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	server, client = dialPair(t, net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 2<<10)
		})
	}})
	_ = server.(*net.TCPConn).SetWriteBuffer(2 << 10)
	return server, client
}

// burstProto writes n bytes at once when it opens.
type burstProto struct {
	proto.Base
	n int
}

func (p *burstProto) OnOpen(t proto.Transport) { _ = t.Write(make([]byte, p.n)) }

// An idle connection holds no write buffer: once what a burst queued has
// drained, the buffer goes back to the loop (for the next connection that
// must queue), or to the garbage collector when it is larger than keepOut.
func TestDrainedWriteBufferGoesBackToTheLoop(t *testing.T) {
	for _, tc := range []struct {
		n     int
		spare int // buffers the loop keeps afterwards
	}{
		{n: 12 << 10, spare: 1},  // queues less than keepOut: reused
		{n: 256 << 10, spare: 0}, // queues more: dropped
	} {
		e, l := newTestEngine(t)
		srv, cli := smallBufferPair(t)
		if err := e.ServeConn(srv, func(proto.ConnInfo) proto.Protocol { return &burstProto{n: tc.n} }, engine.Options{Logger: quiet}, nil); err != nil {
			t.Fatal(err)
		}
		var queued int
		deadline := time.Now().Add(5 * time.Second)
		for queued == 0 && time.Now().Before(deadline) {
			onLoop(t, l, func() {
				for _, c := range l.conns.all() {
					c.mu.Lock()
					queued = c.queued()
					c.mu.Unlock()
				}
			})
		}
		if queued == 0 {
			t.Fatalf("%d bytes: nothing queued; the test needs a peer that has not read yet", tc.n)
		}
		if _, err := io.ReadFull(cli, make([]byte, tc.n)); err != nil {
			t.Fatal(err)
		}
		var held, spare int
		for ok := false; !ok && time.Now().Before(deadline); {
			onLoop(t, l, func() {
				for _, c := range l.conns.all() {
					c.mu.Lock()
					held = 0
					if c.w != nil {
						held = cap(c.w.out)
					}
					ok = c.queued() == 0
					c.mu.Unlock()
				}
				l.mu.Lock()
				spare = 0
				for _, w := range l.spare {
					if cap(w.out) > 0 {
						spare++
					}
				}
				l.mu.Unlock()
			})
		}
		if held != 0 {
			t.Fatalf("%d bytes (%d queued): the idle connection holds a %d-byte write buffer", tc.n, queued, held)
		}
		if spare != tc.spare {
			t.Fatalf("%d bytes (%d queued): the loop keeps %d spare buffers, want %d", tc.n, queued, spare, tc.spare)
		}
	}
}

// A small queued write's buffer is reused by the loop.
func TestSmallDrainedWriteBufferIsReused(t *testing.T) {
	_, l := newTestEngine(t)
	w := l.getQueue()
	if w.out != nil || w.head != 0 || w.lens != nil {
		t.Fatalf("a new queue is not empty: %+v", w)
	}
	w.out = append(make([]byte, 0, 1024), "queued"...)
	w.head, w.lens = 2, append(w.lens, 6)
	l.putQueue(w)
	if got := l.getQueue(); got != w || cap(got.out) != 1024 || len(got.out) != 0 || got.head != 0 || len(got.lens) != 0 {
		t.Fatalf("getQueue = %p len %d cap %d head %d lens %v, want the 1 KiB queue given back, emptied", got, len(got.out), cap(got.out), got.head, got.lens)
	}
	if got := l.getQueue(); got == w || got.out != nil {
		t.Fatal("getQueue on a loop without spares did not make a new, empty queue")
	}
	big := &wqueue{out: make([]byte, 0, keepOut+1)}
	l.putQueue(big)
	if got := l.getQueue(); got.out != nil {
		t.Fatal("a buffer larger than keepOut was kept")
	}
}
