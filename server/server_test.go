package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sockit/sockit/internal/conntest"
	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoProto echoes and records nothing; it sleeps per message when told to.
type echoProto struct {
	proto.Base
	t     proto.Transport
	delay time.Duration
}

func (e *echoProto) OnOpen(t proto.Transport) { e.t = t }
func (e *echoProto) OnData(d []byte) {
	time.Sleep(e.delay)
	_ = e.t.Write(d)
}

func echoFactory(delay time.Duration) proto.Factory {
	return func(proto.ConnInfo) proto.Protocol { return &echoProto{delay: delay} }
}

func TestShutdownNeverServedReturnsAtOnce(t *testing.T) {
	var s server.Server
	start := time.Now()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Fatalf("took %v", el)
	}
}

func TestServeAfterShutdownIsErrServerClosed(t *testing.T) {
	var s server.Server
	_ = s.Shutdown(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln, echoFactory(0)); !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("listener left open")
	}
}

func TestBadEngineAndConcurrency(t *testing.T) {
	for _, s := range []*server.Server{{Engine: "nope"}, {Concurrency: "forking"}} {
		if _, err := s.EngineName(); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
	if _, err := server.ParseConcurrency("pool"); err != nil {
		t.Fatal(err)
	}
	if _, err := server.ParseConcurrency("threads"); err == nil {
		t.Fatal("bad concurrency accepted")
	}
}

func TestSerialServesOneAtATime(t *testing.T) {
	env := conntest.Start(t, "goroutine", conntest.StreamTransports[0], echoFactory(0), func(s *server.Server) {
		s.Concurrency = server.Serial
	})
	first := env.Dial()
	if _, err := first.Write([]byte("1")); err != nil {
		t.Fatal(err)
	}
	conntest.ReadN(t, first, 1)
	second := env.Dial() // connected (kernel backlog) but not served yet
	if _, err := second.Write([]byte("2")); err != nil {
		t.Fatal(err)
	}
	_ = second.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	if n, _ := second.Read(make([]byte, 1)); n != 0 {
		t.Fatal("second connection served while the first is open")
	}
	first.Close()
	_ = second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got := conntest.ReadN(t, second, 1); string(got) != "2" {
		t.Fatalf("got %q", got)
	}
}

func TestPoolFullQueueClosesNewConnection(t *testing.T) {
	env := conntest.Start(t, "goroutine", conntest.StreamTransports[0], echoFactory(0), func(s *server.Server) {
		s.Concurrency = server.Pool
		s.Workers = 1
		s.Queue = 1
	})
	busy := env.Dial() // the worker
	if _, err := busy.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	conntest.ReadN(t, busy, 1)
	queued := env.Dial() // waits in the queue
	conntest.Eventually(t, 5*time.Second, "queued", func() bool { return env.Srv.ActiveConns() == 2 })
	extra := env.Dial() // the queue is full: closed at once
	if b, _ := io.ReadAll(extra); len(b) != 0 {
		t.Fatalf("got %q", b)
	}
	conntest.Eventually(t, 5*time.Second, "logged", func() bool { return env.Logs.Contains("queue full") })
	busy.Close()
	if _, err := queued.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	if got := conntest.ReadN(t, queued, 1); string(got) != "q" {
		t.Fatalf("queued connection got %q", got)
	}
}

func TestAllowDenyBySource(t *testing.T) {
	env := conntest.Start(t, "goroutine", conntest.StreamTransports[0], echoFactory(0), func(s *server.Server) {
		s.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		s.Deny = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	})
	dialFrom := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", env.Ln.Addr().String())
		if err != nil {
			t.Fatalf("dial from %s: %v", src, err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	ok := dialFrom("127.0.0.1")
	if _, err := ok.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	conntest.ReadN(t, ok, 1)
	denied := dialFrom("127.0.0.2")
	_, _ = denied.Write([]byte("n"))
	if b, _ := io.ReadAll(denied); len(b) != 0 {
		t.Fatalf("denied peer got %q", b)
	}
	conntest.Eventually(t, 5*time.Second, "logged", func() bool { return env.Logs.Contains("--allow/--deny") })
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1": "127.0.0.1/32", "10.0.0.0/8": "10.0.0.0/8", "10.1.2.3/8": "10.0.0.0/8",
		"::1": "::1/128", "::ffff:127.0.0.1": "127.0.0.1/32",
	} {
		p, err := server.ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "x", "1.2.3.4/33", "300.1.1.1"} {
		if _, err := server.ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", bad)
		}
	}
}

// flakyListener fails Accept with EMFILE a number of times, then hands out
// real connections.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
	calls []time.Time
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func TestAcceptBacksOffOnEMFILEAndRecovers(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &flakyListener{Listener: inner, fails: 6}
	logs := &conntest.LogBuffer{}
	s := &server.Server{Logger: newLogger(logs)}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln, echoFactory(0)) }()
	defer func() {
		_ = s.Shutdown(context.Background())
		<-done
	}()
	c, err := net.DialTimeout("tcp", inner.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("z")); err != nil {
		t.Fatal(err)
	}
	if got := conntest.ReadN(t, c, 1); string(got) != "z" {
		t.Fatalf("got %q", got)
	}
	ln.mu.Lock()
	calls := append([]time.Time(nil), ln.calls...)
	ln.mu.Unlock()
	// 6 failures back off 5+10+20+40+80+160 ms: never a spin.
	if span := calls[6].Sub(calls[0]); span < 250*time.Millisecond {
		t.Fatalf("6 EMFILE retries took only %v: the accept loop spins", span)
	}
	if !logs.Contains("backing off") {
		t.Fatalf("back-off not logged: %s", logs.String())
	}
}

