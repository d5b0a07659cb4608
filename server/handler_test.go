package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sockit/sockit/internal/conntest"
	"github.com/sockit/sockit/server"
)

func TestServeFuncEchoAndShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server.Server{MaxConns: 1}
	started := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.ServeFunc(ln, func(ctx context.Context, c net.Conn) {
			started <- struct{}{}
			_, _ = io.Copy(c, c)
		})
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	<-started
	if _, err := c.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if got := conntest.ReadN(t, c, 3); string(got) != "abc" {
		t.Fatalf("got %q", got)
	}
	// MaxConns applies: a second connection is closed at once.
	c2, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(c2); len(b) != 0 {
		t.Fatalf("got %q", b)
	}
	c2.Close()
	// Shutdown waits for the handler; the deadline cancels it and closes c.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline (the handler copies until the peer closes)", err)
	}
	if err := <-done; !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("ServeFunc = %v", err)
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the handler's connection was not closed: %v", err)
	}
	conntest.Eventually(t, 5*time.Second, "released", func() bool { return s.ActiveConns() == 0 })
}

func TestServeFuncPanicIsContained(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	s := &server.Server{HandleError: func(_ net.Addr, err error) { errs <- err }}
	go s.ServeFunc(ln, func(ctx context.Context, c net.Conn) { panic("handler bug") })
	defer s.Close()
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.ReadAll(c)
		c.Close()
		select {
		case <-errs:
		case <-time.After(5 * time.Second):
			t.Fatal("HandleError not called")
		}
	}
}
