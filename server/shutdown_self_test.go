package server_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sockit/sockit/internal/conntest"
	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/server"
)

// selfShutdownDeadline is the Shutdown deadline in these tests: long enough
// that reaching it means Shutdown waited for its own caller.
const selfShutdownDeadline = 10 * time.Second

// TestShutdownFromHandlers: handlers that call Shutdown themselves, one or
// two at the same time, must not wait for their own (or each other's)
// connection; Shutdown returns nil once every other handler has finished.
func TestShutdownFromHandlers(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(map[int]string{1: "one", 2: "two-at-once"}[n], func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := &server.Server{}
			var arrived sync.WaitGroup
			arrived.Add(n)
			results := make(chan error, n)
			go s.ServeFunc(ln, func(ctx context.Context, c net.Conn) {
				arrived.Done()
				arrived.Wait() // all n handlers run before any calls Shutdown
				sctx, cancel := context.WithTimeout(context.Background(), selfShutdownDeadline)
				defer cancel()
				results <- s.Shutdown(sctx)
			})
			for range n {
				c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			timeout := time.After(selfShutdownDeadline / 2)
			for range n {
				select {
				case err := <-results:
					if err != nil {
						t.Fatalf("Shutdown from a handler = %v, want nil", err)
					}
				case <-timeout:
					t.Fatal("Shutdown from a handler waited for its own handler")
				}
			}
			conntest.Eventually(t, 5*time.Second, "released", func() bool { return s.ActiveConns() == 0 })
		})
	}
}

// shutdownCaller calls Shutdown from its OnOpen callback once every
// connection of the test has opened.
type shutdownCaller struct {
	proto.Base
	srv     *server.Server
	arrived *sync.WaitGroup
	all     chan struct{} // closed when every connection has opened
	results chan error
}

func (p *shutdownCaller) OnOpen(proto.Transport) {
	p.arrived.Done()
	select {
	case <-p.all:
	case <-time.After(5 * time.Second):
		p.results <- errors.New("the connections' callbacks did not run at the same time")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), selfShutdownDeadline)
	defer cancel()
	p.results <- p.srv.Shutdown(ctx)
}

// TestShutdownFromTwoCallbacks: two connections' callbacks call Shutdown at
// the same moment on each engine; neither may wait for the other.
func TestShutdownFromTwoCallbacks(t *testing.T) {
	// epoll with two loops: the two connections go to different loops (round
	// robin), so their callbacks run at the same time; with one loop they
	// could not.
	for _, eng := range []string{"goroutine", "epoll"} {
		t.Run(eng, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			// A Verify hook keeps accepting off the loops (a loop that
			// accepts a connection serves it, so both could land on one
			// loop, whose first callback then waits for a second that
			// cannot open): Go's accept hands them out round robin.
			s := &server.Server{Engine: eng, Loops: 2, Verify: func(net.Addr, net.Addr) bool { return true }}
			var arrived sync.WaitGroup
			arrived.Add(2)
			all := make(chan struct{})
			go func() { arrived.Wait(); close(all) }()
			results := make(chan error, 2)
			go s.Serve(ln, func(proto.ConnInfo) proto.Protocol {
				return &shutdownCaller{srv: s, arrived: &arrived, all: all, results: results}
			})
			for range 2 {
				c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			timeout := time.After(selfShutdownDeadline / 2)
			for range 2 {
				select {
				case err := <-results:
					if err != nil {
						t.Fatalf("Shutdown from a callback = %v, want nil", err)
					}
				case <-timeout:
					t.Fatal("two callbacks calling Shutdown waited for each other")
				}
			}
		})
	}
}
