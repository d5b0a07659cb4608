package proto

import (
	"context"
	"errors"
	"net"
	"os"
	"time"
)

// Errors returned by transports.
var (
	// ErrBufferFull is returned by Write when the write buffer is already past
	// its high watermark and accepting the data would take it past its hard
	// limit. Nothing of that call was buffered.
	ErrBufferFull = errors.New("sockit: write buffer full")
	// ErrWriteAfterEOF is returned by Write after WriteEOF.
	ErrWriteAfterEOF = errors.New("sockit: write after WriteEOF")
	// ErrClosed is returned by Write and Drain once the transport is closed
	// or the connection is lost. It wraps net.ErrClosed.
	ErrClosed = closedError{}
	// ErrBadLimits is returned by SetWriteBufferLimits for limits other than
	// high >= low >= 0.
	ErrBadLimits = errors.New("sockit: write buffer limits must satisfy high >= low >= 0")
	// ErrHalfCloseUnsupported is returned by WriteEOF on transports that cannot
	// half-close (TLS 1.2, datagram sockets, SOCK_SEQPACKET on some systems).
	ErrHalfCloseUnsupported = errors.New("sockit: transport cannot half-close")
	// ErrFileShort is the cause a connection is closed with when a file
	// region could not be sent whole: the file ended (was truncated) before
	// the region did.
	ErrFileShort = errors.New("sockit: file ended before its region was sent")
	// ErrBadRegion is returned by WriteFile for a negative offset or length.
	ErrBadRegion = errors.New("sockit: file region with a negative offset or length")
	// ErrFileUnsupported is returned by WriteFile on a packet
	// (SOCK_SEQPACKET) transport, where a write is one message.
	ErrFileUnsupported = errors.New("sockit: file regions need a stream transport")
)

type closedError struct{}

func (closedError) Error() string        { return "sockit: transport closed" }
func (closedError) Is(target error) bool { return target == net.ErrClosed }

// Default write-buffer watermarks (high 64 KiB, low = high/4, hard limit
// 16 × high). The buffer never holds more than the hard limit, or the high
// watermark plus the one Write that crossed it.
const (
	DefaultHighWater = 64 << 10
	HardLimitFactor  = 16
)

// Timer is a pending AfterFunc callback.
type Timer interface {
	// Stop prevents the callback from running. It reports whether it was
	// stopped before it ran.
	Stop() bool
}

// Transport is one stream connection as a protocol sees it. All methods are
// safe for concurrent use.
type Transport interface {
	// Write queues b for sending, in order. An empty b is a no-op. b is not
	// retained after Write returns. Write never blocks on the network.
	// A Write made while the buffer is at or below its high watermark is
	// always accepted, whatever its size: the hard limit bounds what piles up
	// behind a producer that ignores OnPauseWriting, never one message. Past
	// the high watermark a Write that would take the buffer beyond the hard
	// limit returns ErrBufferFull (nothing of b queued). Write returns
	// ErrWriteAfterEOF after WriteEOF and ErrClosed after close or loss.
	Write(b []byte) error
	// Writev queues several buffers as one write: they are never interleaved
	// with another goroutine's write, and the hard-limit check covers them all.
	Writev(bufs ...[]byte) error
	// WriteEOF half-closes the sending side once the buffer has drained.
	// It is idempotent.
	WriteEOF() error
	// Close flushes the buffer, closes the connection, then OnClose(nil) runs.
	Close() error
	// Abort discards the buffer and closes at once.
	Abort()
	// PauseReading stops OnData deliveries until ResumeReading; both are
	// idempotent. While paused the kernel's receive window fills.
	PauseReading()
	ResumeReading()
	// SetWriteBufferLimits sets the watermarks. high < 0 or low < 0 mean
	// "default"; giving only low (high < 0) sets high = 4·low; giving only high
	// sets low = high/4. Anything but high >= low >= 0 is ErrBadLimits. The
	// hard limit becomes HardLimitFactor × high unless set by
	// SetWriteBufferHardLimit.
	SetWriteBufferLimits(high, low int) error
	// SetWriteBufferHardLimit sets the hard limit explicitly (n <= 0: default).
	SetWriteBufferHardLimit(n int)
	// BufferedAmount is the number of bytes queued and not yet sent.
	BufferedAmount() int
	// Drain waits until the buffered amount is at or below the low watermark,
	// the connection is lost (an error), or ctx ends (ctx.Err()).
	// It must not be called from a callback of the same connection.
	Drain(ctx context.Context) error
	// AfterFunc runs f after d, serialised with the connection's other
	// callbacks. It does not run after OnClose.
	AfterFunc(d time.Duration, f func()) Timer
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
}

