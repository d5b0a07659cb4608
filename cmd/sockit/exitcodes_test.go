package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUsageErrorsExit2 runs the usage-error paths of every command: each
// prints one line naming what is wrong and exits 2 (SPEC §5).
func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string // in the one stderr line
	}{
		{[]string{"serve"}, "serve: missing SERVICE (echo, discard"},
		{[]string{"serve"}, ", http); for example: sockit serve hello"},
		{[]string{"serve", "nope"}, `unknown service "nope" (services: echo, discard, chargen, daytime, hello, upper, reply, chat, files, http)`},
		{[]string{"serve", "echo", "extra"}, `"extra" is one argument too many`},
		{[]string{"serve", "echo", "--frame", "len:3"}, "len:3"},
		{[]string{"serve", "echo", "-l", "udp6://127.0.0.1:7"}, "IPv6 only"},
		{[]string{"serve", "echo", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"connect"}, "connect: missing ENDPOINT; for example:"},
		{[]string{"connect", "nowhere"}, `bad endpoint "nowhere"`},
		{[]string{"listen", "a", "b", "c"}, `"c" is one argument too many`},
		{[]string{"listen", "a", "b"}, `bad port "b"`},
		{[]string{"connect", "127.0.0.1", "http"}, `bad port "http"`},
		{[]string{"connect", "-u", "tcp://127.0.0.1:1"}, "-u selects UDP"},
		{[]string{"connect", "-w", "soon", "127.0.0.1", "1"}, `-w "soon"`},
		{[]string{"connect", "-z", "127.0.0.1", "9-3"}, "want a port or a range"},
		{[]string{"serve", "echo", "--log-level", "loud"}, "--log-level must be"},
		{[]string{"send", "tcp://127.0.0.1:1"}, "send: missing MESSAGE"},
		{[]string{"send", "udp6://127.0.0.1:1", "hi"}, "127.0.0.1 is an IPv4 address; udp6:// is IPv6 only"},
		{[]string{"send", "tcp4://[::1]:1", "hi"}, "IPv4 only"},
		{[]string{"relay", ":1"}, "relay: missing TARGET-ENDPOINT"},
		{[]string{"http", "get"}, "http get: missing URL"},
		{[]string{"http", "get", "ftp://x/"}, `URL "ftp://x/": the scheme must be http or https`},
		{[]string{"http", "head", "http:///nohost"}, "has no host"},
		{[]string{"fetch"}, "no URLs: give them as arguments or with -i FILE"},
		{[]string{"bench"}, "bench: missing ENDPOINT"},
		{[]string{"soak"}, "soak: missing ENDPOINT"},
		{[]string{"soak", "tcp://192.0.2.1:7"}, "loopback"},
		{[]string{"version", "x"}, "unknown command"},
		{[]string{"nosuchcommand"}, "unknown command"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runSockit(t, c.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) || strings.Count(lines[0], "sockit: ") > 1 {
				t.Fatalf("stderr %q: want one line containing %q, with one sockit: prefix", stderr, c.want)
			}
		})
	}
}

// TestInterruptExits130 sends SIGINT to each client command while it waits
// on a peer that never finishes, and checks it exits 130 (SPEC §5).
func TestInterruptExits130(t *testing.T) {
	t.Parallel()
	// A TCP peer that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan struct{}, 1024)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	// An HTTP peer that holds every request.
	hold := make(chan struct{})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case accepted <- struct{}{}:
		default:
		}
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hs.Serve(hln) }()
	t.Cleanup(func() { close(hold); hs.Close() })
	tcp := "tcp://" + ln.Addr().String()
	url := "http://" + hln.Addr().String() + "/"
	cases := []struct {
		name string
		args []string
	}{
		{"connect", []string{"connect", tcp}},
		{"send", []string{"send", "--timeout", "1m", tcp, "hi"}},
		{"bench", []string{"bench", tcp, "--conns", "2", "--duration", "1m", "--timeout", "1m"}},
		{"http get", []string{"http", "get", "--timeout", "1m", url}},
		{"fetch", []string{"fetch", "--timeout", "1m", url, url + "x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, sockitPath(), c.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if c.name == "connect" {
				// stdin that stays open: connect waits for it and the peer.
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				defer r.Close()
				cmd.Stdin = r
			}
			cmd.WaitDelay = 5 * time.Second
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Drain old signals of other cases, then wait for this one's peer.
			for len(accepted) > 0 {
				<-accepted
			}
			select {
			case <-accepted:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("%s never reached its peer; stderr: %s", c.name, stderr.String())
			}
			time.Sleep(200 * time.Millisecond) // into its wait
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if ctx.Err() != nil {
				t.Fatalf("%s did not exit after SIGINT", c.name)
			}
			if code := cmd.ProcessState.ExitCode(); code != 130 {
				t.Fatalf("%s: exit %d after SIGINT, want 130; stderr: %s", c.name, code, stderr.String())
			}
		})
	}
}

// TestJSONLogsEndInJSON: with --log-format json the final error is a JSON
// line (with the exit status) and durations are strings.
func TestJSONLogsEndInJSON(t *testing.T) {
	_, stderr, code := runSockit(t, "--log-format", "json", "connect", "nowhere")
	var line struct {
		Level, Msg string
		Exit       int
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(stderr)), &line); err != nil || code != 2 || line.Level != "ERROR" || line.Exit != 2 || !strings.Contains(line.Msg, `bad endpoint "nowhere"`) {
		t.Fatalf("exit %d, stderr %q (%v): want one JSON ERROR line with exit 2", code, stderr, err)
	}
	p, _ := startServe(t, "echo", "-l", "tcp://127.0.0.1:0", "--log-format", "json", "--grace", "1500ms")
	p.stop(t)
	if s := p.stderr.String(); !strings.Contains(s, `"grace":"1.5s"`) {
		t.Fatalf("the shutdown line's duration is not a string:\n%s", s)
	}
}
