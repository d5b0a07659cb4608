//go:build linux

package server_test

// Regression tests for the epoll engine (review of internal/engine/epoll).
// Every wait is bounded; the engine runs with one loop so that the
// interleavings these tests build are deterministic.

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockit/sockit/internal/conntest"
	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/server"
)

var (
	unixTr       = conntest.Transport{Name: "unix", Network: "unix"}
	tcpTr        = conntest.Transport{Name: "tcp", Network: "tcp4"}
	unixpacketTr = conntest.Transport{Name: "unixpacket", Network: "unixpacket", Packet: true}
)

// Bug 1: a steady stream of due timers must not starve the sockets. Before the
// fix, wait() saw a due timer, set a deadline in the past and returned without
// ever calling epoll_wait, so the echo below never came.
func TestEpollDueTimersDoNotStarveIO(t *testing.T) {
	var stop atomic.Bool
	t.Cleanup(func() { stop.Store(true) })
	var ticks atomic.Int64
	sink := conntest.NewSink(func() *conntest.Hooks {
		h := conntest.NewHooks()
		h.Open = func(h *conntest.Hooks) {
			var tick func()
			tick = func() {
				ticks.Add(1)
				if !stop.Load() {
					h.T.AfterFunc(0, tick) // always due
				}
			}
			tick()
		}
		h.Data = func(h *conntest.Hooks, d []byte) { _ = h.T.Write(d) }
		return h
	})
	env := conntest.Start(t, "epoll:1", tcpTr, sink.Factory, nil)
	c := env.Dial()
	conntest.Eventually(t, 5*time.Second, "timers ticking", func() bool { return ticks.Load() > 100 })
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo under a stream of due timers: %q, %v (I/O starved)", buf, err)
	}
	stop.Store(true)
}

// pauseResumeEvents keeps only the pause/resume events of h.
func pauseResumeEvents(h *conntest.Hooks) []string {
	var out []string
	for _, ev := range strings.Fields(h.Events()) {
		if ev == "pause" || ev == "resume" {
			out = append(out, ev)
		}
	}
	return out
}

// checkAlternating fails unless evs is pause, resume, pause, ... and, when
// the buffer has drained (paused == false), ends with resume.
func checkAlternating(t *testing.T, evs []string, paused bool) {
	t.Helper()
	for i, ev := range evs {
		want := "pause"
		if i%2 == 1 {
			want = "resume"
		}
		if ev != want {
			t.Fatalf("pause/resume events %v: event %d is %s, want %s (must strictly alternate, starting with pause)", evs, i, ev, want)
		}
	}
	if last := len(evs) > 0 && evs[len(evs)-1] == "pause"; last != paused {
		t.Fatalf("pause/resume events %v end paused=%v, but the transport is paused=%v", evs, last, paused)
	}
}

// Bug 2: a Write from another goroutine crossing high while the loop is busy,
// then a flush draining to low before the loop runs its task queue, delivered
// OnResumeWriting (synchronously, from the flush) before the posted
// OnPauseWriting: "resume pause", leaving the protocol paused for good.
func TestEpollPauseResumeInOrderWithOffLoopWriter(t *testing.T) {
	const high, low = 8 << 10, 0
	inTimer := make(chan struct{})
	release := make(chan struct{})
	sink := conntest.NewSink(func() *conntest.Hooks {
		h := conntest.NewHooks()
		h.Open = func(h *conntest.Hooks) {
			_ = h.T.SetWriteBufferLimits(high, low)
			// Hold the loop inside a timer callback (timers run after the
			// task queue) while the test writes from its own goroutine.
			h.T.AfterFunc(time.Millisecond, func() {
				close(inTimer)
				select {
				case <-release:
				case <-time.After(10 * time.Second):
				}
			})
		}
		return h
	})
	env := conntest.Start(t, "epoll:1", unixTr, sink.Factory, nil)
	c := env.Dial()
	h, err := sink.Next(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-inTimer:
	case <-time.After(5 * time.Second):
		t.Fatal("timer did not run")
	}
	// Off the loop: fill the kernel buffer, then queue just past high.
	chunk := make([]byte, 4<<10)
	total := 0
	for i := 0; h.T.BufferedAmount() <= high; i++ {
		if i > 10000 {
			close(release)
			t.Fatal("never crossed high")
		}
		if err := h.T.Write(chunk); err != nil {
			close(release)
			t.Fatal(err)
		}
		total += len(chunk)
	}
	// The peer takes everything the kernel holds, so that the loop's next
	// flush drains the whole queue at once.
	inKernel := total - h.T.BufferedAmount()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, inKernel)); err != nil {
		close(release)
		t.Fatalf("read what the kernel held: %v", err)
	}
	close(release)
	if _, err := io.ReadFull(c, make([]byte, total-inKernel)); err != nil {
		t.Fatalf("read the queued rest: %v", err)
	}
	conntest.Eventually(t, 5*time.Second, "buffer drained", func() bool { return h.T.BufferedAmount() == 0 })
	loopRoundTrip(t, h.T)
	checkAlternating(t, pauseResumeEvents(h), false)
}

