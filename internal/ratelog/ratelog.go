// Package ratelog logs a repeated event at most once per interval, so that
// a flood of bad peers cannot flood the log: the events left out are
// counted and reported with the next line that is written.
package ratelog

import (
	"log/slog"
	"sync"
	"time"
)

// Interval is how often a Limiter writes at most.
const Interval = time.Second

// Limiter writes at most one line per Interval. The zero value is ready to
// use; it is safe for concurrent use.
type Limiter struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

// Warn logs msg at warn level unless a line was written less than Interval
// ago, in which case it only counts it. A written line carries
// "suppressed", the count of the lines left out since the last one.
func (r *Limiter) Warn(l *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < Interval {
		r.skipped++
		r.mu.Unlock()
		return
	}
	skipped := r.skipped
	r.last, r.skipped = now, 0
	r.mu.Unlock()
	if skipped > 0 {
		args = append(args, "suppressed", skipped)
	}
	l.Warn(msg, args...)
}
