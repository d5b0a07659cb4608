package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/sockit/sockit/proto"
)

// connectWorker opens and closes connections in a loop (connect mode); each
// completed connect is a message whose latency is the connect time (from its
// intended time with a rate). It uses goroutines on either engine: the cost
// measured is the connect itself.
func (r *runner) connectWorker(i int) {
	ss := r.begin(i)
	if ss == nil {
		return
	}
	failures := 0
	for !r.isStopped() {
		now := r.clk.now()
		t0 := now
		if ss.interval > 0 {
			if d := ss.wait(now); d > 0 && !r.sleep(d) {
				return
			}
			t0 = ss.next
			ss.next += ss.interval
		}
		c, err := r.dial(i)
		if err != nil {
			if !r.failed(err, &failures) {
				return
			}
			continue
		}
		failures = 0
		r.r.record(ss.sh, &ss.tally, r.clk.now()-t0, 0)
		_ = c.Close()
	}
}

// idleWorker opens connection i and holds it without sending (idle mode).
// A connection the peer closes is counted and replaced.
func (r *runner) idleWorker(i int) {
	c, err := r.dial(i)
	if r.begin(i) == nil {
		if c != nil {
			_ = c.Close()
		}
		return
	}
	failures := 0
	for {
		if err != nil {
			if !r.failed(err, &failures) {
				return
			}
			c, err = r.dial(i)
			continue
		}
		if r.srv != nil {
			p := &idleProto{r: r, i: i}
			if err = r.srv.ServeConn(c, func(proto.ConnInfo) proto.Protocol { return p }); err == nil {
				return // the loops hold it; OnClose replaces it
			}
			continue
		}
		if !r.setConn(i, c) {
			return
		}
		r.r.conns.Add(1)
		var b [64]byte
		_, err = c.Read(b[:])
		if err == nil {
			err = fmt.Errorf("%w: the peer sent bytes to an idle connection", errMismatch)
		}
		r.r.conns.Add(-1)
		r.clearConn(i)
		_ = c.Close()
		if r.isStopped() {
			return
		}
		if isEOF(err) {
			err = errPeerClosed
		}
		c = nil
	}
}

// idleProto holds a connection on the epoll engine.
type idleProto struct {
	proto.Base
	r   *runner
	i   int
	err error
}

func (p *idleProto) OnOpen(t proto.Transport) {
	p.r.r.conns.Add(1)
	if p.r.isStopped() {
		t.Abort()
	}
}

func (p *idleProto) OnData([]byte) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: the peer sent bytes to an idle connection", errMismatch)
	}
}

func (p *idleProto) OnEOF() bool {
	if p.err == nil {
		p.err = errPeerClosed
	}
	return false
}

func (p *idleProto) OnClose(err error) {
	r := p.r
	r.r.conns.Add(-1)
	if r.isStopped() {
		return
	}
	if p.err != nil {
		err = p.err
	}
	if err == nil {
		err = errPeerClosed
	}
	r.r.fail(err)
	r.spawn(func() {
		if !r.sleep(backoff(1)) {
			return
		}
		c, err := r.dial(p.i)
		for err != nil && !r.isStopped() {
			r.r.fail(err)
			if !r.sleep(backoff(2)) {
				return
			}
			c, err = r.dial(p.i)
		}
		if err != nil {
			return
		}
		np := &idleProto{r: r, i: p.i}
		_ = r.srv.ServeConn(c, func(proto.ConnInfo) proto.Protocol { return np })
	})
}

// udpWorker opens datagram socket i and runs the UDP exchange on it as a
// datagram protocol of the run's server (either engine).
func (r *runner) udpWorker(i int) {
	c, err := r.dial(i)
	ss := r.begin(i)
	if ss == nil {
		if c != nil {
			_ = c.Close()
		}
		return
	}
	for err != nil {
		if r.isStopped() {
			return
		}
		r.r.fail(err)
		if !r.sleep(backoff(3)) {
			return
		}
		c, err = r.dial(i)
	}
	pc, ok := c.(net.PacketConn)
	if !ok {
		_ = c.Close()
		r.r.fail(fmt.Errorf("a %T is not a datagram socket", c))
		return
	}
	_ = r.srv.ServePacket(pc, newUDPProto(r, ss))
}

// udpProto keeps Depth datagrams in flight on one socket. With 8 bytes or
// more a datagram carries its sequence number in its first 8 bytes, so a
// late or reordered echo is matched to its send; an echo that has not come
// within the timeout is counted lost and its slot reused.
type udpProto struct {
	r       *runner
	ss      *session
	t       proto.DatagramTransport
	buf     []byte // the datagram being sent
	slots   []udpSlot
	seq     uint64 // next to send
	oldest  uint64 // oldest possibly in flight
	n       int
	withSeq bool
	lossNs  int64
	sendFn  func()
	checkFn func()
}