// Every engine, on every stream transport, counts each connection once and
// releases it once (on the epoll engine the first connection comes through
// Go's accept and the rest mostly through the loops' own).
func TestActiveConnsCountsAndReleases(t *testing.T) {
	for _, eng := range engines {
		for _, tr := range conntest.StreamTransports {
			t.Run(eng+"/"+tr.Name, func(t *testing.T) {
				f := func(proto.ConnInfo) proto.Protocol { return &echoProto{} }
				env := conntest.Start(t, eng, tr, f, nil)
				const n = 20
				var cs []net.Conn
				for i := 0; i < n; i++ {
					cs = append(cs, env.Dial())
				}
				conntest.Eventually(t, 5*time.Second, "all active", func() bool { return env.Srv.ActiveConns() == n })
				for _, c := range cs {
					c.Close()
				}
				conntest.Eventually(t, 5*time.Second, "none active", func() bool { return env.Srv.ActiveConns() == 0 })
			})
		}
	}
}

// TestServeConnRunsDialedConnections hands dialed client connections to the
// server's engine (how a load generator puts its connections on the loops).
func TestServeConnRunsDialedConnections(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			s := conntest.NewServer(eng)
			defer s.Close()
			const n = 20
			for i := 0; i < n; i++ {
				c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.ServeConn(c, echoFactory(0)); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < n; i++ {
				peer, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				_ = peer.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := peer.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				if got := conntest.ReadN(t, peer, 4); string(got) != "ping" {
					t.Fatalf("got %q", got)
				}
				peer.Close()
			}
		})
	}
}

// Verify (socketserver's verify_request) on every engine: it is called once
// per connection and never twice at a time, a refused peer is closed before
// any byte is served, an accepted one is served, and every connection is
// released.
func TestVerifyRefusesAndSerializes(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			var calls, inside, overlapped atomic.Int32
			cfg := func(s *server.Server) {
				s.Verify = func(local, remote net.Addr) bool {
					if inside.Add(1) > 1 {
						overlapped.Add(1)
					}
					defer inside.Add(-1)
					time.Sleep(time.Millisecond)
					return calls.Add(1)%2 == 0 // refuse the odd ones
				}
			}
			env := conntest.Start(t, eng, conntest.StreamTransports[0], echoFactory(0), cfg)
			const n = 20
			served := 0
			for i := 0; i < n; i++ {
				c := env.Dial()
				_, _ = c.Write([]byte("ping"))
				buf := make([]byte, 4)
				if _, err := io.ReadFull(c, buf); err == nil && string(buf) == "ping" {
					served++
				}
				c.Close()
			}
			if calls.Load() != n {
				t.Errorf("Verify called %d times for %d connections", calls.Load(), n)
			}
			if served != n/2 {
				t.Errorf("%d connections served, want the %d Verify accepted", served, n/2)
			}
			if overlapped.Load() != 0 {
				t.Errorf("Verify ran concurrently %d times", overlapped.Load())
			}
			conntest.Eventually(t, 5*time.Second, "none active", func() bool { return env.Srv.ActiveConns() == 0 })
		})
	}
}
