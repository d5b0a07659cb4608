package service

import (
	"log/slog"
	"net"
	"time"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/internal/ratelog"
	"github.com/sockit/sockit/metrics"
	"github.com/sockit/sockit/proto"
)

// daytime is RFC 867 (seed 001's UDP server): a stream connection gets the
// time as one framed message (raw: the time + "\r\n") and is closed; input
// is ignored. A datagram gets the time back, no newline.
type daytime struct {
	format   string
	now      func() time.Time
	spec     frame.Spec
	greeting []byte
	log      *slog.Logger
	meter    *metrics.Meter
	fullBuf  ratelog.Limiter
}

func newDaytime(cfg Config) (*Service, error) {
	d := &daytime{
		format:   cfg.TimeFormat,
		now:      cfg.Now,
		spec:     cfg.Frame,
		greeting: cloneBytes(cfg.Greeting),
		log:      cfg.Logger,
		meter:    cfg.Meter,
	}
	if d.format == "" {
		d.format = DefaultTimeFormat
	}
	if d.now == nil {
		d.now = time.Now
	}
	return &Service{Stream: d.newStream, NewDatagram: d.newDatagram}, nil
}

func (d *daytime) newStream(info proto.ConnInfo) proto.Protocol {
	c := &daytimeConn{d: d, spec: d.spec}
	if info.Network == "unixpacket" {
		c.spec = frame.Spec{}
	}
	if d.meter != nil {
		c.meter = d.meter.Shard()
	}
	return c
}

func (d *daytime) newDatagram() proto.DatagramProtocol {
	p := &daytimeDatagram{d: d}
	if d.meter != nil {
		p.meter = d.meter.Shard()
	}
	return p
}

type daytimeConn struct {
	proto.Base
	d     *daytime
	spec  frame.Spec
	meter *metrics.Shard
}

var (
	_ proto.Protocol = (*daytimeConn)(nil)
	_ proto.Idler    = (*daytimeConn)(nil)
)

func (c *daytimeConn) OnOpen(t proto.Transport) {
	defer t.Close()
	if len(c.d.greeting) > 0 {
		if err := t.Write(c.d.greeting); err != nil {
			return
		}
		if c.meter != nil {
			c.meter.Sent(1, len(c.d.greeting))
		}
	}
	now := c.d.now().AppendFormat(make([]byte, 0, 64), c.d.format)
	var msg []byte
	if c.spec.Kind == frame.Raw {
		msg = append(now, '\r', '\n')
	} else {
		var err error
		if msg, err = c.spec.Append(nil, now); err != nil {
			logger(c.d.log).Warn("daytime reply cannot be framed, closing connection",
				"peer", addrString(t.RemoteAddr()), "frame", c.spec.String(), "err", err)
			return
		}
	}
	if err := t.Write(msg); err == nil && c.meter != nil {
		c.meter.Sent(1, len(now))
	}
}

// Idle is always true: daytime reads no messages.
func (c *daytimeConn) Idle() bool { return true }

type daytimeDatagram struct {
	proto.DatagramBase
	d     *daytime
	t     proto.DatagramTransport
	buf   []byte
	meter *metrics.Shard
}

func (p *daytimeDatagram) OnOpen(t proto.DatagramTransport) { p.t = t }

func (p *daytimeDatagram) OnDatagram(in []byte, addr net.Addr) {
	var start time.Duration
	if p.meter != nil { // the clock is read only when metered
		start = metrics.Clock()
	}
	p.buf = p.d.now().AppendFormat(p.buf[:0], p.d.format)
	out := len(p.buf)
	if err := p.t.WriteTo(p.buf, addr); err != nil {
		datagramReplyFailed(logger(p.d.log), &p.d.fullBuf, "daytime", addr, err)
		out = -1
	}
	if p.meter != nil {
		p.meter.Message(len(in), out, metrics.Clock()-start)
	}
}

func (p *daytimeDatagram) OnError(err error) {
	logger(p.d.log).Debug("datagram error", "service", "daytime", "err", err)
}
