package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/sockit/sockit/proto"
)

// Mode is how connections are dispatched (socketserver's mix-ins).
type Mode string

// Concurrency modes.
const (
	// PerConn serves every connection on its own goroutine (ThreadingMixIn).
	PerConn Mode = "goroutine"
	// Pool serves connections on a fixed number of workers fed by a bounded
	// queue; a connection arriving to a full queue is closed at once.
	Pool Mode = "pool"
	// Serial serves one connection at a time (plain TCPServer).
	Serial Mode = "serial"
)

// Options configure how an engine serves one listener or endpoint. The zero
// value serves every connection on its own goroutine with no limits.
type Options struct {
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
	// Network is the endpoint scheme ("tcp", "unix", "tls", ...) reported to
	// protocol factories in proto.ConnInfo.
	Network string
	// Admit decides whether a freshly accepted connection is served. A
	// refused connection is closed at once, with no bytes sent. release, if
	// not nil, is called exactly once when an admitted connection ends. A nil
	// Admit admits every connection.
	Admit func(local, remote net.Addr) (release func(), ok bool)
	// AdmitMayBlock says Admit runs a hook of the user's (a verify
	// function) that may block or keep state: an engine must then call it
	// from one goroutine per listener, never from an event loop. Without
	// it, Admit must be fast, non-blocking and safe for concurrent use.
	AdmitMayBlock bool
	// IdleTimeout closes a connection with no bytes in either direction for
	// this long; 0 means never.
	IdleTimeout time.Duration
	// ReadTimeout closes a connection that began a message and did not finish
	// it within this long (slow-loris); 0 means never. It needs a protocol
	// that implements proto.Idler.
	ReadTimeout time.Duration
	// WriteTimeout closes (aborts) a connection whose queued bytes are not
	// all written within this long: the kernel did not take them because
	// the peer reads too slowly or not at all. The engine checks at this
	// period that everything queued at the previous check has gone, so a
	// stuck byte is caught after WriteTimeout to 2 × WriteTimeout; bytes
	// that go straight to the kernel never start the clock. 0 means never.
	WriteTimeout time.Duration
	// OnError is called once for each connection that fails other than by a
	// timeout: its protocol panicked (a *PanicError), its TLS handshake
	// failed (then no OnOpen was called), or a Unix seqpacket record was
	// larger than the engine reads whole (socketserver's handle_error). It
	// may be nil.
	OnError func(remote net.Addr, err error)
	// OnTimeout is called when an idle, read or write timeout closes a connection
	// (socketserver's handle_timeout); it may be nil.
	OnTimeout func(remote net.Addr, err error)
	// Mode, Workers and Queue choose the dispatch (goroutine engine only).
	Mode    Mode
	Workers int // Pool: number of workers; <= 0 means 4
	Queue   int // Pool: queue length; < 0 means 0 (hand-off only); 0 means Workers
}

// Errors reported by engines.
var (
	// ErrIdleTimeout is the cause given to OnClose when IdleTimeout closed the
	// connection.
	ErrIdleTimeout = errors.New("sockit: idle timeout")
	// ErrReadTimeout is the cause given to OnClose when ReadTimeout closed the
	// connection.
	ErrReadTimeout = errors.New("sockit: read timeout: message not finished in time")
	// ErrWriteTimeout is the cause given to OnClose when WriteTimeout closed
	// the connection.
	ErrWriteTimeout = errors.New("sockit: write timeout: the peer did not take the replies in time")
	// ErrShutdown is the cause given to OnClose when a shutdown deadline
	// aborted the connection.
	ErrShutdown = errors.New("sockit: aborted by shutdown")
	// ErrEngineClosed is returned by Serve methods called after Shutdown or
	// Close.
	ErrEngineClosed = errors.New("sockit: engine closed")
)

// PanicError is the error a contained protocol panic becomes.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("sockit: protocol panicked: %v", e.Value) }

// Engine runs protocols on sockets. Implementations are safe for concurrent
// use.
type Engine interface {
	// Name is the engine's name as --engine takes it.
	Name() string
	// ServeListener accepts connections from ln and runs a protocol made by f
	// for each, until ln is closed; then it returns nil (the caller closed
	// it; any other permanent accept error is returned) and leaves the admitted connections to Shutdown or Close. Temporary
	// accept errors back off (5 ms doubling to 1 s) and never end the loop.
	ServeListener(ln net.Listener, f proto.Factory, o Options) error
	// ServeConn runs a protocol made by f on nc, a connection accepted or
	// dialed elsewhere (a load generator's client connections, say). It
	// returns at once; the connection is the engine's from then on and ends
	// with Shutdown or Close like any other. release, if not nil, runs when
	// it ends.
	ServeConn(nc net.Conn, f proto.Factory, o Options, release func()) error
	// ServePacket runs p on pc until pc is closed, then returns nil.
	ServePacket(pc net.PacketConn, p proto.DatagramProtocol, o Options) error
	// Shutdown stops admitting connections, closes idle ones, lets busy ones
	// finish their current exchange and waits for all of them; when ctx ends
	// it aborts the rest and returns ctx.Err(). Called from a callback, it
	// does not wait for what cannot finish while the callback waits: its own
	// connection (goroutine engine), every connection of its event loop
	// (epoll), and the connections of other callbacks that are themselves
	// inside Shutdown. Those end after their callbacks return.
	Shutdown(ctx context.Context) error
	// Close aborts every connection and waits for their callbacks to end.
	Close() error
}

