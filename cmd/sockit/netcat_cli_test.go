package main

// End-to-end tests of sockit connect, listen and relay through the built
// binary, against each other and against sockit serve.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nc is a running sockit process (listen, relay, serve, connect).
type nc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser // nil unless asked for
	stdout  *lineWriter
	stderr  *lineWriter
	exited  chan struct{}
	waitErr error
}

// ncOpts say how to start a process.
type ncOpts struct {
	stdin     []byte // fed then closed; ignored with pipeStdin
	pipeStdin bool   // keep a pipe open as stdin (p.stdin)
	env       []string
	wrap      []string // run through this (e.g. sh -c 'ulimit ...; exec "$@"' sh)
}

// startNC starts sockit ARGS with the given stdin and stops it (SIGTERM, then
// SIGKILL) at cleanup.
func startNC(t *testing.T, o ncOpts, args ...string) *nc {
	t.Helper()
	argv := append([]string{sockitPath()}, args...)
	if o.wrap != nil {
		argv = append(append([]string(nil), o.wrap...), argv...)
	}
	p := &nc{
		cmd:    exec.Command(argv[0], argv[1:]...),
		stdout: newLineWriter(),
		stderr: newLineWriter(),
		exited: make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = append(os.Environ(), o.env...)
	p.cmd.WaitDelay = 5 * time.Second
	if o.pipeStdin {
		w, err := p.cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.stdin = w
	} else {
		p.cmd.Stdin = bytes.NewReader(o.stdin)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting sockit %q: %v", args, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(serveStopTimeout):
			p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("sockit %q did not exit after SIGTERM\nstderr:\n%s", args, p.stderr.String())
		}
	})
	return p
}

// endpoints waits for n "listening EP" lines (on stdout or stderr) and
// returns the endpoints.
func (p *nc) endpoints(t *testing.T, n int) []string {
	t.Helper()
	var eps []string
	ok := waitFor(serveStartTimeout, func() bool {
		eps = eps[:0]
		for _, w := range []*lineWriter{p.stdout, p.stderr} {
			for _, l := range w.lines() {
				if ep, ok := strings.CutPrefix(l, "listening "); ok {
					eps = append(eps, ep)
				}
			}
		}
		select {
		case <-p.exited:
			return true
		default:
		}
		return len(eps) >= n
	})
	if !ok || len(eps) < n {
		t.Fatalf("sockit printed %d of %d listening lines (exited: %v)\nstdout:\n%s\nstderr:\n%s", len(eps), n, p.done(), p.stdout.String(), p.stderr.String())
	}
	return eps[:n]
}

func (p *nc) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// wait waits (bounded) for the exit and returns the status.
func (p *nc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(commandTimeout):
		p.cmd.Process.Kill()
		<-p.exited
		t.Fatalf("sockit did not exit within %v\nstdout:\n%s\nstderr:\n%s", commandTimeout, p.stdout.String(), p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

var fingerprintRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// fingerprint returns the sha256:HEX a --tls-self-signed server logged.
func (p *nc) fingerprint(t *testing.T) string {
	t.Helper()
	var fp string
	if !waitFor(10*time.Second, func() bool {
		fp = fingerprintRE.FindString(p.stderr.String())
		return fp != ""
	}) {
		t.Fatalf("no fingerprint in stderr:\n%s", p.stderr.String())
	}
	return fp
}

// serveFingerprint returns the sha256:HEX a sockit serve --tls-self-signed
// logged (stderr may lag behind the listening line on stdout).
func serveFingerprint(t *testing.T, p *serveProc) string {
	t.Helper()
	var fp string
	if !waitFor(10*time.Second, func() bool {
		fp = fingerprintRE.FindString(p.stderr.String())
		return fp != ""
	}) {
		t.Fatalf("no fingerprint logged:\n%s", p.stderr.String())
	}
	return fp
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runIn runs sockit ARGS with stdin (bounded) and returns its output.
func runIn(t *testing.T, stdin []byte, args ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sockitPath(), args...)
	var out, errOut bytes.Buffer
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("sockit %q did not finish within %v\nstderr:\n%s", args, commandTimeout, errOut.String())
	}
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.Exited()) {
		t.Fatalf("sockit %q: %v\nstderr:\n%s", args, err, errOut.String())
	}
	return out.Bytes(), errOut.Bytes(), cmd.ProcessState.ExitCode()
}

// connectOK runs connect with stdin and expects exit 0 and want on stdout.
func connectOK(t *testing.T, stdin, want string, args ...string) {
	t.Helper()
	out, errOut, code := runIn(t, []byte(stdin), append([]string{"connect"}, args...)...)
	if code != 0 || string(out) != want {
		t.Errorf("connect %q: status %d, stdout %q, want 0 and %q\nstderr:\n%s", args, code, out, want, errOut)
	}
}

// transports are the stream and datagram endpoints every test runs on.
func listenEndpoint(t *testing.T, scheme string) string {
	switch scheme {
	case "unix", "unixpacket", "unixgram":
		return scheme + "://" + filepath.Join(sockDir(t), "s.sock")
	}
	return scheme + "://127.0.0.1:0"
}

