package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLimiterWritesOncePerIntervalAndCounts(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	var r Limiter
	for i := 0; i < 5; i++ {
		r.Warn(l, "flood", "i", i)
	}
	if got := strings.Count(buf.String(), "msg=flood"); got != 1 {
		t.Fatalf("%d lines within one interval, want 1:\n%s", got, buf.String())
	}
	// Move the last write back past the interval instead of sleeping.
	r.mu.Lock()
	r.last = r.last.Add(-Interval)
	r.mu.Unlock()
	r.Warn(l, "flood", "i", 5)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "i=5") || !strings.Contains(lines[1], "suppressed=4") {
		t.Fatalf("second line %q, want i=5 with suppressed=4", lines[len(lines)-1])
	}
	if strings.Contains(lines[0], "suppressed") {
		t.Fatalf("first line %q counts lines that were not left out", lines[0])
	}
}
