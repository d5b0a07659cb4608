package server_test

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sockit/sockit/internal/conntest"
	"github.com/sockit/sockit/server"
)

// TestStats: admitted, refused past MaxConns and by Deny, and closed by the
// idle timeout, each counted once, on every engine.
func TestStats(t *testing.T) {
	for _, eng := range []string{"goroutine", "epoll"} {
		t.Run(eng, func(t *testing.T) {
			env := conntest.Start(t, eng, conntest.StreamTransports[0], echoFactory(0), func(s *server.Server) {
				s.MaxConns = 1
				s.IdleTimeout = 300 * time.Millisecond
				s.Deny = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
			})
			dial := func(src string) net.Conn {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
				c, err := d.Dial("tcp", env.Ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				t.Cleanup(func() { c.Close() })
				return c
			}
			first := dial("127.0.0.1")
			if _, err := first.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			conntest.ReadN(t, first, 1) // admitted and served
			for _, src := range []string{"127.0.0.1", "127.0.0.2"} {
				c := dial(src)
				if b, _ := io.ReadAll(c); len(b) != 0 {
					t.Fatalf("a refused peer got %q", b)
				}
			}
			// first idles until the timeout closes it.
			if b, _ := io.ReadAll(first); len(b) != 0 {
				t.Fatalf("got %q before the idle close", b)
			}
			conntest.Eventually(t, 5*time.Second, "counted", func() bool {
				st := env.Srv.Stats()
				return st.Accepted == 1 && st.RefusedMaxConns == 1 && st.RefusedDeny == 1 && st.IdleTimeouts == 1 && st.Open == 0
			})
			// All of it came through the one listener.
			if ls, ok := env.Srv.ListenerStats(env.Ln); !ok || ls != env.Srv.Stats() {
				t.Fatalf("listener stats %+v (%v), server stats %+v", ls, ok, env.Srv.Stats())
			}
			if st := env.Srv.Stats(); st.ReadTimeouts != 0 || st.WriteTimeouts != 0 || st.Panics != 0 || st.TLSFailures != 0 || st.OtherFailures != 0 || st.RefusedVerify != 0 {
				t.Fatalf("counted what did not happen: %+v", st)
			}
		})
	}
}

// TestListenerStats: a server on two listeners counts each one's
// connections apart, Stats their sum, on every engine.
func TestListenerStats(t *testing.T) {
	for _, eng := range []string{"goroutine", "epoll"} {
		t.Run(eng, func(t *testing.T) {
			srv := conntest.NewServer(eng)
			srv.Logger = conntest.NewLogger(io.Discard)
			srv.MaxConns = 2
			var lns []net.Listener
			for range 2 {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				lns = append(lns, ln)
				go srv.Serve(ln, echoFactory(0))
			}
			defer srv.Close()
			var open []net.Conn
			for i, n := range []int{2, 1} { // 2 on the first (both admitted), 1 on the second (past MaxConns)
				for range n {
					c, err := net.DialTimeout("tcp", lns[i].Addr().String(), 5*time.Second)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(5 * time.Second))
					open = append(open, c)
					if i == 0 {
						if _, err := c.Write([]byte("x")); err != nil {
							t.Fatal(err)
						}
						conntest.ReadN(t, c, 1)
					}
				}
			}
			if b, _ := io.ReadAll(open[2]); len(b) != 0 {
				t.Fatalf("the refused connection got %q", b)
			}
			conntest.Eventually(t, 5*time.Second, "counted", func() bool {
				a, _ := srv.ListenerStats(lns[0])
				b, _ := srv.ListenerStats(lns[1])
				return a.Accepted == 2 && a.Open == 2 && a.RefusedMaxConns == 0 && b.Accepted == 0 && b.RefusedMaxConns == 1 && b.Open == 0
			})
			if st := srv.Stats(); st.Accepted != 2 || st.RefusedMaxConns != 1 || st.Open != 2 {
				t.Fatalf("server stats %+v", st)
			}
			if _, ok := srv.ListenerStats(struct{}{}); ok {
				t.Fatal("stats for a listener never served")
			}
		})
	}
}