// TestConnectServe runs connect against sockit serve echo on every
// transport: stdin EOF half-closes (streams) and the echo still comes back.
func TestConnectServe(t *testing.T) {
	for _, scheme := range []string{"tcp", "unix", "unixpacket", "tls", "udp", "unixgram"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			args := []string{"echo", "-l", listenEndpoint(t, scheme)}
			if scheme == "tls" {
				args = append(args, "--tls-self-signed")
			}
			srv, eps := startServe(t, args...)
			var extra []string
			if scheme == "tls" {
				extra = []string{"--pin", serveFingerprint(t, srv)}
			}
			switch scheme {
			case "udp", "unixgram", "unixpacket":
				connectOK(t, "hello\nworld\n", "hello\nworld\n", append(extra, "--linger", "300ms", eps[0])...)
			default:
				connectOK(t, "hi", "hi", append(extra, eps[0])...)
				connectOK(t, "two\nlines\n", "two\nlines\n", append(extra, eps[0])...)
			}
		})
	}
}

// TestConnectListen pipes connect and listen into each other on every
// transport: each side's stdin comes out of the other's stdout and both
// exit 0 after the two half-closes.
func TestConnectListen(t *testing.T) {
	for _, scheme := range []string{"tcp", "unix", "unixpacket", "tls"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			args := []string{"listen", listenEndpoint(t, scheme)}
			if scheme == "tls" {
				args = append(args, "--tls-self-signed")
			}
			l := startNC(t, ncOpts{stdin: []byte("from listen\n")}, args...)
			ep := l.endpoints(t, 1)[0]
			cargs := []string{"connect", ep}
			if scheme == "tls" {
				cargs = append(cargs, "--pin", l.fingerprint(t))
			}
			out, errOut, code := runIn(t, []byte("from connect\n"), cargs...)
			if code != 0 || string(out) != "from listen\n" {
				t.Errorf("connect: status %d, stdout %q\nstderr:\n%s", code, out, errOut)
			}
			if code := l.wait(t); code != 0 {
				t.Errorf("listen exit status %d\nstderr:\n%s", code, l.stderr.String())
			}
			if got := l.stdout.String(); got != "from connect\n" {
				t.Errorf("listen stdout %q", got)
			}
		})
	}
}

// TestListenDatagram: listen on udp prints each datagram on a line and
// answers the peer heard from last with stdin lines.
func TestListenDatagram(t *testing.T) {
	for _, scheme := range []string{"udp", "unixgram"} {
		t.Run(scheme, func(t *testing.T) {
			l := startNC(t, ncOpts{pipeStdin: true}, "listen", listenEndpoint(t, scheme))
			ep := l.endpoints(t, 1)[0]
			c := startNC(t, ncOpts{pipeStdin: true}, "connect", "--linger", "2s", ep)
			io.WriteString(c.stdin, "ping\n")
			if !waitFor(10*time.Second, func() bool { return l.stdout.String() == "ping\n" }) {
				t.Fatalf("listen stdout %q", l.stdout.String())
			}
			io.WriteString(l.stdin, "pong\n")
			if !waitFor(10*time.Second, func() bool { return c.stdout.String() == "pong\n" }) {
				t.Fatalf("connect stdout %q\nstderr:\n%s", c.stdout.String(), c.stderr.String())
			}
			c.stdin.Close()
			if code := c.wait(t); code != 0 {
				t.Errorf("connect status %d\nstderr:\n%s", code, c.stderr.String())
			}
		})
	}
}

// TestBinaryData sends every byte value and 10 MiB of random bytes from
// connect to listen, and through serve echo, checksums equal.
func TestBinaryData(t *testing.T) {
	all := make([]byte, 256*4)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 10<<20)
	rand.Read(big)
	for _, tc := range []struct {
		name string
		data []byte
	}{{"all-bytes", all}, {"10MiB", big}} {
		for _, scheme := range []string{"tcp", "unix", "tls"} {
			t.Run(tc.name+"/"+scheme+"/listen", func(t *testing.T) {
				args := []string{"listen", listenEndpoint(t, scheme)}
				if scheme == "tls" {
					args = append(args, "--tls-self-signed")
				}
				l := startNC(t, ncOpts{}, args...)
				ep := l.endpoints(t, 1)[0]
				cargs := []string{"connect", ep}
				if scheme == "tls" {
					cargs = append(cargs, "--pin", l.fingerprint(t))
				}
				if _, errOut, code := runIn(t, tc.data, cargs...); code != 0 {
					t.Fatalf("connect status %d\n%s", code, errOut)
				}
				if code := l.wait(t); code != 0 {
					t.Fatalf("listen status %d\n%s", code, l.stderr.String())
				}
				if got := l.stdout.String(); sha256.Sum256([]byte(got)) != sha256.Sum256(tc.data) {
					t.Errorf("listen got %d bytes, checksum differs from the %d sent", len(got), len(tc.data))
				}
			})
			t.Run(tc.name+"/"+scheme+"/echo", func(t *testing.T) {
				args := []string{"echo", "-l", listenEndpoint(t, scheme)}
				if scheme == "tls" {
					args = append(args, "--tls-self-signed")
				}
				srv, eps := startServe(t, args...)
				cargs := []string{"connect", eps[0]}
				if scheme == "tls" {
					cargs = append(cargs, "--pin", serveFingerprint(t, srv))
				}
				out, errOut, code := runIn(t, tc.data, cargs...)
				if code != 0 || sha256.Sum256(out) != sha256.Sum256(tc.data) {
					t.Errorf("echo: status %d, %d bytes back of %d, checksums equal: %v\n%s", code, len(out), len(tc.data), bytes.Equal(out, tc.data), errOut)
				}
			})
		}
	}
}

