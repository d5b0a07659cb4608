package soak

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// sampler reads the server's state: fds, RSS and threads from /proc/PID,
// goroutines from a Prometheus /metrics URL.
type sampler struct {
	pid     int
	metrics string
	client  *http.Client
}

// sample reads the server's state now; a measure it cannot read is -1.
func (p *sampler) sample(ctx context.Context) Sample {
	out := Sample{Goroutines: -1, Threads: -1, FDs: -1, RSS: -1, Anon: -1}
	// The scrape comes first, so /proc sees the memory it made the server
	// touch: the first scrape of a registry builds what every later one
	// reuses, and a start taken before it would count that as growth.
	if p.metrics != "" {
		out.Goroutines = p.goroutines(ctx)
	}
	dir := "/proc/" + strconv.Itoa(p.pid)
	if b, err := os.ReadFile(dir + "/status"); err == nil {
		for line := range bytes.SplitSeq(b, []byte{'\n'}) {
			k, v, ok := bytes.Cut(line, []byte{':'})
			if !ok {
				continue
			}
			f := strings.Fields(string(v))
			if len(f) == 0 {
				continue
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				continue
			}
			switch string(k) {
			case "VmRSS":
				out.RSS = n << 10
			case "RssAnon":
				out.Anon = n << 10
			case "Threads":
				out.Threads = n
			}
		}
	}
	if es, err := os.ReadDir(dir + "/fd"); err == nil {
		out.FDs = int64(len(es))
	}
	return out
}

// goroutines reads go_goroutines from the metrics URL; -1 if it cannot.
func (p *sampler) goroutines(ctx context.Context) int64 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metrics, nil)
	if err != nil {
		return -1
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "go_goroutines ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return -1
		}
		return int64(v)
	}
	return -1
}

// peak is the larger of two samples, measure by measure.
func peak(a, b Sample) Sample {
	return Sample{
		Goroutines: max(a.Goroutines, b.Goroutines),
		Threads:    max(a.Threads, b.Threads),
		FDs:        max(a.FDs, b.FDs),
		RSS:        max(a.RSS, b.RSS),
		Anon:       max(a.Anon, b.Anon),
	}
}

// leakSlack is the least growth judged a leak, whatever the start: on a small
// server 10 % is a few descriptors, goroutines or pages the runtime keeps
// for its own reasons (the Go runtime's smallest heap goal is 4 MiB, and a
// datagram endpoint's receive batch touches its pages only when datagrams
// that large arrive). A leak per connection or per fault passes these
// within seconds of load.
var leakSlack = Sample{Goroutines: 4, FDs: 2, RSS: 4 << 20}

// leaks names the measures of end that are not within Tolerance (or leakSlack)
// of start (measures unknown in either are not judged).
func leaks(start, end Sample) []string {
	var out []string
	check := func(name string, s, e, slack int64) {
		if s < 0 || e < 0 {
			return
		}
		if e-s > max(int64(float64(s)*Tolerance), slack) {
			out = append(out, name+" "+strconv.FormatInt(s, 10)+" → "+strconv.FormatInt(e, 10))
		}
	}
	check("goroutines", start.Goroutines, end.Goroutines, leakSlack.Goroutines)
	check("fds", start.FDs, end.FDs, leakSlack.FDs)
	if start.Anon >= 0 && end.Anon >= 0 {
		check("anonymous rss", start.Anon, end.Anon, leakSlack.RSS)
	} else {
		check("rss", start.RSS, end.RSS, leakSlack.RSS)
	}
	return out
}
