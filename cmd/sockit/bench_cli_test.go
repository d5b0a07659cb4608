package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchJSON runs sockit bench ARGS... --json and decodes its document.
func benchJSON(t *testing.T, args ...string) (map[string]any, int) {
	t.Helper()
	out, errOut, code := runSockit(t, append(append([]string{"bench"}, args...), "--json")...)
	if code != 0 && code != 1 {
		t.Fatalf("sockit bench %q: exit %d\nstderr:\n%s", args, code, errOut)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("sockit bench %q: output is not JSON: %v\n%s\nstderr:\n%s", args, err, out, errOut)
	}
	if doc["schema"] != "sockit.bench/v1" {
		t.Fatalf("schema %v, want sockit.bench/v1", doc["schema"])
	}
	return doc, code
}

func TestBenchCLIEveryModeVerifies(t *testing.T) {
	dir := sockDir(t)
	_, echoEPs := startServe(t, "echo", "-l", "tcp://127.0.0.1:0", "-l", "udp://127.0.0.1:0", "-l", "unix://"+filepath.Join(dir, "e.sock"))
	_, discardEPs := startServe(t, "discard", "-l", "tcp://127.0.0.1:0", "-l", "udp://127.0.0.1:0", "-l", "unix://"+filepath.Join(dir, "d.sock"))
	type tc struct {
		ep   string
		mode string
	}
	var cases []tc
	for _, i := range []int{0, 2} { // tcp, unix
		for _, m := range []string{"echo", "pipeline", "connect", "idle"} {
			cases = append(cases, tc{echoEPs[i], m})
		}
		cases = append(cases, tc{discardEPs[i], "send"})
	}
	cases = append(cases, tc{echoEPs[1], "udp"}, tc{echoEPs[1], "echo"}, tc{discardEPs[1], "send"})
	for _, engine := range []string{"goroutine", "epoll"} {
		for _, c := range cases {
			name := engine + "/" + strings.SplitN(c.ep, ":", 2)[0] + "/" + c.mode
			t.Run(name, func(t *testing.T) {
				args := []string{c.ep, "--mode", c.mode, "--engine", engine, "--conns", "4", "--duration", "500ms", "--warmup", "0", "--verify", "--fail-on-error"}
				if c.mode == "connect" {
					args = append(args, "--rate", "1000")
				}
				doc, code := benchJSON(t, args...)
				if code != 0 {
					t.Fatalf("exit %d with errors %v (first: %v)", code, doc["errors"], doc["first_error"])
				}
				if c.mode == "idle" {
					if held := doc["idle"].(map[string]any)["held"].(float64); held != 4 {
						t.Fatalf("held %v, want 4", held)
					}
					return
				}
				if doc["messages"].(float64) <= 0 {
					t.Fatalf("no messages: %v", doc)
				}
			})
		}
	}
}

func TestBenchCLIFramings(t *testing.T) {
	for _, f := range []string{"line", "delim:,", "fixed:32", "len:4", "close"} {
		t.Run(f, func(t *testing.T) {
			_, eps := startServe(t, "echo", "--frame", f, "-l", "tcp://127.0.0.1:0")
			doc, code := benchJSON(t, eps[0], "--frame", f, "--size", "32", "--conns", "2", "--duration", "300ms", "--warmup", "0", "--verify", "--fail-on-error")
			if code != 0 || doc["messages"].(float64) == 0 {
				t.Fatalf("exit %d, %v messages, errors %v", code, doc["messages"], doc["errors"])
			}
		})
	}
}

func TestBenchCLIExitStatus(t *testing.T) {
	// A port nothing listens on: every connect is refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "tcp://" + ln.Addr().String()
	ln.Close()

	doc, code := benchJSON(t, dead, "--conns", "2", "--duration", "300ms", "--warmup", "0")
	if code != 0 {
		t.Errorf("errors without --fail-on-error: exit %d, want 0", code)
	}
	if doc["errors"].(map[string]any)["refused"].(float64) == 0 {
		t.Errorf("refusals not counted: %v", doc["errors"])
	}
	if _, _, code := runSockit(t, "bench", dead, "--conns", "2", "--duration", "300ms", "--warmup", "0", "--fail-on-error"); code != 1 {
		t.Errorf("--fail-on-error with errors: exit %d, want 1", code)
	}
	for _, args := range [][]string{
		{"bench", "tcp://127.0.0.1"},
		{"bench", dead, "--mode", "nope"},
		{"bench", dead, "--conns", "0"},
		{"bench", dead, "--frame", "fixed:0"},
		{"bench", dead, "--frame", "fixed:8", "--size", "9"},
		{"bench", dead, "--source", "127.0.0.9-127.0.0.2"},
		{"bench", "udp://127.0.0.1:9", "--mode", "idle"},
		{"bench", dead, "--engine", "threads"},
		{"bench", dead, "--payload", filepath.Join(t.TempDir(), "missing")},
	} {
		_, stderr, code := runSockit(t, args...)
		if code != 2 {
			t.Errorf("sockit %q: exit %d, want 2 (usage)\nstderr: %s", args, code, stderr)
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
			t.Errorf("sockit %q: usage error is %d lines, want one:\n%s", args, n+1, stderr)
		}
	}
}

func TestBenchCLIOutputs(t *testing.T) {
	_, eps := startServe(t, "echo", "-l", "tcp://127.0.0.1:0")
	html := filepath.Join(t.TempDir(), "report.html")
	payload := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(payload, []byte("hello, bench"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runSockit(t, "bench", eps[0], "--conns", "3", "--duration", "1s", "--warmup", "0", "--payload", payload, "--verify", "--html", html)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"messages", "MB/s", "p50", "p99.9", "errors     none", "12-byte messages"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("progress written when stderr is not a terminal:\n%q", stderr)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	if strings.Count(s, "<svg") != 2 {
		t.Errorf("report has %d inline SVG plots, want 2", strings.Count(s, "<svg"))
	}
	for _, bad := range []string{"<script", "src=", "<link", "https://"} {
		if strings.Contains(s, bad) {
			t.Errorf("report contains %q: it must work offline", bad)
		}
	}
}
