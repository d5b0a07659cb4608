package bench_test

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockit/sockit/bench"
)

// stallingEcho is a raw echo server that stops answering for stall once,
// after the first connection has been open for after.
func stallingEcho(t *testing.T, after, stall time.Duration) (ep func() string, start func()) {
	var mu sync.RWMutex
	var once sync.Once
	e := stubServer(t, func(_ int, c net.Conn) {
		defer c.Close()
		once.Do(func() {
			go func() {
				time.Sleep(after)
				mu.Lock()
				time.Sleep(stall)
				mu.Unlock()
			}()
		})
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			mu.RLock() // a gate: waits out the stall
			//lint:ignore SA2001 the read lock is a gate, nothing to guard
			mu.RUnlock()
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	})
	return e.String, nil
}

func TestCoordinatedOmission(t *testing.T) {
	for _, engine := range []string{"goroutine", "epoll"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			// At a fixed rate the messages that should have been sent during
			// the stall count their waiting: p99 ≥ 500 ms.
			addr, _ := stallingEcho(t, 2*time.Second, time.Second)
			res := run(t, bench.Config{Endpoint: mustParse(t, addr()), Engine: engine, Conns: 10, Rate: 1000, Duration: 5 * time.Second, Verify: true})
			if res.ErrorTotal != 0 {
				t.Fatalf("errors %v (%s)", res.Errors, res.FirstError)
			}
			if res.Latency == nil || res.Latency.P99 < 500e3 {
				t.Fatalf("with --rate p99 = %+v, want >= 500ms", res.Latency)
			}
			if res.MessagesPerSec < 800 || res.MessagesPerSec > 1200 {
				t.Errorf("rate %.0f/s, want about 1000/s", res.MessagesPerSec)
			}
		})
	}
	t.Run("closed-loop", func(t *testing.T) {
		t.Parallel()
		// Closed loop: only the messages in flight at the stall wait; the
		// histogram holds plain round trips, so p99 stays small while the
		// maximum shows the stall.
		addr, _ := stallingEcho(t, 700*time.Millisecond, time.Second)
		res := run(t, bench.Config{Endpoint: mustParse(t, addr()), Conns: 10, Duration: 3 * time.Second})
		if res.Latency == nil || res.Latency.P99 >= 500e3 || res.Latency.Max < 500e3 {
			t.Fatalf("closed loop latency %+v: want p99 < 500ms and max >= 500ms", res.Latency)
		}
	})
}

func TestErrorsAreCounted(t *testing.T) {
	echo := func(c net.Conn, wrongEvery, closeAfter int) {
		defer c.Close()
		buf := make([]byte, 64)
		for i := 1; ; i++ {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if closeAfter > 0 && i == closeAfter {
				c.Write(buf[:10]) // half an echo, then close
				return
			}
			if wrongEvery > 0 && i%wrongEvery == 0 {
				buf[5] ^= 0xff
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}
	cases := []struct {
		name   string
		handle func(n int, c net.Conn)
		kind   string
	}{
		{"reset-every-10th", func(n int, c net.Conn) {
			if n%10 == 0 {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				return
			}
			echo(c, 0, 0)
		}, "reset"},
		{"close-mid-echo", func(n int, c net.Conn) { echo(c, 0, 50) }, "short"},
		// Echo 20 messages, then half-close and keep reading: the FIN
		// trails an echo, so the goroutine generator's exchange (which
		// skips the read after its write) must still see it, through the
		// watchdog's probe, as a short echo, not wait for the timeout.
		{"half-close-after-echo", func(n int, c net.Conn) {
			defer c.Close()
			buf := make([]byte, 64)
			for i := 0; i < 20; i++ {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
			c.(*net.TCPConn).CloseWrite()
			_, _ = io.Copy(io.Discard, c)
		}, "short"},
		{"wrong-bytes", func(n int, c net.Conn) { echo(c, 100, 0) }, "mismatch"},
	}
	for _, engine := range []string{"goroutine", "epoll"} {
		for _, c := range cases {
			t.Run(engine+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				ep := stubServer(t, c.handle)
				res := run(t, bench.Config{Endpoint: ep, Engine: engine, Conns: 20, Size: 64,
					Duration: 2 * time.Second, Timeout: time.Second, Verify: true})
				if res.Errors[c.kind] == 0 {
					t.Fatalf("errors %v: want some %s (first: %s)", res.Errors, c.kind, res.FirstError)
				}
				// Each of these peers answers or closes at once: none may
				// be taken for a slow one.
				if res.Errors["timeout"] != 0 {
					t.Fatalf("errors %v: no timeouts wanted (first: %s)", res.Errors, res.FirstError)
				}
				if res.Messages == 0 {
					t.Fatalf("no messages: the run should go on despite errors")
				}
			})
		}
	}
}

func TestSourceRange(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	if c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}).Dial("tcp", "127.0.0.1:1"); err == nil {
		c.Close()
	} else if ne, ok := err.(*net.OpError); ok && ne.Op == "dial" && !isRefused(err) {
		t.Skipf("cannot bind 127.0.0.3 here: %v", err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var conns atomic.Int64
	ep := stubServer(t, func(_ int, c net.Conn) {
		conns.Add(1)
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		mu.Lock()
		seen[host]++
		mu.Unlock()
		defer c.Close()
		io.Copy(c, c)
	})
	srcs, err := bench.ParseSources("127.0.0.2-127.0.0.4")
	if err != nil {
		t.Fatal(err)
	}
	for _, engine := range []string{"goroutine", "epoll"} {
		res := run(t, bench.Config{Endpoint: ep, Engine: engine, Conns: 6, Sources: srcs, Duration: 300 * time.Millisecond, Verify: true})
		if res.ErrorTotal != 0 || res.Messages == 0 {
			t.Fatalf("%s: %d messages, errors %v (%s)", engine, res.Messages, res.Errors, res.FirstError)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		if seen[want] != 4 { // 2 connections each, per engine
			t.Errorf("connections from %s: %d, want 4 (all: %v)", want, seen[want], seen)
		}
	}
	if len(seen) != 3 {
		t.Errorf("peers %v, want exactly the 3 sources", seen)
	}
}
