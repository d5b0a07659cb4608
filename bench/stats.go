package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// shard holds a histogram and counters for a subset of the connections, so
// that connections on different cores rarely share a lock or a cache line.
type shard struct {
	mu    sync.Mutex
	hist  *hdrhistogram.Histogram
	msgs  atomic.Int64
	bytes atomic.Int64
	_     [64]byte
}

// recorder collects what a run measures. Safe for concurrent use.
type recorder struct {
	phase  atomic.Int32
	shards []shard
	errs   [numKinds]atomic.Int64
	conns  atomic.Int64 // open right now
	sent   atomic.Int64 // datagrams sent in the window (UDP)
	lost   atomic.Int64 // datagrams found lost in the window (UDP)
	firstE sync.Once
	first  error // the first error counted, for the log
}

func newRecorder() *recorder {
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r := &recorder{shards: make([]shard, n)}
	for i := range r.shards {
		r.shards[i].hist = hdrhistogram.New(histLowest, histHighest, histDigits)
	}
	return r
}

func (r *recorder) shard(i int) *shard { return &r.shards[i%len(r.shards)] }

func (r *recorder) measuring() bool { return r.phase.Load() == phaseMeasure }

// record counts one message of n bytes with latency lat (lat < 0: none) if
// the run is in its measuring window.
func (r *recorder) record(sh *shard, lat int64, n int) {
	if r.phase.Load() != phaseMeasure {
		return
	}
	if lat >= 0 {
		sh.mu.Lock()
		_ = sh.hist.RecordValue(min(max(lat, histLowest), histHighest))
		sh.mu.Unlock()
	}
	sh.msgs.Add(1)
	sh.bytes.Add(int64(n))
}

// recordN counts n messages of size bytes each without latency.
func (r *recorder) recordN(sh *shard, n, size int) {
	if n == 0 || r.phase.Load() != phaseMeasure {
		return
	}
	sh.msgs.Add(int64(n))
	sh.bytes.Add(int64(n * size))
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
	for i := range r.shards {
		msgs += r.shards[i].msgs.Load()
		bytes += r.shards[i].bytes.Load()
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
	h := hdrhistogram.New(histLowest, histHighest, histDigits)
	for i := range r.shards {
		r.shards[i].mu.Lock()
		h.Merge(r.shards[i].hist)
		r.shards[i].mu.Unlock()
	}
	return h
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
