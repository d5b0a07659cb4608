package conntest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/server"
)

// Transport is a stream transport the suite runs on.
type Transport struct {
	Name    string // "tcp", "tcp6", "unix", "unixpacket"
	Network string
	Packet  bool // message boundaries kept (unixpacket)
}

// StreamTransports are the stream transports every engine must serve. tcp6 is
// skipped on machines without an IPv6 loopback.
var StreamTransports = []Transport{
	{Name: "tcp", Network: "tcp4"},
	{Name: "tcp6", Network: "tcp6"},
	{Name: "unix", Network: "unix"},
	{Name: "unixpacket", Network: "unixpacket", Packet: true},
}

// Listen opens a listener for tr on loopback or in a temporary directory.
func Listen(t testing.TB, tr Transport) net.Listener {
	t.Helper()
	var addr string
	switch tr.Network {
	case "tcp4":
		addr = "127.0.0.1:0"
	case "tcp6":
		addr = "[::1]:0"
	default:
		addr = filepath.Join(shortTempDir(t), "s.sock")
	}
	ln, err := net.Listen(tr.Network, addr)
	if err != nil {
		if tr.Network == "tcp6" {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		t.Fatalf("listen %s: %v", tr.Network, err)
	}
	return ln
}

// shortTempDir is a temporary directory whose paths fit in sockaddr_un.
func shortTempDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "sk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Env is one running server under test.
type Env struct {
	T      testing.TB
	Tr     Transport
	Srv    *server.Server
	Ln     net.Listener
	Logs   *LogBuffer
	served chan error
}

// Start serves f on a new listener of tr with a server configured by cfg
// (which may be nil) on the named engine. The server is shut down when the
// test ends.
func Start(t testing.TB, engineName string, tr Transport, f proto.Factory, cfg func(*server.Server)) *Env {
	t.Helper()
	logs := &LogBuffer{}
	srv := NewServer(engineName)
	srv.Logger = NewLogger(logs)
	if cfg != nil {
		cfg(srv)
	}
	ln := Listen(t, tr)
	env := &Env{T: t, Tr: tr, Srv: srv, Ln: ln, Logs: logs, served: make(chan error, 1)}
	go func() { env.served <- srv.Serve(ln, f) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-env.served:
			if !errors.Is(err, server.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return env
}

// NewServer returns a server on the named engine. "epoll:N" means the epoll
// engine with N loops.
func NewServer(engineName string) *server.Server {
	name, loops, _ := strings.Cut(engineName, ":")
	s := &server.Server{Engine: name}
	if n, err := strconv.Atoi(loops); err == nil {
		s.Loops = n
	}
	return s
}

// Dial connects to the server; the connection is closed when the test ends.
func (e *Env) Dial() net.Conn {
	e.T.Helper()
	c, err := net.DialTimeout(e.Ln.Addr().Network(), e.Ln.Addr().String(), 5*time.Second)
	if err != nil {
		e.T.Fatalf("dial: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	e.T.Cleanup(func() { c.Close() })
	return c
}

// ReadN reads exactly n bytes from c within the connection's deadline.
func ReadN(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	if got, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v (got %d: %s)", n, err, got, Quote(buf[:got]))
	}
	return buf
}

// ReadAll reads until EOF within the connection's deadline.
func ReadAll(t testing.TB, c net.Conn) []byte {
	t.Helper()
	var b []byte
	buf := make([]byte, 64<<10) // a whole packet on message-preserving sockets
	for {
		n, err := c.Read(buf)
		b = append(b, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return b
		}
		if err != nil {
			t.Fatalf("read to EOF: %v (got %d bytes: %s)", err, len(b), Quote(b))
		}
	}
}

// Quote shows at most 200 bytes of b, for failure messages.
func Quote(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%q... (%d bytes)", b[:200], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// CloseWrite half-closes c.
func CloseWrite(t testing.TB, c net.Conn) {
	t.Helper()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("%T cannot half-close", c)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatalf("half-close: %v", err)
	}
}

// Eventually polls cond every 5 ms until it holds or d passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// NewLogger returns a debug-level text logger writing to w.
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// LogBuffer collects a server's log output for assertions.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Contains reports whether s was logged.
func (l *LogBuffer) Contains(s string) bool { return bytes.Contains([]byte(l.String()), []byte(s)) }
