package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultKillGrace is how long a child may take to exit after SIGTERM before
// it gets SIGKILL, when ExecConfig.KillGrace is zero.
const DefaultKillGrace = 2 * time.Second

// closeLinger bounds how long Exec waits, after the child's output has gone
// out and the write side is half-closed, for the peer to close before the
// connection is closed under it.
const closeLinger = time.Second

// ErrBadCommand is what SplitWords's errors match with errors.Is.
var ErrBadCommand = errors.New("sockit: bad command line")

// badCommand returns an error matching ErrBadCommand with its own message.
func badCommand(format string, args ...any) error {
	return &reasonError{sentinel: ErrBadCommand, msg: fmt.Sprintf(format, args...)}
}

// reasonError is a sentinel with a message of its own.
type reasonError struct {
	sentinel error
	msg      string
}

func (e *reasonError) Error() string { return e.msg }
func (e *reasonError) Unwrap() error { return e.sentinel }

// SplitWords splits a command line into words the way a shell would, without
// running one: words are separated by blanks, 'single quotes' keep
// everything literally, "double quotes" keep everything but \" \\ \$ \`
// escapes, and a backslash outside quotes escapes the next character.
// Nothing is expanded. An unclosed quote or a trailing backslash is an error.
func SplitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case ch == '\\':
			if i+1 >= len(s) {
				return nil, badCommand("trailing backslash in %q", s)
			}
			i++
			w.WriteByte(s[i])
			inWord = true
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, badCommand("unclosed ' in %q", s)
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			closed := false
			for ; i < len(s); i++ {
				c := s[i]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
					c = s[i]
				}
				w.WriteByte(c)
			}
			if !closed {
				return nil, badCommand("unclosed \" in %q", s)
			}
			inWord = true
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	if len(words) == 0 {
		return nil, badCommand("no command in %q", s)
	}
	return words, nil
}

// ExecConfig configures Exec. Argv has to be set; the rest of the zero value
// works.
type ExecConfig struct {
	// Argv is the program and its arguments; the program is looked up in
	// PATH. For a shell command use []string{"/bin/sh", "-c", TEXT}.
	Argv []string
	// Proto is the value of SOCKIT_PROTO in the child's environment (the
	// listen endpoint's scheme, e.g. "tcp", "unix", "tls").
	Proto string
	// Env is added to the child's environment (after os.Environ and the
	// SOCKIT_ variables).
	Env []string
	// Logger receives the child's stderr, a record per line, and the
	// child's exit; nil sends the child's stderr to this process's stderr.
	Logger *slog.Logger
	// IdleTimeout and ReadTimeout end the child (see PipeConfig) when the
	// connection has no bytes either way, or none from the peer, for this
	// long; zero means never.
	IdleTimeout, ReadTimeout time.Duration
	// KillGrace is how long the child may take to exit after SIGTERM
	// before SIGKILL; zero means DefaultKillGrace.
	KillGrace time.Duration
}

