package httpd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sockit/sockit/metrics"
	"github.com/sockit/sockit/server"
)

// Defaults for Server's zero fields.
const (
	// DefaultReadHeaderTimeout bounds the TLS handshake and the reading of
	// a request's headers (slow-loris).
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout closes a keep-alive connection idle this long
	// between requests.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultMaxHeaderBytes bounds a request's header section; a larger one
	// gets 431.
	DefaultMaxHeaderBytes = 64 << 10
)

// ErrServerClosed is what Serve returns after Shutdown or Close.
var ErrServerClosed = server.ErrServerClosed

// Server serves an http.Handler on listeners through a server.Server: each
// accepted connection passes the server.Server's admission (Allow/Deny,
// MaxConns, Verify) and concurrency (goroutine, pool, serial) before net/http
// serves it, and it counts as active until net/http closes it. So `sockit
// serve http --max-conns 100 --deny 10.0.0.0/8` means what it means for every
// other service. The server.Server's engine does not apply: net/http runs
// its own goroutines, and its IdleTimeout and ReadTimeout are not used (see
// IdleTimeout and ReadHeaderTimeout here).
//
// Connections are handed to net/http unwrapped, so a handler sees r.TLS on
// tls listeners. Handlers must not hijack connections: a hijacked
// connection is closed as soon as net/http lets go of it.
//
// The zero value (with Handler set) is a valid configuration. Fields must not
// change once Serve has been called. Methods are safe for concurrent use.
type Server struct {
	// Handler answers the requests; nil means http.DefaultServeMux.
	Handler http.Handler
	// Limits admits connections; nil means no limits. Its ServeFunc
	// completes a TLS handshake within the shorter of its ReadTimeout and
	// IdleTimeout (10 s when neither is set); without Limits,
	// ReadHeaderTimeout bounds the handshake.
	Limits *server.Server
	// ReadHeaderTimeout bounds the reading of each request's headers (and,
	// without Limits, a TLS handshake); 0 means DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long; 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers; 0 means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// Logger receives net/http's own error messages and failed TLS
	// handshakes; nil means slog.Default().
	Logger *slog.Logger
	// Meter, if not nil, counts every request as a message: its body bytes
	// in, the response's body bytes out, and the time from its headers
	// read to its handler's return (package metrics).
	Meter *metrics.Meter

	once   sync.Once
	hs     *http.Server
	limits *server.Server
	log    *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]chan struct{} // closed when net/http is done with the conn
}

func (s *Server) init() {
	s.once.Do(func() {
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.Default()
		}
		readHeader := orDuration(s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
		s.limits = s.Limits
		if s.limits == nil {
			// ServeFunc completes the TLS handshake within ReadTimeout
			// (net/http alone would wait for it for ever).
			s.limits = &server.Server{Logger: s.log, ReadTimeout: readHeader}
		}
		s.conns = make(map[net.Conn]chan struct{})
		handler := s.Handler
		if handler == nil {
			handler = http.DefaultServeMux
		}
		var connCtx func(context.Context, net.Conn) context.Context
		if s.Meter != nil {
			handler = metered(handler)
			// Each connection counts into a shard of its own.
			connCtx = func(ctx context.Context, _ net.Conn) context.Context {
				return context.WithValue(ctx, shardKey{}, s.Meter.Shard())
			}
		}
		s.hs = &http.Server{
			Handler:           handler,
			ConnContext:       connCtx,
			ReadHeaderTimeout: readHeader,
			IdleTimeout:       orDuration(s.IdleTimeout, DefaultIdleTimeout),
			MaxHeaderBytes:    orInt(s.MaxHeaderBytes, DefaultMaxHeaderBytes),
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
			ConnState:         s.connState,
		}
	})
}

// Stats are the connection counts of Limits (admitted, refused, timed
// out, failed).
func (s *Server) Stats() server.Stats {
	s.init()
	return s.limits.Stats()
}

// ListenerStats are the counts of Limits for one listener given to Serve.
func (s *Server) ListenerStats(ln any) (server.Stats, bool) {
	s.init()
	return s.limits.ListenerStats(ln)
}

// ActiveConns reports the connections admitted and not yet closed.
func (s *Server) ActiveConns() int {
	s.init()
	return s.limits.ActiveConns()
}

type shardKey struct{}

// metered counts each request into its connection's shard.
func metered(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sh, _ := r.Context().Value(shardKey{}).(*metrics.Shard)
		if sh == nil {
			next.ServeHTTP(w, r)
			return
		}
		start := metrics.Clock()
		cw := &countingWriter{ResponseWriter: w}
		body := &countingBody{ReadCloser: r.Body}
		r.Body = body
		next.ServeHTTP(cw, r)
		sh.Message(int(body.n), int(cw.n), metrics.Clock()-start)
	})
}

// countingWriter counts a response's body bytes.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps net/http's sendfile path for files.
func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(w.ResponseWriter, r)
	w.n += n
	return n, err
}

// Flush flushes the writer beneath.
func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the writer beneath.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts a request's body bytes.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// Serve serves HTTP on ln until Shutdown or Close, and returns
// ErrServerClosed then; ln is closed when it returns.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	cl := &chanListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		_ = s.hs.Serve(cl) // returns once cl is closed (by us or by Shutdown)
		cl.Close()
	}()
	err := s.limits.ServeFunc(ln, func(ctx context.Context, c net.Conn) {
		s.handoff(ctx, cl, c)
	})
	cl.Close()
	<-httpDone
	return err
}

// handoff passes an admitted connection to net/http and waits until net/http
// is done with it (or the shutdown deadline passed).
func (s *Server) handoff(ctx context.Context, cl *chanListener, c net.Conn) {
	// The TLS handshake, if any, is done: ServeFunc completes it before a
	// handler sees the connection.
	done := make(chan struct{})
	s.mu.Lock()
	s.conns[c] = done
	s.mu.Unlock()
	select {
	case cl.conns <- c:
	case <-cl.done:
		s.forget(c)
		return
	case <-ctx.Done():
		s.forget(c)
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (s *Server) forget(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// connState learns from net/http when it is done with a connection.
func (s *Server) connState(c net.Conn, st http.ConnState) {
	if st != http.StateClosed && st != http.StateHijacked {
		return
	}
	s.mu.Lock()
	done, ok := s.conns[c]
	delete(s.conns, c)
	s.mu.Unlock()
	if ok {
		close(done)
	}
}

// Shutdown stops accepting at once, lets requests in flight finish, closes
// idle connections and waits for all of them; when ctx ends first the rest
// are closed and ctx's error is returned. It shuts Limits down too.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	limitsErr := make(chan error, 1)
	go func() { limitsErr <- s.limits.Shutdown(ctx) }()
	err := s.hs.Shutdown(ctx)
	if err != nil {
		_ = s.hs.Close()
	}
	if lerr := <-limitsErr; err == nil && lerr != nil && !errors.Is(lerr, server.ErrServerClosed) {
		err = lerr
	}
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.init()
	err := s.hs.Close()
	if lerr := s.limits.Close(); err == nil && lerr != nil && !errors.Is(lerr, server.ErrServerClosed) {
		err = lerr
	}
	return err
}

// chanListener is the net.Listener net/http serves: it accepts the
// connections the server.Server admitted.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func orInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}
