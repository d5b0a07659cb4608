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
			if st := env.Srv.Stats(); st.ReadTimeouts != 0 || st.WriteTimeouts != 0 || st.Panics != 0 || st.TLSFailures != 0 || st.OtherFailures != 0 || st.RefusedVerify != 0 {
				t.Fatalf("counted what did not happen: %+v", st)
			}
		})
	}
}
