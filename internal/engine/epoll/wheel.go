//go:build linux

package epoll

import (
	"math"
	"time"
)

// A loop's connection timeouts (read and idle) run on a hashed timing wheel:
// arming, re-arming (the read timeout, at every message start) and removing
// a timer are O(1), where the heap that holds AfterFunc timers costs
// O(log n) per change. A timeout fires within one tick (wheelTick) after its
// time, never before.
//
// The wheel keeps a lower bound on its earliest timer (hint): the loop sleeps
// until then, and nothing is scanned before. Re-arming a timer later (what
// read and idle timeouts do) leaves the bound where it was, so a loop may
// wake at a bound that no timer has any more: it then scans forward, at most
// one revolution, for the next tick that has a timer due, which becomes the
// new bound.
const (
	wheelTick  = 10 * time.Millisecond
	wheelSlots = 512 // one revolution: 5.12 s
)

type wheel struct {
	slots [wheelSlots]*timer // each the head of a doubly linked list
	base  time.Time          // the time of tick 0
	cur   int64              // every timer due at or before tick cur has fired
	hint  int64              // no timer is due before this tick
	n     int
	due   []*timer // scratch for advance
}

func newWheel(now time.Time) *wheel {
	return &wheel{base: now, hint: math.MaxInt64}
}

// tick returns the tick of t, rounded down (up when ceil).
func (w *wheel) tick(t time.Time, ceil bool) int64 {
	d := t.Sub(w.base)
	if d < 0 {
		return 0
	}
	k := int64(d / wheelTick)
	if ceil && d%wheelTick != 0 {
		k++
	}
	return k
}

// add schedules t at when (t must not be in the wheel).
func (w *wheel) add(t *timer, when time.Time) {
	due := w.tick(when, true)
	if due <= w.cur {
		due = w.cur + 1
	}
	t.wtick = due
	s := &w.slots[due%wheelSlots]
	t.wprev, t.wnext = nil, *s
	if *s != nil {
		(*s).wprev = t
	}
	*s = t
	t.inWheel = true
	w.n++
	if due < w.hint {
		w.hint = due
	}
}

// remove takes t out of the wheel if it is there.
func (w *wheel) remove(t *timer) {
	if !t.inWheel {
		return
	}
	if t.wprev != nil {
		t.wprev.wnext = t.wnext
	} else {
		w.slots[t.wtick%wheelSlots] = t.wnext
	}
	if t.wnext != nil {
		t.wnext.wprev = t.wprev
	}
	t.wprev, t.wnext, t.inWheel = nil, nil, false
	w.n--
	if w.n == 0 {
		w.hint = math.MaxInt64
	}
}

// next returns when the loop must wake for the wheel, or the zero time.
func (w *wheel) next() time.Time {
	if w.n == 0 {
		return time.Time{}
	}
	return w.base.Add(time.Duration(w.hint) * wheelTick)
}

// advance fires (through fire) every timer due at or before now, in the
// order of their ticks within one slot's pass, and moves the bound on.
func (w *wheel) advance(now time.Time, fire func(*timer)) {
	target := w.tick(now, false)
	if target <= w.cur {
		return
	}
	if target < w.hint { // nothing is due yet: no slot needs a look
		w.cur = target
		return
	}
	steps := min(target-w.cur, wheelSlots) // a longer gap: each slot once
	due := w.due[:0]
	for k := int64(1); k <= steps; k++ {
		for t := w.slots[(w.cur+k)%wheelSlots]; t != nil; {
			next := t.wnext
			if t.wtick <= target {
				w.remove(t)
				due = append(due, t)
			}
			t = next
		}
	}
	w.cur = target
	w.rescan()
	for i, t := range due {
		if !t.inWheel { // an earlier callback of this batch may have re-armed it
			fire(t) // may re-arm t, or others
		}
		due[i] = nil
	}
	w.due = due[:0]
}

// rescan sets the bound to the next tick with a timer due, looking at most
// one revolution ahead (beyond it, the bound is the end of the revolution).
func (w *wheel) rescan() {
	if w.n == 0 {
		w.hint = math.MaxInt64
		return
	}
	for k := int64(1); k <= wheelSlots; k++ {
		tick := w.cur + k
		for t := w.slots[tick%wheelSlots]; t != nil; t = t.wnext {
			if t.wtick == tick {
				w.hint = tick
				return
			}
		}
	}
	w.hint = w.cur + wheelSlots
}
