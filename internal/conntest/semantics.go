package conntest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/server"
)

const wait = 5 * time.Second

// RunSemantics runs one test per rule of SEMANTICS.md ("Protocol lifecycle"
// and "Server") on every stream transport of the named engine.
func RunSemantics(t *testing.T, engineName string) {
	for _, tr := range StreamTransports {
		t.Run(engineName+"/"+tr.Name, func(t *testing.T) {
			for _, c := range semanticCases {
				if c.streamOnly && tr.Packet || c.packetOnly && !tr.Packet {
					continue
				}
				t.Run(c.name, func(t *testing.T) { c.run(t, engineName, tr) })
			}
		})
	}
}

type semanticCase struct {
	name       string
	streamOnly bool // needs a byte stream (not message-preserving)
	packetOnly bool // needs records (unixpacket)
	run        func(t *testing.T, eng string, tr Transport)
}

var semanticCases = []semanticCase{
	{name: "Lifecycle_OpenDataEOFClose_OnCloseOnceNil", run: testLifecycle},
	{name: "Lifecycle_PeerResetGivesResetError", run: testPeerReset},
	{name: "OnEOF_FalseClosesTransport", run: testEOFFalseCloses},
	{name: "OnEOF_TrueKeepsHalfOpen", run: testEOFTrueHalfOpen},
	{name: "Panic_ContainedLoggedAbortedOnCloseServerUnaffected", run: testPanicContained},
	{name: "Callbacks_NeverConcurrent", run: testNeverConcurrent},
	{name: "Write_EmptyIsNoop", run: testEmptyWrite},
	{name: "Write_ManyGoroutinesOrderedNeverInterleaved", streamOnly: true, run: testWriteOrdering},
	{name: "Write_AfterWriteEOFErrors", run: testWriteAfterEOF},
	{name: "Write_AfterCloseErrors", run: testWriteAfterClose},
	{name: "Buffer_HardLimitErrBufferFullBuffersNothing", streamOnly: true, run: testHardLimit},
	{name: "Buffer_OneWriteBelowHighAcceptedWhateverItsSize", streamOnly: true, run: testLargeWrite},
	{name: "Drain_WaitsForLowOrLossOrCtx", streamOnly: true, run: testDrain},
	{name: "WriteEOF_HalfClosesAfterDrainIdempotent", streamOnly: true, run: testWriteEOF},
	{name: "Close_FlushesThenOnCloseNil", streamOnly: true, run: testCloseFlushes},
	{name: "Abort_DiscardsAndClosesNow", streamOnly: true, run: testAbort},
	{name: "PauseReading_NoDataWhilePausedIdempotent", run: testPauseReading},
	{name: "Watermarks_DefaultsAndValidation", run: testWatermarkValidation},
	{name: "Watermarks_PauseOnceSyncResumeOnce", streamOnly: true, run: testWatermarks},
	{name: "Watermarks_LimitsBelowBufferedPauseAtOnce", streamOnly: true, run: testLimitsBelowBuffered},
	{name: "AfterFunc_SerialisedStopNotAfterClose", run: testAfterFunc},
	{name: "Server_VerifyRefusalClosesAtOnce", run: testVerifyRefusal},
	{name: "Server_ShutdownAnswersInFlightRefusesNew", run: testShutdownInFlight},
	{name: "Server_ShutdownFromCallbackNoDeadlock", run: testShutdownFromCallback},
	{name: "Server_ShutdownDeadlineAbortsRest", run: testShutdownDeadline},
	{name: "Server_MaxConnsClosesExtra", run: testMaxConns},
	{name: "Server_IdleTimeoutCloses", run: testIdleTimeout},
	{name: "Server_WriteTimeoutClosesAStuckPeerNotASlowOne", streamOnly: true, run: testWriteTimeout},
	{name: "Record_TooLargeIsOnErrorAndCloseNeverCut", packetOnly: true, run: testRecordTooLarge},
}