// TestHalfCloseOrdering: a server that reads to EOF before answering gets
// the whole input, then its answer reaches connect after connect's
// half-close; --no-shutdown keeps the write side open.
func TestHalfCloseOrdering(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() {
		ln.Close()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				got, err := io.ReadAll(c) // until the client's FIN
				if err != nil {
					io.WriteString(c, "no EOF: "+err.Error())
					return
				}
				fmt.Fprintf(c, "got %d bytes: %s", len(got), got)
			}()
		}
	}()
	connectOK(t, "abc", "got 3 bytes: abc", "tcp://"+ln.Addr().String())
	// Without the half-close the server never sees EOF and times out.
	out, _, code := runIn(t, []byte("abc"), "connect", "--no-shutdown", "tcp://"+ln.Addr().String())
	if code != 0 || !strings.HasPrefix(string(out), "no EOF") {
		t.Errorf("--no-shutdown: status %d, stdout %q", code, out)
	}
}

// TestExec covers --exec and --sh-exec with a process per connection.
func TestExec(t *testing.T) {
	tests := []struct {
		name string
		args []string
		in   string
		want string
	}{
		{"cat", []string{"--exec", "cat"}, "hello\n", "hello\n"},
		{"tr", []string{"--exec", "tr a-z A-Z"}, "hello\n", "HELLO\n"},
		{"quoted", []string{"--exec", `tr 'a-z' "A-Z"`}, "x", "X"},
		{"sh", []string{"--sh-exec", "tr a-z A-Z | rev"}, "abc\n", "CBA\n"},
		{"exits-early", []string{"--sh-exec", "echo early; exit 3"}, "ignored\n", "early\n"},
		{"head", []string{"--exec", "head -c 2"}, "abcdef", "ab"},
		{"env", []string{"--sh-exec", `echo "$SOCKIT_PROTO $SOCKIT_LOCAL_ADDR"; case "$SOCKIT_PEER_ADDR" in 127.0.0.1:*) echo peer-ok;; esac`}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := startNC(t, ncOpts{}, append([]string{"listen", "-k", "tcp://127.0.0.1:0"}, tt.args...)...)
			ep := l.endpoints(t, 1)[0]
			want := tt.want
			if tt.name == "env" {
				_, addr, _ := strings.Cut(ep, "://")
				want = "tcp " + addr + "\npeer-ok\n"
			}
			for range 2 { // the server keeps serving
				connectOK(t, tt.in, want, ep)
			}
		})
	}
}

// TestExecHalfClose is nmap/nmap#1229: a client that half-closes at once
// still gets the child's whole output.
func TestExecHalfClose(t *testing.T) {
	l := startNC(t, ncOpts{}, "listen", "-k", "--exec", "tr a-z A-Z", "tcp://127.0.0.1:0")
	ep := l.endpoints(t, 1)[0]
	for range 20 {
		connectOK(t, "x", "X", ep)
	}
	// The child's output arrives after a slow start too.
	s := startNC(t, ncOpts{}, "listen", "-k", "--sh-exec", "sleep 0.3; tr a-z A-Z", "tcp://127.0.0.1:0")
	connectOK(t, "late", "LATE", s.endpoints(t, 1)[0])
}

// zombies lists the zombie children of pid.
func zombies(t *testing.T, pid int) []string {
	t.Helper()
	var out []string
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 2 && f[0] == "Z" && f[1] == strconv.Itoa(pid) {
			out = append(out, s)
		}
	}
	return out
}

// children counts the live children of pid.
func children(pid int) int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 2 && f[1] == strconv.Itoa(pid) {
			n++
		}
	}
	return n
}

