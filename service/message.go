package service

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/internal/ratelog"
	"github.com/sockit/sockit/metrics"
	"github.com/sockit/sockit/proto"
)

// Action says what a message protocol does after a MessageFunc answered.
type Action uint8

// Actions.
const (
	// Reply sends the reply and carries on.
	Reply Action = iota
	// NoReply sends nothing and carries on.
	NoReply
	// ReplyAndClose sends the reply, then closes the stream connection
	// (flushing it). On a datagram endpoint it is Reply.
	ReplyAndClose
	// Hangup closes the stream connection without replying. On a datagram
	// endpoint it is NoReply.
	Hangup
)

// MessageFunc answers one message: it appends the reply to out (empty, with
// capacity reused from earlier replies), returns the extended slice and says
// what to do with it. msg is only valid during the call. The returned slice's
// memory is reused for later replies, of any connection: return out extended
// with append, never msg or memory the func keeps. A MessageFunc must be safe
// for concurrent use: it is called from every connection's callbacks.
type MessageFunc func(out, msg []byte) (reply []byte, action Action)

// MessageConfig configures a message protocol: socketserver's handler on a
// framing. The zero value except OnMessage is valid: raw framing, the default
// max frame, no greeting.
type MessageConfig struct {
	// Name names the service in logs ("" means "message").
	Name string
	// Frame is the stream framing; the zero value is raw. Datagrams and
	// unixpacket connections ignore it: a packet is a message and a reply is
	// one packet, unframed.
	Frame frame.Spec
	// MaxFrame bounds a message; <= 0 means frame.DefaultMaxFrame. A longer
	// one gets frame.Spec.AppendError, is logged, and the connection closes.
	MaxFrame int
	// Greeting is written on every new stream connection before anything
	// else; nil or empty means none.
	Greeting []byte
	// FrameGreeting frames Greeting as one message with the connection's
	// framing; false sends it exactly as given.
	FrameGreeting bool
	// OnMessage answers each message. Required.
	OnMessage MessageFunc
	// OnDatagram answers each datagram; nil means OnMessage.
	OnDatagram MessageFunc
	// Text applies the text rule of raw framing (and of datagrams and
	// unixpacket): a message's trailing "\n" or "\r\n" is set aside before
	// OnMessage sees it and appended to its reply.
	Text bool
	// Logger receives framing errors (Warn, with the peer address); nil
	// means slog.Default() at the time of logging.
	Logger *slog.Logger
	// Meter, if not nil, counts every message, its bytes, the time its
	// handling took and write-buffer pauses (for --metrics).
	Meter *metrics.Meter
}

// MessageHandler runs a MessageFunc on stream connections (NewProtocol, a
// proto.Factory) and datagram endpoints (NewDatagram). It is safe for
// concurrent use; each protocol it makes belongs to one connection.
type MessageHandler struct {
	name     string
	fn       MessageFunc
	dgram    MessageFunc
	text     bool
	log      *slog.Logger
	stream   messageMode // cfg.Frame
	packet   messageMode // unixpacket: raw
	maxFrame int
	meter    *metrics.Meter
	bigReply ratelog.Limiter // datagram replies too large to send
	fullBuf  ratelog.Limiter // datagram replies dropped for a full send buffer
}

// messageMode is what a connection needs of its framing, computed once.
type messageMode struct {
	spec     frame.Spec
	greeting []byte
	greetLen int    // the greeting's bytes without framing (for the meter)
	errMsg   []byte // the framed "ERR frame too long"
	text     bool   // the text rule applies (raw framing and Text)
}

// ErrNoMessageFunc is returned by NewMessageHandler without OnMessage.
var ErrNoMessageFunc = errors.New("sockit: message handler needs OnMessage")

// ErrFixedOverMax is returned for a fixed:N framing with N above the
// handler's MaxFrame: a connection would buffer N bytes before its first
// message, so a peer could make the server hold more than MaxFrame.
var ErrFixedOverMax = errors.New("sockit: fixed frame size is above the maximum frame size")

// NewMessageHandler checks cfg and returns its handler. A framing no
// decoder can run is a *frame.SpecError (errors.Is frame.ErrBadSpec).
func NewMessageHandler(cfg MessageConfig) (*MessageHandler, error) {
	if cfg.OnMessage == nil {
		return nil, ErrNoMessageFunc
	}
	if err := cfg.Frame.Validate(); err != nil {
		return nil, err
	}
	h := &MessageHandler{
		name:     cfg.Name,
		fn:       cfg.OnMessage,
		dgram:    cfg.OnDatagram,
		text:     cfg.Text,
		log:      cfg.Logger,
		maxFrame: cfg.MaxFrame,
		meter:    cfg.Meter,
	}
	if h.name == "" {
		h.name = "message"
	}
	if h.dgram == nil {
		h.dgram = h.fn
	}
	if h.maxFrame <= 0 {
		h.maxFrame = frame.DefaultMaxFrame
	}
	if cfg.Frame.Kind == frame.Fixed && cfg.Frame.N > h.maxFrame {
		return nil, fmt.Errorf("%w: %s against %d bytes (raise the maximum frame size to %d or more)",
			ErrFixedOverMax, cfg.Frame, h.maxFrame, cfg.Frame.N)
	}
	var err error
	if h.stream, err = newMode(cfg, cfg.Frame); err != nil {
		return nil, err
	}
	if h.packet, err = newMode(cfg, frame.Spec{}); err != nil {
		return nil, err
	}
	return h, nil
}