// testRecordTooLarge: a unixpacket record larger than the engine reads
// whole (engine.MaxRecord) is never delivered cut: HandleError gets an error
// matching engine.ErrRecordTooLarge, OnClose gets it too, the event is
// logged, and a record of exactly MaxRecord bytes before it arrives whole.
func testRecordTooLarge(t *testing.T, eng string, tr Transport) {
	errs := make(chan error, 1)
	sink := NewSink(nil)
	env := Start(t, eng, tr, sink.Factory, func(s *server.Server) {
		s.HandleError = func(_ net.Addr, err error) { errs <- err }
	})
	c := env.Dial()
	if err := c.(*net.UnixConn).SetWriteBuffer(4 * engine.MaxRecord); err != nil {
		t.Fatal(err)
	}
	whole := bytes.Repeat([]byte("w"), engine.MaxRecord)
	if _, err := c.Write(whole); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(bytes.Repeat([]byte("x"), engine.MaxRecord+1)); err != nil {
		t.Fatal(err)
	}
	h, err := sink.Next(wait)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, engine.ErrRecordTooLarge) {
			t.Fatalf("HandleError(%v), want engine.ErrRecordTooLarge", err)
		}
	case <-time.After(wait):
		t.Fatal("HandleError not called for a record over MaxRecord")
	}
	cerr, ok := h.WaitClosed(wait)
	if !ok {
		t.Fatal("OnClose not called")
	}
	if !errors.Is(cerr, engine.ErrRecordTooLarge) {
		t.Fatalf("OnClose(%v), want engine.ErrRecordTooLarge", cerr)
	}
	if got := h.Received(); !bytes.Equal(got, whole) || strings.Count(h.Events(), "data") != 1 {
		t.Fatalf("delivered %d bytes (events %q), want exactly the one whole record of %d", len(got), h.Events(), len(whole))
	}
	if !strings.Contains(env.Logs.String(), "record too large") {
		t.Fatalf("not logged:\n%s", env.Logs)
	}
}

func echoHooks() *Hooks {
	h := NewHooks()
	h.Data = func(h *Hooks, d []byte) { _ = h.T.Write(d) }
	return h
}

func testLifecycle(t *testing.T, eng string, tr Transport) {
	sink := NewSink(echoHooks)
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got := ReadN(t, c, 4); string(got) != "ping" {
		t.Fatalf("echo = %q", got)
	}
	CloseWrite(t, c)
	if b := ReadAll(t, c); len(b) != 0 {
		t.Fatalf("unexpected bytes %q", b)
	}
	h, err := sink.Next(wait)
	if err != nil {
		t.Fatal(err)
	}
	cerr, ok := h.WaitClosed(wait)
	if !ok {
		t.Fatal("OnClose not called")
	}
	if cerr != nil {
		t.Fatalf("OnClose(%v), want nil after a clean close", cerr)
	}
	time.Sleep(20 * time.Millisecond) // a second OnClose would show up here
	if n := h.CloseCount.Load(); n != 1 {
		t.Fatalf("OnClose called %d times", n)
	}
	if ev := h.Events(); ev != "open data eof close" {
		t.Fatalf("events %q, want %q", ev, "open data eof close")
	}
}

func testPeerReset(t *testing.T, eng string, tr Transport) {
	if !strings.HasPrefix(tr.Network, "tcp") {
		t.Skip("a reset needs TCP (SO_LINGER 0)")
	}
	sink := NewSink(nil)
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	h, _ := sink.Next(wait)
	Eventually(t, wait, "data delivered", func() bool { return len(h.Received()) == 1 })
	_ = c.(*net.TCPConn).SetLinger(0)
	c.Close()
	cerr, ok := h.WaitClosed(wait)
	if !ok {
		t.Fatal("OnClose not called after reset")
	}
	if !errors.Is(cerr, syscall.ECONNRESET) {
		t.Fatalf("OnClose(%v), want a connection-reset error", cerr)
	}
}

func testEOFFalseCloses(t *testing.T, eng string, tr Transport) {
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.EOF = func(h *Hooks) bool { _ = h.T.Write([]byte("bye")); return false }
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	CloseWrite(t, c)
	if got := ReadAll(t, c); string(got) != "bye" {
		t.Fatalf("got %q, want the reply written in OnEOF then EOF", got)
	}
	h, _ := sink.Next(wait)
	if err, ok := h.WaitClosed(wait); !ok || err != nil {
		t.Fatalf("OnClose(%v) called=%v", err, ok)
	}
}

