package memtrim

import (
	"context"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

var sink [][]byte

func released() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestRunHandsBackABurst: with Run watching, 256 MiB allocated and dropped,
// then quiet: Run returns it to the system within a few ticks.
func TestRunHandsBackABurst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Config{Interval: 20 * time.Millisecond, Quiet: 100 * time.Millisecond, MinGap: 100 * time.Millisecond, Slack: 32 << 20})
	}()
	time.Sleep(50 * time.Millisecond) // Run has read the small heap it starts from
	for i := 0; i < 256; i++ {
		b := make([]byte, 1<<20)
		b[0] = 1
		sink = append(sink, b)
	}
	sink = nil
	runtime.GC() // the burst is garbage now; the pages are still held
	before := released()
	for released() < before+128<<20 {
		if ctx.Err() != nil {
			t.Fatalf("released %d MiB more in 20s, want at least 128", int64(released()-before)>>20)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestStepRules drives the decisions with a fake heap and hand-back.
func TestStepRules(t *testing.T) {
	conns := 100
	cfg := Config{Quiet: 2 * time.Second, MinGap: 5 * time.Second, Slack: 64, Conns: func() int { return conns }}
	cfg.defaults()
	now := time.Now()
	h := heap{gcs: 7, retained: 1000}
	tr := newTrimmer(cfg, now)
	tr.read = func() heap { return h }
	tr.gcs, tr.baseHeap, tr.peakConns = h.gcs, h.retained, conns
	calls := 0
	tr.free = func() { calls++; h.gcs++; h.retained = 500 }
	step := func(at time.Duration, want bool, why string) {
		t.Helper()
		if got := tr.step(now.Add(at)); got != want {
			t.Fatalf("at %v: handed back %v, want %v (%s)", at, got, want, why)
		}
	}
	step(10*time.Second, false, "nothing grew and no connection closed, however quiet")
	h.retained = 1000 + 250
	step(11*time.Second, true, "the heap grew by a quarter (more than Slack)")
	conns = 75
	step(13*time.Second, false, "within MinGap")
	conns = 80
	step(20*time.Second, false, "fewer than a quarter closed")
	conns = 75
	h.gcs++ // a collection: the server allocates
	step(21*time.Second, false, "right after a collection")
	step(23*time.Second, true, "a quarter closed, quiet again")
	conns = 0
	step(40*time.Second, true, "every connection closed")
	step(50*time.Second, false, "idle: handed back already")
	step(60*time.Second, false, "idle: handed back already")
	h.retained = 500 + 100
	step(70*time.Second, false, "grew by Slack but not by a quarter")
	h.retained = 500 + 125
	step(71*time.Second, true, "grew by a quarter")
	conns = 8
	step(80*time.Second, false, "a burst is open")
	conns = 0
	step(81*time.Second, true, "the burst closed: a quarter of its peak and more")
	if calls != 5 {
		t.Fatalf("%d hand-backs, want 5", calls)
	}
}
