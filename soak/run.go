package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// sampleEvery is how often the server is sampled for its peak and, after the
// load, for its settling.
const sampleEvery = 250 * time.Millisecond

// Run soaks the server: Clients well-behaved clients check every reply while
// bad clients of every fault run at Rate, for Duration after Warmup; then it
// waits up to Settle for the server's samples to come back. The report says
// whether the run passed: no message lost, no fault answered otherwise than
// it should, and (with PID) goroutines, fds and RSS back within Tolerance of
// their start. Cancelling ctx ends the load early (the report is marked
// interrupted). The error is non-nil only when the run could not start: a
// bad configuration (wrapping ErrBadConfig) or a target nothing answers on.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	if err := reachable(ctx, s); err != nil {
		return nil, err
	}
	st := newStats(s.faults)
	var smp *sampler
	if s.PID > 0 {
		smp = &sampler{pid: s.PID, metrics: s.MetricsURL, client: &http.Client{}}
	}
	seed := rand.Uint64()
	var stop atomic.Bool
	var wg sync.WaitGroup
	goodCtx, cancelGood := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelGood()
	for i := range s.Clients {
		g := &good{s: s, st: st, id: i, r: rand.New(rand.NewPCG(seed, uint64(i))), stop: &stop}
		wg.Go(func() { g.run(goodCtx) })
	}
	if smp != nil {
		smp.sample(ctx) // warms the server's metrics path before the start
	}
	interrupted := false
	if s.Warmup > 0 {
		interrupted = !sleep(ctx, s.Warmup)
	}
	// Every message counts, the warm-up's too: one lost then is lost.
	rep := &Report{Schema: Schema, Endpoint: s.Endpoint.String(), Service: s.Service, Frame: s.Frame.String(), Clients: s.Clients, Checked: s.answers() || s.Service == "discard" && !s.Endpoint.IsPacket()}
	var srv *ServerReport
	var peakMu sync.Mutex
	if smp != nil {
		first := smp.sample(ctx)
		srv = &ServerReport{PID: s.PID, Start: first, Peak: first}
	}
	began := time.Now()
	loadCtx, endLoad := context.WithCancel(ctx)
	var bad sync.WaitGroup
	for _, f := range s.faults {
		fl := &faulter{s: s, st: st, kind: f, fs: st.faults[f], hold: make(chan struct{}, holdCap), r: rand.New(rand.NewPCG(seed, uint64(1000+len(f))))}
		if f == Flood {
			fl.hold = make(chan struct{}, 1)
		}
		bad.Go(func() { fl.run(loadCtx) })
	}
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-t.C:
			}
			if smp != nil {
				x := smp.sample(loadCtx)
				peakMu.Lock()
				srv.Peak = peak(srv.Peak, x)
				peakMu.Unlock()
			}
			if s.Progress != nil && time.Since(last) >= time.Second {
				last = time.Now()
				now := snapshot(st)
				s.Progress(Progress{Elapsed: time.Since(began), Sent: now.sent, Answered: now.answered, Lost: now.lost, Faults: totalInjected(st)})
			}
		}
	}()
	if !interrupted {
		interrupted = !sleep(ctx, s.Duration)
	}
	ran := time.Since(began)
	// End the load: bad clients close at once; good ones finish the
	// exchange they are in (bounded by Timeout) and stop.
	endLoad()
	stop.Store(true)
	bad.Wait()
	<-watchDone
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2*s.Timeout + 5*time.Second):
		cancelGood()
		<-finished
	}
	stopped := time.Now()
	if srv != nil {
		// Wait for the server to come back to where it started.
		for {
			x := smp.sample(ctx)
			srv.End = x
			srv.SettledAfter = Duration(time.Since(stopped))
			if len(leaks(srv.Start, x)) == 0 || time.Since(stopped) >= s.Settle || ctx.Err() != nil {
				break
			}
			sleep(ctx, sampleEvery)
		}
		srv.Peak = peak(srv.Peak, srv.End)
		srv.Leaks = leaks(srv.Start, srv.End)
	}
	totals := snapshot(st)
	rep.Duration = Duration(ran)
	rep.Interrupted = interrupted
	rep.Connections = totals.connections
	rep.Sent, rep.Answered, rep.Lost, rep.Corrupt = totals.sent, totals.answered, totals.lost, totals.corrupt
	rep.Refused, rep.Resent = totals.refused, totals.resent
	rep.PeakConns = st.peakOpen.Load()
	for _, f := range s.faults {
		fs := st.faults[f]
		rep.Faults = append(rep.Faults, FaultReport{
			Kind: f, Injected: fs.injected.Load(), Conns: fs.conns.Load(), ServerClosed: fs.serverClosed.Load(),
			Expected: fs.expected.Load(), Unexpected: fs.unexpected.Load(),
		})
	}
	if srv != nil {
		if rep.PeakConns > 0 && srv.Start.RSS >= 0 {
			srv.RSSPerConn = max(0, srv.Peak.RSS-srv.Start.RSS) / rep.PeakConns
		}
		rep.Server = srv
	}
	st.mu.Lock()
	rep.Errors = append([]string(nil), st.errors...)
	if st.nerr > len(st.errors) {
		rep.Errors = append(rep.Errors, fmt.Sprintf("… and %d more", st.nerr-len(st.errors)))
	}
	st.mu.Unlock()
	rep.judge()
	return rep, nil
}

// judge fills Failures and Passed.
func (r *Report) judge() {
	if r.Lost > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d of %d messages lost (%d corrupt)", r.Lost, r.Sent, r.Corrupt))
	}
	if r.Sent == 0 {
		r.Failures = append(r.Failures, "no message was sent")
	}
	if r.Checked && r.Sent != r.Answered+r.Lost {
		r.Failures = append(r.Failures, fmt.Sprintf("counts disagree: %d sent, %d answered, %d lost", r.Sent, r.Answered, r.Lost))
	}
	for _, f := range r.Faults {
		if f.Unexpected > 0 {
			r.Failures = append(r.Failures, fmt.Sprintf("%s: %d answered otherwise than expected", f.Kind, f.Unexpected))
		}
	}
	if r.Server != nil && len(r.Server.Leaks) > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("not back within %.0f %% of the start (or %d goroutines, %d fds, %d MiB RSS) %v after the load: %v", Tolerance*100, leakSlack.Goroutines, leakSlack.FDs, leakSlack.RSS>>20, time.Duration(r.Server.SettledAfter).Round(time.Millisecond), r.Server.Leaks))
	}
	if len(r.Errors) > 0 && len(r.Failures) == 0 {
		r.Failures = append(r.Failures, "well-behaved clients met errors")
	}
	r.Passed = len(r.Failures) == 0
}

// reachable checks that the target answers a connect (streams) before any
// load starts, so a wrong address is one clear error, not a report of losses.
func reachable(ctx context.Context, s *settings) error {
	if s.Endpoint.IsPacket() {
		return nil
	}
	c, err := s.dialer.Dial(ctx, s.Endpoint)
	if err != nil {
		return fmt.Errorf("soak: cannot reach %s: %w", s.Endpoint, err)
	}
	return c.Close()
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// counts is a moment's copy of the well-behaved counters.
type counts struct {
	connections, sent, answered, lost, corrupt, refused, resent int64
}

func snapshot(st *stats) counts {
	return counts{st.connections.Load(), st.sent.Load(), st.answered.Load(), st.lost.Load(), st.corrupt.Load(), st.refused.Load(), st.resent.Load()}
}

func totalInjected(st *stats) int64 {
	var n int64
	for _, f := range st.faults {
		n += f.injected.Load()
	}
	return n
}