func newMode(cfg MessageConfig, spec frame.Spec) (messageMode, error) {
	m := messageMode{
		spec:   spec,
		errMsg: spec.AppendError(nil),
		text:   cfg.Text && spec.Kind == frame.Raw,
	}
	m.greeting = cloneBytes(cfg.Greeting)
	m.greetLen = len(cfg.Greeting)
	if cfg.FrameGreeting && len(cfg.Greeting) > 0 {
		g, err := spec.Append(nil, cfg.Greeting)
		if err != nil {
			return m, fmt.Errorf("greeting with framing %s: %w", spec, err)
		}
		m.greeting = g
	}
	return m, nil
}

func (h *MessageHandler) logger() *slog.Logger {
	if h.log != nil {
		return h.log
	}
	return slog.Default()
}

// NewProtocol makes the protocol of one stream connection; it is a
// proto.Factory. A unixpacket connection gets raw framing: each packet is
// one message and each reply one packet.
func (h *MessageHandler) NewProtocol(info proto.ConnInfo) proto.Protocol {
	mode := &h.stream
	if info.Network == "unixpacket" {
		mode = &h.packet
	}
	c := &messageConn{h: h, mode: mode}
	if h.meter != nil {
		c.meter = h.meter.Shard()
	}
	return c
}

// NewDatagram makes the protocol of one datagram endpoint: each datagram is
// a message and its reply a datagram to the sender.
func (h *MessageHandler) NewDatagram() proto.DatagramProtocol {
	d := &messageDatagram{h: h}
	if h.meter != nil {
		d.meter = h.meter.Shard()
	}
	return d
}

// keepCap is the largest reply buffer kept for reuse (replyBufs), so that
// one large message does not pin its memory.
const keepCap = 64 << 10

// errStop stops a Feed after the connection was closed.
var errStop = errors.New("stop")

// messageConn is the protocol of one stream connection.
type messageConn struct {
	h    *MessageHandler
	mode *messageMode
	t    proto.Transport
	dec  *frame.Decoder // made at the first input; never for raw framing
	done bool           // closed or closing: no more messages
	// meter counts messages when --metrics is on (nil otherwise), a read
	// at a time: mb gathers what one OnData or OnEOF handled.
	meter *metrics.Shard
	mb    meterBatch
}

// meterBatch is what one read's messages did, counted into the meter at
// the read's end.
type meterBatch struct{ in, inBytes, out, outBytes int }

var (
	_ proto.Protocol = (*messageConn)(nil)
	_ proto.Idler    = (*messageConn)(nil)
)

func (c *messageConn) OnOpen(t proto.Transport) {
	c.t = t
	if len(c.mode.greeting) > 0 {
		if err := t.Write(c.mode.greeting); err != nil {
			c.stop()
		} else if c.meter != nil {
			c.meter.Sent(1, c.mode.greetLen)
		}
	}
}

// A connection holds no decoder until its first input, and none at all with
// raw framing (each chunk is a message: there is no state to keep), so an
// idle connection costs only the messageConn.
func (c *messageConn) OnData(data []byte) {
	if c.done {
		return
	}
	if c.meter != nil {
		defer c.flushMeter(metrics.Clock())
	}
	var err error
	if c.mode.spec.Kind == frame.Raw {
		err = frame.Chunks(data, c.h.maxFrame, c.onMessage)
	} else {
		err = c.decoder().Feed(data, c.onMessage)
	}
	if err != nil && err != errStop {
		c.fail(err)
	}
}

// decoder returns the connection's decoder, made at the first call.
func (c *messageConn) decoder() *frame.Decoder {
	if c.dec == nil {
		c.dec = frame.NewDecoder(c.mode.spec, c.h.maxFrame)
	}
	return c.dec
}

