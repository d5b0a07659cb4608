package bench

import (
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/sockit/sockit/frame"
)

// readSize is the read buffer of one connection: room for every echo in
// flight (an echo peer cannot send more), at most 256 KiB. Larger would only
// spread a thousand connections' reads over more memory (a 4 KiB buffer is
// a page of its own per connection, where a 64-byte echo needs one line).
func readSize(s *settings) int {
	return min(max(64, s.Depth*len(s.wire)), 256<<10)
}

// begin marks connection i's first connect attempt done and waits for the
// load to start; it returns connection i's session, or nil when the run
// stopped first.
func (r *runner) begin(i int) *session {
	r.ready.Done()
	select {
	case <-r.started:
	case <-r.stopCh:
		return nil
	}
	ss := newSession(r.s, r.r, r.r.shard(i), r.clk, i, r.startNs)
	sl := &r.slots[i]
	sl.mu.Lock()
	sl.ss = ss
	sl.mu.Unlock()
	return ss
}

// streamWorker drives connection i on its own goroutine (goroutine engine),
// replacing it whenever it fails.
func (r *runner) streamWorker(i int) {
	var ss *session
	buf := make([]byte, readSize(r.s))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	failures := 0
	for {
		c, err := r.dial(i)
		if ss == nil {
			if ss = r.begin(i); ss == nil {
				if c != nil {
					_ = c.Close()
				}
				return
			}
		}
		if err != nil {
			if !r.failed(err, &failures) {
				return
			}
			continue
		}
		if !r.setConn(i, c) {
			return
		}
		r.r.conns.Add(1)
		if r.s.Frame.Kind == frame.Close {
			err = r.exchangeOnce(ss, c, buf)
		} else if r.s.Mode == Send {
			err = r.pumpSend(ss, c, timer)
		} else {
			err = r.pump(ss, fastStream(c), buf, timer, &r.slots[i])
		}
		r.r.conns.Add(-1)
		r.clearConn(i)
		_ = c.Close()
		if r.isStopped() {
			return
		}
		timedOut := r.slots[i].timeout.Swap(false)
		ss.reset()
		if err == nil {
			failures = 0
			continue // close framing: one message per connection
		}
		if timedOut {
			err = errTimedOut
		}
		r.r.fail(err)
		failures++
		if !r.sleep(backoff(failures)) {
			return
		}
	}
}

// waitFor sleeps d on a reused timer unless the run stops; it reports
// whether d passed.
func (r *runner) waitFor(t *time.Timer, d time.Duration) bool {
	if d <= 0 {
		return !r.isStopped()
	}
	t.Reset(d)
	select {
	case <-t.C:
		return true
	case <-r.stopCh:
		if !t.Stop() {
			<-t.C
		}
		return false
	}
}

// pump runs the echo and pipeline exchange on c until an error or the end
// of the run (nil).
//
// One clock read per round: the time a read returned stamps its echoes and
// is also the send time of the messages written next (the echoes are taken
// in between, well under a microsecond, so a latency may be over-stated by
// that much, never under-stated).
func (r *runner) pump(ss *session, c net.Conn, buf []byte, timer *time.Timer, sl *slot) error {
	x, _ := c.(exchanger)
	if x != nil {
		sl.probeable.Store(true)
		defer func() {
			// Under the lock the watchdog probes with: a probe decided
			// just before this cannot land after it and outlive c.
			sl.mu.Lock()
			sl.probeable.Store(false)
			sl.probe.Store(false)
			sl.mu.Unlock()
		}()
	}
	now := r.clk.now()
	for !r.isStopped() {
		var n int
		var err error
		if out := ss.fill(now); x != nil && len(out) > 0 && ss.awaitsOnly(len(out)) {
			n, err = x.exchange(out, buf)
		} else {
			if len(out) > 0 {
				if _, err := c.Write(out); err != nil {
					return err
				}
			}
			if ss.n == 0 {
				if !r.waitFor(timer, ss.wait(now)) {
					return nil
				}
				now = r.clk.now()
				continue
			}
			n, err = c.Read(buf)
		}
		if err != nil && x != nil && sl.probe.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
			if n, err = r.probed(sl, x, buf); n == 0 && err == nil {
				now = r.clk.now()
				continue // nothing missed: wait on
			}
		}
		now = r.clk.now()
		if n > 0 {
			if e := ss.received(buf[:n], now); e != nil {
				return e
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return ss.eof(now)
			}
			return err
		}
	}
	return nil
}

// exchanger is a stream that writes messages and waits for their answers
// in one step (rawStream.exchange), and can look for what such a wait may
// have missed (poll).
type exchanger interface {
	exchange(out, p []byte) (int, error)
	poll(p []byte) (int, error)
}

// probed handles the watchdog's probe, a past read deadline that woke the
// connection's goroutine (or, when a timeout came with it, ended its wait):
// it reads what is there without waiting (an echo, the peer's FIN as
// io.EOF, or nothing) and takes the deadline back unless the watchdog has
// since declared the connection timed out.
func (r *runner) probed(sl *slot, x exchanger, buf []byte) (int, error) {
	n, err := x.poll(buf)
	sl.mu.Lock()
	if !sl.timeout.Load() && sl.c != nil {
		_ = sl.c.SetReadDeadline(time.Time{})
	}
	sl.probe.Store(false)
	sl.mu.Unlock()
	return n, err
}

// pumpSend writes messages one way, coalesced into writes of about 64 KiB
// (one message per write at a fixed rate).
func (r *runner) pumpSend(ss *session, c net.Conn, timer *time.Timer) error {
	wire := len(r.s.wire)
	for !r.isStopped() {
		now := r.clk.now()
		out, k := ss.fillSend(now)
		if k == 0 {
			if !r.waitFor(timer, ss.wait(now)) {
				return nil
			}
			continue
		}
		if _, err := c.Write(out); err != nil {
			return err
		}
		r.r.recordN(&ss.tally, k, wire)
	}
	return nil
}

// closeWriter is a connection that can half-close.
type closeWriter interface{ CloseWrite() error }

// exchangeOnce is one message of close framing: send it, half-close, read
// the reply until the peer closes. Its latency runs from the connect.
func (r *runner) exchangeOnce(ss *session, c net.Conn, buf []byte) error {
	now := r.clk.now()
	if ss.interval > 0 {
		if d := ss.wait(now); d > 0 && !r.sleep(d) {
			return nil
		}
	}
	if r.s.Mode == Send {
		if _, err := c.Write(r.s.wire); err != nil {
			return err
		}
		if cw, ok := c.(closeWriter); ok {
			_ = cw.CloseWrite()
		}
		r.r.recordN(&ss.tally, 1, len(r.s.wire))
		_, _ = io.Copy(io.Discard, c)
		return nil
	}
	if out := ss.fill(now); len(out) > 0 {
		if _, err := c.Write(out); err != nil {
			return err
		}
	}
	if cw, ok := c.(closeWriter); ok {
		if err := cw.CloseWrite(); err != nil {
			return err
		}
	}
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if e := ss.received(buf[:n], r.clk.now()); e != nil {
				return e
			}
		}
		if errors.Is(err, io.EOF) {
			return ss.eof(r.clk.now())
		}
		if err != nil {
			return err
		}
	}
}
