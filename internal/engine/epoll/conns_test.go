//go:build linux

package epoll

import (
	"net"
	"net/netip"
	"testing"
)

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

func TestAddrCacheShares(t *testing.T) {
	var a addrCache
	calls := 0
	local := netip.MustParseAddrPort("127.0.0.1:7")
	mk := func() net.Addr { calls++; return net.TCPAddrFromAddrPort(local) }
	first := a.shareIP(local, mk)
	if again := a.shareIP(local, mk); again != first || calls != 1 {
		t.Fatalf("an equal local address made new endpoints (%d makes)", calls)
	}
	if other := a.shareIP(netip.MustParseAddrPort("127.0.0.2:7"), mk); other == first || calls != 2 {
		t.Fatal("another local address shared the endpoints")
	}
	ul := &net.UnixAddr{Name: "/tmp/s", Net: "unix"}
	un := &net.UnixAddr{Name: "@", Net: "unix"}
	u := a.share(ul, un)
	if a.share(&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, &net.UnixAddr{Name: "@", Net: "unix"}) != u {
		t.Fatal("equal Unix addresses made new endpoints")
	}
	if a.share(ul, &net.UnixAddr{Name: "/tmp/peer", Net: "unix"}) == u {
		t.Fatal("a named peer shared the unnamed peers' endpoints")
	}
	// Go's accept and the loops' agree on the key: the conn's own fill.
	var c1, c2 conn
	a.fill(&c1, net.TCPAddrFromAddrPort(local), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9).To4(), Port: 5})
	a.fill(&c2, net.TCPAddrFromAddrPort(local), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 8).To4(), Port: 6})
	if c1.ep != c2.ep || c1.RemoteAddr().String() != "127.0.0.9:5" || c2.LocalAddr().String() != "127.0.0.1:7" {
		t.Fatalf("fill: shared %v, remote %v, local %v", c1.ep == c2.ep, c1.RemoteAddr(), c2.LocalAddr())
	}
}