func testEOFTrueHalfOpen(t *testing.T, eng string, tr Transport) {
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.EOF = func(h *Hooks) bool {
			// Keep the connection half-open and answer later, from a timer.
			h.T.AfterFunc(30*time.Millisecond, func() {
				_ = h.T.Write([]byte("late"))
				_ = h.T.Close()
			})
			return true
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	CloseWrite(t, c)
	if got := ReadAll(t, c); string(got) != "late" {
		t.Fatalf("got %q, want %q written after OnEOF returned true", got, "late")
	}
}

func testPanicContained(t *testing.T, eng string, tr Transport) {
	var hookCalls atomic.Int32
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Data = func(h *Hooks, d []byte) {
			if string(d) == "boom" {
				panic("kaboom")
			}
			_ = h.T.Write(d)
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, func(s *server.Server) {
		s.HandleError = func(net.Addr, error) { hookCalls.Add(1) }
	})
	c := env.Dial()
	if _, err := c.Write([]byte("boom")); err != nil {
		t.Fatal(err)
	}
	h, _ := sink.Next(wait)
	cerr, ok := h.WaitClosed(wait)
	if !ok {
		t.Fatal("OnClose not called after a panic")
	}
	var pe *engine.PanicError
	if !errors.As(cerr, &pe) {
		t.Fatalf("OnClose(%v), want the panic as error", cerr)
	}
	if b := ReadAll(t, c); len(b) != 0 {
		t.Fatalf("got %q from the aborted connection", b)
	}
	if n := hookCalls.Load(); n != 1 {
		t.Fatalf("HandleError called %d times, want 1", n)
	}
	if !env.Logs.Contains("kaboom") {
		t.Fatalf("panic not logged: %s", env.Logs.String())
	}
	// The server carries on.
	c2 := env.Dial()
	if _, err := c2.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if got := ReadN(t, c2, 2); string(got) != "ok" {
		t.Fatalf("second connection got %q", got)
	}
}

func testNeverConcurrent(t *testing.T, eng string, tr Transport) {
	stop := make(chan struct{})
	opened := make(chan struct{}, 1)
	var wg sync.WaitGroup
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			defer func() { opened <- struct{}{} }()
			tp := h.T
			// Timers and foreign writes race with data callbacks.
			for i := 0; i < 20; i++ {
				tp.AfterFunc(time.Duration(i)*time.Millisecond, func() { time.Sleep(100 * time.Microsecond) })
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if tp.Write([]byte("w")) != nil {
						return
					}
					time.Sleep(100 * time.Microsecond)
				}
			}()
		}
		h.Data = func(h *Hooks, d []byte) { time.Sleep(50 * time.Microsecond) }
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	go io.Copy(io.Discard, c)
	for i := 0; i < 200; i++ {
		if _, err := c.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	<-opened
	close(stop)
	wg.Wait()
	h, _ := sink.Next(wait)
	if h.Concurrent.Load() {
		t.Fatal("two callbacks of one connection ran at the same time")
	}
}

func testEmptyWrite(t *testing.T, eng string, tr Transport) {
	errs := make(chan error, 1)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			errs <- h.T.Write(nil)
			_ = h.T.Write([]byte("after"))
			_ = h.T.Close()
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	if got := ReadAll(t, c); string(got) != "after" {
		t.Fatalf("got %q", got)
	}
	if err := <-errs; err != nil {
		t.Fatalf("empty Write = %v, want nil", err)
	}
}

// testLargeWrite: one Write made while the buffer is below its high
// watermark is accepted whatever its size, here 4 × the default hard limit
// in two writes to an empty buffer (the first fills it, the second comes
// once it drained), and the peer gets every byte. The hard limit bounds
// what piles up behind a producer that ignores pauses, never one reply.
func testLargeWrite(t *testing.T, eng string, tr Transport) {
	const size = 2 * proto.DefaultHighWater * proto.HardLimitFactor
	errs := make(chan error, 2)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			tp := h.T
			msg := bytes.Repeat([]byte("x"), size)
			errs <- tp.Write(msg)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				if err := tp.Drain(ctx); err != nil {
					errs <- err
					return
				}
				for tp.BufferedAmount() > 0 { // Drain stops at low; wait for empty
					if ctx.Err() != nil {
						errs <- ctx.Err()
						return
					}
					time.Sleep(time.Millisecond)
				}
				errs <- tp.Write(msg)
				_ = tp.Close()
			}()
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	got := ReadAll(t, c)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("write %d of %d bytes = %v, want nil", i+1, size, err)
		}
	}
	if len(got) != 2*size || bytes.Count(got, []byte("x")) != 2*size {
		t.Fatalf("peer got %d bytes, want %d", len(got), 2*size)
	}
}

