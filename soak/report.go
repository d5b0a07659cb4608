package soak

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Schema names the JSON document of a Report.
const Schema = "sockit.soak/v1"

// Report is the outcome of a run. Its JSON form is documented in
// docs/json.md (schema sockit.soak/v1).
type Report struct {
	Schema   string `json:"schema"`
	Endpoint string `json:"endpoint"`
	Service  string `json:"service"`
	Frame    string `json:"frame"`
	// Duration is how long the load ran (the measuring window, warm-up
	// not included).
	Duration    Duration `json:"duration"`
	Interrupted bool     `json:"interrupted,omitempty"`
	// Clients is the number of well-behaved clients; Connections the
	// connections (datagram sockets) they opened.
	Clients     int   `json:"clients"`
	Connections int64 `json:"connections"`
	// Sent counts well-behaved messages sent; Answered those whose reply
	// came and was exactly right; Lost those whose reply did not come
	// (Corrupt of them came wrong). Messages of services that do not
	// answer (discard) count as answered when the server's close came
	// after all of them; Checked says whether replies were checked at all.
	Sent     int64 `json:"sent"`
	Answered int64 `json:"answered"`
	Lost     int64 `json:"lost"`
	Corrupt  int64 `json:"corrupt"`
	Checked  bool  `json:"checked"`
	// Refused counts connections of well-behaved clients the server
	// closed before answering anything (as it does past --max-conns);
	// their messages were sent again on a new connection. Resent counts
	// datagrams sent again after Timeout/4 without a reply.
	Refused int64 `json:"refused"`
	Resent  int64 `json:"resent"`
	// PeakConns is the most connections the soak held open at once.
	PeakConns int64         `json:"peak_conns"`
	Faults    []FaultReport `json:"faults"`
	// Server is the sampled server process; nil without PID.
	Server *ServerReport `json:"server,omitempty"`
	// Errors are the first errors of well-behaved clients and the faults'
	// unexpected outcomes.
	Errors []string `json:"errors,omitempty"`
	// Failures says why the run failed; empty when it passed.
	Failures []string `json:"failures,omitempty"`
	Passed   bool     `json:"passed"`
}

// FaultReport counts one kind of bad client.
type FaultReport struct {
	Kind Fault `json:"kind"`
	// Injected counts the bad clients started (a flood counts once).
	Injected int64 `json:"injected"`
	// Conns counts their connections (datagram sockets).
	Conns int64 `json:"conns"`
	// ServerClosed counts the connections the server closed (or reset)
	// before the bad client gave up or the run ended.
	ServerClosed int64 `json:"server_closed"`
	// Expected counts the answers a fault checks that came as they should
	// (oversized: "ERR frame too long" and a close; 0- and 65,507-byte
	// datagrams to echo: their echo); Unexpected those that did not.
	Expected   int64 `json:"expected"`
	Unexpected int64 `json:"unexpected"`
}

// Sample is the server's state at one moment; -1 means unknown.
type Sample struct {
	Goroutines int64 `json:"goroutines"`
	Threads    int64 `json:"threads"`
	FDs        int64 `json:"fds"`
	RSS        int64 `json:"rss_bytes"`
	// Anon is the anonymous part of RSS (RssAnon: heap, stacks), what a
	// leak grows; the rest is mostly the binary's own pages, which fault
	// paths page in once and the kernel keeps.
	Anon int64 `json:"rss_anon_bytes"`
}

// ServerReport is what the sampler saw of the server's process.
type ServerReport struct {
	PID   int    `json:"pid"`
	Start Sample `json:"start"`
	Peak  Sample `json:"peak"`
	End   Sample `json:"end"`
	// SettledAfter is how long after the load stopped End was taken: the
	// first sample within Tolerance (or the slack) of Start, or the last one
	// at Settle.
	SettledAfter Duration `json:"settled_after"`
	// RSSPerConn is (Peak.RSS - Start.RSS) / PeakConns.
	RSSPerConn int64 `json:"rss_per_conn_bytes"`
	// Leaks names each measure that did not come back within Tolerance (or
	// the slack: 4 goroutines, 2 fds, 4 MiB RSS).
	Leaks []string `json:"leaks,omitempty"`
}

