package goroutine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/proto"
)

// An event posted after the loop ran its events but before it armed its
// blocking read must still run at once, not when the peer next sends.
func TestWakeBeforeArmingReadIsNotLost(t *testing.T) {
	e, _ := newEngine(t)
	var armed atomic.Bool
	var cp atomic.Pointer[conn]
	ran := make(chan struct{})
	e.hookBeforeArm = func() {
		if !armed.CompareAndSwap(true, false) {
			return
		}
		posted := make(chan struct{})
		go func() { cp.Load().post(func() { close(ran) }); close(posted) }()
		<-posted
	}
	r := newRecorder()
	r.onOpen = func(tr proto.Transport) {
		cp.Store(tr.(*conn))
		armed.Store(true)
	}
	ln := listenTCP(t)
	serveListener(t, e, ln, r.factory(), engine.Options{})
	_ = dial(t, ln.Addr()) // and send nothing
	select {
	case <-ran:
	case <-time.After(2 * time.Second):
		t.Fatal("an event posted just before the read was armed did not run")
	}
}

// A unixpacket message larger than the read buffer is an error reported to
// OnError that closes the connection; it is never delivered truncated.
func TestSeqpacketOversizedMessageIsErrorNotTruncated(t *testing.T) {
	e, logs := newEngine(t)
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unixpacket", path)
	if err != nil {
		t.Skipf("no unixpacket here: %v", err)
	}
	r := newRecorder()
	er := newErrRecorder()
	serveListener(t, e, ln, r.factory(), engine.Options{Network: "unixpacket", OnError: er.hook})
	c := dial(t, ln.Addr())

	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if d := r.nextData(t); string(d) != "a" {
		t.Fatalf("got %q", d)
	}
	// The largest message that fits is delivered whole.
	if _, err := c.Write(make([]byte, MaxPacket)); err != nil {
		t.Fatal(err)
	}
	if d := r.nextData(t); len(d) != MaxPacket {
		t.Fatalf("a %d-byte message was delivered as %d bytes", MaxPacket, len(d))
	}
	if _, err := c.Write(make([]byte, 100<<10)); err != nil {
		t.Skipf("cannot send a 100 KiB packet here: %v", err)
	}
	rep := er.next(t)
	if !errors.Is(rep.err, ErrPacketTooLarge) {
		t.Fatalf("OnError(%v), want ErrPacketTooLarge", rep.err)
	}
	if closed, err := readToEnd(c); !closed {
		t.Fatalf("connection not closed after an oversized packet: %v", err)
	}
	select {
	case err := <-r.closeErr:
		if !errors.Is(err, ErrPacketTooLarge) {
			t.Fatalf("OnClose(%v), want ErrPacketTooLarge", err)
		}
	case <-time.After(wait):
		t.Fatal("OnClose not called")
	}
	select {
	case d := <-r.data:
		t.Fatalf("a truncated message of %d bytes was delivered", len(d))
	default:
	}
	if !strings.Contains(logs.String(), "record too large") {
		t.Fatalf("not logged:\n%s", logs)
	}
}

