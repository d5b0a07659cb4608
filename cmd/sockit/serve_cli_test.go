package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeUsageErrors: every usage error prints one line and exits 2.
func TestServeUsageErrors(t *testing.T) {
	dir := sockDir(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown service", []string{"serve", "nope"}, "unknown service"},
		{"no service", []string{"serve"}, "missing SERVICE"},
		{"fixed for hello", []string{"serve", "hello", "--frame", "fixed:4", "-l", "tcp://127.0.0.1:0"}, "does not support framing fixed:4"},
		{"bad frame", []string{"serve", "echo", "--frame", "len:3", "-l", "tcp://127.0.0.1:0"}, "len:3"},
		{"bad endpoint", []string{"serve", "echo", "-l", "tcp://127.0.0.1"}, "missing port"},
		{"bad scheme", []string{"serve", "echo", "-l", "foo://x:1"}, "unknown scheme"},
		{"bad engine", []string{"serve", "echo", "--engine", "kqueue", "-l", "tcp://127.0.0.1:0"}, "unknown engine"},
		{"bad concurrency", []string{"serve", "echo", "--concurrency", "forking", "-l", "tcp://127.0.0.1:0"}, "concurrency"},
		{"bad max-frame", []string{"serve", "echo", "--max-frame", "0", "-l", "tcp://127.0.0.1:0"}, "--max-frame"},
		{"fixed above max-frame", []string{"serve", "echo", "--frame", "fixed:100000000", "-l", "tcp://127.0.0.1:0"}, "--frame fixed:100000000 is larger than --max-frame 1048576"},
		{"fixed above a given max-frame", []string{"serve", "discard", "--frame", "fixed:4097", "--max-frame", "4096", "-l", "tcp://127.0.0.1:0"}, "raise --max-frame to at least 4097"},
		{"bad allow", []string{"serve", "echo", "--allow", "300.1.1.1", "-l", "tcp://127.0.0.1:0"}, "--allow"},
		{"bad unix-mode", []string{"serve", "echo", "--unix-mode", "999", "-l", "unix://" + filepath.Join(dir, "m.sock")}, "--unix-mode"},
		{"tls without cert", []string{"serve", "echo", "-l", "tls://127.0.0.1:0"}, "--tls-cert"},
		{"bad greeting escape", []string{"serve", "echo", "--greeting", `a\q`, "-l", "tcp://127.0.0.1:0"}, "--greeting"},
		{"missing table", []string{"serve", "reply", "--table", filepath.Join(dir, "none.json"), "-l", "tcp://127.0.0.1:0"}, "--table"},
		{"unknown flag", []string{"serve", "echo", "--bogus"}, "unknown flag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := runSockit(t, c.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(stderr, c.want) {
				t.Fatalf("stderr %q: want one line mentioning %q", stderr, c.want)
			}
			if stdout != "" {
				t.Fatalf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestServeListenFailureClosesEverything: a port in use is exit 1 with a line
// naming the endpoint, and the endpoints already opened are closed (the Unix
// socket file is gone).
func TestServeListenFailureClosesEverything(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	sock := filepath.Join(sockDir(t), "first.sock")
	_, stderr, code := runSockit(t, "serve", "echo", "-l", "unix://"+sock, "-l", "tcp://"+busy.Addr().String())
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", code, stderr)
	}
	if !strings.Contains(stderr, busy.Addr().String()) || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("stderr %q does not name the endpoint and the cause", stderr)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file of the first endpoint left behind (%v)", err)
	}
}

// TestServeRealPortsAndUnixCleanup: port 0 prints the real port; SIGTERM
// exits 0 (checked by startServe's cleanup) and removes the socket file.
func TestServeRealPortsAndUnixCleanup(t *testing.T) {
	sock := filepath.Join(sockDir(t), "hello.sock")
	for _, eng := range []string{"goroutine", "epoll"} {
		t.Run(eng, func(t *testing.T) {
			p, eps := startServe(t, "hello", "--engine", eng, "-l", "tcp://127.0.0.1:0", "-l", "udp://127.0.0.1:0", "-l", "unix://"+sock)
			for _, ep := range eps[:2] {
				if _, port := hostPort(t, ep); port == "0" {
					t.Fatalf("listening line %q shows port 0", ep)
				}
			}
			if eps[2] != "unix://"+sock {
				t.Fatalf("listening line %q, want unix://%s", eps[2], sock)
			}
			c, err := net.DialTimeout("unix", sock, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 8)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "Welcome!" {
				t.Fatalf("greeting %q, %v", buf, err)
			}
			c.Close()
			p.stop(t)
			if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("socket file left after shutdown (%v)", err)
			}
			p.stopped = true
		})
	}
}

// TestServeGracefulAnswersInFlight: a message half-sent when SIGTERM arrives
// is finished and answered; new connections are refused; exit 0.
func TestServeGracefulAnswersInFlight(t *testing.T) {
	for _, eng := range []string{"goroutine", "epoll"} {
		t.Run(eng, func(t *testing.T) {
			p, eps := startServe(t, "hello", "--engine", eng, "--frame", "line", "-l", "tcp://127.0.0.1:0")
			_, port := hostPort(t, eps[0])
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			if l, err := r.ReadString('\n'); err != nil || l != "Welcome!\n" {
				t.Fatalf("greeting %q, %v", l, err)
			}
			if _, err := c.Write([]byte("hal")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			// Refused soon after the signal.
			deadline := time.Now().Add(5 * time.Second)
			for {
				nc, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
				if err != nil {
					break
				}
				nc.Close()
				if time.Now().After(deadline) {
					t.Fatal("still accepting 5s after SIGTERM")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if _, err := c.Write([]byte("f\n")); err != nil {
				t.Fatal(err)
			}
			if l, err := r.ReadString('\n'); err != nil || l != "Hello, half!\n" {
				t.Fatalf("in-flight reply %q, %v", l, err)
			}
			if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
				t.Fatalf("after the reply: %q, %v (want EOF)", rest, err)
			}
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				t.Fatal("no exit after the last connection closed")
			}
			if p.waitErr != nil {
				t.Fatalf("exit: %v, want 0\nstderr: %s", p.waitErr, p.stderr.String())
			}
			p.stopped = true
		})
	}
}

// TestServeSecondSignalExitsAtOnce: during a graceful shutdown held up by a
// busy connection, a second signal exits at once with status 1.
func TestServeSecondSignalExitsAtOnce(t *testing.T) {
	p, eps := startServe(t, "echo", "--frame", "line", "--grace", "30s", "-l", "tcp://127.0.0.1:0")
	_, port := hostPort(t, eps[0])
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("half a line")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(200 * time.Millisecond)
	select {
	case <-p.exited:
		t.Fatalf("exited on the first signal with a busy connection: %v", p.waitErr)
	default:
	}
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("second signal did not end the process")
	}
	var ee *exec.ExitError
	if !errors.As(p.waitErr, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1", p.waitErr)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("second signal took %v", time.Since(start))
	}
	p.stopped = true
}
