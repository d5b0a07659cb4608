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
// callbacks) at a time; only due and tally are read by others.
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
	pend      int   // messages completed by the bytes being received, not yet recorded
	pendBytes int
	tally     tally  // this connection's messages and bytes (in the session's cache lines)
	out       []byte // copies of the message, written from, never written to (settings.wires)
	batch     int    // messages per write in send mode
	timeoutNs int64
	due       atomic.Int64 // when the oldest message in flight times out; 0: none

	// ring holds times up to a depth of 16 (echo, the default pipeline):
	// in the session's own memory, read with the rest of it when echoes
	// arrive, rather than a cache miss of its own.
	ring [16]int64
}

func newSession(s *settings, r *recorder, sh *shard, clk clock, conn int, start int64) *session {
	ss := &session{s: s, r: r, sh: sh, clk: clk, timeoutNs: int64(s.Timeout)}
	r.addTally(&ss.tally)
	depth := s.Depth
	if s.Mode == Send {
		depth = 1
	}
	if depth <= len(ss.ring) {
		ss.times = ss.ring[:depth]
	} else {
		ss.times = make([]int64, depth)
	}
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
	ss.batch = s.sendBatch()
	ss.out = s.wires
	if n := max(depth, ss.batch) * len(s.wire); len(ss.out) < n {
		ss.out = bytes.Repeat(s.wire, max(depth, ss.batch))
	}
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

// fill takes the messages that may be sent at now: up to the depth in
// flight, and with a rate only those whose intended time has come. It
// returns the bytes to write (a prefix of ss.out, never written to).
func (ss *session) fill(now int64) []byte {
	depth := len(ss.times)
	was := ss.n
	i := ss.head + ss.n
	if i >= depth {
		i -= depth
	}
	for ss.n < depth {
		t := now
		if ss.interval > 0 {
			if ss.next > now {
				break
			}
			t = ss.next
			ss.next += ss.interval
		}
		ss.times[i] = t
		if i++; i == depth {
			i = 0
		}
		ss.n++
	}
	if was == 0 && ss.n > 0 {
		ss.due.Store(now + ss.timeoutNs)
	}
	return ss.out[:(ss.n-was)*len(ss.s.wire)]
}

// fillSend returns the messages of one write of send mode with their count:
// a batch, or with a rate those whose intended time has come (at most 1024).
func (ss *session) fillSend(now int64) ([]byte, int) {
	if ss.interval == 0 {
		return ss.out[:ss.batch*len(ss.s.wire)], ss.batch
	}
	k := 0
	for k < 1024 && ss.next <= now {
		ss.next += ss.interval
		k++
	}
	if w := len(ss.s.wire); k*w > len(ss.out) {
		// A rate catching up: a buffer of this connection's own, grown
		// rarely (ss.out is shared until then).
		ss.out = bytes.Repeat(ss.s.wire, min(1024, max(k, 2*len(ss.out)/w)))
	}
	return ss.out[:k*len(ss.s.wire)], k
}

// awaitsOnly reports whether the messages in flight are exactly the k bytes
// about to be written: no earlier echo is still owed, not even in part.
func (ss *session) awaitsOnly(k int) bool {
	return ss.n*len(ss.s.wire) == k && ss.rawGot == 0 && (ss.dec == nil || ss.dec.Buffered() == 0)
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
	var err error
	if m := len(ss.s.msg); ss.dec == nil && ss.rawGot == 0 && !ss.s.Verify &&
		m > 0 && len(data)%m == 0 && len(data)/m <= ss.n {
		ss.doneN(len(data)/m, m) // whole raw echoes, the usual case
	} else if ss.dec != nil {
		err = ss.dec.Feed(data, ss.emit)
	} else {
		err = ss.receivedRaw(data)
	}
	ss.flush()
	if ss.n > 0 {
		ss.due.Store(now + ss.timeoutNs)
	} else {
		ss.due.Store(0)
	}
	return err
}

// receivedRaw takes the bytes of raw echoes.
func (ss *session) receivedRaw(data []byte) error {
	msg := ss.s.msg
	m := len(msg)
	for len(data) > 0 {
		if ss.n == 0 {
			return fmt.Errorf("%w: %d bytes with no message in flight", errMismatch, len(data))
		}
		if ss.rawGot == 0 && m > 0 && len(data) >= m {
			// Whole echoes, at most as many as are in flight.
			k := min(len(data)/m, ss.n)
			if ss.s.Verify {
				for j := 0; j < k; j++ {
					if !bytes.Equal(data[j*m:(j+1)*m], msg) {
						ss.doneN(j, m)
						return fmt.Errorf("%w (raw echo at byte 0 of a message)", errMismatch)
					}
				}
			}
			ss.doneN(k, m)
			data = data[k*m:]
			continue
		}
		k := min(len(data), m-ss.rawGot)
		if ss.s.Verify && !bytes.Equal(data[:k], msg[ss.rawGot:ss.rawGot+k]) {
			return fmt.Errorf("%w (raw echo at byte %d of a message)", errMismatch, ss.rawGot)
		}
		ss.rawGot += k
		data = data[k:]
		if ss.rawGot == m {
			ss.rawGot = 0
			ss.doneN(1, m)
		}
	}
	return nil
}

// eof handles the peer's end of stream: in close framing it completes the
// echo; otherwise anything outstanding is an error (returned).
func (ss *session) eof(now int64) error {
	ss.now = now
	if ss.dec != nil && ss.s.Frame.Kind == frame.Close {
		err := ss.dec.EOF(ss.emit)
		ss.flush()
		if ss.n == 0 {
			ss.due.Store(0)
		}
		if err != nil {
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
	ss.doneN(1, len(ss.s.wire))
	return nil
}

// doneN completes the k oldest messages in flight, of n bytes each. They
// are recorded by flush, at the end of the bytes being received: their send
// times stay in the ring until then (nothing is sent in between).
func (ss *session) doneN(k, n int) {
	ss.head += k
	if ss.head >= len(ss.times) {
		ss.head -= len(ss.times)
	}
	ss.n -= k
	ss.pend += k
	ss.pendBytes += k * n
}

// flush records the messages completed since the last flush, each with its
// own latency (now minus its send time).
func (ss *session) flush() {
	if ss.pend == 0 {
		return
	}
	first := ss.head - ss.pend
	if first < 0 {
		first += len(ss.times)
	}
	ss.r.recordRing(ss.sh, &ss.tally, ss.now, ss.times, first, ss.pend, ss.pendBytes)
	ss.pend, ss.pendBytes = 0, 0
}

// quietFor is how long, at now, the connection has had messages in flight
// and received nothing (0 with nothing in flight).
func (ss *session) quietFor(now int64) int64 {
	d := ss.due.Load()
	if d == 0 {
		return 0
	}
	return now - (d - ss.timeoutNs)
}

// timedOut reports whether the oldest message in flight is overdue.
func (ss *session) timedOut(now int64) bool {
	d := ss.due.Load()
	return d != 0 && now > d
}