// Config configures an engine as a whole.
type Config struct {
	// Loops is the number of event loops (epoll); <= 0 means GOMAXPROCS.
	Loops int
	// Logger receives engine events; nil means slog.Default().
	Logger *slog.Logger
}

// Temporary reports whether an accept error is worth retrying after a pause
// (EMFILE, ENFILE, ENOBUFS, ECONNABORTED and timeouts) rather than ending the
// accept loop.
func Temporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	if isTemporaryErrno(err) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// Go reports some temporary conditions only through the deprecated
	// Temporary method.
	type temporary interface{ Temporary() bool }
	var te temporary
	return errors.As(err, &te) && te.Temporary()
}

// Backoff is the accept back-off of net/http: 5 ms doubling to 1 s. The zero
// value is ready to use; it is not safe for concurrent use.
type Backoff struct{ d time.Duration }

// Next returns the next pause.
func (b *Backoff) Next() time.Duration {
	if b.d == 0 {
		b.d = 5 * time.Millisecond
	} else {
		b.d *= 2
	}
	if b.d > time.Second {
		b.d = time.Second
	}
	return b.d
}

// Reset forgets earlier failures.
func (b *Backoff) Reset() { b.d = 0 }

// Limits resolves SetWriteBufferLimits arguments (SEMANTICS.md): a negative
// value means "not given"; neither given: high 64 KiB, low high/4; only high:
// low = high/4; only low: high = 4·low; both must satisfy high >= low.
func Limits(high, low int) (int, int, error) {
	switch {
	case high < 0 && low < 0:
		high = proto.DefaultHighWater
		low = high / 4
	case low < 0:
		low = high / 4
	case high < 0:
		high = 4 * low
	}
	if high < low {
		return 0, 0, proto.ErrBadLimits
	}
	return high, low, nil
}

// MaxRecord is the largest Unix seqpacket (unixpacket) record the engines
// deliver: one read buffer, like a datagram endpoint's.
const MaxRecord = 64 << 10

// ErrRecordTooLarge matches (errors.Is) the error both engines give OnError
// and OnClose when a unixpacket record is larger than MaxRecord. The record
// is never delivered cut; the connection is closed.
var ErrRecordTooLarge = errors.New("sockit: unixpacket record too large")

// RecordTooLargeError is that error: the record's size when the kernel
// reported it (0 when not known) and the limit.
type RecordTooLargeError struct{ Size, Max int }

func (e *RecordTooLargeError) Error() string {
	if e.Size > 0 {
		return fmt.Sprintf("sockit: unixpacket record of %d bytes is larger than %d bytes; connection closed", e.Size, e.Max)
	}
	return fmt.Sprintf("sockit: unixpacket record larger than %d bytes; connection closed", e.Max)
}

// Is makes errors.Is(err, ErrRecordTooLarge) true.
func (e *RecordTooLargeError) Is(target error) bool { return target == ErrRecordTooLarge }

// Handshaker is a connection with a handshake to complete before it carries
// data: a *tls.Conn.
type Handshaker interface {
	HandshakeContext(ctx context.Context) error
}

var _ Handshaker = (*tls.Conn)(nil)

// ErrHandshake wraps every error of a failed server-side TLS handshake.
var ErrHandshake = errors.New("sockit: tls handshake")

// DefaultHandshakeTimeout bounds a server's TLS handshake when neither a
// read nor an idle timeout is set.
const DefaultHandshakeTimeout = 10 * time.Second

// Handshake completes the server side of c's TLS handshake, within the
// shorter of readTimeout and idleTimeout (those set; DefaultHandshakeTimeout
// when neither is) or ctx's end, before any callback or handler sees the
// connection: a failed handshake is then reported with its peer and the
// connection closed, instead of failing the first read of a protocol.
func Handshake(ctx context.Context, c Handshaker, readTimeout, idleTimeout time.Duration) error {
	d := DefaultHandshakeTimeout
	for _, t := range []time.Duration{readTimeout, idleTimeout} {
		if t > 0 && t < d {
			d = t
		}
	}
	hctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := c.HandshakeContext(hctx); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return nil
}
