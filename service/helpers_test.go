package service_test

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/service"
	"github.com/sockit/sockit/service/internal/fake"
)

// framing is one --frame value with a hand-written encoder, so that the
// expected bytes do not come from the code under test.
type framing struct {
	name string
	spec frame.Spec
	enc  func(msg string) string
}

func lenEnc(w int) func(string) string {
	return func(m string) string {
		var h [8]byte
		binary.BigEndian.PutUint64(h[:], uint64(len(m)))
		return string(h[8-w:]) + m
	}
}

func ident(m string) string { return m }

var (
	fRaw      = framing{"raw", frame.Spec{}, ident}
	fLine     = framing{"line", frame.Spec{Kind: frame.Line}, func(m string) string { return m + "\n" }}
	fComma    = framing{"delim:,", frame.Spec{Kind: frame.Delim, Sep: []byte(",")}, func(m string) string { return m + "," }}
	fCRLF     = framing{`delim:\r\n`, frame.Spec{Kind: frame.Delim, Sep: []byte("\r\n")}, func(m string) string { return m + "\r\n" }}
	fFixed4   = framing{"fixed:4", frame.Spec{Kind: frame.Fixed, N: 4}, ident}
	fLen1     = framing{"len:1", frame.Spec{Kind: frame.Len, W: 1}, lenEnc(1)}
	fLen2     = framing{"len:2", frame.Spec{Kind: frame.Len, W: 2}, lenEnc(2)}
	fLen4     = framing{"len:4", frame.Spec{Kind: frame.Len, W: 4}, lenEnc(4)}
	fLen8     = framing{"len:8", frame.Spec{Kind: frame.Len, W: 8}, lenEnc(8)}
	fClose    = framing{"close", frame.Spec{Kind: frame.Close}, ident}
	framings  = []framing{fRaw, fLine, fComma, fCRLF, fFixed4, fLen1, fLen2, fLen4, fLen8, fClose}
	textFrams = []framing{fLine, fComma, fCRLF, fLen1, fLen2, fLen4, fLen8, fClose}
)

// logBuf is a slog text log in memory.
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

func newLog() (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

func mustNew(t testing.TB, name string, cfg service.Config) *service.Service {
	t.Helper()
	s, err := service.New(name, cfg)
	if err != nil {
		t.Fatalf("New(%q): %v", name, err)
	}
	return s
}

// open connects a fake stream connection to svc.
func open(svc *service.Service, network string) *fake.Conn {
	return fake.Open(svc.Stream, network)
}

func wantOut(t *testing.T, c *fake.Conn, want string, what string) {
	t.Helper()
	if got := string(c.Take()); got != want {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

func wantClosed(t *testing.T, c *fake.Conn, want bool, what string) {
	t.Helper()
	if got, _ := c.Closed(); got != want {
		t.Fatalf("%s: closed = %v, want %v", what, got, want)
	}
}

func wantLog(t *testing.T, lb *logBuf, parts ...string) {
	t.Helper()
	s := lb.String()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Fatalf("log %q lacks %q", s, p)
		}
	}
}

func openFactory(f proto.Factory) *fake.Conn { return fake.Open(f, "tcp") }