// TestExecConcurrent runs 50 exec connections at once; none is mixed up
// with another and no zombie is left.
func TestExecConcurrent(t *testing.T) {
	l := startNC(t, ncOpts{}, "listen", "-k", "--sh-exec", "sleep 0.2; tr a-z A-Z", "tcp://127.0.0.1:0")
	ep := l.endpoints(t, 1)[0]
	_, addr, _ := strings.Cut(ep, "://")
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			msg := fmt.Sprintf("conn%d\n", i)
			io.WriteString(c, msg)
			c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != strings.ToUpper(msg) {
				errs <- fmt.Errorf("connection %d: %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	pid := l.cmd.Process.Pid
	if !waitFor(10*time.Second, func() bool { return len(zombies(t, pid)) == 0 && children(pid) == 0 }) {
		t.Errorf("after 50 connections: zombies %q, %d children", zombies(t, pid), children(pid))
	}
}

// TestExecTermination: a peer reset and an idle timeout end the child
// (SIGTERM, SIGKILL for one that ignores it), and no zombie remains.
func TestExecTermination(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		reset bool
	}{
		{"reset", []string{"--sh-exec", "sleep 30"}, true},
		{"reset-ignores-term", []string{"--sh-exec", "trap '' TERM; sleep 30 & wait; sleep 30"}, true},
		{"idle", []string{"--idle-timeout", "300ms", "--sh-exec", "sleep 30"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := startNC(t, ncOpts{}, append([]string{"listen", "-k", "tcp://127.0.0.1:0"}, tc.args...)...)
			_, addr, _ := strings.Cut(l.endpoints(t, 1)[0], "://")
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			pid := l.cmd.Process.Pid
			if !waitFor(10*time.Second, func() bool { return children(pid) > 0 }) {
				t.Fatal("no child started")
			}
			start := time.Now()
			if tc.reset {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			} else {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err == nil {
					t.Error("idle connection got data")
				}
			}
			if !waitFor(15*time.Second, func() bool { return children(pid) == 0 }) {
				t.Fatalf("child still running %v after the %s", time.Since(start), tc.name)
			}
			if z := zombies(t, pid); len(z) > 0 {
				t.Errorf("zombies: %q", z)
			}
			if d := time.Since(start); d > 6*time.Second {
				t.Errorf("child ended only after %v", d)
			}
		})
	}
}

// TestAccessControl: --allow/--deny by source address, on listen, relay and
// serve; a refused peer is closed at once without a byte.
func TestAccessControl(t *testing.T) {
	if c, err := net.Dial("tcp", "127.0.0.2:1"); err == nil {
		c.Close()
	} else if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.ENETUNREACH) {
		t.Skip("127.0.0.2 not usable here")
	}
	target, teps := startServe(t, "echo", "-l", "tcp://127.0.0.1:0")
	_ = target
	servers := map[string][]string{
		"listen": {"listen", "-k", "--sh-exec", "cat"},
		"relay":  {"relay"},
		"serve":  {"serve", "echo"},
	}
	for name, base := range servers {
		for _, acl := range []struct {
			args    []string
			allowed map[string]bool
		}{
			{[]string{"--deny", "127.0.0.2"}, map[string]bool{"127.0.0.1": true, "127.0.0.2": false}},
			{[]string{"--allow", "127.0.0.2/32"}, map[string]bool{"127.0.0.1": false, "127.0.0.2": true}},
			{[]string{"--allow", "127.0.0.0/8", "--deny", "127.0.0.1"}, map[string]bool{"127.0.0.1": false, "127.0.0.2": true}},
		} {
			t.Run(name+"/"+strings.Join(acl.args, "="), func(t *testing.T) {
				args := append(append([]string(nil), base...), acl.args...)
				switch name {
				case "relay":
					args = append(args, "tcp://127.0.0.1:0", teps[0])
				case "serve":
					args = append(args, "-l", "tcp://127.0.0.1:0")
				default:
					args = append(args, "tcp://127.0.0.1:0")
				}
				p := startNC(t, ncOpts{}, args...)
				ep := p.endpoints(t, 1)[0]
				for src, ok := range acl.allowed {
					out, errOut, code := runIn(t, []byte("ping\n"), "connect", "--source", src, ep)
					if ok && (code != 0 || string(out) != "ping\n") {
						t.Errorf("from %s: status %d, %q, want the echo\n%s", src, code, out, errOut)
					}
					if !ok && len(out) != 0 {
						t.Errorf("from %s (refused): got %q", src, out)
					}
				}
			})
		}
	}
}

// TestMaxConns: over --max-conns a connection is closed at once; when one
// ends another fits.
func TestMaxConns(t *testing.T) {
	for _, base := range [][]string{{"listen", "-k", "--exec", "cat"}, {"relay"}} {
		t.Run(base[0], func(t *testing.T) {
			args := append(append([]string(nil), base...), "--max-conns", "1", "tcp://127.0.0.1:0")
			if base[0] == "relay" {
				_, teps := startServe(t, "echo", "-l", "tcp://127.0.0.1:0")
				args = append(args, teps[0])
			}
			p := startNC(t, ncOpts{}, args...)
			_, addr, _ := strings.Cut(p.endpoints(t, 1)[0], "://")
			first, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			first.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(first, "1\n")
			if b := make([]byte, 2); !readFull(first, b) || string(b) != "1\n" {
				t.Fatalf("first connection: %q", b)
			}
			second, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer second.Close()
			second.SetDeadline(time.Now().Add(10 * time.Second))
			if n, err := second.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Errorf("second connection over the limit: %d bytes, %v", n, err)
			}
			first.Close()
			ok := waitFor(10*time.Second, func() bool {
				out, _, code := runIn(t, []byte("3\n"), "connect", "tcp://"+addr)
				return code == 0 && string(out) == "3\n"
			})
			if !ok {
				t.Error("no connection served after the first closed")
			}
		})
	}
}

func readFull(c net.Conn, b []byte) bool {
	_, err := io.ReadFull(c, b)
	return err == nil
}

