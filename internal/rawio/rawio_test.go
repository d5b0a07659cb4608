//go:build linux

package rawio

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func pair(t *testing.T, typ int) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func TestReadWrite(t *testing.T) {
	a, b := pair(t, unix.SOCK_STREAM)
	buf := make([]byte, 64)
	if _, err := Read(b, buf); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read of an empty non-blocking socket: %v, want EAGAIN", err)
	}
	if n, err := Write(a, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if n, err := Read(b, buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read: %d %q %v", n, buf[:n], err)
	}
	if err := unix.Close(a); err != nil {
		t.Fatal(err)
	}
	if n, err := Read(b, buf); n != 0 || err != nil {
		t.Fatalf("read at EOF: %d, %v; want 0, nil", n, err)
	}
	if _, err := Write(b, []byte("x")); !errors.Is(err, unix.EPIPE) {
		t.Fatalf("write to a closed peer: %v, want EPIPE", err)
	}
}

func TestWritevSkipsEmptyAndTakesLongLists(t *testing.T) {
	for _, count := range []int{1, 3, maxIov, maxIov + 1, 300} {
		a, b := pair(t, unix.SOCK_STREAM)
		var bufs [][]byte
		var want []byte
		for i := 0; i < count; i++ {
			bufs = append(bufs, nil, []byte{byte(i), byte(i >> 8)})
			want = append(want, byte(i), byte(i>>8))
		}
		n, err := Writev(a, bufs)
		if n != len(want) || err != nil {
			t.Fatalf("%d buffers: writev %d, %v; want %d", count, n, err, len(want))
		}
		got := make([]byte, 4096)
		m, err := Read(b, got)
		if err != nil || !bytes.Equal(got[:m], want) {
			t.Fatalf("%d buffers: read %d bytes, %v", count, m, err)
		}
	}
	a, _ := pair(t, unix.SOCK_STREAM)
	if n, err := Writev(a, [][]byte{nil, {}}); n != 0 || err != nil {
		t.Fatalf("writev of nothing: %d, %v", n, err)
	}
}

func TestRecvTruncReportsTheRecordsLength(t *testing.T) {
	a, b := pair(t, unix.SOCK_SEQPACKET)
	if _, err := Write(a, bytes.Repeat([]byte("r"), 100)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if n, err := RecvTrunc(b, buf); n != 100 || err != nil {
		t.Fatalf("RecvTrunc: %d, %v; want 100", n, err)
	}
	if _, err := RecvTrunc(b, buf); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("RecvTrunc with nothing queued: %v, want EAGAIN", err)
	}
}

func TestEpollPoll(t *testing.T) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	a, b := pair(t, unix.SOCK_STREAM)
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(b)}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, &ev); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 8)
	if n, err := EpollPoll(ep, events); n != 0 || err != nil {
		t.Fatalf("poll with nothing ready: %d, %v", n, err)
	}
	if _, err := Write(a, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := EpollPoll(ep, events); n != 1 || err != nil || int(events[0].Fd) != b {
		t.Fatalf("poll: %d, %v, fd %d; want 1 event on %d", n, err, events[0].Fd, b)
	}
	if _, err := EpollPoll(ep, events[:0]); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("poll with no room for events: %v, want EINVAL", err)
	}
}

func TestNoAllocations(t *testing.T) {
	a, b := pair(t, unix.SOCK_STREAM)
	msg, buf := []byte("ping"), make([]byte, 16)
	bufs := [][]byte{msg, msg}
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = Write(a, msg)
		_, _ = Writev(a, bufs)
		_, _ = Read(b, buf)
		_, _ = Read(b, buf)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round, want 0", allocs)
	}
}