// testWriteOrdering: 8 goroutines × numbered frames to one connection arrive
// in per-goroutine order, never torn.
func testWriteOrdering(t *testing.T, eng string, tr Transport) {
	const writers, perWriter = 8, 10000
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			tp := h.T
			_ = tp.SetWriteBufferLimits(64<<20, -1)
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var f [16]byte
					for i := 0; i < perWriter; i++ {
						binary.BigEndian.PutUint32(f[0:], uint32(w))
						binary.BigEndian.PutUint32(f[4:], uint32(i))
						copy(f[8:], "ABCDEFGH")
						// Writev of two halves must not be split either.
						for tp.Writev(f[:5], f[5:]) == proto.ErrBufferFull {
							time.Sleep(time.Millisecond)
						}
					}
				}()
			}
			go func() { wg.Wait(); _ = tp.Close() }()
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	all := ReadAll(t, c)
	if len(all) != writers*perWriter*16 {
		t.Fatalf("got %d bytes, want %d", len(all), writers*perWriter*16)
	}
	next := make([]uint32, writers)
	for off := 0; off < len(all); off += 16 {
		f := all[off : off+16]
		w, i := binary.BigEndian.Uint32(f), binary.BigEndian.Uint32(f[4:])
		if w >= writers || string(f[8:]) != "ABCDEFGH" {
			t.Fatalf("torn frame at %d: %x", off, f)
		}
		if i != next[w] {
			t.Fatalf("writer %d: frame %d arrived when %d was expected", w, i, next[w])
		}
		next[w]++
	}
}

func testWriteAfterEOF(t *testing.T, eng string, tr Transport) {
	errs := make(chan error, 2)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			errs <- h.T.WriteEOF()
			errs <- h.T.Write([]byte("x"))
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	if err := <-errs; err != nil {
		t.Fatalf("WriteEOF = %v", err)
	}
	if err := <-errs; !errors.Is(err, proto.ErrWriteAfterEOF) {
		t.Fatalf("Write after WriteEOF = %v, want ErrWriteAfterEOF", err)
	}
	if b := ReadAll(t, c); len(b) != 0 {
		t.Fatalf("got %q after WriteEOF", b)
	}
}

func testWriteAfterClose(t *testing.T, eng string, tr Transport) {
	errs := make(chan error, 1)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) { _ = h.T.Close() }
		h.Closed = func(h *Hooks, _ error) { errs <- h.T.Write([]byte("x")) }
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	ReadAll(t, c)
	select {
	case err := <-errs:
		if !errors.Is(err, proto.ErrClosed) || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after close = %v, want ErrClosed (net.ErrClosed)", err)
		}
	case <-time.After(wait):
		t.Fatal("OnClose not called")
	}
}

// stalledPeer returns a connection whose reader never reads, so the
// server's writes fill the kernel buffers and then the transport's buffer.
func stalledPeer(t *testing.T, env *Env) net.Conn {
	return env.Dial()
}

func testHardLimit(t *testing.T, eng string, tr Transport) {
	type result struct {
		err    error
		before int
		after  int
		hard   int
	}
	res := make(chan result, 1)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			tp := h.T
			if err := tp.SetWriteBufferLimits(16<<10, -1); err != nil {
				res <- result{err: err}
				return
			}
			tp.SetWriteBufferHardLimit(256 << 10)
			go func() {
				chunk := make([]byte, 8<<10)
				deadline := time.Now().Add(wait)
				for time.Now().Before(deadline) {
					before := tp.BufferedAmount()
					err := tp.Write(chunk)
					if err != nil {
						res <- result{err: err, before: before, after: tp.BufferedAmount(), hard: 256 << 10}
						return
					}
				}
				res <- result{err: errors.New("never hit the hard limit")}
			}()
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	_ = stalledPeer(t, env)
	r := <-res
	if !errors.Is(r.err, proto.ErrBufferFull) {
		t.Fatalf("Write past the hard limit = %v, want ErrBufferFull", r.err)
	}
	if r.after > r.hard || r.before+8<<10 <= r.hard {
		t.Fatalf("buffered %d before and %d after the refused write (hard %d)", r.before, r.after, r.hard)
	}
	if r.after > r.before {
		t.Fatalf("the refused write buffered %d bytes", r.after-r.before)
	}
}

