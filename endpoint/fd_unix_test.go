//go:build unix

package endpoint_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockit/sockit/endpoint"
	"golang.org/x/sys/unix"
)

// dupSocket returns a raw duplicate of c's descriptor, owned by nobody but
// the caller (no *os.File, so no finalizer will close it behind our back).
func dupSocket(t *testing.T, c syscall.Conn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		t.Fatal(err)
	}
	if derr != nil {
		t.Fatal(derr)
	}
	return nfd
}

func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

func fdEndpoint(t *testing.T, fd int) endpoint.Endpoint {
	return mustParse(t, "fd://"+strconv.Itoa(fd))
}

func TestListenFDStream(t *testing.T) {
	ctx := testContext(t)
	orig, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fd := dupSocket(t, orig.(*net.TCPListener))
	orig.Close() // the socket lives on through fd

	ln, err := endpoint.ListenConfig{KeepAlive: -1, Backlog: 4}.Listen(ctx, fdEndpoint(t, fd))
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	defer ln.Close()
	if fdOpen(fd) {
		t.Errorf("fd %d still open after Listen took it", fd)
	}
	real := fdEndpoint(t, fd).WithAddr(ln.Addr())
	if real.Scheme != "tcp" || real.Address != orig.Addr().String() {
		t.Errorf("WithAddr = %v, want tcp://%s", real, orig.Addr())
	}
	serveStreamEcho(t, ln)
	c, err := endpoint.Dialer{}.Dial(ctx, real)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkEcho(t, c, "through fd")
}

func TestListenFDUnixKeepsFile(t *testing.T) {
	ctx := testContext(t)
	path := filepath.Join(sockDir(t), "fd.sock")
	orig, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	fd := dupSocket(t, orig)
	ln, err := endpoint.ListenConfig{UnixMode: 0o600}.Listen(ctx, fdEndpoint(t, fd))
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if got := fdEndpoint(t, fd).WithAddr(ln.Addr()); got.String() != "unix://"+path {
		t.Errorf("WithAddr = %v, want unix://%s", got, path)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Errorf("closing an fd:// listener removed a file it did not create: %v", err)
	}
}

func TestListenFDWrongKind(t *testing.T) {
	ctx := testContext(t)

	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	ufd := dupSocket(t, udp.(*net.UDPConn))
	_, err = endpoint.ListenConfig{}.Listen(ctx, fdEndpoint(t, ufd))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("fd %d is a datagram socket, not a stream socket", ufd)) {
		t.Errorf("Listen on a UDP fd: error %v", err)
	}
	if !fdOpen(ufd) {
		t.Fatalf("failed Listen closed fd %d", ufd)
	}
	pc, err := endpoint.ListenConfig{}.ListenPacket(ctx, fdEndpoint(t, ufd))
	if err != nil {
		unix.Close(ufd)
		t.Fatalf("ListenPacket on a UDP fd: %v", err)
	}
	defer pc.Close()
	c, err := endpoint.Dialer{}.Dial(ctx, fdEndpoint(t, ufd).WithAddr(pc.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("dgram"))
	pc.SetReadDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, 16)
	if n, _, err := pc.ReadFrom(buf); err != nil || string(buf[:n]) != "dgram" {
		t.Errorf("read through fd packet conn: %q, %v", buf[:n], err)
	}

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	tfd := dupSocket(t, tcp.(*net.TCPListener))
	defer unix.Close(tfd)
	_, err = endpoint.ListenConfig{}.ListenPacket(ctx, fdEndpoint(t, tfd))
	if err == nil || !strings.Contains(err.Error(), "is a stream socket, not a datagram socket") {
		t.Errorf("ListenPacket on a TCP listener fd: error %v", err)
	}

	// A connected (not listening) stream socket.
	go func() {
		if c, err := tcp.Accept(); err == nil {
			c.Close()
		}
	}()
	conn, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfd := dupSocket(t, conn.(*net.TCPConn))
	defer unix.Close(cfd)
	_, err = endpoint.ListenConfig{}.Listen(ctx, fdEndpoint(t, cfd))
	if err == nil || !strings.Contains(err.Error(), "is a stream socket that is not listening") {
		t.Errorf("Listen on a connected fd: error %v", err)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	_, err = endpoint.ListenConfig{}.Listen(ctx, fdEndpoint(t, int(r.Fd())))
	if err == nil || !strings.Contains(err.Error(), "is not a socket") || !errors.Is(err, syscall.ENOTSOCK) {
		t.Errorf("Listen on a pipe: error %v", err)
	}

	const closed = 1 << 20 // beyond any descriptor table of a test
	_, err = endpoint.ListenConfig{}.ListenPacket(ctx, fdEndpoint(t, closed))
	if err == nil || !strings.Contains(err.Error(), "is not open") {
		t.Errorf("ListenPacket on a closed fd: error %v", err)
	}
	if want := fmt.Sprintf("listen fd://%d: ", closed); err != nil && !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
}