func TestAcceptAndAddresses(t *testing.T) {
	for _, tc := range []struct {
		network, addr string
		kind          uint8
	}{
		{"tcp4", "127.0.0.1:0", 4},
		{"tcp6", "[::1]:0", 16},
	} {
		ln, err := net.Listen(tc.network, tc.addr)
		if err != nil {
			t.Skipf("%s: %v", tc.network, err)
		}
		defer ln.Close()
		lfd := dupListener(t, ln)
		var rsa unix.RawSockaddrAny
		if _, err := Accept4(lfd, &rsa); !errors.Is(err, unix.EAGAIN) {
			t.Fatalf("%s: accept with nothing pending: %v, want EAGAIN", tc.network, err)
		}
		c, err := net.DialTimeout(tc.network, ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var fd int
		for deadline := time.Now().Add(5 * time.Second); ; {
			fd, err = Accept4(lfd, &rsa)
			if err != unix.EAGAIN || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%s: accept: %v", tc.network, err)
		}
		defer unix.Close(fd)
		if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
			t.Fatalf("%s: accepted socket is blocking", tc.network)
		}
		ip, port, kind, scope := AddrPort(&rsa)
		peer := netip.AddrPortFrom(netip.AddrFrom16(ip), port)
		if kind == 4 {
			peer = netip.AddrPortFrom(netip.AddrFrom16(ip).Unmap(), port)
		}
		if kind != tc.kind || scope != 0 || peer.String() != c.LocalAddr().String() {
			t.Fatalf("%s: peer %v kind %d scope %d; the client is %v", tc.network, peer, kind, scope, c.LocalAddr())
		}
		var lsa unix.RawSockaddrAny
		if err := Getsockname(fd, &lsa); err != nil {
			t.Fatal(err)
		}
		lip, lport, lkind, _ := AddrPort(&lsa)
		local := netip.AddrPortFrom(netip.AddrFrom16(lip), lport)
		if lkind == 4 {
			local = netip.AddrPortFrom(netip.AddrFrom16(lip).Unmap(), lport)
		}
		if local.String() != ln.Addr().String() {
			t.Fatalf("%s: local %v, want %v", tc.network, local, ln.Addr())
		}
	}
}

func TestUnixPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lfd := dupListener(t, ln)
	accept := func() (int, unix.RawSockaddrAny) {
		t.Helper()
		var rsa unix.RawSockaddrAny
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			fd, err := Accept4(lfd, &rsa)
			if err == nil {
				return fd, rsa
			}
			if err != unix.EAGAIN || time.Now().After(deadline) {
				t.Fatal(err)
			}
		}
	}
	unnamed, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer unnamed.Close()
	fd, rsa := accept()
	unix.Close(fd)
	if p, ok := UnixPath(&rsa); !ok || p != "" {
		t.Fatalf("unnamed peer: %q, %v; want \"\", true", p, ok)
	}
	named := filepath.Join(t.TempDir(), "client.sock")
	d := net.Dialer{LocalAddr: &net.UnixAddr{Name: named, Net: "unix"}}
	nc, err := d.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fd, rsa = accept()
	unix.Close(fd)
	if p, ok := UnixPath(&rsa); !ok || p != named {
		t.Fatalf("named peer: %q, %v; want %q", p, ok, named)
	}
	var inet unix.RawSockaddrAny
	inet.Addr.Family = unix.AF_INET
	if _, ok := UnixPath(&inet); ok {
		t.Fatal("UnixPath of an AF_INET address reported ok")
	}
	if _, _, kind, _ := AddrPort(&rsa); kind != 0 {
		t.Fatal("AddrPort of an AF_UNIX address gave an IP")
	}
}

// dupListener returns a non-blocking duplicate of ln's descriptor, closed
// when the test ends.
func dupListener(t *testing.T, ln net.Listener) int {
	t.Helper()
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || derr != nil {
		t.Fatal(err, derr)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestSocketOfTakesOnlyGosOwnSockets(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if SocketOf(c) == nil {
		t.Fatal("a *net.TCPConn has no raw socket")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if SocketOf(a) != nil {
		t.Fatal("net.Pipe has a raw socket")
	}
	if SocketOf(struct{ net.Conn }{c}) != nil {
		t.Fatal("a wrapper of a TCP connection was taken for Go's own socket")
	}
	if SocketOf(socketer{c}) == nil {
		t.Fatal("a Socketer (a connection past its PROXY header) was not looked through")
	}
	if SocketOf(socketer{a}) != nil {
		t.Fatal("a Socketer over net.Pipe has a raw socket")
	}
}

// socketer is a Socketer as endpoint/proxy's Conn is one.
type socketer struct{ net.Conn }

func (s socketer) Socket() net.Conn { return s.Conn }
