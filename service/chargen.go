package service

import (
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/sockit/sockit/internal/ratelog"
	"github.com/sockit/sockit/metrics"
	"github.com/sockit/sockit/proto"
)

// chargen is RFC 864. The pattern is the RFC's: the 95 printable ASCII
// characters 32..126 as a ring; line N holds the 72 characters starting at
// character N mod 95, then "\r\n". So line 0 is " !\"#...efg", line 1
// "!\"#...fgh", and the pattern repeats every 95 lines.
//
// A stream connection gets the pattern from line 0 until the peer closes or
// resets (a half-close does not stop it); input and framing are ignored.
// It writes with back-pressure: chunks until OnPauseWriting, again on
// OnResumeWriting, and it yields between turns (AfterFunc) so the
// connection's other callbacks run.
//
// A datagram gets one 512-byte datagram: the first 512 bytes of the pattern,
// that is lines 0 to 5 and the first 68 characters of line 6 (every reply
// starts at line 0, as RFC 864 keeps no state between datagrams).
type chargen struct {
	period   []byte // the 95 lines of one period
	greeting []byte
	log      *slog.Logger
	meter    *metrics.Meter
	fullBuf  ratelog.Limiter
}

// Pattern sizes.
const (
	chargenLineLen     = 72
	chargenChars       = 95 // printable ASCII, 32..126
	chargenDatagramLen = 512
	// chargenTurn is how many bytes one turn writes at most before
	// yielding, when the transport does not pause earlier.
	chargenTurn = 256 << 10
	// chargenRetry is how long chargen waits when the hard limit refused a
	// chunk.
	chargenRetry = 10 * time.Millisecond
)

func newChargen(cfg Config) (*Service, error) {
	c := &chargen{period: chargenPattern(chargenChars), greeting: cloneBytes(cfg.Greeting), log: cfg.Logger, meter: cfg.Meter}
	return &Service{Stream: c.newStream, NewDatagram: c.newDatagram}, nil
}

// chargenPattern returns the first n lines of the pattern.
func chargenPattern(n int) []byte {
	b := make([]byte, 0, n*(chargenLineLen+2))
	for line := range n {
		for i := range chargenLineLen {
			b = append(b, byte(' '+(line+i)%chargenChars))
		}
		b = append(b, '\r', '\n')
	}
	return b
}

func (c *chargen) newStream(proto.ConnInfo) proto.Protocol {
	p := &chargenConn{c: c}
	p.turn = p.fill
	if c.meter != nil {
		p.meter = c.meter.Shard()
	}
	return p
}

func (c *chargen) newDatagram() proto.DatagramProtocol {
	d := &chargenDatagram{c: c}
	if c.meter != nil {
		d.meter = c.meter.Shard()
	}
	return d
}

// chargenConn streams the pattern on one connection.
type chargenConn struct {
	c         *chargen
	t         proto.Transport
	turn      func()
	paused    bool // between OnPauseWriting and OnResumeWriting
	done      bool // closed or a write failed
	scheduled bool // a turn is pending on AfterFunc
	meter     *metrics.Shard
}

var (
	_ proto.Protocol = (*chargenConn)(nil)
	_ proto.Idler    = (*chargenConn)(nil)
)

func (p *chargenConn) OnOpen(t proto.Transport) {
	p.t = t
	if len(p.c.greeting) > 0 {
		if err := t.Write(p.c.greeting); err != nil {
			p.done = true
			return
		}
		if p.meter != nil {
			p.meter.Sent(1, len(p.c.greeting))
		}
	}
	p.fill()
}

// fill writes whole periods until the transport pauses, a write fails, or
// one turn's worth was written; then it yields and continues on AfterFunc.
func (p *chargenConn) fill() {
	p.scheduled = false
	for written := 0; !p.paused && !p.done; written += len(p.c.period) {
		if written >= chargenTurn {
			p.scheduled = true
			p.t.AfterFunc(0, p.turn)
			return
		}
		if err := p.t.Write(p.c.period); err != nil {
			if errors.Is(err, proto.ErrBufferFull) {
				// Past the hard limit without a pause (limits set below
				// one chunk): try again later. A pause, if one comes,
				// stops the retry and OnResumeWriting continues.
				p.scheduled = true
				p.t.AfterFunc(chargenRetry, p.turn)
				return
			}
			p.done = true // closed, lost or half-closed
			return
		}
		if p.meter != nil {
			p.meter.Sent(chargenChars, len(p.c.period)) // a period is 95 lines
		}
	}
}

func (p *chargenConn) OnData([]byte) {}

// OnEOF keeps streaming: RFC 864 runs until the peer closes the connection.
func (p *chargenConn) OnEOF() bool { return !p.done }

func (p *chargenConn) OnClose(error) { p.done = true }

func (p *chargenConn) OnPauseWriting() {
	p.paused = true
	if p.meter != nil {
		p.meter.Pause()
	}
}

func (p *chargenConn) OnResumeWriting() {
	p.paused = false
	if !p.scheduled && !p.done {
		p.fill()
	}
}

// Idle is always true: chargen has no messages to finish, so a graceful
// shutdown closes it at once.
func (p *chargenConn) Idle() bool { return true }

type chargenDatagram struct {
	proto.DatagramBase
	c     *chargen
	t     proto.DatagramTransport
	meter *metrics.Shard
}

func (p *chargenDatagram) OnOpen(t proto.DatagramTransport) { p.t = t }

func (p *chargenDatagram) OnDatagram(in []byte, addr net.Addr) {
	var start time.Duration
	if p.meter != nil { // the clock is read only when metered
		start = metrics.Clock()
	}
	out := chargenDatagramLen
	if err := p.t.WriteTo(p.c.period[:chargenDatagramLen], addr); err != nil {
		datagramReplyFailed(logger(p.c.log), &p.c.fullBuf, "chargen", addr, err)
		out = -1
	}
	if p.meter != nil {
		p.meter.Message(len(in), out, metrics.Clock()-start)
	}
}

func (p *chargenDatagram) OnError(err error) {
	logger(p.c.log).Debug("datagram error", "service", "chargen", "err", err)
}
