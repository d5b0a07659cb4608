package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestSoakCLI: a short soak of a real server passes with exit 0 and its
// --json report; the same server soaked as the wrong service fails with
// exit 1 and says what was lost.
func TestSoakCLI(t *testing.T) {
	srv, eps := startServe(t, "echo", "-l", "tcp://127.0.0.1:0", "--frame", "line", "--read-timeout", "1s", "--max-conns", "32")
	pid := fmt.Sprint(srv.cmd.Process.Pid)
	out, stderr, code := runSockit(t, "soak", eps[0], "--frame", "line", "--duration", "1s", "--warmup", "200ms",
		"--clients", "2", "--rate", "2", "--flood", "48", "--timeout", "3s", "--settle", "10s", "--pid", pid, "--json")
	var rep struct {
		Schema   string `json:"schema"`
		Service  string `json:"service"`
		Sent     int64  `json:"sent"`
		Answered int64  `json:"answered"`
		Lost     int64  `json:"lost"`
		Passed   bool   `json:"passed"`
		Faults   []struct {
			Kind     string `json:"kind"`
			Injected int64  `json:"injected"`
		} `json:"faults"`
		Server struct {
			PID   int `json:"pid"`
			Start struct {
				FDs int64 `json:"fds"`
				RSS int64 `json:"rss_bytes"`
			} `json:"start"`
		} `json:"server"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("exit %d, no JSON report (%v):\n%s\nstderr: %s", code, err, out, stderr)
	}
	if code != 0 || !rep.Passed {
		t.Fatalf("exit %d, passed %v:\n%s\nstderr: %s", code, rep.Passed, out, stderr)
	}
	if rep.Schema != "sockit.soak/v1" || rep.Service != "echo" || rep.Sent == 0 || rep.Sent != rep.Answered || rep.Lost != 0 {
		t.Errorf("report: %+v", rep)
	}
	if len(rep.Faults) < 7 {
		t.Errorf("%d fault kinds on tcp line echo, want the 7 that apply: %+v", len(rep.Faults), rep.Faults)
	}
	for _, f := range rep.Faults {
		if f.Injected == 0 {
			t.Errorf("fault %s never injected", f.Kind)
		}
	}
	if rep.Server.PID == 0 || rep.Server.Start.FDs <= 0 || rep.Server.Start.RSS <= 0 {
		t.Errorf("server not sampled: %+v", rep.Server)
	}

	// echo soaked as upper: every reply is wrong.
	out, _, code = runSockit(t, "soak", eps[0], "--service", "upper", "--frame", "line", "--duration", "300ms", "--warmup", "0", "--faults", "none", "--clients", "1")
	if code != 1 || !strings.Contains(out, "FAIL:") || !strings.Contains(out, "lost") {
		t.Errorf("soak of echo as upper: exit %d, want 1 and a FAIL line:\n%s", code, out)
	}
}

// TestSoakUsage: every mistake is one line on stderr and exit 2, before any
// traffic.
func TestSoakUsage(t *testing.T) {
	dir := sockDir(t)
	for _, args := range [][]string{
		{"soak"},
		{"soak", "tcp://127.0.0.1"},
		{"soak", "tcp://10.1.2.3:7"}, // not loopback
		{"soak", "tcp://127.0.0.1:7", "--service", "chat"},
		{"soak", "tcp://127.0.0.1:7", "--faults", "reset,bogus"},
		{"soak", "tcp://127.0.0.1:7", "--faults", "tls-stall"}, // not a TLS endpoint
		{"soak", "tcp://127.0.0.1:7", "--duration", "0"},
		{"soak", "tcp://127.0.0.1:7", "--frame", "len:3"},
		{"soak", "tcp://127.0.0.1:7", "--service", "hello", "--frame", "raw"},
		{"soak", "tcp://127.0.0.1:7", "--service", "upper", "--frame", "fixed:8"},
		{"soak", "tcp://127.0.0.1:7", "--metrics", "http://127.0.0.1:9/metrics"},
		{"soak", "tcp://127.0.0.1:7", "--pid", "999999999"},
		{"soak", "udp://127.0.0.1:7", "--service", "http"},
		{"soak", "fd://3"},
		{"soak", "unix://" + dir + "/none.sock", "--rate", "-1"},
	} {
		_, stderr, code := runSockit(t, args...)
		if code != 2 {
			t.Errorf("sockit %q: exit %d, want 2\nstderr: %s", args, code, stderr)
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n > 0 || stderr == "" {
			t.Errorf("sockit %q: want one line on stderr, got:\n%s", args, stderr)
		}
	}
	// Nothing listening is not a usage error: exit 1 and a clear line.
	_, stderr, code := runSockit(t, "soak", "unix://"+dir+"/none.sock", "--duration", "1s")
	if code != 1 || !strings.Contains(stderr, "cannot reach") {
		t.Errorf("soak of nothing: exit %d, want 1 and \"cannot reach\"; stderr: %s", code, stderr)
	}
}