type udpSlot struct {
	seq  uint64
	t    int64
	used bool
}

var _ proto.DatagramProtocol = (*udpProto)(nil)

func newUDPProto(r *runner, ss *session) *udpProto {
	p := &udpProto{
		r: r, ss: ss, buf: bytes.Clone(r.s.msg),
		slots: make([]udpSlot, r.s.Depth), withSeq: len(r.s.msg) >= 8,
		lossNs: int64(r.s.Timeout),
	}
	p.sendFn, p.checkFn = p.send, p.check
	return p
}

func (p *udpProto) OnOpen(t proto.DatagramTransport) {
	p.t = t
	p.r.r.conns.Add(1)
	p.send()
	if p.r.s.Mode != Send {
		t.AfterFunc(p.checkEvery(), p.checkFn)
	}
}

func (p *udpProto) checkEvery() time.Duration {
	return min(max(time.Duration(p.lossNs)/4, 10*time.Millisecond), 250*time.Millisecond)
}

// send sends what may be sent now.
func (p *udpProto) send() {
	r := p.r
	if r.isStopped() {
		return
	}
	now := r.clk.now()
	if r.s.Mode == Send {
		for k := 0; k < 64; k++ {
			if p.ss.interval > 0 {
				if p.ss.next > now {
					p.t.AfterFunc(p.ss.wait(now), p.sendFn)
					return
				}
				p.ss.next += p.ss.interval
			}
			if err := p.t.WriteTo(p.buf, nil); err != nil {
				r.r.fail(err)
			} else {
				r.r.recordN(&p.ss.tally, 1, len(p.buf))
			}
		}
		p.t.AfterFunc(0, p.sendFn)
		return
	}
	depth := uint64(len(p.slots))
	for p.n < len(p.slots) {
		sl := &p.slots[p.seq%depth]
		if sl.used {
			break // waits for its echo or its loss
		}
		t := now
		if p.ss.interval > 0 {
			if p.ss.next > now {
				break
			}
			t = p.ss.next
			p.ss.next += p.ss.interval
		}
		if p.withSeq {
			binary.BigEndian.PutUint64(p.buf, p.seq)
		}
		*sl = udpSlot{seq: p.seq, t: t, used: true}
		p.seq++
		p.n++
		if r.r.measuring() {
			r.r.sent.Add(1)
		}
		if err := p.t.WriteTo(p.buf, nil); err != nil {
			r.r.fail(err)
		}
	}
	if p.n == 0 && p.ss.interval > 0 {
		p.t.AfterFunc(p.ss.wait(now), p.sendFn)
	}
}

func (p *udpProto) OnDatagram(data []byte, _ net.Addr) {
	r := p.r
	if r.s.Mode == Send {
		return
	}
	now := r.clk.now()
	depth := uint64(len(p.slots))
	var seq uint64
	if p.withSeq {
		if len(data) < 8 {
			r.r.fail(fmt.Errorf("%w: a %d-byte datagram", errMismatch, len(data)))
			return
		}
		seq = binary.BigEndian.Uint64(data)
	} else {
		for p.oldest < p.seq && !p.slots[p.oldest%depth].used {
			p.oldest++
		}
		seq = p.oldest
	}
	sl := &p.slots[seq%depth]
	if !sl.used || sl.seq != seq {
		return // the echo of a datagram already counted lost
	}
	sl.used = false
	p.n--
	if r.s.Verify && (len(data) != len(r.s.msg) || p.withSeq && !bytes.Equal(data[8:], r.s.msg[8:]) ||
		!p.withSeq && !bytes.Equal(data, r.s.msg)) {
		r.r.fail(fmt.Errorf("%w (a %d-byte datagram for a %d-byte message)", errMismatch, len(data), len(r.s.msg)))
	} else {
		r.r.record(p.ss.sh, &p.ss.tally, now-sl.t, len(data))
	}
	p.send()
}

// check counts the datagrams overdue as lost and sends in their place.
func (p *udpProto) check() {
	r := p.r
	if r.isStopped() {
		return
	}
	now := r.clk.now()
	for i := range p.slots {
		sl := &p.slots[i]
		if sl.used && now-sl.t > p.lossNs {
			sl.used = false
			p.n--
			if r.r.measuring() {
				r.r.lost.Add(1)
			}
			r.r.failKind(KindLost, errTimedOut)
		}
	}
	p.send()
	p.t.AfterFunc(p.checkEvery(), p.checkFn)
}

func (p *udpProto) OnError(err error) { p.r.r.fail(err) }

func (p *udpProto) OnClose(error) { p.r.r.conns.Add(-1) }