// TestTimeouts: --idle-timeout closes a silent peer; --read-timeout closes a
// peer that sends nothing while the server keeps talking; connect's
// --idle-timeout exits 1.
func TestTimeouts(t *testing.T) {
	dial := func(t *testing.T, p *nc) net.Conn {
		_, addr, _ := strings.Cut(p.endpoints(t, 1)[0], "://")
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	t.Run("idle/listen", func(t *testing.T) {
		t.Parallel()
		p := startNC(t, ncOpts{pipeStdin: true}, "listen", "-k", "--idle-timeout", "300ms", "tcp://127.0.0.1:0")
		c := dial(t, p)
		start := time.Now()
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("silent peer: %v (want EOF)", err)
		}
		if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
			t.Errorf("closed after %v, want about 300ms", d)
		}
	})
	t.Run("idle/relay-slowloris", func(t *testing.T) {
		t.Parallel()
		_, teps := startServe(t, "discard", "-l", "tcp://127.0.0.1:0")
		p := startNC(t, ncOpts{}, "relay", "--idle-timeout", "400ms", "tcp://127.0.0.1:0", teps[0])
		c := dial(t, p)
		// A byte every 100ms keeps it open past the limit...
		for range 8 {
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatalf("write while active: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// ...then silence closes it.
		start := time.Now()
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("read: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("closed after %v", d)
		}
	})
	t.Run("read/exec", func(t *testing.T) {
		t.Parallel()
		p := startNC(t, ncOpts{}, "listen", "-k", "--read-timeout", "400ms", "--sh-exec", "while :; do echo x; sleep 0.05; done", "tcp://127.0.0.1:0")
		c := dial(t, p)
		start := time.Now()
		got, _ := io.ReadAll(c)
		if d := time.Since(start); d < 300*time.Millisecond || d > 6*time.Second {
			t.Errorf("closed after %v, want about 400ms", d)
		}
		if len(got) == 0 {
			t.Error("no output before the read timeout")
		}
		pid := p.cmd.Process.Pid
		if !waitFor(10*time.Second, func() bool { return children(pid) == 0 }) {
			t.Error("child still running after the read timeout")
		}
	})
	t.Run("idle/connect", func(t *testing.T) {
		t.Parallel()
		_, eps := startServe(t, "discard", "-l", "tcp://127.0.0.1:0")
		c := startNC(t, ncOpts{pipeStdin: true}, "connect", "--idle-timeout", "300ms", eps[0])
		if code := c.wait(t); code != 1 {
			t.Errorf("status %d, want 1", code)
		}
		if !strings.Contains(c.stderr.String(), "idle timeout") {
			t.Errorf("stderr %q", c.stderr.String())
		}
	})
}

// TestProbe is -z against an open and a closed port.
func TestProbe(t *testing.T) {
	_, eps := startServe(t, "echo", "-l", "tcp://127.0.0.1:0", "-l", "udp://127.0.0.1:0")
	closed := freePort(t)
	for _, tc := range []struct {
		ep   string
		want int
	}{
		{eps[0], 0},
		{"tcp://127.0.0.1:" + closed, 1},
		{eps[1], 0},
		{"udp://127.0.0.1:" + closed, 1},
	} {
		out, errOut, code := runIn(t, nil, "connect", "-z", tc.ep)
		if code != tc.want || len(out) != 0 {
			t.Errorf("-z %s: status %d, stdout %q, want %d\n%s", tc.ep, code, out, tc.want, errOut)
		}
	}
}

// freePort returns a TCP and UDP port that nothing listens on (just
// closed).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// TestExitStatus checks the exit statuses of SPEC 5 for each failure kind,
// with one clear line on stderr.
func TestExitStatus(t *testing.T) {
	closed := freePort(t)
	_, tlsEps := startServe(t, "echo", "--tls-self-signed", "-l", "tls://127.0.0.1:0")
	tests := []struct {
		name     string
		args     []string
		want     int
		stderrRE string
	}{
		{"refused", []string{"connect", "127.0.0.1:" + closed}, 1, `^sockit: connection refused: 127\.0\.0\.1:\d+\n$`},
		{"bad endpoint", []string{"connect", "tcp://127.0.0.1"}, 2, `^sockit: bad endpoint "tcp://127.0.0.1": .*\n$`},
		{"bad flag", []string{"connect", "--bogus", "127.0.0.1:1"}, 2, `^sockit: unknown flag: --bogus\n$`},
		{"send and recv only", []string{"connect", "--send-only", "--recv-only", "127.0.0.1:1"}, 2, `exclude`},
		{"tls unverified", []string{"connect", tlsEps[0]}, 1, `certificate`},
		{"tls wrong pin", []string{"connect", "--pin", "sha256:" + strings.Repeat("0", 64), tlsEps[0]}, 1, `pinned fingerprint`},
		{"bad pin", []string{"connect", "--pin", "sha256:12", tlsEps[0]}, 2, `pin`},
		{"tls options on tcp", []string{"connect", "--insecure", "127.0.0.1:1"}, 2, `tls://`},
		{"missing ca", []string{"connect", "--ca", "/nonexistent.pem", tlsEps[0]}, 2, `nonexistent`},
		{"unix missing", []string{"connect", "unix:///nonexistent/x.sock"}, 1, `no such file`},
		{"listen in use", []string{"listen", "-l", tlsEps[0], "--tls-self-signed"}, 1, `address already in use`},
		{"exec missing", []string{"listen", "--exec", "/nonexistent/prog", "127.0.0.1:0"}, 2, `nonexistent`},
		{"exec unclosed quote", []string{"listen", "--exec", "tr 'a-z", "127.0.0.1:0"}, 2, `unclosed`},
		{"relay datagram", []string{"relay", "udp://127.0.0.1:0", "127.0.0.1:1"}, 2, `datagram`},
		{"relay tls without cert", []string{"relay", "tls://127.0.0.1:0", "127.0.0.1:1"}, 2, `tls-cert`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runIn(t, nil, tt.args...)
			if code != tt.want {
				t.Errorf("status %d, want %d\nstderr:\n%s", code, tt.want, errOut)
			}
			if !regexp.MustCompile(tt.stderrRE).Match(errOut) {
				t.Errorf("stderr %q does not match %q", errOut, tt.stderrRE)
			}
			if lines := strings.Count(string(errOut), "sockit: "); lines != 1 && tt.want != 0 {
				t.Errorf("stderr has %d lines, want one:\n%s", lines, errOut)
			}
		})
	}
}

// TestInterrupt: SIGINT ends connect and a single listen with status 130,
// and a listen -k with 0.
func TestInterrupt(t *testing.T) {
	_, eps := startServe(t, "discard", "-l", "tcp://127.0.0.1:0")
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"connect", eps[0]}, 130},
		{[]string{"listen", "tcp://127.0.0.1:0"}, 130},
		{[]string{"listen", "-k", "tcp://127.0.0.1:0"}, 0},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			p := startNC(t, ncOpts{pipeStdin: true}, tc.args...)
			if tc.args[0] == "listen" {
				p.endpoints(t, 1)
			} else {
				io.WriteString(p.stdin, "data")
				time.Sleep(200 * time.Millisecond) // let it connect; nothing to poll for
			}
			p.cmd.Process.Signal(os.Interrupt)
			if code := p.wait(t); code != tc.want {
				t.Errorf("status %d, want %d\nstderr:\n%s", code, tc.want, p.stderr.String())
			}
		})
	}
}

