//go:build linux

package rawio

import (
	"bytes"
	"errors"
	"testing"

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