// After a large write drains, the connection holds no large write buffer;
// its read buffer never grows past maxReadBuf.
func TestBuffersReleasedAfterDrain(t *testing.T) {
	e, _ := newEngine(t)
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	const big = 64 << 20
	r := newRecorder()
	r.onOpen = func(tr proto.Transport) { tr.SetWriteBufferHardLimit(2 * big) }
	serveListener(t, e, ln, r.factory(), engine.Options{})
	cl := dial(t, ln.Addr())
	_ = cl.SetDeadline(time.Now().Add(30 * time.Second))
	tr := r.transport(t)
	c := tr.(*conn)

	// A burst the server reads: its read buffer grows to the maximum.
	go func() { _, _ = cl.Write(make([]byte, 1<<20)) }()
	for n := 0; n < 1<<20; n += len(r.nextData(t)) {
	}
	// 64 MiB queued to a slow peer.
	if err := tr.Write(make([]byte, big)); err != nil {
		t.Fatal(err)
	}
	if n := tr.BufferedAmount(); n < big/2 {
		t.Fatalf("only %d bytes buffered: the peer was not slow", n)
	}
	if _, err := io.CopyN(io.Discard, cl, big); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for {
		c.mu.Lock()
		pending, spare, active := cap(c.pending), cap(c.spare), c.writerActive
		c.mu.Unlock()
		if !active {
			if pending != 0 || spare > keepSpare {
				t.Fatalf("after draining, the write buffers hold %d and %d bytes", pending, spare)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writer still active")
		}
		time.Sleep(time.Millisecond)
	}
	waitNoReadBuffer(t, c, "after the burst")
}

// waitNoReadBuffer waits until c, idle, holds no read buffer. Between
// delivering data and its next read attempt the loop still holds the
// buffer; once it waits for the socket, it holds none.
func waitNoReadBuffer(t *testing.T, c *conn, when string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for n := -1; n != 0; {
		held := make(chan int, 1)
		c.post(func() { held <- heldReadBuffer(c) })
		select {
		case n = <-held:
		case <-time.After(wait):
			t.Fatal("event did not run")
		}
		if n != 0 && time.Now().After(deadline) {
			t.Fatalf("%s, the idle connection holds a %d-byte read buffer", when, n)
		}
	}
}

// heldReadBuffer is the size of the read buffer c holds (on its loop).
func heldReadBuffer(c *conn) int {
	if c.lr != nil {
		if c.lr.buf == nil {
			return 0
		}
		return cap(*c.lr.buf)
	}
	return cap(c.rbuf)
}

// An idle TCP connection holds no read buffer between messages (it is
// taken from a shared pool when the socket has data and given back when it
// has none), and a burst's larger buffer goes back too.
func TestIdleConnectionHoldsNoReadBuffer(t *testing.T) {
	e, _ := newEngine(t)
	ln := listenTCP(t)
	r := newRecorder()
	serveListener(t, e, ln, r.factory(), engine.Options{})
	cl := dial(t, ln.Addr())
	_ = cl.SetDeadline(time.Now().Add(30 * time.Second))
	c := r.transport(t).(*conn)
	if c.lr == nil {
		t.Skip("no lazy reader on this system")
	}
	for _, size := range []int{10, 1 << 20} { // one small message, then a burst
		go func() { _, _ = cl.Write(make([]byte, size)) }()
		for n := 0; n < size; n += len(r.nextData(t)) {
		}
		waitNoReadBuffer(t, c, fmt.Sprintf("after %d bytes", size))
	}
}

// OnClose is called iff OnOpen was: a connection admitted while Shutdown
// begins is either closed without any callback or gets both.
func TestShutdownRacingAdmitNoCloseWithoutOpen(t *testing.T) {
	e, _ := newEngine(t)
	ln := listenTCP(t)
	r := newRecorder()
	var once sync.Once
	shut := make(chan error, 1)
	admit := func(local, remote net.Addr) (func(), bool) {
		once.Do(func() {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				shut <- e.Shutdown(ctx)
			}()
			deadline := time.Now().Add(wait)
			for !e.isStopping() && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		})
		return nil, true
	}
	done := make(chan error, 1)
	go func() { done <- e.ServeListener(ln, r.factory(), engine.Options{Admit: admit}) }()
	c := dial(t, ln.Addr())
	if closed, err := readToEnd(c); !closed {
		t.Fatalf("connection admitted during shutdown not closed: %v", err)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Shutdown did not return")
	}
	_ = ln.Close()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("ServeListener did not return")
	}
	waitFor(t, "the connection's goroutine", e.Wait)
	if o, cl := r.opened.Load(), r.closed.Load(); o != cl {
		t.Fatalf("OnOpen called %d times, OnClose %d times", o, cl)
	}
}
