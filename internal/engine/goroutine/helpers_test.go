package goroutine

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every wait of these tests.
const wait = 5 * time.Second

// logBuf collects an engine's log output.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newEngine returns an engine that is closed, and whose goroutines are
// waited for, when the test ends.
func newEngine(t *testing.T) (*Engine, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	e := New(engine.Config{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	t.Cleanup(func() {
		_ = e.Close()
		waitFor(t, "the engine's goroutines", e.Wait)
	})
	return e, logs
}

// waitFor runs f and fails the test if it does not return within wait.
func waitFor(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		t.Errorf("timed out after %v waiting for %s", wait, what)
	}
}

// serveListener runs e.ServeListener(ln) until the test ends.
func serveListener(t *testing.T, e *Engine, ln net.Listener, f proto.Factory, o engine.Options) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- e.ServeListener(ln, f, o) }()
	t.Cleanup(func() {
		_ = ln.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeListener = %v", err)
			}
		case <-time.After(wait):
			t.Error("ServeListener did not return")
		}
	})
}

func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func dial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(addr.Network(), addr.String(), wait)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(wait))
	t.Cleanup(func() { c.Close() })
	return c
}

// recorder is a protocol that counts its callbacks, hands out its transport
// and copies of what it reads, and optionally echoes.
type recorder struct {
	opened, closed, eofs atomic.Int32
	echo                 bool
	onOpen               func(proto.Transport)

	t        proto.Transport
	tr       chan proto.Transport
	data     chan []byte
	closeErr chan error
}

func newRecorder() *recorder {
	return &recorder{tr: make(chan proto.Transport, 1), data: make(chan []byte, 64), closeErr: make(chan error, 1)}
}

func (r *recorder) factory() proto.Factory {
	return func(proto.ConnInfo) proto.Protocol { return r }
}

func (r *recorder) OnOpen(t proto.Transport) {
	r.opened.Add(1)
	r.t = t
	if r.onOpen != nil {
		r.onOpen(t)
	}
	select {
	case r.tr <- t:
	default:
	}
}

func (r *recorder) OnData(d []byte) {
	if r.echo {
		_ = r.t.Write(d)
	}
	select {
	case r.data <- bytes.Clone(d):
	default:
	}
}

func (r *recorder) OnEOF() bool { r.eofs.Add(1); return false }

func (r *recorder) OnClose(err error) {
	r.closed.Add(1)
	select {
	case r.closeErr <- err:
	default:
	}
}

// closedCh returns a channel closed once OnClose was called.
func (r *recorder) closedCh() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		deadline := time.Now().Add(wait)
		for r.closed.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}()
	return ch
}

func (r *recorder) OnPauseWriting()  {}
func (r *recorder) OnResumeWriting() {}

func (r *recorder) transport(t *testing.T) proto.Transport {
	t.Helper()
	select {
	case tr := <-r.tr:
		return tr
	case <-time.After(wait):
		t.Fatal("OnOpen was not called")
	}
	return nil
}

func (r *recorder) nextData(t *testing.T) []byte {
	t.Helper()
	select {
	case d := <-r.data:
		return d
	case <-time.After(wait):
		t.Fatal("OnData was not called")
	}
	return nil
}

// errRecorder collects what an engine reports to Options.OnError.
type errRecorder struct {
	ch chan reported
}

type reported struct {
	remote string
	err    error
}

func newErrRecorder() *errRecorder { return &errRecorder{ch: make(chan reported, 16)} }

func (er *errRecorder) hook(remote net.Addr, err error) {
	s := ""
	if remote != nil {
		s = remote.String()
	}
	er.ch <- reported{s, err}
}

func (er *errRecorder) next(t *testing.T) reported {
	t.Helper()
	select {
	case r := <-er.ch:
		return r
	case <-time.After(wait):
		t.Fatal("OnError was not called")
	}
	return reported{}
}

// tlsConfigs returns a server configuration with a fresh self-signed
// certificate and a client configuration that accepts it.
func tlsConfigs(t *testing.T) (srv, cli *tls.Config) {
	t.Helper()
	cert, err := endpoint.SelfSigned(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{InsecureSkipVerify: true}
}

// readToEnd reads c until an error (EOF, reset) and reports whether that
// happened before c's deadline.
func readToEnd(c net.Conn) (closed bool, err error) {
	buf := make([]byte, 64<<10)
	for {
		_, err := c.Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return false, err
			}
			return true, err
		}
	}
}
