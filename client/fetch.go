package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults for FetchConfig's zero fields.
const (
	// DefaultFetchConcurrency is how many requests Fetch runs at once.
	DefaultFetchConcurrency = 10
	// MaxExpandedURLs bounds what ExpandRanges produces from one pattern.
	MaxExpandedURLs = 1 << 20
	// MaxExpandedBytes bounds the total length of those URLs: a long
	// pattern with a large range is refused before it is expanded.
	MaxExpandedBytes = 256 << 20
)

// ErrBadRange is what ExpandRanges' errors match with errors.Is.
var ErrBadRange = errors.New("sockit: bad {N..M} range")

// FailureKind says why a fetch failed.
type FailureKind string

// Failure kinds, as the report and the JSON document name them.
const (
	FailNone       FailureKind = ""
	FailRefused    FailureKind = "refused"     // the connection was refused (nothing listens)
	FailTimeout    FailureKind = "timeout"     // the request took longer than its timeout
	FailHTTPStatus FailureKind = "http-status" // a 4xx or 5xx response
	FailOther      FailureKind = "other"       // anything else (reset, DNS, TLS, a bad URL)
)

// FailureKinds lists the kinds of failure in report order.
var FailureKinds = []FailureKind{FailRefused, FailTimeout, FailHTTPStatus, FailOther}

// FetchConfig configures Fetch. The zero value fetches DefaultFetchConcurrency
// URLs at once without a timeout.
type FetchConfig struct {
	// Concurrency is how many requests run at once (1: one after the
	// other); 0 means DefaultFetchConcurrency.
	Concurrency int
	// Timeout bounds each request, from dialing to the last body byte;
	// zero means no limit.
	Timeout time.Duration
	// Header is added to every request.
	Header http.Header
	// TLS configures https; nil verifies with the system roots.
	TLS *tls.Config
	// Client sends the requests; nil means a client of Fetch's own whose
	// transport keeps up to Concurrency idle connections per host, so
	// successive requests to one host reuse connections (keep-alive). It
	// follows redirects (up to 10) and uses no proxy from the environment.
	Client *http.Client
	// OnResult, when set, is called after each request, from one goroutine
	// at a time (for a progress bar).
	OnResult func(FetchResult)
}

// FetchResult is the outcome of one URL.
type FetchResult struct {
	URL      string
	Status   int           // HTTP status; 0 when no response came
	Bytes    int64         // body bytes received
	Duration time.Duration // from the start of the request to its last body byte (or failure)
	Err      error         // nil on success
	Kind     FailureKind   // FailNone on success
}

// FetchReport is what Fetch did.
type FetchReport struct {
	// Results are in the order of the URLs given.
	Results     []FetchResult
	Concurrency int
	// Wall is the time from the first request's start to the last one's
	// end; Sum is the sum of the requests' durations (what fetching one
	// after the other would have cost).
	Wall time.Duration
	Sum  time.Duration
}

// Speedup is Sum / Wall: how many requests were in flight on average.
func (r *FetchReport) Speedup() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Sum) / float64(r.Wall)
}

// RequestsPerSecond is the number of requests per second of wall time.
func (r *FetchReport) RequestsPerSecond() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(len(r.Results)) / r.Wall.Seconds()
}

// Failures counts the failed requests by kind (every kind of FailureKinds
// is present).
func (r *FetchReport) Failures() map[FailureKind]int {
	m := make(map[FailureKind]int, len(FailureKinds))
	for _, k := range FailureKinds {
		m[k] = 0
	}
	for _, res := range r.Results {
		if res.Kind != FailNone {
			m[res.Kind]++
		}
	}
	return m
}

// Failed is the number of failed requests.
func (r *FetchReport) Failed() int {
	n := 0
	for _, res := range r.Results {
		if res.Kind != FailNone {
			n++
		}
	}
	return n
}

// NewFetchClient returns the client Fetch uses when FetchConfig.Client is
// nil: keep-alive, at most concurrency connections per host, all kept
// for reuse.
func NewFetchClient(concurrency int, tlsCfg *tls.Config) *http.Client {
	if concurrency <= 0 {
		concurrency = DefaultFetchConcurrency
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 30 * time.Second,
		MaxIdleConns:        max(100, concurrency),
		MaxIdleConnsPerHost: concurrency,
		MaxConnsPerHost:     concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr}
}

// Fetch GETs every URL, at most cfg.Concurrency at once, and reports each
// one's status, size and time. A failing URL never stops the others. Fetch
// returns an error only when ctx ends before every URL was fetched (the
// URLs not started then are reported with ctx's error, kind FailOther).
func Fetch(ctx context.Context, urls []string, cfg FetchConfig) (*FetchReport, error) {
	n := cfg.Concurrency
	if n <= 0 {
		n = DefaultFetchConcurrency
	}
	hc := cfg.Client
	if hc == nil {
		hc = NewFetchClient(n, cfg.TLS)
		defer hc.CloseIdleConnections()
	}
	rep := &FetchReport{Results: make([]FetchResult, len(urls)), Concurrency: n}
	var mu sync.Mutex // serialises OnResult
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range min(n, len(urls)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res := fetchOne(ctx, hc, urls[i], cfg)
				rep.Results[i] = res
				if cfg.OnResult != nil {
					mu.Lock()
					cfg.OnResult(res)
					mu.Unlock()
				}
			}
		}()
	}
	i := 0