// TestRelay relays between transports, with half-closes passed on.
func TestRelay(t *testing.T) {
	tests := []struct {
		name         string
		serveArgs    []string
		listen       string
		relayExtra   []string
		connectExtra func(t *testing.T, p *nc) []string
	}{
		{name: "tcp-tcp", serveArgs: []string{"-l", "tcp://127.0.0.1:0"}, listen: "tcp"},
		{name: "tcp-unix", serveArgs: []string{"-l", "unix"}, listen: "tcp"},
		{name: "unix-tcp", serveArgs: []string{"-l", "tcp://127.0.0.1:0"}, listen: "unix"},
		{name: "unix-unix", serveArgs: []string{"-l", "unix"}, listen: "unix"},
		{name: "tls-tcp", serveArgs: []string{"-l", "tcp://127.0.0.1:0"}, listen: "tls",
			relayExtra:   []string{"--tls-self-signed"},
			connectExtra: func(t *testing.T, p *nc) []string { return []string{"--pin", p.fingerprint(t)} }},
		{name: "tcp-tls", serveArgs: []string{"-l", "tls://127.0.0.1:0", "--tls-self-signed"}, listen: "tcp", relayExtra: []string{"--insecure"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sa := append([]string{"echo"}, tt.serveArgs...)
			for i, a := range sa {
				if a == "unix" {
					sa[i] = listenEndpoint(t, "unix")
				}
			}
			_, teps := startServe(t, sa...)
			r := startNC(t, ncOpts{}, append(append([]string{"relay"}, tt.relayExtra...), listenEndpoint(t, tt.listen), teps[0])...)
			ep := r.endpoints(t, 1)[0]
			var extra []string
			if tt.connectExtra != nil {
				extra = tt.connectExtra(t, r)
			}
			connectOK(t, "hi", "hi", append(extra, ep)...)
			data := make([]byte, 3<<20)
			rand.Read(data)
			out, errOut, code := runIn(t, data, append([]string{"connect"}, append(extra, ep)...)...)
			if code != 0 || !bytes.Equal(out, data) {
				t.Errorf("3 MiB: status %d, %d bytes back, equal %v\n%s", code, len(out), bytes.Equal(out, data), errOut)
			}
		})
	}
}

// TestRelayTargetRefused: a target that refuses closes only that client's
// connection, logged; the relay keeps serving.
func TestRelayTargetRefused(t *testing.T) {
	closed := freePort(t)
	r := startNC(t, ncOpts{}, "relay", "tcp://127.0.0.1:0", "tcp://127.0.0.1:"+closed)
	ep := r.endpoints(t, 1)[0]
	for range 3 {
		// Closed at once: a FIN, or a reset when the bytes it sent are
		// still unread.
		out, _, code := runIn(t, []byte("x"), "connect", ep)
		if code > 1 || len(out) != 0 {
			t.Errorf("client of a refused target: status %d, %q (want a close)", code, out)
		}
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(r.stderr.String(), "target unreachable") }) {
		t.Errorf("refusal not logged:\n%s", r.stderr.String())
	}
	if r.done() {
		t.Fatal("relay exited")
	}
}

// TestListenKeepOpen: -k serves connections at the same time; stdin goes to
// all, what each sends goes to stdout.
func TestListenKeepOpen(t *testing.T) {
	l := startNC(t, ncOpts{pipeStdin: true}, "listen", "-k", "tcp://127.0.0.1:0")
	_, addr, _ := strings.Cut(l.endpoints(t, 1)[0], "://")
	var conns []net.Conn
	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "from %d\n", i)
		conns = append(conns, c)
	}
	if !waitFor(10*time.Second, func() bool { return strings.Count(l.stdout.String(), "from ") == 3 }) {
		t.Fatalf("stdout %q", l.stdout.String())
	}
	io.WriteString(l.stdin, "to all\n")
	for i, c := range conns {
		b := make([]byte, 7)
		if !readFull(c, b) || string(b) != "to all\n" {
			t.Errorf("connection %d got %q", i, b)
		}
	}
}

// TestListenSecondConnection: without -k a second connection is refused
// while the first is served.
func TestListenSecondConnection(t *testing.T) {
	l := startNC(t, ncOpts{pipeStdin: true}, "listen", "tcp://127.0.0.1:0")
	_, addr, _ := strings.Cut(l.endpoints(t, 1)[0], "://")
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	io.WriteString(first, "one\n")
	if !waitFor(10*time.Second, func() bool { return l.stdout.String() == "one\n" }) {
		t.Fatalf("stdout %q", l.stdout.String())
	}
	second, err := net.Dial("tcp", addr)
	if err == nil {
		second.SetDeadline(time.Now().Add(10 * time.Second))
		if n, _ := second.Read(make([]byte, 1)); n != 0 {
			t.Error("second connection got data")
		}
		second.Close()
	}
	first.Close()
	if code := l.wait(t); code != 0 {
		t.Errorf("status %d\n%s", code, l.stderr.String())
	}
}

