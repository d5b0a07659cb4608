package bench_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sockit/sockit/bench"
	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/server"
	"github.com/sockit/sockit/service"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runTimeout bounds one bench.Run in a test.
const runTimeout = 30 * time.Second

// startService serves the built-in service name on a fresh endpoint of
// scheme (tcp, udp, unix, unixgram) with framing spec and returns the
// endpoint.
func startService(t *testing.T, name, scheme string, spec frame.Spec, engine string) endpoint.Endpoint {
	t.Helper()
	svc, err := service.New(name, service.Config{Frame: spec})
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	switch scheme {
	case "unix", "unixgram":
		addr = scheme + "://" + filepath.Join(shortDir(t), "s.sock")
	default:
		addr = scheme + "://127.0.0.1:0"
	}
	ep, err := endpoint.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{Engine: engine}
	ctx := context.Background()
	done := make(chan error, 1)
	if ep.IsPacket() {
		pc, err := endpoint.ListenConfig{}.ListenPacket(ctx, ep)
		if err != nil {
			t.Fatal(err)
		}
		ep = ep.WithAddr(pc.LocalAddr())
		go func() { done <- srv.ServePacket(pc, svc.NewDatagram()) }()
	} else {
		ln, err := endpoint.ListenConfig{}.Listen(ctx, ep)
		if err != nil {
			t.Fatal(err)
		}
		ep = ep.WithAddr(ln.Addr())
		go func() { done <- srv.Serve(ln, svc.Stream) }()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		select {
		case err := <-done:
			if !errors.Is(err, server.ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
	})
	return ep
}

// shortDir is a directory for Unix sockets with a short path.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "skb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func run(t *testing.T, cfg bench.Config) *bench.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestModesAgainstServices(t *testing.T) {
	type tc struct {
		service, scheme string
		mode            bench.Mode
		frame           string
	}
	var cases []tc
	for _, scheme := range []string{"tcp", "unix"} {
		for _, f := range []string{"raw", "line", "delim:,", "fixed:64", "len:2", "close"} {
			cases = append(cases, tc{"echo", scheme, bench.Echo, f})
		}
		cases = append(cases,
			tc{"echo", scheme, bench.Pipeline, "raw"},
			tc{"echo", scheme, bench.Pipeline, "len:4"},
			tc{"discard", scheme, bench.Send, "raw"},
			tc{"discard", scheme, bench.Send, "line"},
			tc{"echo", scheme, bench.Connect, "raw"},
			tc{"echo", scheme, bench.Idle, "raw"},
		)
	}
	cases = append(cases,
		tc{"echo", "udp", bench.UDP, "raw"},
		tc{"echo", "udp", bench.Echo, "raw"},
		tc{"echo", "unixgram", bench.UDP, "raw"},
		tc{"discard", "udp", bench.Send, "raw"},
	)
	for _, engine := range []string{"goroutine", "epoll"} {
		for _, c := range cases {
			name := engine + "/" + c.scheme + "/" + string(c.mode) + "/" + c.frame
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				spec, err := frame.Parse(c.frame)
				if err != nil {
					t.Fatal(err)
				}
				ep := startService(t, c.service, c.scheme, spec, "goroutine")
				cfg := bench.Config{
					Endpoint: ep, Mode: c.mode, Engine: engine, Conns: 4, Depth: 8,
					Duration: 400 * time.Millisecond, Frame: spec, Verify: true,
				}
				if c.mode == bench.Connect {
					// A Unix listener's accept queue overflows (EAGAIN,
					// counted as refused) when connects outpace accepts.
					cfg.Rate = 2000
				}
				res := run(t, cfg)
				if res.ErrorTotal != 0 {
					t.Fatalf("errors %v (first: %s)", res.Errors, res.FirstError)
				}
				switch c.mode {
				case bench.Idle:
					if res.Idle == nil || res.Idle.Held != 4 {
						t.Fatalf("idle held %+v, want 4", res.Idle)
					}
				default:
					if res.Messages == 0 {
						t.Fatalf("no messages: %+v", res)
					}
				}
				if c.mode == bench.Echo || c.mode == bench.Pipeline || c.mode == bench.UDP {
					if res.Latency == nil || res.Latency.Count != res.Messages {
						t.Fatalf("latency %+v for %d messages", res.Latency, res.Messages)
					}
				}
				if strings.HasPrefix(c.scheme, "udp") && c.mode != bench.Send && (res.UDP == nil || res.UDP.Received == 0) {
					t.Fatalf("udp %+v", res.UDP)
				}
			})
		}
	}
}

// stubServer accepts on 127.0.0.1 and runs handle for each connection.
func stubServer(t *testing.T, handle func(n int, c net.Conn)) endpoint.Endpoint {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	conns := make(chan net.Conn, 1024)
	go func() {
		defer close(done)
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			default:
			}
			go handle(n, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	ep, err := endpoint.Parse("tcp://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func mustParse(t *testing.T, s string) endpoint.Endpoint {
	t.Helper()
	ep, err := endpoint.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