// Bug 2, under load: many goroutines write while a reader drains; the events
// must strictly alternate and end resumed once everything is read.
func TestEpollPauseResumeAlternateUnderConcurrentWriters(t *testing.T) {
	opened := make(chan proto.Transport, 1)
	sink := conntest.NewSink(func() *conntest.Hooks {
		h := conntest.NewHooks()
		h.Open = func(h *conntest.Hooks) {
			_ = h.T.SetWriteBufferLimits(4<<10, 1<<10)
			opened <- h.T
		}
		return h
	})
	env := conntest.Start(t, "epoll:1", unixTr, sink.Factory, nil)
	c := env.Dial()
	h, err := sink.Next(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var tr proto.Transport
	select {
	case tr = <-opened:
	case <-time.After(5 * time.Second):
		t.Fatal("no OnOpen")
	}
	const writers, writes, size = 8, 300, 1 << 10
	readDone := make(chan error, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.ReadFull(c, make([]byte, writers*writes*size))
		readDone <- err
	}()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, size)
			for i := 0; i < writes; i++ {
				for tr.Write(b) == proto.ErrBufferFull {
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					_ = tr.Drain(ctx)
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	if err := <-readDone; err != nil {
		t.Fatalf("reader: %v", err)
	}
	loopRoundTrip(t, tr)
	checkAlternating(t, pauseResumeEvents(h), false)
}

// Bug 4: Shutdown from a callback on a loop cannot wait for anything of that
// loop, including a connection handed to it (ServeConn) but not opened yet.
// Before the fix it waited for that connection until the deadline and
// returned context.DeadlineExceeded (with context.Background(): forever).
func TestEpollShutdownFromCallbackWithPendingConnOnOwnLoop(t *testing.T) {
	other, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	peer, err := net.Dial("tcp4", other.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	served, err := other.Accept()
	if err != nil {
		t.Fatal(err)
	}

	srv := &server.Server{Engine: "epoll", Loops: 1, Logger: conntest.NewLogger(io.Discard)}
	type result struct {
		err     error
		elapsed time.Duration
	}
	results := make(chan result, 1)
	factory := func(proto.ConnInfo) proto.Protocol {
		h := conntest.NewHooks()
		h.Data = func(h *conntest.Hooks, d []byte) {
			// Hand a connection to the engine: its open is queued on
			// this very loop, which is busy running us.
			if err := srv.ServeConn(served, func(proto.ConnInfo) proto.Protocol { return conntest.NewHooks() }); err != nil {
				results <- result{err: err}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			start := time.Now()
			err := srv.Shutdown(ctx)
			results <- result{err, time.Since(start)}
			_ = h.T.Write([]byte("done"))
		}
		return h
	}
	ln := conntest.Listen(t, tcpTr)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln, factory) }()
	c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("stop")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-results:
		if r.err != nil || r.elapsed > time.Second {
			t.Errorf("Shutdown from a callback = %v after %v; want nil at once", r.err, r.elapsed)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown from a callback deadlocked")
	}
	if got := conntest.ReadAll(t, c); string(got) != "done" {
		t.Errorf("caller's connection got %q, want its answer then EOF", got)
	}
	// The pending connection was opened after the callback, then closed
	// gracefully (idle).
	_ = peer.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(peer); err != nil || len(b) != 0 {
		t.Errorf("pending connection: %q, %v; want EOF", b, err)
	}
	select {
	case err := <-serveErr:
		if !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	// Everything of the loop ends: a second Shutdown from here returns.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
}

// Bug 7: a unixpacket record larger than the loop's 64 KiB read buffer was
// cut to 64 KiB and delivered as if whole. Now it is either read whole or the
// connection gets an error (HandleError, OnClose(err)) and is closed.
func TestEpollUnixpacketOversizedRecordNotTruncatedSilently(t *testing.T) {
	var handled atomic.Pointer[error]
	sink := conntest.NewSink(nil)
	env := conntest.Start(t, "epoll:1", unixpacketTr, sink.Factory, func(s *server.Server) {
		s.HandleError = func(_ net.Addr, err error) { handled.Store(&err) }
	})
	c := env.Dial()
	h, err := sink.Next(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const size = 100 << 10
	big := make([]byte, size)
	for i := range big {
		big[i] = byte(i)
	}
	if _, err := c.Write(big); err != nil {
		t.Skipf("kernel refused a %d-byte seqpacket record: %v", size, err)
	}
	closeErr, ok := h.WaitClosed(3 * time.Second)
	got := h.Received()
	if len(got) != 0 && len(got) != size {
		t.Fatalf("delivered %d of a %d-byte record: truncated", len(got), size)
	}
	if len(got) == size {
		return // read whole
	}
	if !ok {
		t.Fatalf("oversized record: nothing delivered and the connection not closed (events %q)", h.Events())
	}
	if closeErr == nil {
		t.Fatal("OnClose(nil) after an oversized record; want the error")
	}
	if p := handled.Load(); p == nil || *p == nil {
		t.Fatal("HandleError not called for the oversized record")
	}
	if b := conntest.ReadAll(t, c); len(b) != 0 {
		t.Fatalf("peer got %q", b)
	}
	// Records that fit still work on a new connection.
	c2 := env.Dial()
	h2, err := sink.Next(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Write(big[:64<<10]); err != nil {
		t.Fatal(err)
	}
	conntest.Eventually(t, 5*time.Second, "64 KiB record delivered", func() bool { return len(h2.Received()) == 64<<10 })
}

// loopRoundTrip waits until the connection's loop has run everything posted
// to it before: a timer of 0 runs after them (bounded).
func loopRoundTrip(t *testing.T, tr proto.Transport) {
	t.Helper()
	done := make(chan struct{})
	tr.AfterFunc(0, func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("loop stuck")
	}
}