// Exec is `sockit listen --exec`: it runs a process for connection c (the
// inetd and ForkingMixIn model), with its stdin fed from c and its stdout
// sent to c, and SOCKIT_PEER_ADDR, SOCKIT_LOCAL_ADDR and SOCKIT_PROTO in its
// environment. The child runs in a process group of its own.
//
//   - The peer's half-close closes only the child's stdin; what the child
//     writes still reaches the peer.
//   - When the child's stdout ends (it exited), c is half-closed, and once
//     the peer closes (or after a second) c is closed.
//   - A reset of c, IdleTimeout, ReadTimeout or ctx's end terminate the
//     child's process group: SIGTERM, then SIGKILL after KillGrace.
//
// Exec always waits for the child (no zombies) and for its own goroutines
// before it returns. It returns nil when the child ran to its end over a
// healthy connection, and otherwise why it did not: a *ConnError, a
// *TimeoutError, ctx's error, an error from starting the child, or an
// *exec.ExitError for a child that failed on its own.
func Exec(ctx context.Context, c net.Conn, cfg ExecConfig) error {
	if len(cfg.Argv) == 0 || cfg.Argv[0] == "" {
		return badCommand("no command")
	}
	grace := cfg.KillGrace
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	addr := c.RemoteAddr().String()

	// Pipes of our own, so that the copies are plain *os.File copies
	// (splice) and no exec goroutine holds Wait up.
	var parentEnds, childEnds []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("exec %s: %w", cfg.Argv[0], err)
	}
	childEnds, parentEnds = append(childEnds, stdinR), append(parentEnds, stdinW)
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		closeAll(childEnds)
		closeAll(parentEnds)
		return fmt.Errorf("exec %s: %w", cfg.Argv[0], err)
	}
	childEnds, parentEnds = append(childEnds, stdoutW), append(parentEnds, stdoutR)
	var stderrR, stderrW *os.File
	if cfg.Logger != nil {
		if stderrR, stderrW, err = os.Pipe(); err != nil {
			closeAll(childEnds)
			closeAll(parentEnds)
			return fmt.Errorf("exec %s: %w", cfg.Argv[0], err)
		}
		childEnds, parentEnds = append(childEnds, stderrW), append(parentEnds, stderrR)
	}

	cmd := exec.Command(cfg.Argv[0], cfg.Argv[1:]...)
	cmd.Env = append(os.Environ(),
		"SOCKIT_PEER_ADDR="+addr,
		"SOCKIT_LOCAL_ADDR="+c.LocalAddr().String(),
		"SOCKIT_PROTO="+cfg.Proto,
	)
	cmd.Env = append(cmd.Env, cfg.Env...)
	cmd.Stdin, cmd.Stdout = stdinR, stdoutW
	if stderrW != nil {
		cmd.Stderr = stderrW
	} else {
		cmd.Stderr = os.Stderr
	}
	setProcessGroup(cmd)
	err = cmd.Start()
	closeAll(childEnds)
	if err != nil {
		closeAll(parentEnds)
		return fmt.Errorf("exec %s: %w", cfg.Argv[0], err)
	}
	pid := cmd.Process.Pid
	if cfg.Logger != nil {
		cfg.Logger.Debug("exec started", "peer", addr, "pid", pid, "argv", cfg.Argv)
	}

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()

	// terminate ends the child's process group once: SIGTERM, SIGKILL
	// after grace. why records the first reason.
	var (
		termOnce sync.Once
		whyMu    sync.Mutex
		why      error
		wg       sync.WaitGroup
	)
	setWhy := func(e error) {
		whyMu.Lock()
		if why == nil {
			why = e
		}
		whyMu.Unlock()
	}
	terminate := func(reason error) {
		setWhy(reason)
		termOnce.Do(func() {
			terminateGroup(cmd.Process)
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTimer(grace)
				defer t.Stop()
				select {
				case <-exited:
				case <-t.C:
					killGroup(cmd.Process)
				}
			}()
		})
	}
	var closeOnce sync.Once
	closeConn := func() { closeOnce.Do(func() { c.Close() }) }

	wd := newWatchdog(cfg.IdleTimeout, cfg.ReadTimeout, func(why func(string) error) {
		terminate(why(addr))
		closeConn()
	})
	stopCtx := context.AfterFunc(ctx, func() { terminate(ctx.Err()); closeConn() })

	pc := PipeConfig{IdleTimeout: cfg.IdleTimeout, ReadTimeout: cfg.ReadTimeout}
	see := func(received bool) func([]byte) []byte {
		return func(p []byte) []byte { wd.touch(received); return p }
	}

	// The peer → the child's stdin. When the child stops reading, what the
	// peer still sends is dropped, so a reset is still noticed.
	inDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(inDone)
		var err error
		if pc.instrumented() {
			err = copyInstrumented(stdinW, c, see(true), false)
		} else {
			_, err = io.Copy(stdinW, c)
		}
		stdinW.Close()
		if err != nil && errors.Is(err, syscall.EPIPE) {
			// The child closed its stdin; keep draining the peer.
			if pc.instrumented() {
				err = copyInstrumented(io.Discard, c, see(true), false)
			} else {
				_, err = io.Copy(io.Discard, c)
			}
		}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			terminate(&ConnError{Op: "read", Addr: addr, Err: err})
			closeConn()
		}
	}()

	// The child's stdout → the peer, then a half-close.
	outDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(outDone)
		var err error
		if pc.instrumented() {
			err = copyInstrumented(c, stdoutR, see(false), false)
		} else {
			_, err = io.Copy(c, stdoutR)
		}
		if err != nil {
			if !errors.Is(err, os.ErrClosed) && !errors.Is(err, net.ErrClosed) {
				terminate(&ConnError{Op: "write", Addr: addr, Err: err})
			}
			closeConn()
			return
		}
		closeWrite(c)
	}()

	if stderrR != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(stderrR)
			sc.Buffer(make([]byte, 4096), 64<<10)
			for sc.Scan() {
				cfg.Logger.Info("exec stderr", "peer", addr, "pid", pid, "line", sc.Text())
			}
			// A line too long for the scanner: keep draining, so that the
			// child never blocks on a full stderr pipe.
			_, _ = io.Copy(io.Discard, stderrR)
		}()
	}

	<-exited
	// The child is gone. Let its output drain (a grandchild may still hold
	// the pipe: it gets KillGrace), then wait briefly for the peer to close.
	t := time.NewTimer(grace)
	select {
	case <-outDone:
	case <-t.C:
		stdoutR.Close()
		<-outDone
	}
	t.Stop()
	t = time.NewTimer(closeLinger)
	select {
	case <-inDone:
	case <-t.C:
	}
	t.Stop()
	closeConn()
	if stderrR != nil {
		// Unblocks the scanner if a grandchild holds the stderr pipe.
		stderrR.Close()
	}
	stopCtx()
	wd.stop()
	wg.Wait()
	stdoutR.Close()

	whyMu.Lock()
	defer whyMu.Unlock()
	if cfg.Logger != nil {
		cfg.Logger.Debug("exec exited", "peer", addr, "pid", pid, "status", cmd.ProcessState.String())
	}
	if why != nil {
		return why
	}
	return waitErr
}