feed:
	for ; i < len(urls); i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	rep.Wall = time.Since(start)
	for j := i; j < len(urls); j++ {
		rep.Results[j] = FetchResult{URL: urls[j], Err: ctx.Err(), Kind: FailOther}
	}
	for _, res := range rep.Results {
		rep.Sum += res.Duration
	}
	if i < len(urls) {
		return rep, ctx.Err()
	}
	return rep, nil
}

// fetchOne GETs one URL and reads its body.
func fetchOne(ctx context.Context, hc *http.Client, rawURL string, cfg FetchConfig) FetchResult {
	res := FetchResult{URL: rawURL}
	start := time.Now()
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		res.Err, res.Kind = fmt.Errorf("bad URL: %w", err), FailOther
		res.Duration = time.Since(start)
		return res
	}
	req.Header.Set("User-Agent", "sockit")
	for k, vs := range cfg.Header {
		if http.CanonicalHeaderKey(k) == "Host" && len(vs) > 0 {
			req.Host = vs[len(vs)-1]
			continue
		}
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		res.Err, res.Kind = fetchError(err, cfg.Timeout), classifyFetch(err)
		res.Duration = time.Since(start)
		return res
	}
	res.Status = resp.StatusCode
	res.Bytes, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	res.Duration = time.Since(start)
	switch {
	case err != nil:
		res.Err, res.Kind = fetchError(err, cfg.Timeout), classifyFetch(err)
	case resp.StatusCode >= 400:
		res.Err, res.Kind = fmt.Errorf("%s", resp.Status), FailHTTPStatus
	}
	return res
}

// fetchError strips url.Error's repetition of the method and URL (the
// report names the URL) and says what a timeout was.
func fetchError(err error, timeout time.Duration) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if timeout > 0 && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %v", timeout)
	}
	return err
}

// classifyFetch says what kind of failure err is.
func classifyFetch(err error) FailureKind {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailRefused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return FailTimeout
	}
	return FailOther
}

// ExpandRanges expands every {N..M} in pattern (decimal, ascending or
// descending; zero-padded to the width of the wider bound when either bound
// has a leading zero, as in {01..20}) into the URLs it stands for, the
// rightmost range varying fastest. Braces that are not a range are kept as
// they are. More than MaxExpandedURLs results, or more than MaxExpandedBytes
// of them in all, is an error.
func ExpandRanges(pattern string) ([]string, error) {
	return expandRanges(pattern, MaxExpandedURLs, MaxExpandedBytes)
}

// expandRanges is ExpandRanges with its bounds as arguments (the fuzz test
// uses smaller ones, so that each input costs little).
func expandRanges(pattern string, maxURLs, maxBytes int) ([]string, error) {
	type piece struct {
		lit        string
		from, to   int
		width      int
		isRange    bool
		rangeCount int
	}
	var pieces []piece
	total := 1
	rest := pattern
	var lit strings.Builder
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			lit.WriteString(rest)
			break
		}
		lit.WriteString(rest[:i])
		rest = rest[i:]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			lit.WriteString(rest)
			break
		}
		from, to, width, ok, err := parseRange(rest[1:j])
		if err != nil {
			return nil, fmt.Errorf("%w %q in %q: %v", ErrBadRange, truncate(rest[:j+1], 80), truncate(pattern, 80), err)
		}
		if !ok {
			lit.WriteByte('{')
			rest = rest[1:]
			continue
		}
		count := to - from
		if count < 0 {
			count = -count
		}
		count++
		if total > maxURLs/count {
			return nil, fmt.Errorf("%w: %q expands to more than %d URLs", ErrBadRange, truncate(pattern, 80), maxURLs)
		}
		total *= count
		pieces = append(pieces, piece{lit: lit.String()}, piece{from: from, to: to, width: width, isRange: true, rangeCount: count})
		lit.Reset()
		rest = rest[j+1:]
	}
	pieces = append(pieces, piece{lit: lit.String()})
	// No URL is longer than the pattern: a range's digits are never more
	// than its "{N..M}".
	if len(pattern) > maxBytes/total {
		return nil, fmt.Errorf("%w: %q would expand to more than %d MiB of URLs", ErrBadRange, truncate(pattern, 80), maxBytes>>20)
	}
	out := []string{""}
	for _, p := range pieces {
		if !p.isRange {
			for k := range out {
				out[k] += p.lit
			}
			continue
		}
		step := 1
		if p.to < p.from {
			step = -1
		}
		next := make([]string, 0, len(out)*p.rangeCount)
		for _, prefix := range out {
			for v := p.from; ; v += step {
				s := strconv.Itoa(v)
				if len(s) < p.width {
					s = strings.Repeat("0", p.width-len(s)) + s
				}
				next = append(next, prefix+s)
				if v == p.to {
					break
				}
			}
		}
		out = next
	}
	return out, nil
}

// parseRange parses the inside of {N..M}. ok is false when s is not a range
// at all (no "..", or something other than digits around it); err is set
// for a range whose numbers are too large.
func parseRange(s string) (from, to, width int, ok bool, err error) {
	a, b, found := strings.Cut(s, "..")
	if !found || !allDigits(a) || !allDigits(b) {
		return 0, 0, 0, false, nil
	}
	if len(a) > 9 || len(b) > 9 {
		return 0, 0, 0, false, errors.New("numbers too large")
	}
	from, _ = strconv.Atoi(a)
	to, _ = strconv.Atoi(b)
	if (len(a) > 1 && a[0] == '0') || (len(b) > 1 && b[0] == '0') {
		width = max(len(a), len(b))
	}
	return from, to, width, true, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
