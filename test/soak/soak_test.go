//go:build soak

// Package soak_test soaks every built-in service on every transport and
// engine: a sockit server process under `sockit soak`, well-behaved clients
// checking every reply while bad clients of every kind run beside them.
// Each combination fails if a message was lost, a fault was answered
// otherwise than it should, the server logged an error, goroutines, fds or
// RSS did not come back near their start, or the server did not shut down
// cleanly.
//
//	go test -tags soak ./test/soak                      # the CI version
//	SOAK_DURATION=2m SOAK_LONG=2m go test -tags soak -timeout 6h ./test/soak
//
// SOAK_DURATION is each combination's load (default 2s); SOAK_LONG the load
// of the two long runs, one per engine, of echo and hello with every fault
// (default 20s). test/soak/run.sh runs the 2-minute version.
package soak_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var sockit string // the binary under test, built by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sockit-soak")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sockit = filepath.Join(dir, "sockit")
	build := exec.Command("go", "build", "-o", sockit, "github.com/sockit/sockit/cmd/sockit")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sockit:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

// combo is one soak: a service on a transport with a framing on an engine.
type combo struct {
	service, transport, frame, engine string
	faults                            string // "" is every fault that applies
}

func (c combo) name() string {
	n := c.service + "/" + c.transport + "/" + strings.NewReplacer(":", "", "\\", "").Replace(c.frame) + "/" + c.engine
	return n
}

var engines = []string{"goroutine", "epoll"}

// The framing each service is soaked with, and the transports it runs on.
var services = []struct {
	name       string
	frame      string
	transports []string
}{
	{"echo", "line", []string{"tcp", "tls", "unix", "unixpacket", "udp", "unixgram"}},
	{"upper", "line", []string{"tcp", "tls", "unix", "unixpacket", "udp", "unixgram"}},
	{"hello", "line", []string{"tcp", "tls", "unix", "unixpacket", "udp", "unixgram"}},
	{"reply", "line", []string{"tcp", "tls", "unix", "unixpacket", "udp", "unixgram"}},
	{"discard", "line", []string{"tcp", "tls", "unix", "unixpacket", "udp", "unixgram"}},
	{"daytime", "line", []string{"tcp", "tls", "unix", "unixpacket", "udp", "unixgram"}},
	{"chargen", "raw", []string{"tcp", "tls", "unix", "unixpacket", "udp", "unixgram"}},
	{"http", "raw", []string{"tcp", "tls", "unix"}},
}

// Every other framing, on echo over TCP and Unix.
var framings = []string{"raw", "delim:\\r\\n", "len:1", "len:2", "len:4", "len:8", "fixed:64", "close"}

func combos() []combo {
	var out []combo
	for _, eng := range engines {
		for _, s := range services {
			if s.name == "http" && eng != "goroutine" {
				continue // serve http runs on net/http's goroutines only
			}
			for _, tr := range s.transports {
				out = append(out, combo{service: s.name, transport: tr, frame: s.frame, engine: eng})
			}
		}
		for _, f := range framings {
			for _, tr := range []string{"tcp", "unix"} {
				out = append(out, combo{service: "echo", transport: tr, frame: f, engine: eng})
			}
		}
	}
	return out
}

// TestSoak runs every combination for SOAK_DURATION.
func TestSoak(t *testing.T) {
	d := envDuration(t, "SOAK_DURATION", 2*time.Second)
	for _, c := range combos() {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			soakOne(t, c, d, 2)
		})
	}
}

// TestSoakLong runs one service on each kind of transport (TCP, TLS, a Unix
// stream, UDP) with every fault for SOAK_LONG on each engine.
func TestSoakLong(t *testing.T) {
	d := envDuration(t, "SOAK_LONG", 20*time.Second)
	for _, eng := range engines {
		for _, c := range []combo{
			{service: "echo", transport: "tcp", frame: "line", engine: eng},
			{service: "hello", transport: "tls", frame: "len:4", engine: eng},
			{service: "upper", transport: "unix", frame: `delim:\r\n`, engine: eng},
			{service: "reply", transport: "udp", frame: "raw", engine: eng},
		} {
			t.Run(c.name(), func(t *testing.T) {
				t.Parallel()
				soakOne(t, c, d, 1)
			})
		}
	}
}

