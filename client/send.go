package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/frame"
)

// Defaults for SendConfig's zero fields.
const (
	// DefaultTimeout is how long Send waits for each reply.
	DefaultTimeout = 5 * time.Second
	// DefaultQuiet is how long a raw reply may pause before it is complete.
	DefaultQuiet = 50 * time.Millisecond
)

// ErrNoReply is what every *NoReplyError matches with errors.Is.
var ErrNoReply = errors.New("sockit: no reply")

// ErrNoHalfClose is returned when close framing is asked for on a connection
// that cannot half-close its write side.
var ErrNoHalfClose = errors.New("sockit: close framing needs a connection that can half-close")

// ErrFixedSize is returned when a message does not have the exact size that
// fixed:N framing needs.
var ErrFixedSize = errors.New("sockit: message size differs from the fixed frame size")

// SendConfig configures Send. The zero value sends raw messages with the
// defaults below, but Endpoint has to be set.
type SendConfig struct {
	// Endpoint is where the messages go (endpoint.Parse).
	Endpoint endpoint.Endpoint
	// Dialer connects to Endpoint. A zero Timeout in it means Timeout below.
	Dialer endpoint.Dialer
	// Frame is how messages are framed on streams; the zero value is raw.
	// Datagram endpoints ignore it: a datagram is a message.
	Frame frame.Spec
	// MaxFrame bounds a reply (and a datagram); zero means
	// frame.DefaultMaxFrame. A longer reply is an error wrapping
	// frame.ErrTooLong.
	MaxFrame int
	// Timeout is how long to wait for each reply (and for connecting and
	// writing); zero means DefaultTimeout.
	Timeout time.Duration
	// Quiet ends a raw reply: the reply is what arrives until Quiet passes
	// with no more bytes. Zero means DefaultQuiet.
	Quiet time.Duration
	// ReadGreeting makes Send read one message from the server before the
	// first message is sent (for servers that greet, like hello over TCP),
	// and hand it to onReply, so that replies never shift by one. Datagram
	// endpoints ignore it: a datagram server cannot greet a client it has not
	// heard from yet.
	ReadGreeting bool
	// Trace, when set, is told when each step of the exchange happened, for
	// per-message timings (sockit send --json).
	Trace *SendTrace
}

// SendTrace receives the events of one Send call, in order, from the
// goroutine that called Send. A nil function is skipped. Index is a
// message's index in Send's msgs, -1 for the greeting.
type SendTrace struct {
	// Dialing is called before each connect: once per Send, or once per
	// message with close framing. Index is the first exchange that the
	// connection carries.
	Dialing func(index int)
	// Connected is called when the connection is up (after the TLS
	// handshake, for tls://).
	Connected func(index int)
	// Wrote is called when a message has been written (and, with close
	// framing, half-closed).
	Wrote func(index int)
	// FirstByte is called when the first byte (stream) or the datagram of a
	// reply or of the greeting arrived: a raw reply ends only after Quiet
	// passes with no more bytes, so this is its round trip.
	FirstByte func(index int)
}

func (t *SendTrace) dialing(i int) {
	if t != nil && t.Dialing != nil {
		t.Dialing(i)
	}
}

func (t *SendTrace) connected(i int) {
	if t != nil && t.Connected != nil {
		t.Connected(i)
	}
}

func (t *SendTrace) wrote(i int) {
	if t != nil && t.Wrote != nil {
		t.Wrote(i)
	}
}

func (t *SendTrace) firstByte(i int) {
	if t != nil && t.FirstByte != nil {
		t.FirstByte(i)
	}
}

// NoReplyError reports a message (or the greeting) that got no reply: none
// came within the timeout, or the peer closed the connection first.
type NoReplyError struct {
	// Index is the message's index in Send's msgs; -1 for the greeting.
	Index int
	// Msg is the message, as given to Send (unframed).
	Msg []byte
	// Addr is the endpoint's address.
	Addr string
	// Timeout is how long Send waited.
	Timeout time.Duration
	// Err is os.ErrDeadlineExceeded (timeout), io.EOF (the peer closed) or
	// frame.ErrTruncated (the peer closed within a frame).
	Err error
	// Got is how many bytes of a raw reply came before the timeout ended
	// it while it was still arriving (0: none came).
	Got int
}

