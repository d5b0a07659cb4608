package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/sockit/sockit/frame"
)

// ErrorKind is a class of error counted in a report.
type ErrorKind int

// Error kinds.
const (
	// KindRefused: the connect was refused: nothing listens, or a Unix
	// socket's accept queue is full (EAGAIN).
	KindRefused ErrorKind = iota
	// KindReset: the peer reset the connection (ECONNRESET, EPIPE).
	KindReset
	// KindTimeout: a connect or an echo took longer than Config.Timeout.
	KindTimeout
	// KindShort: the peer closed the connection with an echo outstanding or
	// partly received.
	KindShort
	// KindMismatch: an echo differed from what was sent (Verify), or a reply
	// could not be decoded in the framing.
	KindMismatch
	// KindClosed: the peer closed a connection that had nothing
	// outstanding (send and idle modes).
	KindClosed
	// KindLost: a datagram whose echo never came (UDP mode). Loss is also
	// reported on its own, beside the errors.
	KindLost
	// KindOther: any other error.
	KindOther
	numKinds
)

var kindNames = [numKinds]string{"refused", "reset", "timeout", "short", "mismatch", "closed", "lost", "other"}

func (k ErrorKind) String() string {
	if k >= 0 && k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// errMismatch is the error of a verify failure.
var errMismatch = errors.New("sockit: echo differs from the message sent")

// errShortEcho is the error of a peer that closed with an echo outstanding.
var errShortEcho = fmt.Errorf("sockit: peer closed with an echo outstanding: %w", io.ErrUnexpectedEOF)

// errPeerClosed is the error of a peer that closed between messages.
var errPeerClosed = errors.New("sockit: peer closed the connection")

// errTimedOut is the error of a connection the watchdog gave up on.
var errTimedOut = errors.New("sockit: no echo within the timeout")

// classify maps an error to its kind.
func classify(err error) ErrorKind {
	var ne net.Error
	switch {
	case errors.Is(err, errPeerClosed):
		return KindClosed
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EAGAIN):
		return KindRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return KindReset
	case errors.Is(err, errTimedOut), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ETIMEDOUT), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, frame.ErrTruncated):
		return KindShort
	case errors.Is(err, errMismatch), errors.Is(err, frame.ErrTooLong):
		return KindMismatch
	}
	return KindOther
}

// Phases of a run.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseDone
)

// Histogram bounds: 1 ns to one hour, three significant digits.
const (
	histLowest  = 1
	histHighest = int64(time.Hour)
	histDigits  = 3
)

// shard holds the latency histogram of a subset of the connections. It is
// recorded with atomic adds, without a lock: with a mutex per shard the
// connections on the two cores waited for each other (and for a holder the
// OS had descheduled), which cost more than the recording itself.
type shard struct {
	counts []int64 // an HDR histogram's counts (histIndex), updated atomically
}

// tally counts one connection's messages and bytes. Its owner adds to it;
// others only read it (the sampler, the result), so its cache line stays on
// the owner's core, where counters shared by many connections moved between
// the cores at every message.
type tally struct {
	msgs  atomic.Int64
	bytes atomic.Int64
}

// The geometry of an HDR histogram from histLowest = 1 to histHighest with
// histDigits = 3 significant digits, as hdrhistogram-go lays out its counts
// (TestHistIndex checks histIndex against it): values up to 2·10³ have unit
// resolution, so 2048 sub-buckets (magnitude 11) per power of two, the
// upper half of each used by the buckets after the first.
const (
	histSubHalfMag  = 10
	histSubHalf     = 1 << histSubHalfMag
	histSubMask     = 2*histSubHalf - 1
	histUnitMag     = 0 // log2(histLowest)
	histBucketShift = histUnitMag + histSubHalfMag + 1
)

// histIndex is the index of v's count in hdrhistogram-go's counts array
// (Histogram.countsIndexFor) for v in [histLowest, histHighest].
func histIndex(v int64) int {
	bucket := 64 - bits.LeadingZeros64(uint64(v)|histSubMask) - histBucketShift
	sub := int(v >> uint(bucket+histUnitMag))
	return (bucket+1)<<histSubHalfMag + sub - histSubHalf
}

