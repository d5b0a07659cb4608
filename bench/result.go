package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/sockit/sockit/frame"
)

// Schema is the "schema" of a Result's JSON document.
const Schema = "sockit.bench/v1"

// Result is what a run measured. Its JSON form is documented in
// docs/json.md. Times are in seconds, latencies in microseconds.
type Result struct {
	Schema   string  `json:"schema"`
	Endpoint string  `json:"endpoint"`
	Mode     Mode    `json:"mode"`
	Engine   string  `json:"engine"`
	Frame    string  `json:"frame"`
	Conns    int     `json:"conns"`
	Size     int     `json:"size"`      // message bytes before framing
	WireSize int     `json:"wire_size"` // message bytes as sent
	Depth    int     `json:"depth"`
	Rate     float64 `json:"rate"` // messages/s asked for; 0: closed loop
	Verify   bool    `json:"verify"`
	Warmup   float64 `json:"warmup_seconds"`
	// Duration is the measuring window as it really lasted.
	Duration float64 `json:"duration_seconds"`

	Messages       int64   `json:"messages"`
	Bytes          int64   `json:"bytes"`
	MessagesPerSec float64 `json:"messages_per_second"`
	BytesPerSec    float64 `json:"bytes_per_second"`

	// Latency is nil when the mode measures none (send, idle).
	Latency *Latency `json:"latency"`
	// Percentiles is the latency distribution for plots (percentile → µs).
	Percentiles []PercentilePoint `json:"percentiles"`

	Errors     map[string]int64 `json:"errors"`
	ErrorTotal int64            `json:"error_total"`
	FirstError string           `json:"first_error,omitempty"`

	UDP       *UDPResult      `json:"udp,omitempty"`
	Idle      *IdleResult     `json:"idle,omitempty"`
	Target    *TargetResult   `json:"target,omitempty"`
	Generator GeneratorResult `json:"generator"`
	Timeline  []Sample        `json:"timeline"`
}

// Latency summarises the HDR histogram, in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min_us"`
	Mean  float64 `json:"mean_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p99_9_us"`
	Max   float64 `json:"max_us"`
}

// PercentilePoint is one point of the latency distribution.
type PercentilePoint struct {
	Percentile float64 `json:"percentile"`
	Micros     float64 `json:"us"`
}

// UDPResult counts datagrams in the measuring window.
type UDPResult struct {
	Sent     int64   `json:"sent"`
	Received int64   `json:"received"`
	Lost     int64   `json:"lost"`
	Loss     float64 `json:"loss"` // lost / sent
}

// IdleResult is what idle mode held.
type IdleResult struct {
	Held int64 `json:"held"` // connections open at the end of the window
}

// TargetResult is the target process (Config.PID) over the window.
type TargetResult struct {
	PID int `json:"pid"`
	// RSSBefore is read before the first connection, RSSAfter at the end of
	// the window (bytes; 0 if unknown).
	RSSBefore int64 `json:"rss_before"`
	RSSAfter  int64 `json:"rss_after"`
	// RSSPerConn is (after − before) / connections held (idle mode).
	RSSPerConn float64 `json:"rss_per_conn,omitempty"`
	// CPUSeconds is the target's utime+stime over the window.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPerMessage is CPUSeconds / messages, in microseconds.
	CPUPerMessage float64 `json:"cpu_per_message_us,omitempty"`
}

// GeneratorResult is the generator's own CPU time over the window
// (getrusage).
type GeneratorResult struct {
	UserSeconds   float64 `json:"user_seconds"`
	SysSeconds    float64 `json:"sys_seconds"`
	CPUPerMessage float64 `json:"cpu_per_message_us,omitempty"`
}

// Sample is one point of the timeline.
type Sample struct {
	T              float64 `json:"t"` // seconds since the load began
	MessagesPerSec float64 `json:"messages_per_second"`
	Errors         int64   `json:"errors"`
	Conns          int64   `json:"conns"`
}