func (c *messageConn) OnEOF() bool {
	if c.done {
		return false
	}
	if c.meter != nil {
		defer c.flushMeter(metrics.Clock())
	}
	if c.mode.spec.Kind == frame.Raw { // raw framing keeps nothing to flush
		c.stop()
		return false
	}
	if err := c.decoder().EOF(c.onMessage); err != nil && err != errStop {
		if errors.Is(err, frame.ErrTruncated) {
			c.h.logger().Warn("partial frame dropped at EOF",
				"service", c.h.name, "peer", addrString(c.t.RemoteAddr()),
				"frame", c.mode.spec.String(), "err", err)
		} else {
			c.fail(err)
		}
	}
	c.stop()
	return false
}

func (c *messageConn) OnClose(error) {
	c.stop()
}

// OnPauseWriting stops reading while the peer does not take the replies
// (asyncio's flow control): the write buffer stays bounded.
func (c *messageConn) OnPauseWriting() {
	if c.meter != nil {
		c.meter.Pause()
	}
	if c.t != nil {
		c.t.PauseReading()
	}
}

func (c *messageConn) OnResumeWriting() {
	if c.t != nil && !c.done {
		c.t.ResumeReading()
	}
}

// Idle reports whether no partial message is buffered.
func (c *messageConn) Idle() bool {
	return c.done || c.dec == nil || c.dec.Buffered() == 0 // raw: never a decoder
}

// stop ends message handling: later input is ignored and the decoder's
// memory is released.
func (c *messageConn) stop() {
	c.done = true
	c.dec = nil
}

// fail handles a framing error: ERR frame too long for text framings, a log
// line, and a close.
func (c *messageConn) fail(err error) {
	c.stop()
	if errors.Is(err, frame.ErrTooLong) && len(c.mode.errMsg) > 0 {
		_ = c.t.Write(c.mode.errMsg)
	}
	msg := "framing error, closing connection"
	if errors.Is(err, frame.ErrTooLong) {
		msg = "message too long, closing connection"
	}
	c.h.logger().Warn(msg,
		"service", c.h.name, "peer", addrString(c.t.RemoteAddr()),
		"frame", c.mode.spec.String(), "max_frame", c.h.maxFrame, "err", err)
	_ = c.t.Close()
}

// replyBuf is where a reply is built and framed; connections take one from
// replyBufs for each message and give it back, so that a connection holds
// no reply memory between messages.
type replyBuf struct {
	out    []byte // the reply being built
	framed []byte // out framed, for framings that add a header
}

var replyBufs = sync.Pool{New: func() any { return new(replyBuf) }}

// keep gives b back, retaining its buffers unless they grew large. A reply
// in msg's memory (a MessageFunc that returned msg, against its contract) is
// not kept: the pool would hand the connection's read buffer to others.
func (b *replyBuf) keep(out, msg []byte) {
	b.out = reusable(out, msg)
	if cap(b.framed) > keepCap {
		b.framed = nil
	}
	replyBufs.Put(b)
}

// reusable is out emptied for the next reply, or nil when it grew large or
// lives in msg's memory (a MessageFunc that returned msg, against its
// contract: the next message is read into that memory).
func reusable(out, msg []byte) []byte {
	if cap(out) > keepCap || overlaps(out, msg) {
		return nil
	}
	return out[:0]
}

// overlaps reports whether out's capacity and msg share memory.
func overlaps(out, msg []byte) bool {
	if cap(out) == 0 || len(msg) == 0 {
		return false
	}
	o := uintptr(unsafe.Pointer(unsafe.SliceData(out)))
	m := uintptr(unsafe.Pointer(unsafe.SliceData(msg)))
	return o < m+uintptr(len(msg)) && m < o+uintptr(cap(out))
}

// onMessage answers one message with one Write, counted when metered.
func (c *messageConn) onMessage(msg []byte) error {
	handled := !c.done // after a stop, messages are ignored, not counted
	out, err := c.answer(msg)
	if c.meter != nil && handled {
		c.mb.in++
		c.mb.inBytes += len(msg)
		if out >= 0 {
			c.mb.out++
			c.mb.outBytes += out
		}
	}
	return err
}

// flushMeter counts the read that began at start (a metrics.Clock reading).
func (c *messageConn) flushMeter(start time.Duration) {
	b := c.mb
	c.mb = meterBatch{}
	c.meter.Batch(b.in, b.inBytes, b.out, b.outBytes, metrics.Clock()-start)
}

