package bench

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sockit/sockit/frame"
)

// clock is a run's monotonic clock in nanoseconds since the run began.
type clock struct{ base time.Time }

func (c clock) now() int64 { return int64(time.Since(c.base)) }

// session is the engine-neutral state of one stream connection's message
// exchange: what is in flight since when, the reply decoder, the schedule of
// intended sends. It is used by one goroutine (or one connection's
// callbacks) at a time; only due is read by others.
type session struct {
	s   *settings
	r   *recorder
	sh  *shard
	clk clock

	dec  *frame.Decoder // replies in a framing other than raw
	emit func([]byte) error

	// times is a ring of the send times (intended times with a rate) of the
	// messages in flight, oldest first.
	times     []int64
	head, n   int
	rawGot    int   // bytes of the current raw echo received
	interval  int64 // ns between intended sends; 0: closed loop
	next      int64 // next intended send time
	now       int64 // the time of the bytes being received
	out       []byte
	batch     int // messages per write in send mode
	timeoutNs int64
	due       atomic.Int64 // when the oldest message in flight times out; 0: none
}

func newSession(s *settings, r *recorder, sh *shard, clk clock, conn int, start int64) *session {
	ss := &session{s: s, r: r, sh: sh, clk: clk, timeoutNs: int64(s.Timeout)}
	depth := s.Depth
	if s.Mode == Send {
		depth = 1
	}
	ss.times = make([]int64, depth)
	if !s.packet && s.Frame.Kind != frame.Raw {
		ss.dec = frame.NewDecoder(s.Frame, s.maxRecv)
		ss.emit = ss.onReply
	}
	if s.Rate > 0 {
		// Each connection sends Rate/Conns per second, the connections
		// evenly staggered over one interval.
		ss.interval = int64(float64(time.Second) * float64(s.Conns) / s.Rate)
		ss.interval = max(ss.interval, 1)
		ss.next = start + ss.interval*int64(conn)/int64(s.Conns)
	}
	ss.batch = 1
	if s.Mode == Send && s.Rate == 0 {
		ss.batch = max(1, (64<<10)/len(s.wire))
	}
	ss.out = make([]byte, 0, max(depth, ss.batch)*len(s.wire))
	return ss
}

// reset forgets what was in flight (a new connection); the schedule goes on.
func (ss *session) reset() {
	ss.head, ss.n, ss.rawGot = 0, 0, 0
	ss.due.Store(0)
	if ss.dec != nil {
		ss.dec.Reset()
	}
}

// fill appends to ss.out the messages that may be sent at now: up to the
// depth in flight, and with a rate only those whose intended time has come.
// It returns the bytes to write (ss.out, reused).
func (ss *session) fill(now int64) []byte {
	ss.out = ss.out[:0]
	depth := len(ss.times)
	was := ss.n
	for ss.n < depth {
		t := now
		if ss.interval > 0 {
			if ss.next > now {
				break
			}
			t = ss.next
			ss.next += ss.interval
		}
		ss.times[(ss.head+ss.n)%depth] = t
		ss.n++
		ss.out = append(ss.out, ss.s.wire...)
	}
	if was == 0 && ss.n > 0 {
		ss.due.Store(now + ss.timeoutNs)
	}
	return ss.out
}

// fillSend appends the messages of one write of send mode and returns them
// with their count.
func (ss *session) fillSend(now int64) ([]byte, int) {
	ss.out = ss.out[:0]
	k := 0
	for k < ss.batch || (ss.interval > 0 && k < 1024) {
		if ss.interval > 0 {
			if ss.next > now {
				break
			}
			ss.next += ss.interval
		}
		ss.out = append(ss.out, ss.s.wire...)
		k++
	}
	return ss.out, k
}

// wait is how long until the next intended send (rate mode), or 0.
func (ss *session) wait(now int64) time.Duration {
	if ss.interval == 0 || ss.next <= now {
		return 0
	}
	return time.Duration(ss.next - now)
}

// received accounts for bytes from the peer: every complete echo is checked
// (Verify) and recorded with its latency.
func (ss *session) received(data []byte, now int64) error {
	ss.now = now
	if ss.n > 0 {
		ss.due.Store(now + ss.timeoutNs)
	}
	if ss.dec != nil {
		return ss.dec.Feed(data, ss.emit)
	}
	msg := ss.s.msg
	for len(data) > 0 {
		if ss.n == 0 {
			return fmt.Errorf("%w: %d bytes with no message in flight", errMismatch, len(data))
		}
		k := min(len(data), len(msg)-ss.rawGot)
		if ss.s.Verify && !bytes.Equal(data[:k], msg[ss.rawGot:ss.rawGot+k]) {
			return fmt.Errorf("%w (raw echo at byte %d of a message)", errMismatch, ss.rawGot)
		}
		ss.rawGot += k
		data = data[k:]
		if ss.rawGot == len(msg) {
			ss.rawGot = 0
			ss.done(len(msg))
		}
	}
	return nil
}

// eof handles the peer's end of stream: in close framing it completes the
// echo; otherwise anything outstanding is an error (returned).
func (ss *session) eof(now int64) error {
	ss.now = now
	if ss.dec != nil && ss.s.Frame.Kind == frame.Close {
		if err := ss.dec.EOF(ss.emit); err != nil {
			return err
		}
		if ss.n > 0 {
			return errShortEcho
		}
		return nil
	}
	if ss.n > 0 || ss.rawGot > 0 || (ss.dec != nil && ss.dec.Buffered() > 0) {
		return errShortEcho
	}
	return errPeerClosed
}

func (ss *session) onReply(m []byte) error {
	if ss.n == 0 {
		return fmt.Errorf("%w: a reply with no message in flight", errMismatch)
	}
	if ss.s.Verify && !bytes.Equal(m, ss.s.msg) {
		return fmt.Errorf("%w (a %d-byte reply to a %d-byte message)", errMismatch, len(m), len(ss.s.msg))
	}
	ss.done(len(ss.s.wire))
	return nil
}

// done completes the oldest message in flight.
func (ss *session) done(n int) {
	t := ss.times[ss.head]
	ss.head = (ss.head + 1) % len(ss.times)
	ss.n--
	if ss.n == 0 {
		ss.due.Store(0)
	}
	ss.r.record(ss.sh, ss.now-t, n)
}

// timedOut reports whether the oldest message in flight is overdue.
func (ss *session) timedOut(now int64) bool {
	d := ss.due.Load()
	return d != 0 && now > d
}