// server is a `sockit serve` process.
type server struct {
	cmd      *exec.Cmd
	endpoint string
	metrics  string // its /metrics URL
	log      *lockedBuffer
	exited   chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The server's limits: short timeouts so that stalled and slow clients are
// closed within a short run, and --max-conns below a flood.
const maxConns = 64

func startServer(t *testing.T, c combo) *server {
	t.Helper()
	var addr string
	switch c.transport {
	case "tcp", "tls", "udp":
		addr = c.transport + "://127.0.0.1:0"
	default:
		// Short paths: t.TempDir can pass the 108 bytes of sun_path.
		dir, err := os.MkdirTemp("", "sk")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		addr = c.transport + "://" + filepath.Join(dir, "s.sock")
	}
	args := []string{"serve", c.service, "-l", addr, "--engine", c.engine, "--log-format", "json",
		"--read-timeout", "2s", "--idle-timeout", "10s", "--max-conns", fmt.Sprint(maxConns), "--grace", "2s", "--metrics", "127.0.0.1:0"}
	if c.service != "http" {
		// net/http keeps its own write deadlines.
		args = append(args, "--frame", c.frame, "--write-timeout", "5s")
	}
	if c.transport == "tls" {
		args = append(args, "--tls-self-signed")
	}
	cmd := exec.Command(sockit, args...)
	s := &server{cmd: cmd, log: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = s.log
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.exited
		}
	})
	timeout := time.After(10 * time.Second)
	for s.endpoint == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the server exited before listening:\n%s", s.log)
			}
			if ep, ok := strings.CutPrefix(l, "listening "); ok {
				s.endpoint = ep
			}
			if u, ok := strings.CutPrefix(l, "metrics "); ok {
				s.metrics = u
			}
		case <-timeout:
			t.Fatalf("the server did not listen within 10s:\n%s", s.log)
		}
	}
	go func() {
		for range lines {
		}
	}()
	return s
}

// stop sends SIGTERM and expects a clean exit within the grace period.
func (s *server) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("the server exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the server did not exit within 10s of SIGTERM")
	}
}

// errorLines returns the server's log lines at error level.
func (s *server) errorLines() []string {
	var out []string
	for l := range strings.SplitSeq(s.log.String(), "\n") {
		var rec struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Level == "ERROR" {
			out = append(out, l)
		}
	}
	return out
}

// report is the part of sockit.soak/v1 the test reads.
type report struct {
	Schema   string   `json:"schema"`
	Sent     int64    `json:"sent"`
	Answered int64    `json:"answered"`
	Lost     int64    `json:"lost"`
	Passed   bool     `json:"passed"`
	Failures []string `json:"failures"`
	Faults   []struct {
		Kind     string `json:"kind"`
		Injected int64  `json:"injected"`
	} `json:"faults"`
	PeakConns int64 `json:"peak_conns"`
	Server    *struct {
		Start      map[string]int64 `json:"start"`
		Peak       map[string]int64 `json:"peak"`
		End        map[string]int64 `json:"end"`
		RSSPerConn int64            `json:"rss_per_conn_bytes"`
	} `json:"server"`
}

func soakOne(t *testing.T, c combo, d time.Duration, rate float64) {
	srv := startServer(t, c)
	args := []string{"soak", srv.endpoint, "--service", c.service, "--duration", d.String(),
		"--warmup", "500ms", "--clients", "4", "--rate", fmt.Sprint(rate), "--flood", fmt.Sprint(2 * maxConns),
		"--timeout", "5s", "--settle", "20s", "--pid", fmt.Sprint(srv.cmd.Process.Pid), "--metrics", srv.metrics, "--json"}
	if c.service != "http" {
		args = append(args, "--frame", c.frame)
	}
	if c.faults != "" {
		args = append(args, "--faults", c.faults)
	}
	if c.transport == "tls" {
		args = append(args, "--insecure")
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sockit, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("soak: %v; no report (%v):\n%s\n%s", runErr, err, stdout.String(), stderr.String())
	}
	if rep.Schema != "sockit.soak/v1" {
		t.Errorf("schema %q", rep.Schema)
	}
	if !rep.Passed || runErr != nil {
		t.Errorf("soak failed (%v): %s\n%s", runErr, strings.Join(rep.Failures, "; "), stdout.String())
	}
	if rep.Sent == 0 || rep.Server == nil || rep.Server.Start["goroutines"] <= 0 {
		t.Errorf("nothing measured: %d sent, server %v", rep.Sent, rep.Server)
	}
	for _, f := range rep.Faults {
		if f.Injected == 0 {
			t.Errorf("fault %s was never injected", f.Kind)
		}
	}
	srv.stop(t)
	if lines := srv.errorLines(); len(lines) > 0 {
		t.Errorf("the server logged %d errors, the first: %s", len(lines), lines[0])
	}
	if t.Failed() {
		t.Logf("server log (last 4 KiB):\n%s", tail(srv.log.String(), 4096))
	} else {
		// One line per combination, for test/soak/run.sh's table.
		var injected int64
		for _, f := range rep.Faults {
			injected += f.Injected
		}
		s := rep.Server
		t.Logf("result | %s | %s | %s | %s | %s | %d | %d | %d | %d | %d | %d → %d | %d → %d | %.1f / %.1f / %.1f | %.1f |",
			c.service, c.transport, c.frame, c.engine, d, rep.Sent, rep.Answered, rep.Lost, injected, rep.PeakConns,
			s.Start["goroutines"], s.End["goroutines"], s.Start["fds"], s.End["fds"], mib(s.Start["rss_bytes"]), mib(s.Peak["rss_bytes"]), mib(s.End["rss_bytes"]),
			float64(rep.Server.RSSPerConn)/1024)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