func (e *NoReplyError) Error() string {
	what := "a reply to " + quote(e.Msg)
	if e.Index < 0 {
		what = "the greeting"
	}
	switch {
	case errors.Is(e.Err, io.EOF):
		return fmt.Sprintf("connection closed by %s before %s", e.Addr, what)
	case errors.Is(e.Err, frame.ErrTruncated):
		return fmt.Sprintf("connection closed by %s in the middle of %s", e.Addr, what)
	}
	if e.Got > 0 {
		return fmt.Sprintf("%s was still arriving after %v (%d bytes so far)", what, e.Timeout, e.Got)
	}
	if e.Index < 0 {
		return fmt.Sprintf("no greeting within %v", e.Timeout)
	}
	return fmt.Sprintf("no reply to %s within %v", quote(e.Msg), e.Timeout)
}

// Unwrap makes the error match both ErrNoReply and its cause.
func (e *NoReplyError) Unwrap() []error { return []error{ErrNoReply, e.Err} }

// ConnError reports a failure of the connection itself: refused, reset, or
// another error while connecting, writing or reading.
type ConnError struct {
	// Op is "dial", "write" or "read".
	Op string
	// Addr is the endpoint's address.
	Addr string
	// Err is the underlying error.
	Err error
}

func (e *ConnError) Error() string {
	var ne net.Error
	switch {
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return "connection refused: " + e.Addr
	case errors.Is(e.Err, syscall.ECONNRESET), errors.Is(e.Err, syscall.EPIPE):
		return "connection reset: " + e.Addr
	case errors.Is(e.Err, os.ErrDeadlineExceeded), errors.As(e.Err, &ne) && ne.Timeout():
		if e.Op == "dial" {
			return "connect timed out: " + e.Addr
		}
		return e.Op + " timed out: " + e.Addr
	}
	var oe *endpoint.OpError
	if errors.As(e.Err, &oe) {
		return oe.Error() // names the operation and the endpoint already
	}
	cause := e.Err
	var nerr *net.OpError
	if errors.As(cause, &nerr) && nerr.Err != nil {
		cause = nerr.Err // net.OpError repeats the operation and addresses
	}
	return fmt.Sprintf("%s %s: %v", e.Op, e.Addr, cause)
}

func (e *ConnError) Unwrap() error { return e.Err }

