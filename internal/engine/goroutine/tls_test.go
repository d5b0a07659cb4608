package goroutine

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/proto"
)

// A wake-up of the connection's loop (here: timers armed by OnOpen firing
// while the server still waits for the ClientHello) must not kill the TLS
// handshake: the handshake is done before the read loop, not inside a Read
// that wakes interrupt with a past deadline.
func TestTLSHandshakeSurvivesWake(t *testing.T) {
	e, _ := newEngine(t)
	srvCfg, cliCfg := tlsConfigs(t)
	ln := listenTCP(t)
	r := newRecorder()
	r.echo = true
	r.onOpen = func(tr proto.Transport) {
		for _, d := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond} {
			tr.AfterFunc(d, func() {})
		}
	}
	serveListener(t, e, tls.NewListener(ln, srvCfg), r.factory(), engine.Options{Network: "tls"})

	raw := dial(t, ln.Addr())
	_ = raw.SetDeadline(time.Now().Add(3 * time.Second))
	time.Sleep(150 * time.Millisecond) // the server waits for the ClientHello meanwhile
	c := tls.Client(raw, cliCfg)
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo: %q, %v", got, err)
	}
}

// A failed handshake is reported to OnError with the peer and logged; the
// connection is closed without any protocol callback.
func TestTLSHandshakeFailureIsOnErrorWithoutOpen(t *testing.T) {
	e, logs := newEngine(t)
	srvCfg, _ := tlsConfigs(t)
	ln := listenTCP(t)
	r := newRecorder()
	er := newErrRecorder()
	serveListener(t, e, tls.NewListener(ln, srvCfg), r.factory(), engine.Options{Network: "tls", OnError: er.hook})

	c := dial(t, ln.Addr())
	if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if closed, err := readToEnd(c); !closed {
		t.Fatalf("connection not closed after a failed handshake: %v", err)
	}
	rep := er.next(t)
	if rep.remote != c.LocalAddr().String() || rep.err == nil {
		t.Fatalf("OnError(%q, %v), want the peer %s and an error", rep.remote, rep.err, c.LocalAddr())
	}
	waitFor(t, "shutdown", func() { _ = e.Shutdown(context.Background()) })
	if o, cl := r.opened.Load(), r.closed.Load(); o != 0 || cl != 0 {
		t.Fatalf("OnOpen %d times, OnClose %d times; want neither", o, cl)
	}
	if s := logs.String(); !strings.Contains(s, "tls handshake failed") || !strings.Contains(s, c.LocalAddr().String()) {
		t.Fatalf("handshake failure not logged with the peer:\n%s", s)
	}
}

// A peer that never completes the handshake is dropped after the read
// timeout (a deadline, not a wake-up), reported to OnError, never opened.
func TestTLSHandshakeTimeout(t *testing.T) {
	e, _ := newEngine(t)
	srvCfg, _ := tlsConfigs(t)
	ln := listenTCP(t)
	r := newRecorder()
	er := newErrRecorder()
	serveListener(t, e, tls.NewListener(ln, srvCfg), r.factory(),
		engine.Options{Network: "tls", OnError: er.hook, ReadTimeout: 200 * time.Millisecond})

	c := dial(t, ln.Addr())
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	if closed, err := readToEnd(c); !closed {
		t.Fatalf("silent peer not dropped: %v", err)
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("dropped after %v, before the 200ms handshake timeout", el)
	}
	if rep := er.next(t); !errors.Is(rep.err, context.DeadlineExceeded) {
		t.Fatalf("OnError(%v), want a handshake timeout", rep.err)
	}
	if o := r.opened.Load(); o != 0 {
		t.Fatalf("OnOpen called %d times for a connection whose handshake failed", o)
	}
}

// tlsStalled serves one TLS connection whose peer completed the handshake,
// then stopped reading, with the send path to it full: a close_notify alert
// written now blocks (up to the 5 s crypto/tls allows it).
func tlsStalled(t *testing.T, e *Engine) (*recorder, proto.Transport, net.Conn) {
	t.Helper()
	srvCfg, cliCfg := tlsConfigs(t)
	ln := listenTCP(t)
	defer ln.Close()
	cliRaw := dial(t, ln.Addr())
	srvRaw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = srvRaw.(*net.TCPConn).SetWriteBuffer(16 << 10)
	_ = cliRaw.(*net.TCPConn).SetReadBuffer(16 << 10)
	r := newRecorder()
	if err := e.ServeConn(tls.Server(srvRaw, srvCfg), r.factory(), engine.Options{Network: "tls"}, nil); err != nil {
		t.Fatal(err)
	}
	cli := tls.Client(cliRaw, cliCfg)
	if _, err := cli.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	tr := r.transport(t)
	if d := r.nextData(t); string(d) != "hi" {
		t.Fatalf("got %q", d)
	}
	// Fill the path to the client with bytes it will never read.
	junk := make([]byte, 64<<10)
	for i := 0; ; i++ {
		_ = srvRaw.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := srvRaw.Write(junk)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		if err != nil || i > 10000 {
			t.Fatalf("filling the send path: %v", err)
		}
	}
	return r, tr, cli
}

// A TLS Close or WriteEOF writes a close_notify alert that can block for
// seconds on a peer that does not read; the connection's lock must not be
// held meanwhile, or every Transport method (and the loop) stalls with it.
// Closing the engine cuts such a close_notify short.
func TestTLSCloseDoesNotHoldConnLock(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(proto.Transport)
		probe func(proto.Transport) error // nil until the close took effect
	}{
		{"Close", func(tr proto.Transport) { _ = tr.Close() }, func(tr proto.Transport) error { return tr.Drain(context.Background()) }},
		{"WriteEOF", func(tr proto.Transport) { _ = tr.WriteEOF() }, func(tr proto.Transport) error { return tr.Write(nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEngine(t)
			r, tr, cli := tlsStalled(t, e)
			closed := make(chan struct{})
			go func() { tc.close(tr); close(closed) }()
			// ended: the close_notify is over (Close: the loop sends it, then
			// OnClose; WriteEOF: the caller sends it).
			var ended <-chan struct{} = closed
			if tc.name == "Close" {
				ended = r.closedCh()
			}
			t.Cleanup(func() {
				cli.Close() // unread data: a reset, which ends the blocked write
				waitFor(t, tc.name, func() { <-closed })
			})
			deadline := time.Now().Add(3 * time.Second)
			for {
				start := time.Now()
				err := tc.probe(tr)
				if el := time.Since(start); el > time.Second {
					t.Fatalf("a Transport call took %v during a blocked TLS %s: the lock was held", el, tc.name)
				}
				if err != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s never took effect", tc.name)
				}
				time.Sleep(time.Millisecond)
			}
			select {
			case <-ended:
				t.Fatal("the close_notify did not block: the test did not fill the send path")
			case <-time.After(100 * time.Millisecond):
			}
			if n := tr.BufferedAmount(); n != 0 {
				t.Fatalf("BufferedAmount = %d", n)
			}
			start := time.Now()
			_ = e.Close()
			select {
			case <-ended:
			case <-time.After(2 * time.Second):
				t.Fatalf("the TLS %s still blocked %v after Engine.Close", tc.name, time.Since(start))
			}
		})
	}
}