func testDrain(t *testing.T, eng string, tr Transport) {
	tps := make(chan proto.Transport, 1)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			_ = h.T.SetWriteBufferLimits(32<<10, 8<<10)
			h.T.SetWriteBufferHardLimit(64 << 20)
			tps <- h.T
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := stalledPeer(t, env)
	tp := <-tps
	fill := func() {
		chunk := make([]byte, 64<<10)
		for i := 0; i < 4096 && tp.BufferedAmount() <= 32<<10; i++ {
			if err := tp.Write(chunk); err != nil {
				return
			}
		}
	}
	fill()
	if tp.BufferedAmount() <= 32<<10 {
		t.Fatalf("could not fill the buffer of a stalled peer (%d buffered)", tp.BufferedAmount())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := tp.Drain(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain with a stalled peer = %v, want the ctx error", err)
	}
	// The peer reads: Drain returns once the buffer is at or below low.
	readerDone := make(chan struct{})
	go func() { io.Copy(io.Discard, c); close(readerDone) }()
	ctx, cancel = context.WithTimeout(context.Background(), wait)
	err = tp.Drain(ctx)
	cancel()
	if err != nil || tp.BufferedAmount() > 8<<10 {
		t.Fatalf("Drain after the peer read = %v with %d buffered, want nil at <= low", err, tp.BufferedAmount())
	}
	// The peer goes away: Drain reports the loss.
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
	<-readerDone
	ctx, cancel = context.WithTimeout(context.Background(), wait)
	defer cancel()
	for ctx.Err() == nil {
		fill()
		if err = tp.Drain(ctx); err != nil {
			break
		}
	}
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain on a lost connection = %v, want a connection error", err)
	}
}

func testWriteEOF(t *testing.T, eng string, tr Transport) {
	errs := make(chan error, 3)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			_ = h.T.Write(bytes.Repeat([]byte("z"), 200<<10))
			errs <- h.T.WriteEOF()
			errs <- h.T.WriteEOF()
		}
		h.Data = func(h *Hooks, d []byte) {} // still reading after our EOF
		h.EOF = func(h *Hooks) bool { return false }
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	got := ReadAll(t, c) // EOF arrives only after every byte
	if len(got) != 200<<10 {
		t.Fatalf("got %d bytes before EOF, want %d", len(got), 200<<10)
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("WriteEOF #%d = %v", i+1, err)
		}
	}
	// The server still reads: half-closed, not closed.
	if _, err := c.Write([]byte("still here")); err != nil {
		t.Fatalf("write after server half-close: %v", err)
	}
	h, _ := sink.Next(wait)
	Eventually(t, wait, "server received data after its WriteEOF", func() bool { return string(h.Received()) == "still here" })
}

func testCloseFlushes(t *testing.T, eng string, tr Transport) {
	const n = 4 << 20
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			_ = h.T.SetWriteBufferLimits(n, -1)
			_ = h.T.Write(bytes.Repeat([]byte("f"), n))
			_ = h.T.Close()
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	time.Sleep(50 * time.Millisecond) // the buffer is still full when Close is called
	got := ReadAll(t, c)
	if len(got) != n {
		t.Fatalf("got %d bytes, want all %d before the close", len(got), n)
	}
	h, _ := sink.Next(wait)
	if err, ok := h.WaitClosed(wait); !ok || err != nil {
		t.Fatalf("OnClose(%v) called=%v, want nil", err, ok)
	}
}

func testAbort(t *testing.T, eng string, tr Transport) {
	const n = 16 << 20
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			_ = h.T.SetWriteBufferLimits(n, -1)
			_ = h.T.Write(bytes.Repeat([]byte("a"), n))
			h.T.Abort()
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := stalledPeer(t, env)
	h, _ := sink.Next(wait)
	if _, ok := h.WaitClosed(wait); !ok {
		t.Fatal("OnClose not called after Abort")
	}
	got, _ := io.ReadAll(c) // may end with a reset
	if len(got) >= n {
		t.Fatalf("Abort sent the whole buffer (%d bytes)", len(got))
	}
}

func testPauseReading(t *testing.T, eng string, tr Transport) {
	var tp atomic.Value
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			h.T.PauseReading()
			h.T.PauseReading() // idempotent
			tp.Store(h.T)
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	h, _ := sink.Next(wait)
	time.Sleep(100 * time.Millisecond)
	if got := h.Received(); len(got) != 0 {
		t.Fatalf("OnData(%q) while paused", got)
	}
	if strings.HasPrefix(tr.Network, "tcp") {
		// The kernel window fills: a paused reader pushes back on the peer.
		_ = c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		chunk := make([]byte, 64<<10)
		sent := 0
		for sent < 256<<20 {
			n, err := c.Write(chunk)
			sent += n
			if err != nil {
				break
			}
		}
		if sent >= 256<<20 {
			t.Fatalf("wrote %d bytes to a paused reader without blocking", sent)
		}
		_ = c.SetWriteDeadline(time.Time{})
	}
	v := tp.Load().(proto.Transport)
	v.ResumeReading()
	v.ResumeReading()
	Eventually(t, wait, "data after resume", func() bool { return bytes.HasPrefix(h.Received(), []byte("held")) })
}

