package bench

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockit/sockit/server"
)

// dialParallel bounds the connects in progress at once, so that opening
// thousands of connections does not overflow the target's accept queue.
const dialParallel = 128

// runner is one run in progress.
type runner struct {
	s   *settings
	r   *recorder
	clk clock
	log *slog.Logger
	ctx context.Context // ends when the run ends (or the caller's ctx)

	dialSem chan struct{}
	ready   sync.WaitGroup // every connection's first connect attempt
	started chan struct{}  // closed when the load may start
	startNs int64          // clock time of started

	mu       sync.Mutex
	stopped  bool
	wg       sync.WaitGroup // every goroutine of the run
	stopCh   chan struct{}
	halt     atomic.Bool // set when stopCh closes, cheaper to poll
	slots    []slot
	srv      *server.Server // the epoll engine's, nil on the goroutine engine
	timeline []Sample
}

// slot is one of the Conns connections, replaced when it fails.
type slot struct {
	mu      sync.Mutex
	c       net.Conn     // goroutine engine: the current connection
	p       *streamProto // epoll engine: the current protocol
	ss      *session
	dead    bool // closed by the runner
	timeout atomic.Bool
	// probeable: the connection's goroutine waits in rawStream reads
	// (runner.pump with an exchanger), where a probe is understood.
	probeable atomic.Bool
	// probe: the watchdog set a past read deadline to wake the goroutine
	// and have it look for a FIN its wait may have missed (see pump).
	probe atomic.Bool
}

// Run runs the load described by cfg until its warm-up and measuring window
// are over or ctx ends, and returns what it measured. Errors talking to the
// target are counted in the Result, not returned; Run returns an error only
// for a configuration it cannot run (wrapping ErrBadConfig or ErrBadMode) or
// when it cannot start at all. When ctx ends early, the partial Result is
// returned with ctx.Err().
func Run(ctx context.Context, cfg Config) (*Result, error) {
	s, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &runner{
		s:       s,
		r:       newRecorder(),
		clk:     clock{base: time.Now()},
		log:     log,
		ctx:     rctx,
		dialSem: make(chan struct{}, dialParallel),
		started: make(chan struct{}),
		stopCh:  make(chan struct{}),
		slots:   make([]slot, s.Conns),
	}
	if s.Engine == EngineEpoll || s.packet {
		// Datagram sockets run as protocols on either engine.
		r.srv = &server.Server{Engine: s.Engine, Logger: log}
		if _, err := r.srv.EngineName(); err != nil {
			return nil, badConfig("engine epoll: %v", err)
		}
	}
	res := r.run()
	return res, ctx.Err()
}

// spawn runs f on a goroutine of the run unless the run is stopping.
func (r *runner) spawn(f func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
	return true
}

func (r *runner) isStopped() bool { return r.halt.Load() }

// sleep waits d or until the run stops; it reports whether d passed.
func (r *runner) sleep(d time.Duration) bool {
	if d <= 0 {
		return !r.isStopped()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stopCh:
		return false
	}
}

// dial opens connection i's socket, at most dialParallel at once.
func (r *runner) dial(i int) (net.Conn, error) {
	select {
	case r.dialSem <- struct{}{}:
	case <-r.stopCh:
		return nil, net.ErrClosed
	}
	defer func() { <-r.dialSem }()
	return r.s.dialer(i).Dial(r.ctx, r.s.Endpoint)
}

// failed counts err as the n-th failure in a row (n is incremented) and
// waits its back-off. It reports false when the run is over, before (then err
// is not counted: the run's end caused it) or during the wait.
func (r *runner) failed(err error, n *int) bool {
	if r.isStopped() {
		return false
	}
	r.r.fail(err)
	*n++
	return r.sleep(backoff(*n))
}

// backoff is the pause before replacing a failed connection: short, so
// errors are counted at a steady pace, growing while connects keep failing.
func backoff(failures int) time.Duration {
	d := 10 * time.Millisecond << min(failures, 7)
	return min(d, time.Second)
}

func (r *runner) run() *Result {
	var before procSample
	if r.s.PID > 0 {
		before = readProc(r.s.PID)
	}
	// Start the connections; the load begins once each has been tried.
	r.ready.Add(r.s.Conns)
	for i := 0; i < r.s.Conns; i++ {
		i := i
		switch r.s.Mode {
		case Connect:
			r.spawn(func() { r.connectWorker(i) })
		case Idle:
			r.spawn(func() { r.idleWorker(i) })
		case UDP:
			r.spawn(func() { r.udpWorker(i) })
		case Send:
			if r.s.packet {
				r.spawn(func() { r.udpWorker(i) })
				break
			}
			fallthrough
		default:
			if r.srv != nil {
				r.spawn(func() { r.epollWorker(i) })
			} else {
				r.spawn(func() { r.streamWorker(i) })
			}
		}
	}
	waitCtx(r.ctx, &r.ready)
	r.startNs = r.clk.now()
	close(r.started)
	r.spawn(r.watchdog)

	samplerDone := make(chan struct{})
	go r.sampler(samplerDone)

	if r.s.Mode != Idle {
		r.wait(r.s.Warmup)
	}
	if r.s.Mode == Idle && r.s.PID > 0 {
		// Let the target's allocations for the connections settle.
		r.wait(200 * time.Millisecond)
	}
	startRU, startCPU := selfCPU(), procCPU(r.s.PID)
	mStart := r.clk.now()
	r.r.phase.Store(phaseMeasure)
	r.wait(r.s.Duration)
	var after procSample
	if r.s.PID > 0 {
		after = readProc(r.s.PID)
	}
	r.r.phase.Store(phaseDone)
	mEnd := r.clk.now()
	endRU, endCPU := selfCPU(), procCPU(r.s.PID)
	held := r.r.conns.Load()

	r.stop()
	<-samplerDone
	return r.result(resultInput{
		window: time.Duration(mEnd - mStart), startRU: startRU, endRU: endRU,
		startCPU: startCPU, endCPU: endCPU, before: before, after: after, held: held,
	})
}

