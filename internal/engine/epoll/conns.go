//go:build linux

package epoll

// connTable holds a loop's connections by slot: each registered connection
// has a slot, which its epoll registration carries in the event's data
// (EpollEvent.Pad) beside its descriptor, so an event finds its connection
// with an index instead of a map lookup, and the table costs 8 bytes per
// connection (a map costs about 30). Freed slots are reused first. Touched
// only by the loop's goroutine.
type connTable struct {
	slots []*conn
	free  []int32
	n     int
}

// add gives c a slot.
func (t *connTable) add(c *conn) {
	if k := len(t.free); k > 0 {
		c.slot = t.free[k-1]
		t.free = t.free[:k-1]
		t.slots[c.slot] = c
	} else {
		c.slot = int32(len(t.slots))
		t.slots = append(t.slots, c)
	}
	t.n++
}

// remove frees c's slot; removing a connection twice does nothing.
func (t *connTable) remove(c *conn) {
	if c.slot < 0 || int(c.slot) >= len(t.slots) || t.slots[c.slot] != c {
		return
	}
	t.slots[c.slot] = nil
	t.free = append(t.free, c.slot)
	c.slot = -1
	t.n--
	if t.n == 0 { // every connection gone: give the arrays back
		t.slots, t.free = nil, nil
	}
}

// lookup returns the connection of an event: slot and descriptor must both
// match. A connection closed earlier in the same batch keeps its slot until
// its end task runs, after the batch, so its events still find it and
// handle drops them (closed); the descriptor check is a second guard.
func (t *connTable) lookup(slot, fd int32) *conn {
	if slot < 0 || int(slot) >= len(t.slots) {
		return nil
	}
	if c := t.slots[slot]; c != nil && int32(c.fd) == fd {
		return c
	}
	return nil
}

func (t *connTable) len() int { return t.n }

// all returns the connections now in the table, for the rare walks over
// every connection (shutdown, abort, a failed loop); the table may change
// while the caller goes through them.
func (t *connTable) all() []*conn {
	cs := make([]*conn, 0, t.n)
	for _, c := range t.slots {
		if c != nil {
			cs = append(cs, c)
		}
	}
	return cs
}