// histLen is the length of the counts array of the histogram's geometry.
var histLen = sync.OnceValue(func() int {
	return len(hdrhistogram.New(histLowest, histHighest, histDigits).Export().Counts)
})

// recordLatency counts c messages of latency lat (ns) in sh's histogram.
func (sh *shard) recordLatency(lat, c int64) {
	i := histIndex(min(max(lat, histLowest), histHighest))
	atomic.AddInt64(&sh.counts[min(i, len(sh.counts)-1)], c)
}

// recorder collects what a run measures. Safe for concurrent use.
type recorder struct {
	phase   atomic.Int32
	shards  []shard
	tmu     sync.Mutex
	tallies []*tally // every connection's
	errs    [numKinds]atomic.Int64
	conns   atomic.Int64 // open right now
	sent    atomic.Int64 // datagrams sent in the window (UDP)
	lost    atomic.Int64 // datagrams found lost in the window (UDP)
	firstE  sync.Once
	first   error // the first error counted, for the log
}

func newRecorder() *recorder {
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r := &recorder{shards: make([]shard, n)}
	for i := range r.shards {
		r.shards[i].counts = make([]int64, histLen())
	}
	return r
}

func (r *recorder) shard(i int) *shard { return &r.shards[i%len(r.shards)] }

func (r *recorder) measuring() bool { return r.phase.Load() == phaseMeasure }

// addTally registers a connection's counter, summed by messages.
func (r *recorder) addTally(t *tally) {
	r.tmu.Lock()
	r.tallies = append(r.tallies, t)
	r.tmu.Unlock()
}

// record counts one message of n bytes with latency lat (lat < 0: none) if
// the run is in its measuring window.
func (r *recorder) record(sh *shard, t *tally, lat int64, n int) {
	if r.phase.Load() != phaseMeasure {
		return
	}
	if lat >= 0 {
		sh.recordLatency(lat, 1)
	}
	t.msgs.Add(1)
	t.bytes.Add(int64(n))
}

// recordRing counts the k messages whose send times are ring[first:], first
// to last wrapping around, all received at now, of bytes bytes in all: each
// with its own latency. Messages sent together (the same send time) have the
// same latency and go in as one value with a count.
func (r *recorder) recordRing(sh *shard, tl *tally, now int64, ring []int64, first, k, bytes int) {
	if r.phase.Load() != phaseMeasure {
		return
	}
	i := first
	for left := k; left > 0; {
		t, c := ring[i], int64(0)
		for left > 0 && ring[i] == t {
			c++
			left--
			if i++; i == len(ring) {
				i = 0
			}
		}
		sh.recordLatency(now-t, c)
	}
	tl.msgs.Add(int64(k))
	tl.bytes.Add(int64(bytes))
}

// recordN counts n messages of size bytes each without latency.
func (r *recorder) recordN(t *tally, n, size int) {
	if n == 0 || r.phase.Load() != phaseMeasure {
		return
	}
	t.msgs.Add(int64(n))
	t.bytes.Add(int64(n * size))
}

// fail counts an error of the kind of err, unless the run is over (errors
// while tearing down are the generator's own doing).
func (r *recorder) fail(err error) ErrorKind {
	k := classify(err)
	r.failKind(k, err)
	return k
}

func (r *recorder) failKind(k ErrorKind, err error) {
	if r.phase.Load() == phaseDone {
		return
	}
	r.errs[k].Add(1)
	r.firstE.Do(func() { r.first = err })
}

func (r *recorder) messages() (msgs, bytes int64) {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	for _, t := range r.tallies {
		msgs += t.msgs.Load()
		bytes += t.bytes.Load()
	}
	return msgs, bytes
}

func (r *recorder) errorTotal() int64 {
	var n int64
	for i := range r.errs {
		n += r.errs[i].Load()
	}
	return n
}

// merged returns all shards' histograms in one.
func (r *recorder) merged() *hdrhistogram.Histogram {
	counts := make([]int64, histLen())
	for i := range r.shards {
		for j := range r.shards[i].counts {
			counts[j] += atomic.LoadInt64(&r.shards[i].counts[j])
		}
	}
	return hdrhistogram.Import(&hdrhistogram.Snapshot{
		LowestTrackableValue: histLowest, HighestTrackableValue: histHighest,
		SignificantFigures: histDigits, Counts: counts,
	})
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
