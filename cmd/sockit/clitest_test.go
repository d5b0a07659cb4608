package main

// Helpers for tests that run the real sockit binary: TestMain builds it once,
// startServe runs `sockit serve` and waits for its endpoints, runSockit runs a
// command to completion, runPython runs a seed's Python client.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const (
	// serveStartTimeout bounds how long sockit serve may take to print its
	// listening lines.
	serveStartTimeout = 20 * time.Second
	// serveStopTimeout bounds a graceful exit after SIGTERM (--grace is 10s
	// by default).
	serveStopTimeout = 20 * time.Second
	// commandTimeout bounds every sockit or python3 run.
	commandTimeout = 60 * time.Second
)

// binDir holds the sockit binary, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sockit-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sockit tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "sockit"), ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "sockit tests: building the binary:", err)
		return 1
	}
	binDir = dir
	code := m.Run()
	if code == 0 {
		// In-process tests (run) must not leave goroutines behind.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "sockit tests: goroutine leak:", err)
			return 1
		}
	}
	return code
}

// sockitPath is the binary under test.
func sockitPath() string { return filepath.Join(binDir, "sockit") }

// lockedBuffer is a bytes.Buffer safe for a process writing while a test
// reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineWriter collects a process's output as lines and signals each write.
type lineWriter struct {
	lockedBuffer
	changed chan struct{} // receives after each write (capacity 1)
}

func newLineWriter() *lineWriter { return &lineWriter{changed: make(chan struct{}, 1)} }

func (w *lineWriter) Write(p []byte) (int, error) {
	n, err := w.lockedBuffer.Write(p)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return n, err
}

// lines returns the complete lines written so far.
func (w *lineWriter) lines() []string {
	s := w.String()
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		return nil
	}
	return strings.Split(s[:i], "\n")
}

// serveProc is a running `sockit serve`.
type serveProc struct {
	cmd     *exec.Cmd
	stdout  *lineWriter
	stderr  *lockedBuffer
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid after exited is closed
	// stopped is set by stop, or by a test that ended the process itself
	// and checked its exit: the cleanup then leaves the process alone.
	stopped bool
}

// listenCount counts the -l/--listen flags in serve's arguments.
func listenCount(args []string) int {
	n := 0
	for _, a := range args {
		switch {
		case a == "-l", a == "--listen", strings.HasPrefix(a, "-l="), strings.HasPrefix(a, "--listen="):
			n++
		case strings.HasPrefix(a, "-l") && len(a) > 2 && !strings.HasPrefix(a, "--"):
			n++ // -ltcp://...
		}
	}
	return n
}

// startServe runs `sockit serve ARGS...` (ARGS must give every endpoint with
// -l, port 0 or a path in a temporary directory: the default endpoints are
// fixed ports) and returns it with the endpoints it printed, one per -l, in
// order. On cleanup it sends SIGTERM and expects a graceful exit with status
// 0.
func startServe(t *testing.T, args ...string) (*serveProc, []string) {
	t.Helper()
	want := listenCount(args)
	if want == 0 {
		t.Fatalf("startServe %q: give every endpoint with -l (the default ports are fixed)", args)
	}
	p := &serveProc{
		cmd:    exec.Command(sockitPath(), append([]string{"serve"}, args...)...),
		stdout: newLineWriter(),
		stderr: &lockedBuffer{},
		exited: make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting sockit serve: %v", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(t) })

	deadline := time.NewTimer(serveStartTimeout)
	defer deadline.Stop()
	for {
		var eps []string
		for _, l := range p.stdout.lines() {
			if ep, ok := strings.CutPrefix(l, "listening "); ok {
				eps = append(eps, ep)
			}
		}
		if len(eps) >= want {
			return p, eps[:want]
		}
		select {
		case <-p.stdout.changed:
		case <-p.exited:
			t.Fatalf("sockit serve %q exited before listening (%v)\nstdout:\n%s\nstderr:\n%s", args, p.waitErr, p.stdout.String(), p.stderr.String())
		case <-deadline.C:
			t.Fatalf("sockit serve %q printed %d of %d listening lines within %v\nstdout:\n%s\nstderr:\n%s", args, len(eps), want, serveStartTimeout, p.stdout.String(), p.stderr.String())
		}
	}
}

// stop sends SIGTERM and waits (bounded) for exit status 0. It does nothing
// once the process was stopped.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	if p.stopped {
		return
	}
	p.stopped = true
	select {
	case <-p.exited:
		t.Errorf("sockit serve exited early: %v\nstderr:\n%s", p.waitErr, p.stderr.String())
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM to sockit serve: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(serveStopTimeout):
		p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("sockit serve did not exit within %v of SIGTERM\nstderr:\n%s", serveStopTimeout, p.stderr.String())
		return
	}
	if p.waitErr != nil {
		t.Errorf("sockit serve after SIGTERM: %v (want exit status 0)\nstderr:\n%s", p.waitErr, p.stderr.String())
	}
}

// runSockit runs the sockit binary with args to completion (bounded) and
// returns its output and exit status.
func runSockit(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sockitPath(), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("sockit %q did not finish within %v\nstdout:\n%s\nstderr:\n%s", args, commandTimeout, out.String(), errOut.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
	default:
		t.Fatalf("sockit %q: %v\nstderr:\n%s", args, err, errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// runPython runs python3 testdata/seeds/SCRIPT ARGS... (see pythonScript).
func runPython(t *testing.T, script string, args ...string) string {
	t.Helper()
	return pythonScript(t, "seeds", script, args...)
}

// pythonScript runs python3 testdata/DIR/SCRIPT ARGS... (bounded), fails the
// test unless it exits 0, and returns its stdout. It skips the test when
// python3 is missing.
func pythonScript(t *testing.T, dir, script string, args ...string) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{filepath.Join("testdata", dir, script)}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONIOENCODING=utf-8", "PYTHONUTF8=1", "PYTHONDONTWRITEBYTECODE=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("python3 %s %q: %v\nstdout:\n%s\nstderr:\n%s", script, args, err, out.String(), errOut.String())
	}
	return out.String()
}

// hostPort splits an endpoint such as tcp://127.0.0.1:40123 into host and
// port.
func hostPort(t *testing.T, ep string) (host, port string) {
	t.Helper()
	_, addr, ok := strings.Cut(ep, "://")
	if !ok {
		addr = ep
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("endpoint %q: %v", ep, err)
	}
	return host, port
}

// unixPath returns the socket path of a unix://, unixgram:// or
// unixpacket:// endpoint.
func unixPath(t *testing.T, ep string) string {
	t.Helper()
	_, path, ok := strings.Cut(ep, "://")
	if !ok {
		_, path, ok = strings.Cut(ep, ":")
	}
	if !ok || path == "" {
		t.Fatalf("endpoint %q has no socket path", ep)
	}
	return path
}

// sockDir returns a directory for Unix sockets, short enough for sun_path
// (108 bytes).
func sockDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 80 {
		var err error
		if dir, err = os.MkdirTemp("", "sk"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return dir
}