func testWatermarkValidation(t *testing.T, eng string, tr Transport) {
	type res struct {
		name string
		err  error
	}
	results := make(chan []res, 1)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			var out []res
			probe := func(name string, hi, lo int) {
				err := h.T.SetWriteBufferLimits(hi, lo)
				out = append(out, res{name: name, err: err})
			}
			probe("defaults", -1, -1)
			probe("only low", -1, 1000)
			probe("only high", 4000, -1)
			probe("low above high", 10, 20)
			probe("zero", 0, 0)
			results <- out
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	env.Dial()
	out := <-results
	for _, r := range out {
		wantErr := r.name == "low above high"
		if (r.err != nil) != wantErr {
			t.Errorf("%s: err = %v, want error %v", r.name, r.err, wantErr)
		}
		if wantErr && !errors.Is(r.err, proto.ErrBadLimits) {
			t.Errorf("%s: err = %v, want ErrBadLimits", r.name, r.err)
		}
	}
	// The arithmetic of the limits is shared by every engine.
	for _, c := range []struct{ hi, lo, wantHi, wantLo int }{
		{-1, -1, 64 << 10, 16 << 10}, {-1, 1000, 4000, 1000}, {4000, -1, 4000, 1000}, {0, 0, 0, 0},
	} {
		hi, lo, err := engine.Limits(c.hi, c.lo)
		if err != nil || hi != c.wantHi || lo != c.wantLo {
			t.Errorf("Limits(%d,%d) = %d,%d,%v want %d,%d", c.hi, c.lo, hi, lo, err, c.wantHi, c.wantLo)
		}
	}
}

