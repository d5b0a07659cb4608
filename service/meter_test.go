package service_test

import (
	"testing"
	"time"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/metrics"
	"github.com/sockit/sockit/service"
)

// TestMeterCountsEveryService: with a Meter, each service counts what it
// received and sent, message by message (framing excluded), and the
// handling histogram counts the messages received.
func TestMeterCountsEveryService(t *testing.T) {
	for _, tt := range []struct {
		name      string
		input     string
		in, out   uint64 // messages
		inB, outB uint64 // bytes
		histogram uint64
	}{
		{"echo", "ab\ncde\n", 2, 2, 5, 5, 2},
		{"upper", "ab\n", 1, 1, 2, 2, 1},
		{"discard", "ab\ncd\n", 2, 0, 4, 0, 2},
		{"hello", "x\n", 1, 2, 1, len64("Welcome!") + len64("Hello, x!"), 1},
		{"reply", "Bye\n", 1, 1, 3, 3, 1},
		{"daytime", "", 0, 1, 0, len64(service.DefaultTimeFormat), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New()
			svc := mustNew(t, tt.name, service.Config{Frame: frame.Spec{Kind: frame.Line}, Meter: m,
				Now: func() time.Time { return time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC) }})
			c := open(svc, "tcp")
			if tt.input != "" {
				c.Data([]byte(tt.input))
			}
			s := m.Snapshot()
			if s.MessagesIn != tt.in || s.MessagesOut != tt.out || s.BytesIn != tt.inB || s.BytesOut != tt.outB || s.Count != tt.histogram {
				t.Fatalf("snapshot %+v; want in %d/%dB, out %d/%dB, histogram %d", s, tt.in, tt.inB, tt.out, tt.outB, tt.histogram)
			}
		})
	}
	t.Run("chargen", func(t *testing.T) {
		m := metrics.New()
		open(mustNew(t, "chargen", service.Config{Meter: m}), "tcp")
		s := m.Snapshot()
		if s.MessagesOut == 0 || s.MessagesOut%95 != 0 || s.BytesOut != s.MessagesOut*74 {
			t.Fatalf("chargen snapshot %+v: want whole periods of 95 lines of 74 bytes", s)
		}
	})
	t.Run("no meter", func(t *testing.T) {
		c := open(mustNew(t, "echo", service.Config{}), "tcp")
		c.Data([]byte("x"))
		wantOut(t, c, "x", "unmetered echo")
	})
}

func len64(s string) uint64 { return uint64(len(s)) }