// wait sleeps d unless the caller's context ends.
func (r *runner) wait(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.ctx.Done():
	}
}

// waitCtx waits for wg or ctx.
func waitCtx(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// stop ends every connection and waits for the run's goroutines.
func (r *runner) stop() {
	r.mu.Lock()
	r.stopped = true
	r.halt.Store(true)
	close(r.stopCh)
	r.mu.Unlock()
	for i := range r.slots {
		sl := &r.slots[i]
		sl.mu.Lock()
		sl.dead = true
		if sl.c != nil {
			_ = sl.c.Close()
		}
		sl.mu.Unlock()
	}
	if r.srv != nil {
		// Once only: a closed server refuses the connections handed over
		// while stopping (ServeConn closes them).
		_ = r.srv.Close()
	}
	r.wg.Wait()
}

// setConn registers slot i's current connection; it reports false (and
// closes c) once the runner is closing connections.
func (r *runner) setConn(i int, c net.Conn) bool {
	sl := &r.slots[i]
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.dead {
		_ = c.Close()
		return false
	}
	sl.c = c
	return true
}

func (r *runner) clearConn(i int) {
	sl := &r.slots[i]
	sl.mu.Lock()
	sl.c = nil
	sl.mu.Unlock()
}

// watchdog replaces connections whose echo is overdue. On the goroutine
// engine it also probes raw connections that have heard nothing for a tick
// with echoes in flight: rawStream.exchange's wait cannot see a FIN that
// came in behind the last echo, and the probe makes it look (runner.probed).
func (r *runner) watchdog() {
	every := min(max(r.s.Timeout/4, 10*time.Millisecond), 250*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stopCh:
			return
		case <-t.C:
		}
		now := r.clk.now()
		for i := range r.slots {
			sl := &r.slots[i]
			sl.mu.Lock()
			if sl.ss != nil && sl.ss.timedOut(now) && !sl.timeout.Load() {
				switch {
				case sl.c != nil:
					sl.timeout.Store(true)
					_ = sl.c.SetReadDeadline(time.Unix(1, 0))
				case sl.p != nil:
					sl.timeout.Store(true)
					sl.p.abort()
				}
			} else if sl.ss != nil && sl.c != nil && sl.probeable.Load() && !sl.probe.Load() &&
				!sl.timeout.Load() && sl.ss.quietFor(now) >= int64(every) {
				sl.probe.Store(true)
				_ = sl.c.SetReadDeadline(time.Unix(1, 0))
			}
			sl.mu.Unlock()
		}
	}
}

// sampler records the per-second timeline and reports progress.
func (r *runner) sampler(done chan struct{}) {
	defer close(done)
	every := time.Second
	if r.s.Duration < 10*time.Second {
		every = max(r.s.Duration/10, 100*time.Millisecond)
	}
	progressEvery := time.Second
	t := time.NewTicker(every)
	defer t.Stop()
	total := r.s.Warmup + r.s.Duration
	var lastMsgs, lastErrs int64
	lastT := r.clk.now()
	lastProgress := lastT
	for {
		select {
		case <-r.stopCh:
			return
		case <-t.C:
		}
		now := r.clk.now()
		msgs, _ := r.r.messages()
		errs := r.r.errorTotal()
		dt := time.Duration(now - lastT).Seconds()
		rate := float64(msgs-lastMsgs) / dt
		if r.r.measuring() {
			r.mu.Lock()
			r.timeline = append(r.timeline, Sample{
				T:              time.Duration(now - r.startNs).Seconds(),
				MessagesPerSec: rate,
				Errors:         errs - lastErrs,
				Conns:          r.r.conns.Load(),
			})
			r.mu.Unlock()
		}
		lastMsgs, lastErrs, lastT = msgs, errs, now
		if r.s.Progress != nil && time.Duration(now-lastProgress) >= progressEvery-every/2 {
			lastProgress = now
			el := time.Duration(now - r.startNs)
			r.s.Progress(Progress{
				Elapsed: el, Warmup: r.r.phase.Load() == phaseWarmup, Rate: rate,
				Messages: msgs, Errors: errs, Conns: int(r.r.conns.Load()),
				Remaining: max(total-el, 0),
			})
		}
	}
}
