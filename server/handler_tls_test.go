package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/internal/conntest"
	"github.com/sockit/sockit/server"
)

// ServeFunc completes a TLS handshake before the handler sees the
// connection: a client that fails it (plain text here) reaches HandleError
// and the log with its peer, never the handler, and the next client is
// served as usual.
func TestServeFuncTLSHandshakeFailureNeverReachesHandler(t *testing.T) {
	cfg, _, err := endpoint.ServerTLS{SelfSigned: true, Hosts: []string{"127.0.0.1"}}.Config()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(raw, cfg)
	logs := &conntest.LogBuffer{}
	errs := make(chan error, 4)
	var handled atomic.Int32
	s := &server.Server{
		Logger:      conntest.NewLogger(logs),
		ReadTimeout: 5 * time.Second,
		HandleError: func(_ net.Addr, err error) { errs <- err },
	}
	go s.ServeFunc(ln, func(ctx context.Context, c net.Conn) {
		handled.Add(1)
		_, _ = io.Copy(c, c)
	})
	defer s.Close()

	plain, err := net.DialTimeout("tcp", raw.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = plain.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(plain, "GET / HTTP/1.0\r\n\r\n")
	_, _ = io.ReadAll(plain)
	plain.Close()
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "tls handshake") {
			t.Fatalf("HandleError(%v), want the handshake's failure", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a failed handshake did not reach HandleError")
	}
	if n := handled.Load(); n != 0 {
		t.Fatalf("the handler ran %d times for a failed handshake", n)
	}
	if !strings.Contains(logs.String(), "tls handshake failed") || !strings.Contains(logs.String(), "127.0.0.1:") {
		t.Fatalf("not logged with its peer:\n%s", logs)
	}

	good, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", raw.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	_ = good.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(good, "ping"); err != nil {
		t.Fatal(err)
	}
	if got := conntest.ReadN(t, good, 4); string(got) != "ping" {
		t.Fatalf("echo %q", got)
	}
}