// FileWriter is implemented by the stream transports of every engine: a
// region of a file queued like a Write, in order with the writes before and
// after it (Netty's FileRegion). On TCP and Unix stream sockets its bytes go
// from the page cache to the socket with sendfile(2), never through user
// space; over TLS, or where the system has no sendfile, they are read and
// written in chunks. Packet (SOCK_SEQPACKET) transports refuse it.
type FileWriter interface {
	// WriteFile queues n bytes of f from offset off (f's own offset is not
	// used, nor kept). From this call on the transport owns f: it closes f
	// once the region went out or the connection ended, whichever comes
	// first, also when WriteFile returns an error. The region counts as n
	// buffered bytes for BufferedAmount, the watermarks, the hard limit
	// and Drain, as a Write of n bytes would; nothing of it is held in
	// memory. done, if not nil, is called, serialised with the
	// connection's callbacks, once the region's last byte was handed to the
	// kernel, before f is closed; it is not called when the connection ends
	// first (OnClose is). A file that turns out shorter than off+n closes
	// the connection with ErrFileShort. n == 0 queues nothing but done.
	WriteFile(f *os.File, off, n int64, done func(f *os.File)) error
}

// Protocol receives the events of one stream connection. The order is
// OnOpen → OnData* → OnEOF? → OnClose, with OnPauseWriting/OnResumeWriting in
// between; OnClose is called exactly once. Callbacks of one connection never run
// concurrently.
type Protocol interface {
	// OnOpen is called once the connection is established.
	OnOpen(t Transport)
	// OnData delivers bytes read from the peer. data is only valid during the
	// call: copy what must outlive it.
	OnData(data []byte)
	// OnEOF is called when the peer half-closes. Returning false closes the
	// transport (flushing it); true keeps it half-open.
	OnEOF() (keepOpen bool)
	// OnClose is called exactly once: err is nil after a clean close and
	// the cause otherwise.
	OnClose(err error)
	// OnPauseWriting is called once when the buffered amount goes above high.
	OnPauseWriting()
	// OnResumeWriting is called once when it drains to low or below.
	OnResumeWriting()
}

// Base is a Protocol whose callbacks do nothing (OnEOF returns false). Embed it
// and override what you need.
type Base struct{}

func (Base) OnOpen(Transport) {}
func (Base) OnData([]byte)    {}
func (Base) OnEOF() bool      { return false }
func (Base) OnClose(error)    {}
func (Base) OnPauseWriting()  {}
func (Base) OnResumeWriting() {}

var _ Protocol = Base{}

// DatagramTransport is one datagram endpoint (UDP or Unix datagram socket) as a
// protocol sees it. All methods are safe for concurrent use.
type DatagramTransport interface {
	// WriteTo sends b as one datagram to addr (nil: the connected peer).
	// A zero-length datagram is legal.
	WriteTo(b []byte, addr net.Addr) error
	// Close closes the endpoint; OnClose(nil) follows.
	Close() error
	AfterFunc(d time.Duration, f func()) Timer
	LocalAddr() net.Addr
}

// DatagramProtocol receives the events of one datagram endpoint. Callbacks
// never run concurrently.
type DatagramProtocol interface {
	OnOpen(t DatagramTransport)
	// OnDatagram delivers one datagram; data is only valid during the call.
	OnDatagram(data []byte, addr net.Addr)
	// OnError reports a failed send or receive (an ICMP error, a datagram
	// larger than the read buffer); the endpoint stays up.
	OnError(err error)
	OnClose(err error)
}

// DatagramBase is a DatagramProtocol whose callbacks do nothing.
type DatagramBase struct{}

func (DatagramBase) OnOpen(DatagramTransport)    {}
func (DatagramBase) OnDatagram([]byte, net.Addr) {}
func (DatagramBase) OnError(error)               {}
func (DatagramBase) OnClose(error)               {}

var _ DatagramProtocol = DatagramBase{}

// Idler is implemented by protocols that can tell whether they are between
// messages. During a graceful shutdown an engine closes an idle connection at
// once and lets a busy one (a partial message received, a reply pending) finish
// until the shutdown deadline. Protocols without it are treated as idle
// whenever no callback is running and the write buffer is empty.
type Idler interface {
	Idle() bool
}

// ConnInfo describes a new connection to a protocol factory.
type ConnInfo struct {
	LocalAddr  net.Addr
	RemoteAddr net.Addr
	// Network is the endpoint scheme the connection arrived on ("tcp",
	// "unix", "tls", ...).
	Network string
}

// Factory makes the protocol of one new connection.
type Factory func(ConnInfo) Protocol
