// Package metrics counts what services do, per message, cheaply enough to
// leave on: a Meter is split into shards, each connection counts into one
// shard of its own choosing (round robin), and the shards are summed only
// when someone asks (a Prometheus scrape, through Collector). No counter is
// shared by every connection, so cores serving different connections do not
// fight over one cache line per message.
package metrics

import (
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"
)

// Buckets are the upper bounds of the latency histogram: 1 µs doubling to
// 2^20 µs (about 1 s), then +Inf.
const Buckets = 21

// BucketBound returns bucket i's upper bound.
func BucketBound(i int) time.Duration { return time.Duration(1<<i) * time.Microsecond }

// bucketOf is the first bucket whose bound d does not exceed (Buckets for
// +Inf).
func bucketOf(d time.Duration) int {
	if d <= time.Microsecond {
		return 0
	}
	us := uint64((d + time.Microsecond - 1) / time.Microsecond) // ceiling
	return min(bits.Len64(us-1), Buckets)
}

// Meter counts messages, their bytes, the time their handling took and
// write-buffer pauses. The zero value is not usable: call New. It is safe
// for concurrent use.
type Meter struct {
	shards []Shard
	next   atomic.Uint32
}

// Shard is one part of a Meter. One connection counts into one Shard
// (others may share it); its methods are safe for concurrent use.
type Shard struct {
	messagesIn, messagesOut atomic.Uint64
	bytesIn, bytesOut       atomic.Uint64
	pauses                  atomic.Uint64
	sumNanos                atomic.Uint64
	buckets                 [Buckets + 1]atomic.Uint64
	_                       [64]byte // keep the next shard off this one's cache lines
}

// New makes a Meter with four shards per core.
func New() *Meter {
	n := 4 * runtime.GOMAXPROCS(0)
	return &Meter{shards: make([]Shard, n)}
}

// Shard returns the shard a new connection counts into.
func (m *Meter) Shard() *Shard {
	return &m.shards[int(m.next.Add(1))%len(m.shards)]
}

// Message counts one message of in bytes handled in d, answered with out
// bytes (out < 0: no reply).
func (s *Shard) Message(in, out int, d time.Duration) {
	s.messagesIn.Add(1)
	s.bytesIn.Add(uint64(in))
	if out >= 0 {
		s.messagesOut.Add(1)
		s.bytesOut.Add(uint64(out))
	}
	if d < 0 {
		d = 0
	}
	s.sumNanos.Add(uint64(d))
	s.buckets[bucketOf(d)].Add(1)
}

// Batch counts what one read brought: messagesIn messages of bytesIn bytes
// received, answered with messagesOut of bytesOut bytes, all handled within
// d of the read (each message is observed at d: the time from the read that
// completed it to the last reply queued). It costs what one Message does,
// however many messages the read held.
func (s *Shard) Batch(messagesIn, bytesIn, messagesOut, bytesOut int, d time.Duration) {
	if messagesIn <= 0 && messagesOut <= 0 {
		return
	}
	s.messagesIn.Add(uint64(messagesIn))
	s.bytesIn.Add(uint64(bytesIn))
	if messagesOut > 0 {
		s.messagesOut.Add(uint64(messagesOut))
		s.bytesOut.Add(uint64(bytesOut))
	}
	if messagesIn > 0 {
		if d < 0 {
			d = 0
		}
		s.sumNanos.Add(uint64(d) * uint64(messagesIn))
		s.buckets[bucketOf(d)].Add(uint64(messagesIn))
	}
}

// Clock is a monotonic reading for handling times: one clock read, where
// time.Now takes two (the wall clock too).
func Clock() time.Duration { return time.Since(epoch) }

var epoch = time.Now()

// Sent counts messages sent without one received (a greeting, chargen's
// lines, daytime's answer) and their bytes.
func (s *Shard) Sent(messages, bytes int) {
	s.messagesOut.Add(uint64(messages))
	s.bytesOut.Add(uint64(bytes))
}

// Pause counts a write-buffer pause: the peer did not take the replies as
// fast as they came, so reading from it stopped until it did.
func (s *Shard) Pause() { s.pauses.Add(1) }

// Snapshot is a Meter's counts summed over its shards.
type Snapshot struct {
	MessagesIn, MessagesOut uint64
	BytesIn, BytesOut       uint64
	Pauses                  uint64
	// Count and Sum are the histogram's; Buckets[i] counts the messages
	// handled within BucketBound(i) (not cumulative), the last one those
	// over every bound.
	Count   uint64
	Sum     time.Duration
	Buckets [Buckets + 1]uint64
}

// Snapshot sums the shards now. Counts taken while messages are being
// handled may disagree by those messages (a message's counters are not
// updated at one instant).
func (m *Meter) Snapshot() Snapshot {
	var s Snapshot
	for i := range m.shards {
		sh := &m.shards[i]
		s.MessagesIn += sh.messagesIn.Load()
		s.MessagesOut += sh.messagesOut.Load()
		s.BytesIn += sh.bytesIn.Load()
		s.BytesOut += sh.bytesOut.Load()
		s.Pauses += sh.pauses.Load()
		s.Sum += time.Duration(sh.sumNanos.Load())
		for b := range sh.buckets {
			n := sh.buckets[b].Load()
			s.Buckets[b] += n
			s.Count += n
		}
	}
	return s
}