// TestFDExhaustion runs listen -k --exec and serve with a low RLIMIT_NOFILE:
// more connections than descriptors neither crash nor spin the server, and
// it serves again once descriptors are free.
func TestFDExhaustion(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	for _, args := range [][]string{
		{"listen", "-k", "--exec", "cat", "tcp://127.0.0.1:0"},
		{"listen", "-k", "tcp://127.0.0.1:0"},
		// --max-conns 0: the default (from the open-file limit) would
		// refuse connections before descriptors run out.
		{"serve", "echo", "--max-conns", "0", "-l", "tcp://127.0.0.1:0"},
		{"serve", "echo", "--max-conns", "0", "--engine", "epoll", "-l", "tcp://127.0.0.1:0"}, // the loops accept
		{"serve", "echo", "--engine", "epoll", "-l", "tcp://127.0.0.1:0"},                     // the default limit
	} {
		name := strings.Join(args[:2], "-")
		if slices.Contains(args, "epoll") {
			name += "-epoll"
		}
		if args[0] == "serve" && !slices.Contains(args, "--max-conns") {
			name += "-default-max-conns"
		}
		t.Run(name, func(t *testing.T) {
			p := startNC(t, ncOpts{pipeStdin: true, wrap: []string{"sh", "-c", `ulimit -n 40 && exec "$@"`, "sh"}}, args...)
			_, addr, _ := strings.Cut(p.endpoints(t, 1)[0], "://")
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range 80 {
				c, err := net.DialTimeout("tcp", addr, 2*time.Second)
				if err != nil {
					break // the backlog is full: fine
				}
				conns = append(conns, c)
			}
			// Give the server time to hit the limit, then measure its CPU.
			time.Sleep(300 * time.Millisecond)
			before := cpuTicks(t, p.cmd.Process.Pid)
			time.Sleep(time.Second)
			used := cpuTicks(t, p.cmd.Process.Pid) - before
			if hz := 100; used > hz/2 {
				t.Errorf("server used %d ticks of CPU in 1s with descriptors exhausted (spinning)", used)
			}
			if p.done() {
				t.Fatalf("server exited: %v\n%s", p.waitErr, p.stderr.String())
			}
			for _, c := range conns {
				c.Close()
			}
			conns = nil
			ok := waitFor(20*time.Second, func() bool {
				out, _, code := runIn(t, []byte("again\n"), "connect", "--timeout", "2s", "--idle-timeout", "2s", "tcp://"+addr)
				if args[0] == "listen" && args[2] != "--exec" {
					return code == 0 // nothing echoes: a clean close after stdin is all
				}
				return code == 0 && string(out) == "again\n"
			})
			if !ok {
				t.Errorf("not serving again after descriptors were freed\nstderr:\n%s", tail(p.stderr.String(), 2000))
			}
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// cpuTicks returns utime+stime of pid in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return u + st
}

// TestConnectOptions covers --crlf, --hex, --send-only, --recv-only and
// --source.
func TestConnectOptions(t *testing.T) {
	_, eps := startServe(t, "echo", "-l", "tcp://127.0.0.1:0")
	connectOK(t, "a\nb\r\n", "a\r\nb\r\n", "--crlf", eps[0])
	out, errOut, code := runIn(t, []byte("hi\n"), "connect", "--hex", eps[0])
	if code != 0 || string(out) != "hi\n" {
		t.Errorf("--hex: %d %q", code, out)
	}
	for _, want := range []string{"> 00000000  68 69 0a", "|hi.|", "< 00000000  68 69 0a"} {
		if !strings.Contains(string(errOut), want) {
			t.Errorf("--hex stderr lacks %q:\n%s", want, errOut)
		}
	}
	connectOK(t, "dropped\n", "", "--send-only", eps[0])
	// --recv-only sends nothing: a server that greets and waits is read
	// until --idle-timeout.
	_, heps := startServe(t, "hello", "-l", "tcp://127.0.0.1:0")
	out, _, code = runIn(t, []byte("ignored\n"), "connect", "--recv-only", "--idle-timeout", "300ms", heps[0])
	if code != 1 || !strings.HasPrefix(string(out), "Welcome!") || strings.Contains(string(out), "ignored") {
		t.Errorf("--recv-only: status %d, %q", code, out)
	}
	// --source picks the local address.
	l := startNC(t, ncOpts{}, "listen", "--sh-exec", `echo "$SOCKIT_PEER_ADDR"`, "tcp://127.0.0.1:0")
	port := freePort(t)
	out, errOut, code = runIn(t, nil, "connect", "--source", "127.0.0.1:"+port, l.endpoints(t, 1)[0])
	if code != 0 || strings.TrimSpace(string(out)) != "127.0.0.1:"+port {
		t.Errorf("--source: status %d, peer %q, want 127.0.0.1:%s\n%s", code, out, port, errOut)
	}
}

// TestTLSHandshakeFailureIsolated: a failed handshake is logged with its
// peer and does not disturb a connection in progress.
func TestTLSHandshakeFailureIsolated(t *testing.T) {
	for _, args := range [][]string{
		{"listen", "-k", "--exec", "cat", "--tls-self-signed", "tls://127.0.0.1:0"},
		{"relay", "--tls-self-signed", "tls://127.0.0.1:0", "unix:" + filepath.Join(sockDir(t), "echo.sock")},
	} {
		t.Run(args[0], func(t *testing.T) {
			if args[0] == "relay" {
				startServe(t, "echo", "-l", args[len(args)-1])
			}
			p := startNC(t, ncOpts{pipeStdin: true}, args...)
			ep := p.endpoints(t, 1)[0]
			fp := p.fingerprint(t)
			good := startNC(t, ncOpts{pipeStdin: true}, "connect", "--pin", fp, ep)
			io.WriteString(good.stdin, "one\n")
			if !waitFor(10*time.Second, func() bool { return good.stdout.String() == "one\n" }) {
				t.Fatalf("good client: %q\n%s", good.stdout.String(), good.stderr.String())
			}
			// A plain-text client and one that refuses the certificate.
			_, addr, _ := strings.Cut(ep, "://")
			if c, err := net.Dial("tcp", addr); err == nil {
				io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.ReadAll(c)
				c.Close()
			}
			if _, _, code := runIn(t, nil, "connect", ep); code != 1 {
				t.Errorf("unverified client: status %d, want 1", code)
			}
			io.WriteString(good.stdin, "two\n")
			if !waitFor(10*time.Second, func() bool { return good.stdout.String() == "one\ntwo\n" }) {
				t.Errorf("good client after the failed handshakes: %q", good.stdout.String())
			}
			good.stdin.Close()
			if code := good.wait(t); code != 0 {
				t.Errorf("good client status %d", code)
			}
			if !waitFor(5*time.Second, func() bool {
				s := p.stderr.String()
				return strings.Contains(s, "127.0.0.1:") && strings.Contains(strings.ToLower(s), "handshake")
			}) {
				t.Errorf("failed handshake not logged with its peer:\n%s", p.stderr.String())
			}
		})
	}
}

// TestHelp: every command has --help with examples.
func TestNetcatHelp(t *testing.T) {
	for _, c := range []string{"connect", "listen", "relay"} {
		out, _, code := runSockit(t, c, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help: status %d\n%s", c, code, out)
		}
	}
}

// TestNetcatForms: connect's and listen's netcat forms (HOST PORT, -u, -w,
// -z LOW-HIGH, -v lines) give what the endpoint forms give.
func TestNetcatForms(t *testing.T) {
	_, eps := startServe(t, "echo", "-l", "tcp://127.0.0.1:0", "-l", "udp://127.0.0.1:0")
	host, tport := hostPort(t, eps[0])
	_, uport := hostPort(t, eps[1])
	for _, c := range []struct {
		name              string
		endpoint, netcat  []string
		stdin, wantStdout string
	}{
		{"tcp", []string{"connect", eps[0]}, []string{"connect", host, tport}, "hi\n", "hi\n"},
		{"tcp -w", []string{"connect", "--timeout", "3s", "--idle-timeout", "3s", eps[0]}, []string{"connect", "-w", "3", host, tport}, "hi\n", "hi\n"},
		{"udp", []string{"connect", eps[1]}, []string{"connect", "-u", host, uport}, "Michael\nTracy\n", "Michael\nTracy\n"},
		{"udp host:port", []string{"connect", eps[1]}, []string{"connect", "-u", net.JoinHostPort(host, uport)}, "x\n", "x\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sockit := sockitPath()
			out1, err1, code1 := runPeer(t, []byte(c.stdin), append([]string{sockit}, c.endpoint...)...)
			out2, err2, code2 := runPeer(t, []byte(c.stdin), append([]string{sockit}, c.netcat...)...)
			if out1 != c.wantStdout || out2 != out1 || code1 != 0 || code2 != 0 {
				t.Fatalf("endpoint form: %q (%d) %s\nnetcat form: %q (%d) %s", out1, code1, err1, out2, code2, err2)
			}
		})
	}
	t.Run("-v", func(t *testing.T) {
		_, stderr, code := runPeer(t, []byte("hi\n"), sockitPath(), "connect", "-v", host, tport)
		if want := "Connection to " + host + " " + tport + " port [tcp] succeeded!\n"; code != 0 || stderr != want {
			t.Fatalf("stderr %q (exit %d), want %q", stderr, code, want)
		}
	})
	t.Run("-z range", func(t *testing.T) {
		p, _ := strconv.Atoi(tport)
		lo, hi := max(p-2, 1), min(p+2, 65535)
		out, _, code := runPeer(t, nil, sockitPath(), "connect", "-z", host, fmt.Sprintf("%d-%d", lo, hi))
		if want := "Connection to " + host + " " + tport + " port [tcp] succeeded!\n"; code != 0 || !strings.Contains(out, want) {
			t.Fatalf("scan: %q (exit %d), want a line %q", out, code, want)
		}
		closed := freePort(t)
		if _, _, code := runPeer(t, nil, sockitPath(), "connect", "-z", host, closed+"-"+closed); code != 1 {
			t.Fatalf("scan of a closed port: exit %d, want 1", code)
		}
	})
	t.Run("listen HOST PORT -v", func(t *testing.T) {
		port := freePort(t)
		l := startNC(t, ncOpts{}, "listen", "-v", "127.0.0.1", port)
		if !waitFor(serveStartTimeout, func() bool { return strings.Contains(l.stderr.String(), "Listening on 127.0.0.1 "+port+"\n") }) {
			t.Fatalf("no Listening line:\n%s", l.stderr.String())
		}
		if out, _, code := runPeer(t, []byte("ping"), sockitPath(), "connect", "127.0.0.1", port); code != 0 || out != "" {
			t.Fatalf("connect to listen: %q, exit %d", out, code)
		}
		if !waitFor(serveStartTimeout, func() bool { return strings.Contains(l.stderr.String(), "Connection received on 127.0.0.1 ") }) {
			t.Fatalf("no Connection received line:\n%s", l.stderr.String())
		}
		if !waitFor(serveStartTimeout, func() bool { return l.stdout.String() == "ping" }) {
			t.Fatalf("listen printed %q, want ping", l.stdout.String())
		}
	})
}