// Send sends each of msgs to cfg.Endpoint and waits for its reply, which it
// hands to onReply (with ReadGreeting, the greeting first). A reply is valid
// only until onReply returns. An error from onReply stops Send and is
// returned as it is.
//
// On streams each message is sent framed (cfg.Frame.Append; raw: as it is)
// and all go over one connection; with close framing each message gets its
// own connection, is followed by a half-close, and its reply is everything
// the server sends until it closes. On datagram endpoints each message is one
// datagram and its reply one datagram.
//
// Send stops at the first message without a reply (a *NoReplyError) or
// connection failure (a *ConnError). Cancelling ctx makes it return at once
// with an error wrapping ctx.Err().
func Send(ctx context.Context, cfg SendConfig, msgs [][]byte, onReply func(reply []byte) error) error {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = DefaultQuiet
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = frame.DefaultMaxFrame
	}
	if cfg.Dialer.Timeout <= 0 {
		cfg.Dialer.Timeout = cfg.Timeout
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("send to %s: %w", cfg.Endpoint.Address, err)
	}
	x := &exchange{ctx: ctx, cfg: cfg, addr: cfg.Endpoint.Address, onReply: onReply}
	switch kindOf(cfg.Endpoint) {
	case datagram:
		return x.sendPackets(msgs, false)
	case seqpacket:
		return x.sendPackets(msgs, cfg.ReadGreeting)
	}
	framed, err := frameAll(cfg.Frame, msgs)
	if err != nil {
		return err
	}
	if cfg.Frame.Kind == frame.Close {
		for i := range msgs {
			if err := x.sendClose(i, msgs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return x.sendStream(msgs, framed)
}

type socketKind int

const (
	stream    socketKind = iota
	datagram             // udp, unixgram: connectionless
	seqpacket            // unixpacket: connected, message boundaries kept
)

func kindOf(ep endpoint.Endpoint) socketKind {
	switch ep.Network {
	case "udp", "udp4", "udp6", "unixgram":
		return datagram
	case "unixpacket":
		return seqpacket
	}
	return stream
}

// frameAll frames every message for a stream before anything is sent, so
// that a message the framing cannot carry fails before the first byte goes
// out.
func frameAll(spec frame.Spec, msgs [][]byte) ([][]byte, error) {
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		if spec.Kind == frame.Fixed && len(m) != spec.N {
			return nil, &messageError{fmt.Sprintf("message %s is %d bytes, %s needs exactly %d", quote(m), len(m), spec, spec.N), ErrFixedSize}
		}
		b, err := spec.Append(nil, m)
		if errors.Is(err, frame.ErrReplyTooLong) {
			return nil, &messageError{fmt.Sprintf("message %s of %d bytes is too long for %s", quote(m), len(m), spec), err}
		}
		if err != nil {
			return nil, fmt.Errorf("message %s: %w", quote(m), err)
		}
		out[i] = b
	}
	return out, nil
}

// messageError is a message the framing cannot carry. Its text says why in
// full; it wraps ErrFixedSize or frame.ErrReplyTooLong.
type messageError struct {
	msg string
	err error
}

func (e *messageError) Error() string { return e.msg }
func (e *messageError) Unwrap() error { return e.err }

// exchange is one Send call's state.
type exchange struct {
	ctx     context.Context
	cfg     SendConfig
	addr    string
	onReply func([]byte) error
	buf     []byte // reply buffer for raw replies and packets, reused
	// waiting is the index of the awaited reply whose first byte has not
	// been read yet, plus two (-1, the greeting, is 1; 0: none); for
	// Trace.FirstByte.
	waiting int
}

// await notes that the reply (or greeting, -1) i is awaited now.
func (x *exchange) await(i int) {
	if x.cfg.Trace != nil {
		x.waiting = i + 2
	}
}

// gotBytes tells Trace.FirstByte when bytes of the awaited reply were read.
func (x *exchange) gotBytes() {
	if x.waiting != 0 {
		i := x.waiting - 2
		x.waiting = 0
		x.cfg.Trace.firstByte(i)
	}
}

// traced returns conn's reads through gotBytes, when Trace is set. A reply
// a frame.Reader already had buffered gets no FirstByte.
func (x *exchange) traced(conn net.Conn) io.Reader {
	if x.cfg.Trace == nil {
		return conn
	}
	return tracedReader{conn, x}
}

type tracedReader struct {
	conn net.Conn
	x    *exchange
}

func (t tracedReader) Read(b []byte) (int, error) {
	n, err := t.conn.Read(b)
	if n > 0 {
		t.x.gotBytes()
	}
	return n, err
}

// dial connects, for the exchange index and those after it, and arranges for ctx's cancellation to close the
// connection. The returned function closes it.
func (x *exchange) dial(index int) (net.Conn, func(), error) {
	x.cfg.Trace.dialing(index)
	conn, err := x.cfg.Dialer.Dial(x.ctx, x.cfg.Endpoint)
	if err != nil {
		return nil, nil, x.fail(&ConnError{Op: "dial", Addr: x.addr, Err: err})
	}
	x.cfg.Trace.connected(index)
	var once sync.Once
	closeConn := func() { once.Do(func() { conn.Close() }) }
	stop := context.AfterFunc(x.ctx, closeConn)
	return conn, func() { stop(); closeConn() }, nil
}

// fail returns ctx's error once ctx is done (the connection was closed
// because of it), else err.
func (x *exchange) fail(err error) error {
	if cerr := x.ctx.Err(); cerr != nil {
		return fmt.Errorf("send to %s: %w", x.addr, cerr)
	}
	return err
}

func (x *exchange) write(conn net.Conn, b []byte) error {
	if err := conn.SetWriteDeadline(time.Now().Add(x.cfg.Timeout)); err != nil {
		return x.fail(&ConnError{Op: "write", Addr: x.addr, Err: err})
	}
	if _, err := conn.Write(b); err != nil {
		return x.fail(&ConnError{Op: "write", Addr: x.addr, Err: err})
	}
	return nil
}

// readErr turns an error from reading the reply to msg (index i, -1 for the
// greeting) into Send's error.
func (x *exchange) readErr(i int, msg []byte, err error) error {
	var ne net.Error
	switch {
	case x.ctx.Err() != nil:
		return x.fail(err)
	case errors.Is(err, io.EOF), errors.Is(err, frame.ErrTruncated):
		return &NoReplyError{Index: i, Msg: msg, Addr: x.addr, Timeout: x.cfg.Timeout, Err: err}
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &NoReplyError{Index: i, Msg: msg, Addr: x.addr, Timeout: x.cfg.Timeout, Err: os.ErrDeadlineExceeded}
	case errors.Is(err, frame.ErrTooLong):
		what := "reply to " + quote(msg)
		if i < 0 {
			what = "greeting"
		}
		return fmt.Errorf("%s longer than %d bytes: %w", what, x.cfg.MaxFrame, err)
	}
	return &ConnError{Op: "read", Addr: x.addr, Err: err}
}

// sendStream sends all messages over one connection.
func (x *exchange) sendStream(msgs, framed [][]byte) error {
	first := 0
	if x.cfg.ReadGreeting {
		first = -1
	}
	conn, done, err := x.dial(first)
	if err != nil {
		return err
	}
	defer done()
	var r *frame.Reader
	if x.cfg.Frame.Kind != frame.Raw {
		r = frame.NewReader(x.traced(conn), x.cfg.Frame, x.cfg.MaxFrame)
	}
	read := func(i int, msg []byte) ([]byte, error) {
		x.await(i)
		if r == nil {
			return x.readRaw(conn, i, msg)
		}
		return x.readFramed(conn, r, i, msg)
	}
	if x.cfg.ReadGreeting {
		g, err := read(-1, nil)
		if err != nil {
			return err
		}
		if err := x.onReply(g); err != nil {
			return err
		}
	}
	for i, m := range msgs {
		if err := x.write(conn, framed[i]); err != nil {
			return err
		}
		x.cfg.Trace.wrote(i)
		reply, err := read(i, m)
		if err != nil {
			return err
		}
		if err := x.onReply(reply); err != nil {
			return err
		}
	}
	return nil
}

// sendClose sends one message with close framing: on its own connection,
// followed by a half-close; the reply is all the server sends until it
// closes.
func (x *exchange) sendClose(i int, msg []byte) error {
	conn, done, err := x.dial(i)
	if err != nil {
		return err
	}
	defer done()
	if x.cfg.ReadGreeting {
		x.await(-1)
		g, err := x.readRaw(conn, -1, nil)
		if err != nil {
			return err
		}
		if err := x.onReply(g); err != nil {
			return err
		}
	}
	cw, ok := conn.(interface{ CloseWrite() error })
	if !ok {
		return fmt.Errorf("send to %s: %w", x.addr, ErrNoHalfClose)
	}
	if err := x.write(conn, msg); err != nil {
		return err
	}
	if err := cw.CloseWrite(); err != nil {
		return x.fail(&ConnError{Op: "write", Addr: x.addr, Err: err})
	}
	x.cfg.Trace.wrote(i)
	x.await(i)
	reply, err := x.readFramed(conn, frame.NewReader(x.traced(conn), x.cfg.Frame, x.cfg.MaxFrame), i, msg)
	if err != nil {
		return err
	}
	return x.onReply(reply)
}

// readFramed reads one framed message within the timeout.
func (x *exchange) readFramed(conn net.Conn, r *frame.Reader, i int, msg []byte) ([]byte, error) {
	if err := conn.SetReadDeadline(time.Now().Add(x.cfg.Timeout)); err != nil {
		return nil, x.readErr(i, msg, err)
	}
	reply, err := r.ReadMessage()
	if err != nil {
		return nil, x.readErr(i, msg, err)
	}
	return reply, nil
}

// readRaw reads a raw reply: the first bytes within the timeout, then
// whatever follows until the quiet period passes with nothing more, the
// peer closes, or MaxFrame is passed (an error). The whole reply must end
// within the timeout: a peer that trickles bytes cannot stretch it.
func (x *exchange) readRaw(conn net.Conn, i int, msg []byte) ([]byte, error) {
	reply := x.buf[:0]
	end := time.Now().Add(x.cfg.Timeout)
	deadline := end
	for {
		if err := conn.SetReadDeadline(deadline); err != nil {
			return nil, x.readErr(i, msg, err)
		}
		if cap(reply)-len(reply) < frame.RawReadSize/4 {
			grown := make([]byte, len(reply), len(reply)+frame.RawReadSize)
			copy(grown, reply)
			reply = grown
		}
		// Read at most one byte past the limit, to see that it was passed.
		room := min(cap(reply), x.cfg.MaxFrame+1)
		n, err := conn.Read(reply[len(reply):room])
		if n > 0 {
			x.gotBytes()
		}
		reply = reply[:len(reply)+n]
		x.buf = reply[:0]
		if len(reply) > x.cfg.MaxFrame {
			return nil, x.readErr(i, msg, frame.ErrTooLong)
		}
		if err != nil {
			quiet := errors.Is(err, os.ErrDeadlineExceeded) && deadline.Before(end)
			if len(reply) > 0 && x.ctx.Err() == nil && (quiet || errors.Is(err, io.EOF)) {
				// The quiet period passed, or the peer closed after its reply.
				return reply, nil
			}
			err = x.readErr(i, msg, err)
			if nr := (*NoReplyError)(nil); errors.As(err, &nr) {
				nr.Got = len(reply)
			}
			return nil, err
		}
		if n > 0 {
			deadline = time.Now().Add(x.cfg.Quiet)
			if !deadline.Before(end) {
				deadline = end
			}
		}
	}
}

// sendPackets sends each message as one datagram (or SOCK_SEQPACKET packet)
// and reads one as its reply.
func (x *exchange) sendPackets(msgs [][]byte, greeting bool) error {
	first := 0
	if greeting {
		first = -1
	}
	conn, done, err := x.dial(first)
	if err != nil {
		return err
	}
	defer done()
	x.buf = make([]byte, x.cfg.MaxFrame+1)
	if greeting {
		x.await(-1)
		g, err := x.readPacket(conn, -1, nil)
		if err != nil {
			return err
		}
		if err := x.onReply(g); err != nil {
			return err
		}
	}
	for i, m := range msgs {
		if err := x.write(conn, m); err != nil {
			return err
		}
		x.cfg.Trace.wrote(i)
		x.await(i)
		reply, err := x.readPacket(conn, i, m)
		if err != nil {
			return err
		}
		if err := x.onReply(reply); err != nil {
			return err
		}
	}
	return nil
}

func (x *exchange) readPacket(conn net.Conn, i int, msg []byte) ([]byte, error) {
	if err := conn.SetReadDeadline(time.Now().Add(x.cfg.Timeout)); err != nil {
		return nil, x.readErr(i, msg, err)
	}
	n, err := conn.Read(x.buf)
	if err != nil {
		return nil, x.readErr(i, msg, err)
	}
	x.gotBytes()
	if n > x.cfg.MaxFrame {
		return nil, x.readErr(i, msg, frame.ErrTooLong)
	}
	return x.buf[:n], nil
}

// quote quotes a message for an error, shortened when long.
func quote(msg []byte) string {
	const max = 64
	if len(msg) > max {
		return strconv.Quote(string(msg[:max])) + "..."
	}
	return strconv.Quote(string(msg))
}
