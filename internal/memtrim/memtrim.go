// Package memtrim hands heap memory back to the operating system after a
// burst. Go's runtime keeps the pages a burst of connections used (their
// frames, buffers and goroutine stacks) until a later collection lowers the
// heap goal and its background scavenger, paced at about 1 % of a CPU,
// returns them; on a quiet server that can take minutes, and a server that
// held 500 MB for 300 slow clients keeps that RSS long after they left.
//
// Run watches the heap once per Interval. When the server is quiet (no
// collection for Quiet: nothing is allocating) and either the heap it holds
// grew since the last hand-back by Slack or a quarter, whichever is more, or
// a quarter of the most connections open at once since then have closed, it
// calls
// debug.FreeOSMemory (a collection, then every free page returned).
// Hand-backs are at least MinGap apart, and an idle server is handed back
// once, not on every tick. On a small heap a hand-back costs well under a
// millisecond; the relative growth keeps a large live heap from being
// collected again for every few megabytes.
package memtrim

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config tunes Run; zero fields take the defaults.
type Config struct {
	Interval time.Duration // how often the heap is read; default 1 s
	Quiet    time.Duration // no collection for this long; default 2 s
	MinGap   time.Duration // between hand-backs; default 5 s
	Slack    uint64        // the least growth worth handing back; default 1 MiB
	// Conns reports the open connections (nil: not used).
	Conns func() int
	// Logger gets one debug line per hand-back (nil: slog.Default()).
	Logger *slog.Logger
}

const (
	mGC      = "/gc/cycles/total:gc-cycles"
	mObjects = "/memory/classes/heap/objects:bytes"
	mUnused  = "/memory/classes/heap/unused:bytes"
	mFree    = "/memory/classes/heap/free:bytes"
	mStacks  = "/memory/classes/heap/stacks:bytes"
)

// heap is what Run reads: the collections so far and the heap memory the
// runtime holds (objects, live or dead, the unused room in their spans,
// goroutine stacks, and free pages not yet returned).
type heap struct {
	gcs      uint64
	retained uint64
}

func readHeap(s []metrics.Sample) heap {
	metrics.Read(s)
	var h heap
	for _, m := range s {
		if m.Value.Kind() != metrics.KindUint64 {
			continue
		}
		v := m.Value.Uint64()
		if m.Name == mGC {
			h.gcs = v
		} else {
			h.retained += v
		}
	}
	return h
}

func samples() []metrics.Sample {
	return []metrics.Sample{{Name: mGC}, {Name: mObjects}, {Name: mUnused}, {Name: mFree}, {Name: mStacks}}
}

// Run hands memory back as the package documentation says until ctx ends.
func Run(ctx context.Context, cfg Config) {
	cfg.defaults()
	t := newTrimmer(cfg, time.Now())
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			t.step(now)
		}
	}
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Quiet <= 0 {
		c.Quiet = 2 * time.Second
	}
	if c.MinGap <= 0 {
		c.MinGap = 5 * time.Second
	}
	if c.Slack == 0 {
		c.Slack = 1 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// trimmer is Run's state between ticks.
type trimmer struct {
	cfg       Config
	s         []metrics.Sample
	gcs       uint64    // collections at the last tick
	gcSeen    time.Time // when the count last changed
	last      time.Time // the last hand-back
	baseHeap  uint64    // retained right after it
	peakConns int       // the most connections open at a tick since then
	free      func()    // debug.FreeOSMemory; replaced in tests
	read      func() heap
}

func newTrimmer(cfg Config, now time.Time) *trimmer {
	t := &trimmer{cfg: cfg, s: samples(), gcSeen: now, free: debug.FreeOSMemory}
	t.read = func() heap { return readHeap(t.s) }
	h := t.read()
	t.gcs, t.baseHeap = h.gcs, h.retained
	t.peakConns = t.conns()
	return t
}

func (t *trimmer) conns() int {
	if t.cfg.Conns == nil {
		return 0
	}
	return t.cfg.Conns()
}

// step reads the heap and hands memory back if it is time; it reports
// whether it did.
func (t *trimmer) step(now time.Time) bool {
	h := t.read()
	if h.gcs != t.gcs {
		t.gcs, t.gcSeen = h.gcs, now
	}
	conns := t.conns()
	t.peakConns = max(t.peakConns, conns)
	switch {
	case now.Sub(t.gcSeen) < t.cfg.Quiet: // allocating: the runtime copes
		return false
	case !t.last.IsZero() && now.Sub(t.last) < t.cfg.MinGap:
		return false
	}
	grew := h.retained >= t.baseHeap+max(t.cfg.Slack, t.baseHeap/4)
	closed := t.peakConns > 0 && conns <= t.peakConns-(t.peakConns+3)/4
	if !grew && !closed {
		// Neither grew the heap nor closed a quarter of the connections
		// since the last hand-back: what is held is most likely live.
		return false
	}
	t.free()
	after := t.read()
	t.gcs, t.gcSeen = after.gcs, now
	t.last, t.baseHeap, t.peakConns = now, after.retained, conns
	t.cfg.Logger.Debug("heap memory handed back to the system",
		"before_mib", h.retained>>20, "after_mib", after.retained>>20, "conns", conns)
	return true
}
