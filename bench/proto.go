package bench

import (
	"errors"
	"net"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/proto"
)

// sendRounds bounds the writes of send mode in one callback before it yields
// the event loop to the other connections.
const sendRounds = 16

// streamProto is the client protocol of one connection on the epoll engine:
// it issues the next messages from OnData (ping-pong and pipeline, one
// coalesced write per wake-up), from OnResumeWriting (send) or from a timer
// (the schedule of a fixed rate).
type streamProto struct {
	r        *runner
	i        int
	ss       *session
	t        proto.Transport
	pumpFn   func() // p.pump, bound once
	err      error  // why we close, if we do
	paused   bool
	failures int
	sendEOF  bool // close framing: the message is out and half-closed
}

var _ proto.Protocol = (*streamProto)(nil)

// epollWorker dials connection i and hands it to the event loops.
func (r *runner) epollWorker(i int) {
	c, err := r.dial(i)
	ss := r.begin(i)
	if ss == nil {
		if c != nil {
			_ = c.Close()
		}
		return
	}
	r.epollServe(i, ss, c, err, 0)
}

// epollServe puts c (or, after err, a new connection) on the loops.
func (r *runner) epollServe(i int, ss *session, c net.Conn, err error, failures int) {
	for {
		if r.isStopped() {
			if c != nil {
				_ = c.Close()
			}
			return
		}
		if err == nil {
			p := &streamProto{r: r, i: i, ss: ss, failures: failures}
			p.pumpFn = p.pump
			if err = r.srv.ServeConn(c, func(proto.ConnInfo) proto.Protocol { return p }); err == nil {
				return
			}
		}
		if !r.failed(err, &failures) {
			return
		}
		c, err = r.dial(i)
	}
}

func (p *streamProto) OnOpen(t proto.Transport) {
	p.t = t
	p.r.r.conns.Add(1)
	sl := &p.r.slots[p.i]
	sl.mu.Lock()
	dead := sl.dead
	if !dead {
		sl.p = p
	}
	sl.mu.Unlock()
	if dead {
		t.Abort()
		return
	}
	s := p.r.s
	if s.Mode == Send {
		b := p.ss.batch * len(s.wire)
		_ = t.SetWriteBufferLimits(2*b, b/2)
	}
	if s.Frame.Kind == frame.Close {
		p.closeExchange()
		return
	}
	p.pump()
}

// closeExchange sends the one message of close framing and half-closes.
func (p *streamProto) closeExchange() {
	now := p.r.clk.now()
	if d := p.ss.wait(now); d > 0 {
		p.t.AfterFunc(d, p.closeExchange)
		return
	}
	var out []byte
	if p.r.s.Mode == Send {
		out, _ = p.ss.fillSend(now)
		p.r.r.recordN(&p.ss.tally, 1, len(p.r.s.wire))
	} else {
		out = p.ss.fill(now)
	}
	if err := p.t.Write(out); err != nil {
		p.fail(err)
		return
	}
	p.sendEOF = true
	if err := p.t.WriteEOF(); err != nil {
		p.fail(err)
	}
}

// pump writes what may be sent now and arms the timer of the next intended
// send when nothing is in flight.
func (p *streamProto) pump() { p.pumpAt(p.r.clk.now()) }

// pumpAt is pump at clock time now.
func (p *streamProto) pumpAt(now int64) {
	if p.err != nil || p.r.isStopped() {
		return
	}
	ss := p.ss
	if p.r.s.Mode == Send {
		p.pumpSend(now)
		return
	}
	if out := ss.fill(now); len(out) > 0 {
		if err := p.t.Write(out); err != nil {
			p.fail(err)
			return
		}
	}
	if ss.n == 0 {
		if d := ss.wait(now); d > 0 {
			p.t.AfterFunc(d, p.pumpFn)
		}
	}
}

func (p *streamProto) pumpSend(now int64) {
	wire := len(p.r.s.wire)
	for k := 0; k < sendRounds && !p.paused; k++ {
		out, n := p.ss.fillSend(now)
		if n == 0 {
			p.t.AfterFunc(p.ss.wait(now), p.pumpFn)
			return
		}
		if err := p.t.Write(out); err != nil {
			p.fail(err)
			return
		}
		p.r.r.recordN(&p.ss.tally, n, wire)
	}
	if !p.paused {
		p.t.AfterFunc(0, p.pumpFn) // yield to the loop's other connections
	}
}

func (p *streamProto) OnData(data []byte) {
	if p.err != nil {
		return
	}
	if p.r.s.Mode == Send {
		return // whatever a discard-like peer says
	}
	// One clock read: the echoes' arrival and the next messages' send time
	// (as in the goroutine engine's runner.pump).
	now := p.r.clk.now()
	if err := p.ss.received(data, now); err != nil {
		p.fail(err)
		return
	}
	p.failures = 0
	if p.r.s.Frame.Kind != frame.Close {
		p.pumpAt(now)
	}
}

func (p *streamProto) OnEOF() bool {
	if p.err != nil {
		return false
	}
	if p.r.s.Frame.Kind == frame.Close && p.r.s.Mode == Send && p.sendEOF {
		return false // the exchange is over
	}
	if err := p.ss.eof(p.r.clk.now()); err != nil || p.r.s.Frame.Kind != frame.Close {
		p.err = err
	}
	return false
}

func (p *streamProto) OnClose(err error) {
	r := p.r
	sl := &r.slots[p.i]
	sl.mu.Lock()
	if sl.p == p {
		sl.p = nil
	}
	sl.mu.Unlock()
	r.r.conns.Add(-1)
	if r.isStopped() {
		return
	}
	cause := p.err
	if sl.timeout.Swap(false) {
		cause = errTimedOut
	} else if cause == nil {
		cause = err
	}
	p.ss.reset()
	failures := p.failures
	if cause != nil {
		r.r.fail(cause)
		failures++
	}
	r.spawn(func() {
		if failures > 0 && !r.sleep(backoff(failures)) {
			return
		}
		c, err := r.dial(p.i)
		r.epollServe(p.i, p.ss, c, err, failures)
	})
}

func (p *streamProto) OnPauseWriting() { p.paused = true }

func (p *streamProto) OnResumeWriting() {
	p.paused = false
	if p.r.s.Mode == Send && p.r.s.Frame.Kind != frame.Close {
		p.pump()
	}
}

// fail closes the connection for err (counted in OnClose).
func (p *streamProto) fail(err error) {
	if errors.Is(err, proto.ErrClosed) {
		// The connection is lost: OnClose brings the cause.
		p.t.Abort()
		return
	}
	if p.err == nil {
		p.err = err
	}
	p.t.Abort()
}

// abort is the watchdog's: safe from any goroutine.
func (p *streamProto) abort() { p.t.Abort() }
