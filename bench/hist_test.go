package bench

import (
	"math/rand/v2"
	"slices"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// TestHistIndex checks the shards' lock-free histogram against
// hdrhistogram-go: the same values recorded in both give the same counts,
// and the merged histogram the same percentiles.
func TestHistIndex(t *testing.T) {
	var vals []int64
	for v := int64(histLowest); v <= 5000; v++ {
		vals = append(vals, v)
	}
	for k := 1; k < 63; k++ {
		for _, v := range []int64{1<<k - 1, 1 << k, 1<<k + 1, 3 << (k - 1)} {
			if v >= histLowest && v <= histHighest {
				vals = append(vals, v)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		vals = append(vals, min(int64(1)<<rng.IntN(42)+rng.Int64N(1<<20), histHighest))
	}
	vals = append(vals, histHighest)

	want := hdrhistogram.New(histLowest, histHighest, histDigits)
	r := newRecorder()
	for i, v := range vals {
		c := int64(1 + i%7)
		if err := want.RecordValues(v, c); err != nil {
			t.Fatalf("hdrhistogram.RecordValues(%d): %v", v, err)
		}
		r.shard(i).recordLatency(v, c)
	}
	got := r.merged()
	wc, gc := want.Export().Counts, got.Export().Counts
	if len(wc) != len(gc) {
		t.Fatalf("counts length %d, hdrhistogram's %d", len(gc), len(wc))
	}
	if !slices.Equal(wc, gc) {
		for i := range wc {
			if wc[i] != gc[i] {
				t.Fatalf("count %d is %d, hdrhistogram's %d", i, gc[i], wc[i])
			}
		}
	}
	if got.TotalCount() != want.TotalCount() {
		t.Errorf("total %d, want %d", got.TotalCount(), want.TotalCount())
	}
	for _, q := range []float64{0, 50, 90, 99, 99.9, 100} {
		if g, w := got.ValueAtQuantile(q), want.ValueAtQuantile(q); g != w {
			t.Errorf("p%v = %d, want %d", q, g, w)
		}
	}
	if got.Min() != want.Min() || got.Max() != want.Max() {
		t.Errorf("min/max %d/%d, want %d/%d", got.Min(), got.Max(), want.Min(), want.Max())
	}
	// Out-of-range latencies are clamped as before.
	r2 := newRecorder()
	r2.shard(0).recordLatency(-5, 1)
	r2.shard(0).recordLatency(2*histHighest, 1)
	h := r2.merged()
	if h.TotalCount() != 2 || h.Min() != histLowest || h.Max() < histHighest {
		t.Errorf("clamped: total %d min %d max %d", h.TotalCount(), h.Min(), h.Max())
	}
}
