package server_test

import (
	"context"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/sockit/sockit/internal/conntest"
)

// openFDs counts this process's open file descriptors (Linux).
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestShutdownLeaksNoFDs serves many connections on every transport, shuts
// down, and checks the descriptor count is back where it started (goroutines
// are checked by goleak in TestMain).
func TestShutdownLeaksNoFDs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts /proc/self/fd")
	}
	for _, eng := range engines {
		for _, tr := range conntest.StreamTransports {
			t.Run(eng+"/"+tr.Name, func(t *testing.T) {
				before := openFDs(t)
				func() {
					ln := conntest.Listen(t, tr)
					srv := conntest.NewServer(eng)
					done := make(chan error, 1)
					go func() { done <- srv.Serve(ln, echoFactory(0)) }()
					var conns []net.Conn
					for i := 0; i < 50; i++ {
						c, err := net.DialTimeout(ln.Addr().Network(), ln.Addr().String(), 5*time.Second)
						if err != nil {
							t.Fatal(err)
						}
						_ = c.SetDeadline(time.Now().Add(5 * time.Second))
						if _, err := c.Write([]byte("x")); err != nil {
							t.Fatal(err)
						}
						conntest.ReadN(t, c, 1)
						conns = append(conns, c)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					if err := srv.Shutdown(ctx); err != nil {
						t.Fatalf("Shutdown: %v", err)
					}
					<-done
					for _, c := range conns {
						c.Close()
					}
					if tr.Network == "unix" || tr.Network == "unixpacket" {
						if _, err := os.Stat(ln.Addr().String()); !os.IsNotExist(err) {
							t.Errorf("socket file %s left after shutdown (%v)", ln.Addr(), err)
						}
					}
				}()
				conntest.Eventually(t, 5*time.Second, "descriptors released", func() bool { return openFDs(t) <= before })
			})
		}
	}
}