// answer answers one message and reports the reply's length (-1 for
// none).
func (c *messageConn) answer(msg []byte) (int, error) {
	if c.done {
		return -1, errStop
	}
	var suffix []byte
	if c.mode.text {
		msg, suffix = splitLineEnd(msg)
	}
	buf := replyBufs.Get().(*replyBuf)
	reply, act := c.h.fn(buf.out[:0], msg)
	switch act {
	case NoReply:
		buf.keep(reply, msg)
		return -1, nil
	case Hangup:
		buf.keep(reply, msg)
		c.stop()
		_ = c.t.Close()
		return -1, errStop
	}
	reply = append(reply, suffix...)
	wire := reply
	switch c.mode.spec.Kind {
	case frame.Raw, frame.Fixed, frame.Close:
		// Written as they are.
	default:
		framed, err := c.mode.spec.Append(buf.framed[:0], reply)
		if err != nil {
			buf.keep(reply, msg)
			c.stop()
			c.h.logger().Warn("reply cannot be framed, closing connection",
				"service", c.h.name, "peer", addrString(c.t.RemoteAddr()),
				"frame", c.mode.spec.String(), "reply_len", len(reply), "err", err)
			_ = c.t.Close()
			return -1, errStop
		}
		wire = framed
		buf.framed = framed[:0]
	}
	err := c.t.Write(wire) // the transport copies what it must keep
	n := len(reply)
	buf.keep(reply, msg)
	if err != nil {
		c.stop()
		if errors.Is(err, proto.ErrBufferFull) {
			// The buffer was past its high watermark and this reply would
			// take it past the hard limit: the peer has stopped reading.
			c.h.logger().Warn("peer does not read its replies: write buffer full, aborting connection",
				"service", c.h.name, "peer", addrString(c.t.RemoteAddr()),
				"buffered", c.t.BufferedAmount(), "reply_len", len(wire), "err", err)
			c.t.Abort()
		}
		return -1, errStop
	}
	if act == ReplyAndClose {
		c.stop()
		_ = c.t.Close()
		return n, errStop
	}
	return n, nil
}

// messageDatagram is the protocol of one datagram endpoint.
type messageDatagram struct {
	h     *MessageHandler
	t     proto.DatagramTransport
	out   []byte
	meter *metrics.Shard // nil unless metered
}

var _ proto.DatagramProtocol = (*messageDatagram)(nil)

func (d *messageDatagram) OnOpen(t proto.DatagramTransport) { d.t = t }

func (d *messageDatagram) OnDatagram(data []byte, addr net.Addr) {
	if d.meter == nil {
		d.answer(data, addr)
		return
	}
	start := metrics.Clock()
	out := d.answer(data, addr)
	d.meter.Message(len(data), out, metrics.Clock()-start)
}

// answer answers one datagram and reports the reply's length (-1 for
// none sent).
func (d *messageDatagram) answer(data []byte, addr net.Addr) int {
	var suffix []byte
	msg := data
	if d.h.text {
		msg, suffix = splitLineEnd(msg)
	}
	reply, act := d.h.dgram(d.out[:0], msg)
	if act == NoReply || act == Hangup {
		d.out = reusable(reply, msg)
		return -1
	}
	reply = append(reply, suffix...)
	n := len(reply)
	if err := d.t.WriteTo(reply, addr); err != nil {
		n = -1
		if errors.Is(err, syscall.EMSGSIZE) {
			// The request fitted one datagram, its reply does not: the
			// client waits for nothing, so say so, once a second at most.
			d.h.bigReply.Warn(d.h.logger(), "datagram reply too large for one datagram, dropped",
				"service", d.h.name, "peer", addrString(addr), "reply_len", len(reply), "err", err)
		} else {
			datagramReplyFailed(d.h.logger(), &d.h.fullBuf, d.h.name, addr, err)
		}
	}
	d.out = reusable(reply, msg)
	return n
}

// datagramReplyFailed logs a datagram reply that was not sent: dropped for a
// full send buffer (on a Unix datagram socket, a peer that does not read its
// replies holds the server's send buffer until it reads or closes) at warn,
// once a second at most; anything else (an ICMP "port unreachable" from a
// peer gone) at debug.
func datagramReplyFailed(l *slog.Logger, full *ratelog.Limiter, service string, addr net.Addr, err error) {
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.ENOBUFS) {
		full.Warn(l, "datagram reply dropped: the send buffer is full",
			"service", service, "peer", addrString(addr), "err", err)
		return
	}
	l.Debug("datagram reply failed", "service", service, "peer", addrString(addr), "err", err)
}

func (d *messageDatagram) OnError(err error) {
	if errors.Is(err, syscall.EMSGSIZE) { // a reply sent later, in a batch
		d.h.bigReply.Warn(d.h.logger(), "datagram reply too large for one datagram, dropped",
			"service", d.h.name, "err", err)
		return
	}
	d.h.logger().Debug("datagram error", "service", d.h.name, "err", err)
}

func (d *messageDatagram) OnClose(error) { d.out = nil }

// splitLineEnd sets aside a trailing "\r\n" or "\n".
func splitLineEnd(msg []byte) (body, end []byte) {
	n := len(msg)
	switch {
	case n >= 2 && msg[n-2] == '\r' && msg[n-1] == '\n':
		return msg[:n-2], msg[n-2:]
	case n >= 1 && msg[n-1] == '\n':
		return msg[:n-1], msg[n-1:]
	}
	return msg, nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