// Duration marshals as a Go duration string ("2m0s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// WriteText writes the report for a person.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "soak %s (%s, --frame %s) for %v\n", r.Endpoint, r.Service, r.Frame, time.Duration(r.Duration).Round(10*time.Millisecond))
	if r.Interrupted {
		b.WriteString("  interrupted before the end\n")
	}
	fmt.Fprintf(&b, "  well-behaved  %d clients, %d connections, %d refused and retried, %d datagrams resent\n", r.Clients, r.Connections, r.Refused, r.Resent)
	if r.Checked {
		fmt.Fprintf(&b, "  messages      %d sent, %d answered, %d lost (%d corrupt)\n", r.Sent, r.Answered, r.Lost, r.Corrupt)
	} else {
		fmt.Fprintf(&b, "  messages      %d sent (the service sends no replies: not checked)\n", r.Sent)
	}
	fmt.Fprintf(&b, "  peak          %d connections open at once\n", r.PeakConns)
	if len(r.Faults) > 0 {
		fmt.Fprintf(&b, "  %-15s %9s %8s %13s %9s %11s\n", "fault", "injected", "conns", "server closed", "expected", "unexpected")
		for _, f := range r.Faults {
			fmt.Fprintf(&b, "  %-15s %9d %8d %13d %9d %11d\n", f.Kind, f.Injected, f.Conns, f.ServerClosed, f.Expected, f.Unexpected)
		}
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(&b, "  server pid %d  %12s %12s %12s\n", s.PID, "start", "peak", "end")
		row := func(name string, f func(Sample) int64, unit func(int64) string) {
			fmt.Fprintf(&b, "    %-13s %12s %12s %12s\n", name, unit(f(s.Start)), unit(f(s.Peak)), unit(f(s.End)))
		}
		count := func(v int64) string {
			if v < 0 {
				return "?"
			}
			return fmt.Sprint(v)
		}
		mib := func(v int64) string {
			if v < 0 {
				return "?"
			}
			return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20))
		}
		row("goroutines", func(s Sample) int64 { return s.Goroutines }, count)
		row("threads", func(s Sample) int64 { return s.Threads }, count)
		row("fds", func(s Sample) int64 { return s.FDs }, count)
		row("rss", func(s Sample) int64 { return s.RSS }, mib)
		row("rss anon", func(s Sample) int64 { return s.Anon }, mib)
		fmt.Fprintf(&b, "    end taken %v after the load stopped; peak RSS per connection %.1f KiB\n", time.Duration(s.SettledAfter).Round(10*time.Millisecond), float64(s.RSSPerConn)/1024)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	if r.Passed {
		b.WriteString("PASS\n")
	} else {
		fmt.Fprintf(&b, "FAIL: %s\n", strings.Join(r.Failures, "; "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// stats are the counters of a run, shared by every client goroutine.
type stats struct {
	connections, sent, answered, lost, corrupt, refused, resent atomic.Int64
	open, peakOpen                                              atomic.Int64
	faults                                                      map[Fault]*faultStats

	mu     sync.Mutex
	errors []string
	nerr   int
}

type faultStats struct {
	injected, conns, serverClosed, expected, unexpected atomic.Int64
}

const maxErrors = 20

func newStats(faults []Fault) *stats {
	st := &stats{faults: make(map[Fault]*faultStats)}
	for _, f := range faults {
		st.faults[f] = &faultStats{}
	}
	return st
}

// opened counts a connection the soak holds; the returned func counts its
// close (call it once).
func (st *stats) opened() func() {
	n := st.open.Add(1)
	for {
		p := st.peakOpen.Load()
		if n <= p || st.peakOpen.CompareAndSwap(p, n) {
			break
		}
	}
	var once sync.Once
	return func() { once.Do(func() { st.open.Add(-1) }) }
}

// fail records an error of a well-behaved client or an unexpected fault
// outcome, the first maxErrors of them.
func (st *stats) fail(format string, a ...any) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.nerr++
	if len(st.errors) < maxErrors {
		st.errors = append(st.errors, fmt.Sprintf(format, a...))
	}
}