type resultInput struct {
	window           time.Duration
	startRU, endRU   cpuSample
	startCPU, endCPU cpuSample
	before, after    procSample
	held             int64
}

// plotPercentiles are the points of the percentile plot.
var plotPercentiles = []float64{0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96, 97, 97.5, 98, 98.5, 99, 99.25, 99.5, 99.75, 99.9, 99.95, 99.99, 99.999, 100}

func us(ns int64) float64 { return float64(ns) / 1e3 }

func (r *runner) result(in resultInput) *Result {
	s := r.s
	fr := s.Frame.String()
	if s.packet {
		fr = "datagram"
	}
	res := &Result{
		Schema: Schema, Endpoint: s.Endpoint.String(), Mode: s.Mode, Engine: s.Engine,
		Frame: fr, Conns: s.Conns, Size: len(s.msg), WireSize: len(s.wire), Depth: s.Depth,
		Rate: s.Rate, Verify: s.Verify, Warmup: s.Warmup.Seconds(), Duration: in.window.Seconds(),
		Errors: make(map[string]int64, numKinds),
	}
	res.Messages, res.Bytes = r.r.messages()
	if secs := in.window.Seconds(); secs > 0 {
		res.MessagesPerSec = float64(res.Messages) / secs
		res.BytesPerSec = float64(res.Bytes) / secs
	}
	h := r.r.merged()
	if h.TotalCount() > 0 {
		res.Latency = &Latency{
			Count: h.TotalCount(), Min: us(h.Min()), Mean: h.Mean() / 1e3,
			P50: us(h.ValueAtQuantile(50)), P90: us(h.ValueAtQuantile(90)),
			P99: us(h.ValueAtQuantile(99)), P999: us(h.ValueAtQuantile(99.9)), Max: us(h.Max()),
		}
		for _, p := range plotPercentiles {
			res.Percentiles = append(res.Percentiles, PercentilePoint{Percentile: p, Micros: us(h.ValueAtQuantile(p))})
		}
	}
	for k := ErrorKind(0); k < numKinds; k++ {
		n := r.r.errs[k].Load()
		res.Errors[k.String()] = n
		res.ErrorTotal += n
	}
	if r.r.first != nil && res.ErrorTotal > 0 {
		res.FirstError = r.r.first.Error()
	}
	if s.Mode == UDP {
		u := &UDPResult{Sent: r.r.sent.Load(), Received: res.Messages, Lost: r.r.lost.Load()}
		if u.Sent > 0 {
			u.Loss = float64(u.Lost) / float64(u.Sent)
		}
		res.UDP = u
	}
	if s.Mode == Idle {
		res.Idle = &IdleResult{Held: in.held}
	}
	if s.PID > 0 {
		t := &TargetResult{PID: s.PID, RSSBefore: in.before.rss, RSSAfter: in.after.rss}
		if s.Mode == Idle && in.before.ok && in.after.ok && in.held > 0 {
			t.RSSPerConn = float64(in.after.rss-in.before.rss) / float64(in.held)
		}
		if in.startCPU.ok && in.endCPU.ok {
			t.CPUSeconds = (in.endCPU.total() - in.startCPU.total()).Seconds()
			if res.Messages > 0 {
				t.CPUPerMessage = t.CPUSeconds / float64(res.Messages) * 1e6
			}
		}
		res.Target = t
	}
	if in.startRU.ok && in.endRU.ok {
		g := GeneratorResult{
			UserSeconds: (in.endRU.user - in.startRU.user).Seconds(),
			SysSeconds:  (in.endRU.sys - in.startRU.sys).Seconds(),
		}
		if res.Messages > 0 {
			g.CPUPerMessage = (g.UserSeconds + g.SysSeconds) / float64(res.Messages) * 1e6
		}
		res.Generator = g
	}
	r.mu.Lock()
	res.Timeline = append([]Sample(nil), r.timeline...)
	r.mu.Unlock()
	if res.Timeline == nil {
		res.Timeline = []Sample{}
	}
	if res.Percentiles == nil {
		res.Percentiles = []PercentilePoint{}
	}
	return res
}

