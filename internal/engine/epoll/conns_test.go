//go:build linux

package epoll

import "testing"

func TestConnTable(t *testing.T) {
	var tab connTable
	a, b, c := &conn{fd: 10}, &conn{fd: 11}, &conn{fd: 12}
	tab.add(a)
	tab.add(b)
	if tab.len() != 2 || a.slot != 0 || b.slot != 1 {
		t.Fatalf("len %d, slots %d %d", tab.len(), a.slot, b.slot)
	}
	if got := tab.lookup(b.slot, 11); got != b {
		t.Fatalf("lookup(b) = %p, want b", got)
	}
	if got := tab.lookup(b.slot, 10); got != nil {
		t.Fatal("a slot with another descriptor must not match")
	}
	if tab.lookup(-1, 10) != nil || tab.lookup(7, 10) != nil {
		t.Fatal("an out-of-range slot must find nothing")
	}
	tab.remove(a)
	tab.remove(a) // twice: nothing
	if tab.len() != 1 || tab.lookup(0, 10) != nil {
		t.Fatalf("after remove: len %d, lookup %p", tab.len(), tab.lookup(0, 10))
	}
	tab.add(c) // takes a's freed slot
	if c.slot != 0 || tab.lookup(0, 12) != c || tab.len() != 2 {
		t.Fatalf("freed slot not reused: c.slot %d", c.slot)
	}
	if all := tab.all(); len(all) != 2 {
		t.Fatalf("all = %d connections, want 2", len(all))
	}
	tab.remove(b)
	tab.remove(c)
	if tab.len() != 0 || tab.slots != nil || tab.free != nil {
		t.Fatalf("an empty table keeps arrays: %d slots, %d free", len(tab.slots), len(tab.free))
	}
}
