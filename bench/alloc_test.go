package bench

import (
	"testing"
	"time"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/frame"
)

// TestNoAllocationPerMessage checks the steady state of a connection's
// exchange — fill the window, take the echoes, record them — allocates
// nothing, for raw and framed messages, ping-pong and pipeline.
func TestNoAllocationPerMessage(t *testing.T) {
	for _, tc := range []struct {
		frame string
		depth int
	}{{"raw", 1}, {"raw", 16}, {"line", 16}, {"len:4", 1}, {"delim:\\r\\n", 16}, {"fixed:64", 8}} {
		t.Run(tc.frame+"/depth="+itoa(tc.depth), func(t *testing.T) {
			spec, err := frame.Parse(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			ep, _ := endpoint.Parse("tcp://127.0.0.1:9")
			mode := Pipeline
			if tc.depth == 1 {
				mode = Echo
			}
			s, err := prepare(Config{Endpoint: ep, Mode: mode, Depth: tc.depth, Frame: spec, Verify: true, Size: 64})
			if err != nil {
				t.Fatal(err)
			}
			r := newRecorder()
			r.phase.Store(phaseMeasure)
			ss := newSession(s, r, r.shard(0), clock{base: time.Now()}, 0, 0)
			echo := make([]byte, 0, 64<<10)
			step := func() {
				out := ss.fill(ss.clk.now())
				echo = append(echo[:0], out...)
				// The echo arrives in two pieces, split mid-message.
				half := len(echo) / 2
				if err := ss.received(echo[:half], ss.clk.now()); err != nil {
					t.Fatal(err)
				}
				if err := ss.received(echo[half:], ss.clk.now()); err != nil {
					t.Fatal(err)
				}
			}
			step() // the decoder's buffer grows once
			if n := testing.AllocsPerRun(1000, step); n != 0 {
				t.Errorf("%v allocations per round of %d messages, want 0", n, tc.depth)
			}
			if msgs, _ := r.messages(); msgs != 1001*int64(tc.depth)+int64(tc.depth) {
				t.Errorf("recorded %d messages, want %d", msgs, 1002*tc.depth)
			}
		})
	}
}

func BenchmarkSessionRoundTrip(b *testing.B) {
	ep, _ := endpoint.Parse("tcp://127.0.0.1:9")
	for _, depth := range []int{1, 16} {
		b.Run("depth="+itoa(depth), func(b *testing.B) {
			s, err := prepare(Config{Endpoint: ep, Mode: Pipeline, Depth: depth, Size: 64, Verify: true})
			if err != nil {
				b.Fatal(err)
			}
			r := newRecorder()
			r.phase.Store(phaseMeasure)
			ss := newSession(s, r, r.shard(0), clock{base: time.Now()}, 0, 0)
			echo := make([]byte, 0, 64<<10)
			b.ReportAllocs()
			b.SetBytes(int64(depth * 64))
			for b.Loop() {
				echo = append(echo[:0], ss.fill(ss.clk.now())...)
				if err := ss.received(echo, ss.clk.now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
