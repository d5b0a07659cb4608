//go:build linux

package epoll

import (
	"container/heap"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// The wheel against a model: timers armed, re-armed and removed at random;
// at each step, exactly the timers whose time has come fire, never early
// and at most one tick late, and the wake-up time it asks for is never
// later than the earliest timer.
func TestWheelFiresOnTimeAgainstAModel(t *testing.T) {
	base := time.Unix(1_000_000, 0)
	w := newWheel(base)
	rng := rand.New(rand.NewPCG(1, 2))
	timers := make([]*timer, 300)
	when := map[*timer]time.Time{}
	for i := range timers {
		timers[i] = &timer{conn: true, index: -1}
	}
	now := base
	for step := 0; step < 20000; step++ {
		switch t0 := timers[rng.IntN(len(timers))]; rng.IntN(4) {
		case 0, 1: // (re)arm, up to 12 s ahead: beyond one revolution too
			w.remove(t0)
			at := now.Add(time.Duration(rng.Int64N(int64(12 * time.Second))))
			w.add(t0, at)
			when[t0] = at
		case 2:
			w.remove(t0)
			delete(when, t0)
		}
		if next := w.next(); len(when) > 0 {
			earliest := time.Time{}
			for _, at := range when {
				if earliest.IsZero() || at.Before(earliest) {
					earliest = at
				}
			}
			if next.IsZero() || next.After(earliest.Add(wheelTick)) {
				t.Fatalf("step %d: wheel wakes at %v, the earliest timer is at %v", step, next.Sub(base), earliest.Sub(base))
			}
		} else if !next.IsZero() {
			t.Fatalf("step %d: an empty wheel asks to wake at %v", step, next.Sub(base))
		}
		now = now.Add(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
		var fired []*timer
		w.advance(now, func(t0 *timer) { fired = append(fired, t0) })
		for _, t0 := range fired {
			at, ok := when[t0]
			if !ok {
				t.Fatalf("step %d: a timer fired that was not armed", step)
			}
			if now.Before(at) {
				t.Fatalf("step %d: a timer fired %v early", step, at.Sub(now))
			}
			delete(when, t0)
		}
		for t0, at := range when {
			// Not fired: its time must not have come, up to the tick.
			if !now.Before(at.Add(wheelTick)) {
				t.Fatalf("step %d: a timer due at %v did not fire by %v", step, at.Sub(base), now.Sub(base))
			}
			_ = t0
		}
		if w.n != len(when) {
			t.Fatalf("step %d: the wheel holds %d timers, the model %d", step, w.n, len(when))
		}
	}
}

// A timer that fires re-arms itself (the idle check does): it goes back on
// the wheel and fires again, a tick or more later.
func TestWheelTimerReArmedFromItsCallback(t *testing.T) {
	base := time.Unix(1_000_000, 0)
	w := newWheel(base)
	t0 := &timer{conn: true, index: -1}
	w.add(t0, base.Add(25*time.Millisecond))
	count := 0
	for now := base; now.Before(base.Add(time.Second)); now = now.Add(5 * time.Millisecond) {
		w.advance(now, func(tt *timer) {
			count++
			w.add(tt, now.Add(25*time.Millisecond))
		})
	}
	if count < 30 || count > 40 {
		t.Fatalf("fired %d times in 1 s at a 25 ms period (one tick of slack), want 30-40", count)
	}
}

// BenchmarkTimerReset: re-arming one of n connection timers, as the read
// timeout does at each message start, on the wheel and on a heap.
func BenchmarkTimerReset(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run("wheel/n="+strconv.Itoa(n), func(b *testing.B) {
			now := time.Now()
			w := newWheel(now)
			ts := make([]*timer, n)
			for i := range ts {
				ts[i] = &timer{conn: true, index: -1}
				w.add(ts[i], now.Add(time.Duration(i)*time.Millisecond))
			}
			i := 0
			for b.Loop() {
				t0 := ts[i%n]
				w.remove(t0)
				w.add(t0, now.Add(30*time.Second+time.Duration(i)))
				i++
			}
		})
		b.Run("heap/n="+strconv.Itoa(n), func(b *testing.B) {
			now := time.Now()
			var h timerHeap
			ts := make([]*timer, n)
			for i := range ts {
				ts[i] = &timer{index: -1, when: now.Add(time.Duration(i) * time.Millisecond)}
				heap.Push(&h, ts[i])
			}
			i := 0
			for b.Loop() {
				t0 := ts[i%n]
				t0.when = now.Add(30*time.Second + time.Duration(i))
				heap.Fix(&h, t0.index)
				i++
			}
		})
	}
}
