//go:build linux

package endpoint_test

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sockit/sockit/endpoint"
	"golang.org/x/sys/unix"
)

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(entries)
}

// TestNoFDLeakOnFailedListen repeats listens that fail at every stage and
// checks the process holds no more descriptors afterwards.
func TestNoFDLeakOnFailedListen(t *testing.T) {
	ctx := testContext(t)
	dir := sockDir(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyUDP.Close()
	live := filepath.Join(dir, "live.sock")
	liveLn, err := endpoint.ListenConfig{}.Listen(ctx, mustParse(t, "unix://"+live))
	if err != nil {
		t.Fatal(err)
	}
	defer liveLn.Close()
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	udp := dupSocket(t, busyUDP.(*net.UDPConn))
	defer unix.Close(udp)

	tcpBusy := mustParse(t, "tcp://"+busy.Addr().String())
	tests := []struct {
		name string
		lc   endpoint.ListenConfig
		ep   endpoint.Endpoint
	}{
		{"tcp in use", endpoint.ListenConfig{}, tcpBusy},
		{"tcp in use with options", endpoint.ListenConfig{ReusePort: false, Backlog: 8, KeepAlive: -1}, tcpBusy},
		{"tls in use", endpoint.ListenConfig{TLS: selfSignedConfig(t)}, mustParse(t, "tls://"+busy.Addr().String())},
		{"udp in use", endpoint.ListenConfig{}, mustParse(t, "udp://"+busyUDP.LocalAddr().String())},
		{"unix live", endpoint.ListenConfig{}, mustParse(t, "unix://"+live)},
		{"unixgram over live stream", endpoint.ListenConfig{}, mustParse(t, "unixgram://"+live)},
		{"unix regular file", endpoint.ListenConfig{}, mustParse(t, "unix://"+regular)},
		{"unix missing dir", endpoint.ListenConfig{UnixMode: 0o600}, mustParse(t, "unix://"+filepath.Join(dir, "no/such/dir.sock"))},
		{"fd wrong type", endpoint.ListenConfig{}, fdEndpoint(t, udp)},
		{"bad host", endpoint.ListenConfig{}, mustParse(t, "tcp://192.0.2.1:0")}, // TEST-NET, not ours
	}
	// Warm up: the first socket operations create the runtime's poller.
	for _, tt := range tests {
		listenAny(ctx, tt.lc, tt.ep)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := openFDs(t)
			for range 20 {
				l, err := listenAny(ctx, tt.lc, tt.ep)
				if err == nil {
					l.Close()
					t.Fatalf("listen %v succeeded", tt.ep)
				}
			}
			if after := openFDs(t); after > before {
				t.Errorf("%d descriptors before 20 failed listens, %d after", before, after)
			}
		})
	}
}

func selfSignedConfig(t *testing.T) *tls.Config {
	cert, _ := selfSigned(t)
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

func tcpInfo(t *testing.T, c syscall.Conn) *unix.TCPInfo {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var ierr error
	rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if ierr != nil {
		t.Fatal(ierr)
	}
	return info
}

func sockoptInt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestBacklogApplied reads the backlog of a listening TCP socket back from
// the kernel (tcpi_sacked holds sk_max_ack_backlog for a listener).
func TestBacklogApplied(t *testing.T) {
	ctx := testContext(t)
	for _, backlog := range []int{1, 7} {
		ln, err := endpoint.ListenConfig{Backlog: backlog}.Listen(ctx, mustParse(t, "tcp://127.0.0.1:0"))
		if err != nil {
			t.Fatal(err)
		}
		if got := tcpInfo(t, ln.(*net.TCPListener)).Sacked; int(got) != backlog {
			t.Errorf("backlog = %d, want %d", got, backlog)
		}
		ln.Close()
	}
	ln, err := endpoint.ListenConfig{}.Listen(ctx, mustParse(t, "tcp://127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := tcpInfo(t, ln.(*net.TCPListener)).Sacked; got < 8 {
		t.Errorf("default backlog = %d, want the system's (somaxconn)", got)
	}
}

func TestKeepAliveAndNoDelay(t *testing.T) {
	ctx := testContext(t)
	src, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fd := dupSocket(t, src.(*net.TCPListener))
	fdLn, err := endpoint.ListenConfig{KeepAlive: -1}.Listen(ctx, fdEndpoint(t, fd))
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	defer fdLn.Close()

	tests := []struct {
		name string
		ln   func(t *testing.T) net.Listener
		want int // SO_KEEPALIVE of accepted conns
	}{
		{"default", func(t *testing.T) net.Listener { return listenTCP(t, endpoint.ListenConfig{}) }, 1},
		{"off", func(t *testing.T) net.Listener { return listenTCP(t, endpoint.ListenConfig{KeepAlive: -1}) }, 0},
		{"period", func(t *testing.T) net.Listener { return listenTCP(t, endpoint.ListenConfig{KeepAlive: 42e9}) }, 1},
		{"fd off", func(t *testing.T) net.Listener { return fdLn }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := tt.ln(t)
			c, err := endpoint.Dialer{}.Dial(ctx, mustParse(t, "tcp://"+ln.Addr().String()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			sc := s.(syscall.Conn)
			if got := sockoptInt(t, sc, unix.SOL_SOCKET, unix.SO_KEEPALIVE); got != tt.want {
				t.Errorf("SO_KEEPALIVE = %d, want %d", got, tt.want)
			}
			if tt.name == "period" {
				if got := sockoptInt(t, sc, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); got != 42 {
					t.Errorf("TCP_KEEPIDLE = %d, want 42", got)
				}
			}
			cc := c.(syscall.Conn)
			if got := sockoptInt(t, cc, unix.IPPROTO_TCP, unix.TCP_NODELAY); got == 0 {
				t.Errorf("dialed conn has TCP_NODELAY off")
			}
			if err := endpoint.SetNoDelay(c, false); err != nil {
				t.Fatal(err)
			}
			if got := sockoptInt(t, cc, unix.IPPROTO_TCP, unix.TCP_NODELAY); got != 0 {
				t.Errorf("TCP_NODELAY still on after SetNoDelay(false)")
			}
		})
	}
}

func listenTCP(t *testing.T, lc endpoint.ListenConfig) net.Listener {
	t.Helper()
	ln, err := lc.Listen(testContext(t), mustParse(t, "tcp://127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestAbstractUnixSocket(t *testing.T) {
	ctx := testContext(t)
	var b [8]byte
	rand.Read(b[:])
	e := mustParse(t, "unix:@sockit-test-"+hex.EncodeToString(b[:]))
	if _, err := (endpoint.ListenConfig{UnixMode: 0o600}).Listen(ctx, e); err == nil || !strings.Contains(err.Error(), "abstract socket") {
		t.Errorf("UnixMode on an abstract socket: error %v", err)
	}
	ln, err := endpoint.ListenConfig{}.Listen(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serveStreamEcho(t, ln)
	c, err := endpoint.Dialer{}.Dial(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkEcho(t, c, "abstract")
}