// fmtDur formats microseconds for people.
func fmtDur(usec float64) string {
	d := time.Duration(usec * 1e3)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", usec)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", usec/1e3)
	default:
		return fmt.Sprintf("%.3fs", usec/1e6)
	}
}

// si formats n with a k/M/G suffix.
func si(n float64) string {
	switch a := math.Abs(n); {
	case a >= 1e9:
		return fmt.Sprintf("%.2fG", n/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.2fM", n/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.1fk", n/1e3)
	default:
		return fmt.Sprintf("%.0f", n)
	}
}

// WriteText writes the human summary.
func (res *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fr := res.Frame
	if fr == "" {
		fr = frame.Spec{}.String()
	}
	fmt.Fprintf(&b, "%s %s: %d conns, %d-byte messages (%s, %d on the wire)", res.Mode, res.Endpoint, res.Conns, res.Size, fr, res.WireSize)
	if res.Mode == Pipeline || res.Mode == UDP {
		fmt.Fprintf(&b, ", depth %d", res.Depth)
	}
	if res.Rate > 0 {
		fmt.Fprintf(&b, ", rate %s/s", si(res.Rate))
	}
	fmt.Fprintf(&b, ", engine %s\n", res.Engine)
	fmt.Fprintf(&b, "  window     %.2fs (after %.2fs warm-up)\n", res.Duration, res.Warmup)
	unit := "messages"
	switch res.Mode {
	case Connect:
		unit = "connects"
	case UDP:
		unit = "datagrams"
	}
	if res.Mode != Idle {
		fmt.Fprintf(&b, "  %-10s %d, %s/s, %.2f MB/s\n", unit, res.Messages, si(res.MessagesPerSec), res.BytesPerSec/1e6)
	}
	if l := res.Latency; l != nil {
		what := "latency"
		if res.Rate > 0 {
			what = "latency (from intended send times)"
		}
		if res.Mode == Connect {
			what = "connect time"
		}
		fmt.Fprintf(&b, "  %s\n    min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", what,
			fmtDur(l.Min), fmtDur(l.P50), fmtDur(l.P90), fmtDur(l.P99), fmtDur(l.P999), fmtDur(l.Max))
	}
	if u := res.UDP; u != nil {
		fmt.Fprintf(&b, "  udp        sent %d, received %d, lost %d (%.3f%%)\n", u.Sent, u.Received, u.Lost, 100*u.Loss)
	}
	if id := res.Idle; id != nil {
		fmt.Fprintf(&b, "  held       %d connections\n", id.Held)
	}
	if t := res.Target; t != nil {
		fmt.Fprintf(&b, "  target     pid %d: cpu %.3fs", t.PID, t.CPUSeconds)
		if t.CPUPerMessage > 0 {
			fmt.Fprintf(&b, " (%.2fµs per message)", t.CPUPerMessage)
		}
		fmt.Fprintf(&b, ", rss %s → %s", bytesText(t.RSSBefore), bytesText(t.RSSAfter))
		if t.RSSPerConn != 0 {
			fmt.Fprintf(&b, " (%.0f B per connection)", t.RSSPerConn)
		}
		b.WriteString("\n")
	}
	g := res.Generator
	fmt.Fprintf(&b, "  generator  cpu %.3fs user + %.3fs sys", g.UserSeconds, g.SysSeconds)
	if g.CPUPerMessage > 0 {
		fmt.Fprintf(&b, " (%.2fµs per message)", g.CPUPerMessage)
	}
	b.WriteString("\n")
	if res.ErrorTotal == 0 {
		b.WriteString("  errors     none\n")
	} else {
		fmt.Fprintf(&b, "  errors     %d:", res.ErrorTotal)
		for k := ErrorKind(0); k < numKinds; k++ {
			if n := res.Errors[k.String()]; n > 0 {
				fmt.Fprintf(&b, " %s %d", k, n)
			}
		}
		fmt.Fprintf(&b, " (first: %s)\n", res.FirstError)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
