package metrics

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestBucketOf(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0}, {time.Microsecond, 0}, {time.Microsecond + 1, 1}, {2 * time.Microsecond, 1},
		{3 * time.Microsecond, 2}, {4 * time.Microsecond, 2}, {5 * time.Microsecond, 3},
		{time.Millisecond, 10}, {BucketBound(20), 20}, {BucketBound(20) + 1, Buckets}, {time.Hour, Buckets},
	} {
		if got := bucketOf(tt.d); got != tt.want {
			t.Errorf("bucketOf(%v) = %d, want %d", tt.d, got, tt.want)
		}
		if tt.want < Buckets && tt.d > BucketBound(tt.want) {
			t.Errorf("%v is above its bucket's bound %v", tt.d, BucketBound(tt.want))
		}
		if tt.want > 0 && tt.want < Buckets && tt.d <= BucketBound(tt.want-1) {
			t.Errorf("%v belongs in an earlier bucket than %d", tt.d, tt.want)
		}
	}
}

// TestSnapshotSumsEveryShard: connections counting concurrently into
// their shards add up exactly.
func TestSnapshotSumsEveryShard(t *testing.T) {
	m := New()
	const conns, per = 32, 1000
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := m.Shard()
			for i := range per {
				out := 10
				if i%2 == 1 {
					out = -1 // no reply
				}
				s.Message(4, out, 3*time.Microsecond)
			}
			s.Sent(1, 7)
			s.Pause()
		}()
	}
	wg.Wait()
	s := m.Snapshot()
	want := Snapshot{
		MessagesIn: conns * per, MessagesOut: conns*per/2 + conns,
		BytesIn: 4 * conns * per, BytesOut: 10*conns*per/2 + 7*conns, Pauses: conns,
		Count: conns * per, Sum: conns * per * 3 * time.Microsecond,
	}
	want.Buckets[2] = conns * per
	if s != want {
		t.Fatalf("snapshot\n %+v\nwant\n %+v", s, want)
	}
}

func TestCollector(t *testing.T) {
	m := New()
	m.Shard().Message(5, 5, 10*time.Microsecond)
	m.Shard().Message(5, -1, 2*time.Second)
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector(m, prometheus.Labels{"service": "echo", "endpoint": "tcp://127.0.0.1:1", "engine": "epoll"}))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			if len(mt.GetLabel()) != 3 {
				t.Fatalf("%s has labels %v", f.GetName(), mt.GetLabel())
			}
			switch {
			case mt.Counter != nil:
				got[f.GetName()] = mt.Counter.GetValue()
			case mt.Histogram != nil:
				h := mt.Histogram
				got[f.GetName()] = float64(h.GetSampleCount())
				b := h.GetBucket()
				if len(b) != Buckets || b[4].GetUpperBound() != 16e-6 || b[3].GetCumulativeCount() != 0 || b[4].GetCumulativeCount() != 1 || b[Buckets-1].GetCumulativeCount() != 1 {
					t.Fatalf("buckets %v", b)
				}
				if s := h.GetSampleSum(); s < 2 || s > 2.001 {
					t.Fatalf("sum %v", s)
				}
			}
		}
	}
	want := map[string]float64{
		"sockit_messages_received_total": 2, "sockit_messages_sent_total": 1,
		"sockit_received_bytes_total": 10, "sockit_sent_bytes_total": 5,
		"sockit_write_pauses_total": 0, "sockit_message_handling_seconds": 2,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// BenchmarkShardMessage is the cost of counting one message, with every
// core counting into shards of its own connections.
func BenchmarkShardMessage(b *testing.B) {
	m := New()
	b.RunParallel(func(pb *testing.PB) {
		s := m.Shard()
		for pb.Next() {
			s.Message(64, 64, 5*time.Microsecond)
		}
	})
}
