//go:build unix

package bench

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// sockBuf reads a socket buffer size option of c.
func sockBuf(t *testing.T, c net.Conn, opt int) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}

// rawPair returns a raw stream dialed to a fresh loopback listener and the
// server's side of it.
func rawPair(t *testing.T) (*rawStream, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	s, ok := fastStream(c).(*rawStream)
	if !ok {
		t.Fatal("a TCP connection has no raw stream")
	}
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	_ = sc.SetDeadline(time.Now().Add(10 * time.Second))
	return s, sc
}

// TestExchangeRoundTrips: exchange writes, then waits for and reads the
// answer, round after round (the wait is armed before the write, so an
// answer that comes back at once is not missed).
func TestExchangeRoundTrips(t *testing.T) {
	s, sc := rawPair(t)
	go func() { _, _ = io.Copy(sc, sc) }()
	buf := make([]byte, 64)
	for i := 0; i < 2000; i++ {
		msg := []byte{byte(i), byte(i >> 8), 'x'}
		got := 0
		n, err := s.exchange(msg, buf)
		for ; err == nil; n, err = s.Read(buf[got:]) {
			got += n
			if got >= len(msg) {
				break
			}
		}
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if !bytes.Equal(buf[:got], msg) {
			t.Fatalf("round %d: got %q, want %q", i, buf[:got], msg)
		}
	}
}

// TestExchangeFinishesAWriteThatFillsTheSocket: a message larger than the
// socket buffers makes the write meet EAGAIN; exchange finishes it with
// Write and then reads the answer.
func TestExchangeFinishesAWriteThatFillsTheSocket(t *testing.T) {
	s, sc := rawPair(t)
	_ = s.Conn.(*net.TCPConn).SetWriteBuffer(64 << 10)
	_ = sc.(*net.TCPConn).SetReadBuffer(64 << 10)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	// Set buffers are locked (no autotuning): the 4 MiB cannot fit in both
	// of them while the peer sleeps, so the write must meet EAGAIN.
	if room := sockBuf(t, s.Conn, syscall.SO_SNDBUF) + sockBuf(t, sc, syscall.SO_RCVBUF); room*4 > len(big) {
		t.Fatalf("socket buffers of %d bytes: the write would not fill them", room)
	}
	go func() {
		time.Sleep(50 * time.Millisecond) // let the client's socket fill
		if _, err := io.CopyN(io.Discard, sc, int64(len(big))); err != nil {
			return
		}
		_, _ = sc.Write([]byte("done"))
	}()
	buf := make([]byte, 16)
	n, err := s.exchange(big, buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "done"[:n] || n == 0 {
		t.Fatalf("got %q", buf[:n])
	}
}

// TestExchangeErrors: a peer that never answers leaves exchange to the
// read deadline; a peer that is gone makes it fail, not hang.
func TestExchangeErrors(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		s, _ := rawPair(t)
		_ = s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := s.exchange([]byte("ping"), make([]byte, 8))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("got %v, want a deadline error", err)
		}
	})
	t.Run("peer closed", func(t *testing.T) {
		s, sc := rawPair(t)
		_ = sc.(*net.TCPConn).SetLinger(0) // close with RST
		sc.Close()
		time.Sleep(20 * time.Millisecond)
		buf := make([]byte, 8)
		var err error
		for i := 0; i < 3 && err == nil; i++ {
			_, err = s.exchange([]byte("ping"), buf)
		}
		if err == nil {
			t.Fatal("exchange with a reset peer did not fail")
		}
	})
}

// TestPoll: poll reads what is there without waiting: nothing, data, then
// the EOF of a peer that shut its side down (what the watchdog's probe
// looks for after an exchange).
func TestPoll(t *testing.T) {
	s, sc := rawPair(t)
	buf := make([]byte, 16)
	if n, err := s.poll(buf); n != 0 || err != nil {
		t.Fatalf("nothing sent: poll = %d, %v; want 0, nil", n, err)
	}
	if _, err := sc.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := sc.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := s.poll(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			if string(got) != "hi" {
				t.Fatalf("got %q before EOF, want %q", got, "hi")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			time.Sleep(time.Millisecond) // loopback delivery, bounded by the deadline
		}
	}
	t.Fatalf("no EOF from a peer that shut its side down (got %q)", got)
}
