package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockit/sockit/client"
	"github.com/sockit/sockit/service/httpd"
)

func TestExpandRanges(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"http://h/", []string{"http://h/"}},
		{"http://h/{1..3}", []string{"http://h/1", "http://h/2", "http://h/3"}},
		{"http://h/{3..1}", []string{"http://h/3", "http://h/2", "http://h/1"}},
		{"http://h/{5..5}", []string{"http://h/5"}},
		{"http://h/{08..10}", []string{"http://h/08", "http://h/09", "http://h/10"}},
		{"http://h/{1..010}/x", []string{"http://h/001/x", "http://h/002/x", "http://h/003/x", "http://h/004/x", "http://h/005/x", "http://h/006/x", "http://h/007/x", "http://h/008/x", "http://h/009/x", "http://h/010/x"}},
		{"http://h/{1..2}/{a}/{0..1}", []string{"http://h/1/{a}/0", "http://h/1/{a}/1", "http://h/2/{a}/0", "http://h/2/{a}/1"}},
		{"http://h/{a..b}", []string{"http://h/{a..b}"}},
		{"http://h/{1..}", []string{"http://h/{1..}"}},
		{"http://h/{1..2", []string{"http://h/{1..2"}},
		{"http://h/{{1..2}}", []string{"http://h/{1}", "http://h/{2}"}},
		{"", []string{""}},
	}
	for _, tt := range tests {
		got, err := client.ExpandRanges(tt.in)
		if err != nil {
			t.Errorf("ExpandRanges(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ExpandRanges(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"http://h/{1..9999999999}", "http://h/{0..9999}/{0..9999}",
		"http://h/" + strings.Repeat("x", 300) + "/{0..999999}"} { // 300 MB of URLs
		if _, err := client.ExpandRanges(bad); !errors.Is(err, client.ErrBadRange) {
			t.Errorf("ExpandRanges(%q): %v, want ErrBadRange", bad, err)
		}
	}
}

func FuzzExpandRanges(f *testing.F) {
	for _, s := range []string{"http://h/{1..20}", "{01..3}{2..1}", "{", "}", "{..}", "{1..2", "{0..999999}"} {
		f.Add(s)
	}
	// The bounds are ExpandRanges' own code with smaller values: at the
	// real ones (a million URLs, 256 MiB) one input can take seconds, and
	// the fuzzer stalls on them.
	const maxURLs, maxBytes = 1 << 12, 1 << 20
	f.Fuzz(func(t *testing.T, s string) {
		out, err := client.ExpandRangesWithin(s, maxURLs, maxBytes)
		if err != nil {
			if !errors.Is(err, client.ErrBadRange) {
				t.Fatalf("ExpandRanges(%q): %v, not an ErrBadRange", s, err)
			}
			return
		}
		if len(out) == 0 || len(out) > maxURLs {
			t.Fatalf("ExpandRanges(%q) gave %d URLs", s, len(out))
		}
		n := 0
		for _, u := range out {
			n += len(u)
		}
		if n > maxBytes {
			t.Fatalf("ExpandRanges gave %d bytes of URLs", n)
		}
		if !strings.Contains(s, "..") && (len(out) != 1 || out[0] != s) {
			t.Fatalf("ExpandRanges(%q) = %q, want it unchanged", s, out)
		}
	})
}

func TestFetchConcurrency(t *testing.T) {
	const delay = 200 * time.Millisecond
	const n = 10
	base, conns := startHTTPD(t, httpd.Config{Delay: delay})
	urls, err := client.ExpandRanges(base + "/hello/{1..10}")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	var calls atomic.Int64
	rep, err := client.Fetch(ctx, urls, client.FetchConfig{Concurrency: n, Timeout: httpTestTimeout, OnResult: func(client.FetchResult) { calls.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() != 0 || calls.Load() != n {
		t.Fatalf("concurrent: %d failed, %d callbacks: %+v", rep.Failed(), calls.Load(), rep.Results)
	}
	for i, r := range rep.Results {
		want := fmt.Sprintf("<h1>hello, %d!</h1>", i+1)
		if r.URL != urls[i] || r.Status != 200 || r.Bytes != int64(len(want)) || r.Duration < delay {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	// n at once take about one delay: anything under half of the
	// sequential time proves they overlapped, without a tight bound.
	if rep.Wall >= n*delay/2 {
		t.Errorf("-c %d took %v, want well under %v", n, rep.Wall, n*delay)
	}
	if rep.Sum < n*delay || rep.Speedup() < 2 {
		t.Errorf("sum %v, speed-up %.1f", rep.Sum, rep.Speedup())
	}

	// One at a time: at least n delays, and one kept-alive connection.
	before := conns.n.Load()
	rep, err = client.Fetch(ctx, urls, client.FetchConfig{Concurrency: 1, Timeout: httpTestTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() != 0 || rep.Wall < n*delay {
		t.Errorf("-c 1: %d failed, wall %v, want at least %v", rep.Failed(), rep.Wall, n*delay)
	}
	if got := conns.n.Load() - before; got != 1 {
		t.Errorf("-c 1 used %d connections, want 1 (keep-alive)", got)
	}
}

func TestFetchKeepAlive(t *testing.T) {
	base, conns := startHTTPD(t, httpd.Config{})
	urls, _ := client.ExpandRanges(base + "/hello/{1..40}")
	rep, err := client.Fetch(context.Background(), urls, client.FetchConfig{Concurrency: 4, Timeout: httpTestTimeout})
	if err != nil || rep.Failed() != 0 {
		t.Fatalf("%v, %d failed", err, rep.Failed())
	}
	if got := conns.n.Load(); got > 4 {
		t.Errorf("40 requests, 4 at a time, used %d connections; want at most 4", got)
	}
}

func TestFetchFailures(t *testing.T) {
	base, _ := startHTTPD(t, httpd.Config{})
	slow, _ := startHTTPD(t, httpd.Config{Delay: time.Minute})
	dead := "http://" + closedPort(t) + "/"
	urls := []string{base + "/hello/1", dead, slow + "/", base + "/nope", "http://[::1", base + "/healthz"}
	rep, err := client.Fetch(context.Background(), urls, client.FetchConfig{Concurrency: 3, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	want := []client.FailureKind{client.FailNone, client.FailRefused, client.FailTimeout, client.FailHTTPStatus, client.FailOther, client.FailNone}
	for i, r := range rep.Results {
		if r.Kind != want[i] || (r.Kind == client.FailNone) != (r.Err == nil) {
			t.Errorf("%s: kind %q err %v, want kind %q", r.URL, r.Kind, r.Err, want[i])
		}
	}
	if r := rep.Results[2]; !strings.Contains(r.Err.Error(), "timed out after 300ms") {
		t.Errorf("slow URL: %v", r.Err)
	}
	if r := rep.Results[3]; r.Status != 404 || r.Bytes != 19 {
		t.Errorf("404: %+v", r)
	}
	if rep.Failed() != 4 {
		t.Errorf("Failed() = %d, want 4", rep.Failed())
	}
	wantCounts := map[client.FailureKind]int{client.FailRefused: 1, client.FailTimeout: 1, client.FailHTTPStatus: 1, client.FailOther: 1}
	if got := rep.Failures(); !reflect.DeepEqual(got, wantCounts) {
		t.Errorf("Failures() = %v, want %v", got, wantCounts)
	}
}

func TestFetchCancelled(t *testing.T) {
	base, _ := startHTTPD(t, httpd.Config{Delay: time.Minute})
	urls, _ := client.ExpandRanges(base + "/hello/{1..5}")
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	go func() {
		<-started
		cancel()
	}()
	// With one at a time, cancelling during the first request leaves four
	// never started.
	var once atomic.Bool
	cfg := client.FetchConfig{Concurrency: 1}
	cfg.Client = client.NewFetchClient(1, nil)
	cfg.Client.Transport = roundTripStarted{cfg.Client.Transport, func() {
		if once.CompareAndSwap(false, true) {
			close(started)
		}
	}}
	t0 := time.Now()
	rep, err := client.Fetch(ctx, urls, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch: %v, want context.Canceled", err)
	}
	if d := time.Since(t0); d > httpTestTimeout {
		t.Errorf("cancelled fetch took %v", d)
	}
	if len(rep.Results) != 5 || rep.Failed() != 5 {
		t.Errorf("results %+v", rep.Results)
	}
}

// roundTripStarted calls started before each request goes out.
type roundTripStarted struct {
	rt      http.RoundTripper
	started func()
}

func (r roundTripStarted) RoundTrip(req *http.Request) (*http.Response, error) {
	r.started()
	return r.rt.RoundTrip(req)
}

// A long pattern with a large range would be gigabytes of URLs: refused
// before anything is expanded (the fuzzer's input, made readable).
func TestExpandRangesRefusesTooManyBytes(t *testing.T) {
	long := "http://h/" + strings.Repeat("x", 4096) + "/{0..999999}"
	start := time.Now()
	if _, err := client.ExpandRanges(long); !errors.Is(err, client.ErrBadRange) {
		t.Fatalf("ExpandRanges of ~4 GB of URLs: %v, want ErrBadRange", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refusing took %v: it expanded first", d)
	}
	if out, err := client.ExpandRanges("http://h/{0..999999}"); err != nil || len(out) != 1000000 {
		t.Fatalf("a million short URLs: %d, %v", len(out), err)
	}
}