func testWatermarks(t *testing.T, eng string, tr Transport) {
	type res struct {
		syncPause bool
		writes    int
	}
	results := make(chan res, 1)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			_ = h.T.SetWriteBufferLimits(64<<10, 16<<10)
			// Write from the callback until paused: OnPauseWriting must
			// run synchronously inside the Write that crossed high.
			chunk := make([]byte, 4<<10)
			n := 0
			for h.Pauses.Load() == 0 && n < 10000 {
				if err := h.T.Write(chunk); err != nil {
					break
				}
				n++
			}
			results <- res{syncPause: h.Pauses.Load() == 1, writes: n}
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := stalledPeer(t, env)
	r := <-results
	if !r.syncPause {
		t.Fatalf("OnPauseWriting was not called inside the Write that crossed high (after %d writes)", r.writes)
	}
	h, _ := sink.Next(wait)
	time.Sleep(50 * time.Millisecond)
	if h.Resumes.Load() != 0 {
		t.Fatal("OnResumeWriting before the peer read anything")
	}
	go io.Copy(io.Discard, c)
	Eventually(t, wait, "OnResumeWriting", func() bool { return h.Resumes.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	if p, r := h.Pauses.Load(), h.Resumes.Load(); p != 1 || r != 1 {
		t.Fatalf("pauses=%d resumes=%d, want exactly 1 each", p, r)
	}
}

func testLimitsBelowBuffered(t *testing.T, eng string, tr Transport) {
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			_ = h.T.SetWriteBufferLimits(8<<20, -1)
			_ = h.T.Write(make([]byte, 4<<20))
			if h.Pauses.Load() != 0 {
				h.Record("early-pause")
			}
			_ = h.T.SetWriteBufferLimits(1<<10, -1) // below what is buffered
			if h.Pauses.Load() != 1 {
				h.Record("no-pause")
			}
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	_ = stalledPeer(t, env)
	h, _ := sink.Next(wait)
	Eventually(t, wait, "open done", func() bool { return strings.Contains(h.Events(), "open") })
	time.Sleep(20 * time.Millisecond)
	ev := h.Events()
	if strings.Contains(ev, "early-pause") || strings.Contains(ev, "no-pause") {
		t.Fatalf("events %q: lowering the limits below the buffered amount must pause at once", ev)
	}
}

func testAfterFunc(t *testing.T, eng string, tr Transport) {
	fired := make(chan string, 4)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			h.T.AfterFunc(10*time.Millisecond, func() { h.Record("timer"); fired <- "a" })
			stopped := h.T.AfterFunc(20*time.Millisecond, func() { fired <- "stopped-timer-ran" })
			if !stopped.Stop() {
				fired <- "stop-failed"
			}
		}
		h.EOF = func(h *Hooks) bool {
			h.T.AfterFunc(50*time.Millisecond, func() { fired <- "after-close" })
			return false
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	select {
	case v := <-fired:
		if v != "a" {
			t.Fatalf("got %q", v)
		}
	case <-time.After(wait):
		t.Fatal("timer did not fire")
	}
	CloseWrite(t, c)
	ReadAll(t, c)
	select {
	case v := <-fired:
		t.Fatalf("unexpected %q", v)
	case <-time.After(150 * time.Millisecond):
	}
	h, _ := sink.Next(wait)
	if h.Concurrent.Load() {
		t.Fatal("timer callback ran concurrently with another callback")
	}
}

func testVerifyRefusal(t *testing.T, eng string, tr Transport) {
	sink := NewSink(nil)
	var refused atomic.Int32
	env := Start(t, eng, tr, sink.Factory, func(s *server.Server) {
		s.Verify = func(local, remote net.Addr) bool { refused.Add(1); return false }
	})
	c := env.Dial()
	if b := ReadAll(t, c); len(b) != 0 {
		t.Fatalf("refused peer got %q", b)
	}
	if refused.Load() != 1 {
		t.Fatalf("verify called %d times", refused.Load())
	}
	if _, err := sink.Next(100 * time.Millisecond); err == nil {
		t.Fatal("a protocol was made for a refused peer")
	}
}

func testShutdownInFlight(t *testing.T, eng string, tr Transport) {
	started := make(chan struct{}, 1)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Data = func(h *Hooks, d []byte) {
			started <- struct{}{}
			time.Sleep(200 * time.Millisecond) // a slow handler
			_ = h.T.Write(append([]byte("re:"), d...))
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	idle := env.Dial()
	busy := env.Dial()
	if _, err := busy.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	<-started
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		done <- env.Srv.Shutdown(ctx)
	}()
	// New connections are refused at once.
	Eventually(t, wait, "listener closed", func() bool {
		c, err := net.DialTimeout(env.Ln.Addr().Network(), env.Ln.Addr().String(), time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if got := ReadAll(t, busy); string(got) != "re:q" {
		t.Fatalf("in-flight message got %q, want its answer then EOF", got)
	}
	if got := ReadAll(t, idle); len(got) != 0 {
		t.Fatalf("idle connection got %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}

func testShutdownFromCallback(t *testing.T, eng string, tr Transport) {
	var srv atomic.Pointer[server.Server]
	result := make(chan error, 1)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Data = func(h *Hooks, d []byte) {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			result <- srv.Load().Shutdown(ctx)
			_ = h.T.Write([]byte("done"))
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	srv.Store(env.Srv)
	c := env.Dial()
	if _, err := c.Write([]byte("stop")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("Shutdown from a callback = %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Shutdown called from a callback deadlocked")
	}
	if got := ReadAll(t, c); string(got) != "done" {
		t.Fatalf("got %q", got)
	}
}

func testShutdownDeadline(t *testing.T, eng string, tr Transport) {
	sink := NewSink(func() *Hooks {
		h := &busyHooks{Hooks: NewHooks()}
		return h.Hooks
	})
	_ = sink
	// A connection that never becomes idle (it implements Idler and always
	// reports busy) is aborted at the deadline.
	busy := func(proto.ConnInfo) proto.Protocol { return &busyHooks{Hooks: NewHooks()} }
	env := Start(t, eng, tr, busy, nil)
	c := env.Dial()
	if _, err := c.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := env.Srv.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Shutdown took %v", el)
	}
	_, _ = io.ReadAll(c) // aborted: EOF or reset
}

type busyHooks struct{ *Hooks }

func (b *busyHooks) Idle() bool { return false }

func testMaxConns(t *testing.T, eng string, tr Transport) {
	sink := NewSink(echoHooks)
	env := Start(t, eng, tr, sink.Factory, func(s *server.Server) { s.MaxConns = 2 })
	a, b := env.Dial(), env.Dial()
	for _, c := range []net.Conn{a, b} {
		if _, err := c.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		ReadN(t, c, 2)
	}
	extra := env.Dial()
	if got, err := io.ReadAll(extra); len(got) != 0 {
		t.Fatalf("connection over --max-conns got %q (%v)", got, err)
	}
	Eventually(t, wait, "refusal logged", func() bool { return env.Logs.Contains("max-conns") })
	a.Close()
	Eventually(t, wait, "a slot frees", func() bool { return env.Srv.ActiveConns() < 2 })
	c := env.Dial()
	if _, err := c.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if got := ReadN(t, c, 2); string(got) != "ok" {
		t.Fatalf("got %q", got)
	}
}

func testIdleTimeout(t *testing.T, eng string, tr Transport) {
	sink := NewSink(echoHooks)
	var timeouts atomic.Int32
	env := Start(t, eng, tr, sink.Factory, func(s *server.Server) {
		s.IdleTimeout = 150 * time.Millisecond
		s.HandleTimeout = func(net.Addr, error) { timeouts.Add(1) }
	})
	c := env.Dial()
	// Activity keeps it open.
	for i := 0; i < 4; i++ {
		if _, err := c.Write([]byte("k")); err != nil {
			t.Fatal(err)
		}
		ReadN(t, c, 1)
		time.Sleep(60 * time.Millisecond)
	}
	start := time.Now()
	if b := ReadAll(t, c); len(b) != 0 {
		t.Fatalf("got %q", b)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("idle connection closed after %v", el)
	}
	h, _ := sink.Next(wait)
	err, _ := h.WaitClosed(wait)
	if !errors.Is(err, engine.ErrIdleTimeout) {
		t.Fatalf("OnClose(%v), want the idle timeout", err)
	}
	if timeouts.Load() != 1 {
		t.Fatalf("HandleTimeout called %d times", timeouts.Load())
	}
	if !env.Logs.Contains("idle timeout") {
		t.Fatalf("idle close not logged: %s", env.Logs.String())
	}
}

// testWriteTimeout: a peer that does not take its replies is closed by
// WriteTimeout (OnClose gets ErrWriteTimeout, HandleTimeout is called, the
// close is logged); a peer that reads steadily while replies keep coming
// for several periods is not.
func testWriteTimeout(t *testing.T, eng string, tr Transport) {
	const period = 200 * time.Millisecond
	t.Run("stuck", func(t *testing.T) {
		sink := NewSink(func() *Hooks {
			h := NewHooks()
			h.Open = func(h *Hooks) {
				// One write into an empty buffer: accepted whatever its size;
				// far more than the socket buffers hold.
				_ = h.T.Write(make([]byte, 32<<20))
			}
			return h
		})
		var timeouts atomic.Int32
		env := Start(t, eng, tr, sink.Factory, func(s *server.Server) {
			s.WriteTimeout = period
			s.HandleTimeout = func(net.Addr, error) { timeouts.Add(1) }
		})
		c := env.Dial()
		defer c.Close()
		h, err := sink.Next(wait)
		if err != nil {
			t.Fatal(err)
		}
		err, ok := h.WaitClosed(wait)
		if !ok {
			t.Fatalf("a peer that never reads was not closed within %v (write timeout %v)", wait, period)
		}
		if !errors.Is(err, engine.ErrWriteTimeout) {
			t.Fatalf("OnClose(%v), want the write timeout", err)
		}
		if timeouts.Load() != 1 {
			t.Fatalf("HandleTimeout called %d times", timeouts.Load())
		}
		if !env.Logs.Contains("write timeout") {
			t.Fatalf("write-timeout close not logged: %s", env.Logs.String())
		}
	})
	t.Run("slow-but-reading", func(t *testing.T) {
		const chunks, size = 12, 256 << 10
		sink := NewSink(func() *Hooks {
			h := NewHooks()
			h.Open = func(h *Hooks) {
				tp := h.T
				go func() {
					chunk := bytes.Repeat([]byte("w"), size)
					for i := 0; i < chunks; i++ {
						if tp.Write(chunk) != nil {
							return
						}
						time.Sleep(period / 4)
					}
					_ = tp.Close()
				}()
			}
			return h
		})
		env := Start(t, eng, tr, sink.Factory, func(s *server.Server) { s.WriteTimeout = period })
		c := env.Dial()
		// Replies keep coming for chunks × period/4 = 3 periods; the peer
		// reads all the while.
		got := ReadAll(t, c)
		if len(got) != chunks*size {
			t.Fatalf("a reading peer got %d of %d bytes: closed by the write timeout?\n%s", len(got), chunks*size, env.Logs.String())
		}
		h, _ := sink.Next(wait)
		if err, _ := h.WaitClosed(wait); err != nil {
			t.Fatalf("OnClose(%v), want a clean close", err)
		}
	})
}

var _ = fmt.Sprint
