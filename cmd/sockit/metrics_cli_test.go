package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsURL waits for serve's "metrics URL" line.
func metricsURL(t *testing.T, p *serveProc) string {
	t.Helper()
	deadline := time.Now().Add(serveStartTimeout)
	for time.Now().Before(deadline) {
		for _, l := range p.stdout.lines() {
			if u, ok := strings.CutPrefix(l, "metrics "); ok {
				return u
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no metrics line:\n%s", p.stdout.String())
	return ""
}

func scrape(t *testing.T, url string) (string, int) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

// scrapeFamilies scrapes url and parses the Prometheus text format.
func scrapeFamilies(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	body, code := scrape(t, url)
	if code != http.StatusOK {
		t.Fatalf("%s: status %d", url, code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// metricValue is the value of the one sample of name with exactly labels
// (a counter's or a gauge's); it fails the test when there is none.
func metricValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, lp := range m.GetLabel() {
			if labels[lp.GetName()] != lp.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no sample of %s with labels %v", name, labels)
	return 0
}

// TestMetrics: --metrics 0 serves Prometheus text on 127.0.0.1 with the Go,
// process and sockit collectors; a refused connection is counted by reason;
// pprof only with --pprof.
func TestMetrics(t *testing.T) {
	for _, eng := range []string{"goroutine", "epoll"} {
		t.Run(eng, func(t *testing.T) {
			p, eps := startServe(t, "echo", "-l", "tcp://127.0.0.1:0", "--engine", eng, "--max-conns", "1", "--metrics", "0")
			url := metricsURL(t, p)
			if !strings.HasPrefix(url, "http://127.0.0.1:") {
				t.Fatalf("metrics on %s, want 127.0.0.1", url)
			}
			host, port := hostPort(t, eps[0])
			first, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			_ = first.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := first.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			second, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_ = second.SetDeadline(time.Now().Add(5 * time.Second))
			if b, _ := io.ReadAll(second); len(b) != 0 {
				t.Fatalf("refused peer got %q", b)
			}
			second.Close()
			ep := map[string]string{"endpoint": eps[0], "engine": eng, "service": "echo"}
			refused := map[string]string{"endpoint": eps[0], "engine": eng, "service": "echo", "reason": "max-conns"}
			var fams map[string]*dto.MetricFamily
			waitFor(5*time.Second, func() bool {
				fams = scrapeFamilies(t, url)
				return metricValue(t, fams, "sockit_connections_refused_total", refused) == 1
			})
			idle := map[string]string{"endpoint": eps[0], "engine": eng, "service": "echo", "kind": "idle"}
			for _, c := range []struct {
				name   string
				labels map[string]string
				want   float64
			}{
				{"sockit_connections_open", ep, 1},
				{"sockit_connections_accepted_total", ep, 1},
				{"sockit_connections_refused_total", refused, 1},
				{"sockit_timeouts_total", idle, 0},
			} {
				if got := metricValue(t, fams, c.name, c.labels); got != c.want {
					t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
				}
			}
			for _, name := range []string{"go_goroutines", "process_open_fds", "process_resident_memory_bytes"} {
				if _, ok := fams[name]; !ok {
					t.Errorf("no %s", name)
				}
			}
			if _, code := scrape(t, strings.TrimSuffix(url, "/metrics")+"/debug/pprof/"); code != http.StatusNotFound {
				t.Errorf("pprof without --pprof: status %d, want 404", code)
			}
		})
	}
	p, _ := startServe(t, "echo", "-l", "tcp://127.0.0.1:0", "--metrics", "127.0.0.1:0", "--pprof")
	if body, code := scrape(t, strings.TrimSuffix(metricsURL(t, p), "/metrics")+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof with --pprof: status %d", code)
	}
}

func TestMetricsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "echo", "-l", "tcp://127.0.0.1:0", "--pprof"},
		{"serve", "echo", "-l", "tcp://127.0.0.1:0", "--metrics", "nowhere"},
		{"serve", "echo", "-l", "tcp://127.0.0.1:0", "--metrics", "127.0.0.1:99999"},
	} {
		_, stderr, code := runSockit(t, args...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("sockit %q: exit %d, want 2 and one line; stderr: %s", args, code, stderr)
		}
	}
}

// TestMetricsCountExactly: after a scripted run of N connections sending M
// messages in all, with K more connections refused past --max-conns, the
// scraped counters (parsed with expfmt) are exactly N, M and K, and the
// handling histogram counts M messages, on both engines.
func TestMetricsCountExactly(t *testing.T) {
	const n, perConn, k = 3, 7, 2
	const m = n * perConn
	for _, eng := range []string{"goroutine", "epoll"} {
		t.Run(eng, func(t *testing.T) {
			p, eps := startServe(t, "echo", "-l", "tcp://127.0.0.1:0", "--engine", eng, "--frame", "line",
				"--max-conns", fmt.Sprint(n), "--metrics", "0")
			url := metricsURL(t, p)
			host, port := hostPort(t, eps[0])
			addr := net.JoinHostPort(host, port)
			var conns []net.Conn
			for range n {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				conns = append(conns, c)
			}
			for _, c := range conns {
				r := bufio.NewReader(c)
				for i := range perConn {
					msg := fmt.Sprintf("ping-%d\n", i)
					if _, err := io.WriteString(c, msg); err != nil {
						t.Fatal(err)
					}
					if got, err := r.ReadString('\n'); err != nil || got != msg {
						t.Fatalf("echo %q: %q, %v", msg, got, err)
					}
				}
			}
			for range k {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if b, _ := io.ReadAll(c); len(b) != 0 {
					t.Fatalf("refused connection got %q", b)
				}
				c.Close()
			}
			ep := map[string]string{"engine": eng, "service": "echo", "endpoint": eps[0]}
			server := ep // every series is per endpoint
			refused := map[string]string{"engine": eng, "service": "echo", "endpoint": eps[0], "reason": "max-conns"}
			var fams map[string]*dto.MetricFamily
			waitFor(5*time.Second, func() bool {
				fams = scrapeFamilies(t, url)
				return metricValue(t, fams, "sockit_connections_refused_total", refused) == k
			})
			const msgBytes = float64(m * len("ping-0")) // the line framing's newline is not part of a message
			for _, c := range []struct {
				name   string
				labels map[string]string
				want   float64
			}{
				{"sockit_connections_accepted_total", server, n},
				{"sockit_connections_open", server, n},
				{"sockit_connections_refused_total", refused, k},
				{"sockit_messages_received_total", ep, m},
				{"sockit_messages_sent_total", ep, m},
				{"sockit_received_bytes_total", ep, msgBytes},
				{"sockit_sent_bytes_total", ep, msgBytes},
				{"sockit_message_handling_seconds", ep, m},
				{"sockit_write_pauses_total", ep, 0},
			} {
				if got := metricValue(t, fams, c.name, c.labels); got != c.want {
					t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
				}
			}
		})
	}
}

// TestServeHTTPMetricsPath: serve http --metrics-path serves the registry
// on its own listener; each request is one message (the scrape that reads
// the counts is counted after it).
func TestServeHTTPMetricsPath(t *testing.T) {
	base, _ := serveHTTPTCP(t, "--metrics-path", "/metrics")
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, path := range []string{"/", "/hello/x", "/nope"} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	fams := scrapeFamilies(t, base+"/metrics")
	ep := map[string]string{"engine": "net/http", "service": "http", "endpoint": "tcp://" + strings.TrimPrefix(base, "http://")}
	if got := metricValue(t, fams, "sockit_messages_received_total", ep); got != 3 {
		t.Errorf("requests counted: %v, want 3", got)
	}
	if got := metricValue(t, fams, "sockit_message_handling_seconds", ep); got != 3 {
		t.Errorf("histogram count: %v, want 3", got)
	}
	if got := metricValue(t, fams, "sockit_connections_accepted_total", ep); got != 4 {
		t.Errorf("connections accepted: %v, want 4 (3 requests and the scrape)", got)
	}
}