// listenFDsChildEnv marks the child process of TestListenFDs.
const listenFDsChildEnv = "SOCKIT_TEST_LISTENFDS_CHILD"

// TestListenFDs hands a listening socket to a child process as fd 3, the
// way systemd does; the child (TestListenFDsChild) finds and serves it.
func TestListenFDs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestListenFDsChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), listenFDsChildEnv+"="+ln.Addr().String())
	cmd.ExtraFiles = []*os.File{f}
	cmd.WaitDelay = testTimeout
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "listenfds child ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestListenFDsChild(t *testing.T) {
	addr := os.Getenv(listenFDsChildEnv)
	if addr == "" {
		t.Skip("run by TestListenFDs")
	}
	t.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	t.Setenv("LISTEN_FDS", "1")
	t.Setenv("LISTEN_FDNAMES", "web")
	files, err := endpoint.ListenFDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Fd() != 3 || files[0].Name() != "web" {
		t.Fatalf("ListenFDs = %v, want fd 3 named web", files)
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if _, ok := os.LookupEnv(k); ok {
			t.Errorf("%s still set", k)
		}
	}
	if flags, err := unix.FcntlInt(3, unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd 3 not close-on-exec: %v, %v", flags, err)
	}
	ln, err := net.FileListener(files[0])
	files[0].Close()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().String() != addr {
		t.Fatalf("fd 3 listens on %v, want %s", ln.Addr(), addr)
	}
	serveStreamEcho(t, ln)
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkEcho(t, c, "activated")
	fmt.Println("listenfds child ok")
}

func TestListenFDsEnvironment(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	tests := []struct {
		name     string
		pid, fds string // "-" leaves the variable unset
		want     string // error substring; "" = nil error
		n        int
	}{
		{"not activated", "-", "-", "", 0},
		{"another process", strconv.Itoa(os.Getpid() + 1), "2", "", 0},
		{"zero fds", pid, "0", "", 0},
		{"bad pid", "x", "1", `bad LISTEN_PID "x"`, 0},
		{"bad count", pid, "-1", `bad LISTEN_FDS "-1"`, 0},
		{"huge count", pid, "999999", `bad LISTEN_FDS "999999"`, 0},
		{"fds not open", pid, "60000", "is not open", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := func(k, v string) {
				t.Setenv(k, "")
				if v == "-" {
					os.Unsetenv(k)
				} else {
					os.Setenv(k, v)
				}
			}
			set("LISTEN_PID", tt.pid)
			set("LISTEN_FDS", tt.fds)
			files, err := endpoint.ListenFDs()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if len(files) != tt.n {
				t.Errorf("got %d files, want %d", len(files), tt.n)
			}
			for _, k := range []string{"LISTEN_PID", "LISTEN_FDS"} {
				if _, ok := os.LookupEnv(k); ok {
					t.Errorf("%s still set", k)
				}
			}
		})
	}
}

// Closing a packet conn made from an fd must not remove the socket file of
// whoever bound it.
func TestListenPacketFDUnixgramKeepsFile(t *testing.T) {
	path := filepath.Join(sockDir(t), "g.sock")
	orig, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	fd := dupSocket(t, orig)
	pc, err := endpoint.ListenConfig{}.ListenPacket(testContext(t), fdEndpoint(t, fd))
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	pc.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("socket file gone: %v", err)
	}
}
