package soak

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/server"
	"github.com/sockit/sockit/service"
)

func mustEndpoint(t *testing.T, s string) endpoint.Endpoint {
	t.Helper()
	e, err := endpoint.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustSpec(t *testing.T, s string) frame.Spec {
	t.Helper()
	f, err := frame.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParseFaults(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Fault
		err  bool
	}{
		{"", nil, false},
		{"all", nil, false},
		{"none", []Fault{}, false},
		{"reset, stall", []Fault{Reset, Stall}, false},
		{"reset,bogus", nil, true},
	} {
		got, err := ParseFaults(tc.in)
		if (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrBadConfig)) {
			t.Errorf("%q: error %v", tc.in, err)
			continue
		}
		if (got == nil) != (tc.want == nil) || len(got) != len(tc.want) {
			t.Errorf("%q: %#v, want %#v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

func TestSettingsRefuseBadConfigs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no endpoint", Config{}},
		{"fd", Config{Endpoint: endpoint.Endpoint{Scheme: "fd", FD: 3}}},
		{"unknown service", Config{Endpoint: mustEndpoint(t, "tcp://127.0.0.1:7"), Service: "chat"}},
		{"remote", Config{Endpoint: mustEndpoint(t, "tcp://192.0.2.1:7")}},
		{"remote v6", Config{Endpoint: mustEndpoint(t, "tcp://[2001:db8::1]:7")}},
		{"http on udp", Config{Endpoint: mustEndpoint(t, "udp://127.0.0.1:7"), Service: "http"}},
		{"raw hello", Config{Endpoint: mustEndpoint(t, "tcp://127.0.0.1:7"), Service: "hello", Frame: mustSpec(t, "raw")}},
		{"fixed upper", Config{Endpoint: mustEndpoint(t, "tcp://127.0.0.1:7"), Service: "upper", Frame: mustSpec(t, "fixed:8")}},
		{"close hello", Config{Endpoint: mustEndpoint(t, "tcp://127.0.0.1:7"), Service: "hello", Frame: mustSpec(t, "close")}},
		{"negative", Config{Endpoint: mustEndpoint(t, "tcp://127.0.0.1:7"), Clients: -1}},
		{"unknown fault", Config{Endpoint: mustEndpoint(t, "tcp://127.0.0.1:7"), Faults: []Fault{"bogus"}}},
		{"fault that does not apply", Config{Endpoint: mustEndpoint(t, "tcp://127.0.0.1:7"), Faults: []Fault{TLSStall}}},
		{"oversized raw", Config{Endpoint: mustEndpoint(t, "tcp://127.0.0.1:7"), Frame: mustSpec(t, "raw"), Faults: []Fault{Oversized}}},
	} {
		if _, err := tc.cfg.settings(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: error %v, want ErrBadConfig", tc.name, err)
		}
	}
	// Loopback in every spelling, and --allow-remote.
	for _, ep := range []string{"tcp://127.0.0.1:7", "tcp://127.9.9.9:7", "tcp://[::1]:7", "tcp://localhost:7", "unix:///tmp/x.sock"} {
		if _, err := (&Config{Endpoint: mustEndpoint(t, ep)}).settings(); err != nil {
			t.Errorf("%s: %v", ep, err)
		}
	}
	if _, err := (&Config{Endpoint: mustEndpoint(t, "tcp://192.0.2.1:7"), AllowRemote: true}).settings(); err != nil {
		t.Errorf("AllowRemote: %v", err)
	}
}

func TestAppliesAndDefaults(t *testing.T) {
	s, err := (&Config{Endpoint: mustEndpoint(t, "tcp://127.0.0.1:7"), Frame: mustSpec(t, "line")}).settings()
	if err != nil {
		t.Fatal(err)
	}
	want := []Fault{Reset, Stall, Slowloris, Oversized, Garbage, Flood, NoRead}
	if len(s.faults) != len(want) {
		t.Fatalf("tcp line echo faults %v, want %v", s.faults, want)
	}
	if s.Duration != DefaultDuration || s.Clients != DefaultClients || s.Settle != DefaultSettle {
		t.Errorf("defaults not applied: %+v", s.Config)
	}
	for _, tc := range []struct {
		f                 Fault
		ep, spec, service string
		want              bool
	}{
		{TLSStall, "tls://127.0.0.1:7", "line", "echo", true},
		{TLSStall, "tcp://127.0.0.1:7", "line", "echo", false},
		{UDPFlood, "udp://127.0.0.1:7", "line", "echo", true},
		{Reset, "udp://127.0.0.1:7", "line", "echo", false},
		{Oversized, "tcp://127.0.0.1:7", "len:4", "echo", true},
		{Oversized, "tcp://127.0.0.1:7", "len:2", "echo", false}, // a 65,535-byte header fits a 1 MiB limit
		{Oversized, "tcp://127.0.0.1:7", "fixed:8", "echo", false},
		{Oversized, "tcp://127.0.0.1:7", "line", "daytime", false},
		{Oversized, "unixpacket:///tmp/x", "line", "echo", false},
		{Oversized, "tcp://127.0.0.1:7", "raw", "http", true},
		{Stall, "tcp://127.0.0.1:7", "line", "chargen", false},
	} {
		if got := Applies(tc.f, mustEndpoint(t, tc.ep), mustSpec(t, tc.spec), tc.service, 0); got != tc.want {
			t.Errorf("Applies(%s, %s, %s, %s) = %v", tc.f, tc.ep, tc.spec, tc.service, got)
		}
	}
}

// Every well-behaved message fits its framing with room for the reply, and
// its expected reply is the service's.
func TestMessagesFitTheirFraming(t *testing.T) {
	for _, spec := range []string{"raw", "line", "delim:\\r\\n", "len:1", "len:2", "len:4", "fixed:16", "close"} {
		for _, svc := range []string{"echo", "upper", "hello", "reply", "discard"} {
			cfg := Config{Endpoint: mustEndpoint(t, "tcp://127.0.0.1:7"), Service: svc, Frame: mustSpec(t, spec)}
			s, err := cfg.settings()
			if err != nil {
				continue // a combination the soak refuses
			}
			r := rand.New(rand.NewPCG(1, 2))
			for i := range 300 {
				m := s.message(r, 3, int64(i))
				if _, err := s.Frame.Append(nil, s.expect(m)); err != nil && s.answers() {
					t.Fatalf("%s %s: reply to message %d (%d bytes) does not fit: %v", svc, spec, i, len(m), err)
				}
				if _, err := s.Frame.Append(nil, m); err != nil {
					t.Fatalf("%s %s: message %d (%d bytes) does not fit: %v", svc, spec, i, len(m), err)
				}
				if sep := lineEnd(s.Frame); sep != nil && bytes.Contains(m, sep) {
					t.Fatalf("%s %s: message %d holds a line end", svc, spec, i)
				}
			}
		}
	}
	s, _ := (&Config{Endpoint: mustEndpoint(t, "tcp://127.0.0.1:7"), Service: "hello", Frame: mustSpec(t, "line")}).settings()
	if got := string(s.expect([]byte("Ann"))); got != "Hello, Ann!" {
		t.Errorf("hello expects %q", got)
	}
	if got := string(s.Greeting); got != "Welcome!\n" {
		t.Errorf("hello greeting %q", got)
	}
}

// lineEnd is what ends a line or delimited message; nil for other framings.
func lineEnd(spec frame.Spec) []byte {
	switch spec.Kind {
	case frame.Line:
		return []byte{'\n'}
	case frame.Delim:
		return spec.Sep
	}
	return nil
}

func TestCheckers(t *testing.T) {
	now := time.Now()
	if err := checkDaytime([]byte(now.Format(dayLayout)+"\r\n"), now); err != nil {
		t.Error(err)
	}
	if err := checkDaytime([]byte("yesterday"), now); err == nil {
		t.Error("a bad daytime answer passed")
	}
	if err := checkDaytime([]byte(now.Add(-72*time.Hour).Format(dayLayout)), now); err == nil {
		t.Error("a daytime answer three days off passed")
	}
	var pattern []byte
	for i := range 200 {
		pattern = append(pattern, chargenLine(i)...)
	}
	if err := checkChargen(pattern[:10000]); err != nil {
		t.Error(err)
	}
	bad := bytes.Clone(pattern[:10000])
	bad[5000] ^= 1
	if err := checkChargen(bad); err == nil {
		t.Error("a corrupt chargen pattern passed")
	}
	if string(chargenLine(95)) != string(chargenLine(0)) {
		t.Error("the chargen pattern does not repeat every 95 lines")
	}
}

func TestLeaks(t *testing.T) {
	start := Sample{Goroutines: 100, FDs: 10, RSS: 20 << 20, Anon: -1}
	anonStart := Sample{Goroutines: -1, FDs: -1, RSS: 30 << 20, Anon: 8 << 20}
	for _, tc := range []struct {
		start, end Sample
		want       int
	}{
		{start, Sample{Goroutines: 110, FDs: 12, RSS: 24 << 20, Anon: -1}, 0}, // within slack
		{start, Sample{Goroutines: 111, FDs: 12, RSS: 20 << 20, Anon: -1}, 1}, // 11 % more goroutines
		{start, Sample{Goroutines: 100, FDs: 13, RSS: 20 << 20, Anon: -1}, 1}, // 3 fds
		{start, Sample{Goroutines: 100, FDs: 10, RSS: 25 << 20, Anon: -1}, 1}, // 5 MiB
		{start, Sample{Goroutines: -1, FDs: -1, RSS: -1, Anon: -1}, 0},        // unknown
		{start, Sample{Goroutines: 1000, FDs: 1000, RSS: 1 << 30, Anon: -1}, 3},
		{anonStart, Sample{Goroutines: -1, FDs: -1, RSS: 40 << 20, Anon: 9 << 20}, 0},  // the binary paged in: not a leak
		{anonStart, Sample{Goroutines: -1, FDs: -1, RSS: 30 << 20, Anon: 13 << 20}, 1}, // 5 MiB more heap
	} {
		if got := leaks(tc.start, tc.end); len(got) != tc.want {
			t.Errorf("leaks(%+v, %+v) = %v, want %d", tc.start, tc.end, got, tc.want)
		}
	}
}

func TestOversizedFrame(t *testing.T) {
	for _, tc := range []struct {
		spec string
		max  int
		ok   bool
	}{
		{"line", 100, true}, {"close", 100, true}, {"len:4", 1 << 20, true}, {"len:8", 1 << 20, true},
		{"len:1", 100, true}, {"len:1", 255, false}, {"len:2", 1 << 20, false}, {"raw", 100, false}, {"fixed:4", 100, false},
	} {
		m, ok := oversizedFrame(mustSpec(t, tc.spec), tc.max)
		if ok != tc.ok {
			t.Errorf("%s max %d: ok %v", tc.spec, tc.max, ok)
			continue
		}
		if !ok {
			continue
		}
		rd := frame.NewReader(bytes.NewReader(append(m, make([]byte, 16)...)), mustSpec(t, tc.spec), tc.max)
		if _, err := rd.ReadMessage(); !errors.Is(err, frame.ErrTooLong) {
			t.Errorf("%s max %d: the oversized frame reads as %v, want ErrTooLong", tc.spec, tc.max, err)
		}
	}
}

func TestJudge(t *testing.T) {
	r := &Report{Sent: 10, Answered: 10, Checked: true}
	r.judge()
	if !r.Passed {
		t.Errorf("a clean report failed: %v", r.Failures)
	}
	for _, bad := range []*Report{
		{Sent: 10, Answered: 9, Lost: 1, Checked: true},
		{Sent: 0, Checked: true},
		{Sent: 10, Answered: 8, Checked: true},
		{Sent: 10, Answered: 10, Checked: true, Faults: []FaultReport{{Kind: Oversized, Unexpected: 1}}},
		{Sent: 10, Answered: 10, Checked: true, Server: &ServerReport{Leaks: []string{"fds 10 → 20"}}},
		{Sent: 10, Answered: 10, Checked: true, Errors: []string{"client 1: boom"}},
	} {
		bad.judge()
		if bad.Passed || len(bad.Failures) == 0 {
			t.Errorf("%+v passed", bad)
		}
	}
}

// TestRunInProcess soaks an in-process echo server on TCP and a hello server
// on a Unix socket (every fault that applies) for a moment: nothing is lost
// and every fault is injected. Run with -race, it checks the soak itself.
func TestRunInProcess(t *testing.T) {
	for _, tc := range []struct {
		svc, spec, network string
	}{
		{"echo", "line", "tcp"},
		{"hello", "len:4", "unix"},
		{"discard", "line", "tcp"},
		{"daytime", "line", "unix"},
	} {
		t.Run(tc.svc, func(t *testing.T) {
			spec := mustSpec(t, tc.spec)
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			svc, err := service.New(tc.svc, service.Config{Frame: spec, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			addr := "127.0.0.1:0"
			if tc.network == "unix" {
				addr = t.TempDir() + "/s.sock"
			}
			ln, err := net.Listen(tc.network, addr)
			if err != nil {
				t.Fatal(err)
			}
			srv := &server.Server{MaxConns: 24, ReadTimeout: 300 * time.Millisecond, Logger: quiet}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln, svc.Stream) }()
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
				<-done
			}()
			ep := mustEndpoint(t, tc.network+"://"+ln.Addr().String())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rep, err := Run(ctx, Config{Endpoint: ep, Service: tc.svc, Frame: spec, Duration: 700 * time.Millisecond,
				Warmup: 100 * time.Millisecond, Clients: 2, Rate: 4, Flood: 40, Timeout: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			_ = rep.WriteText(&b)
			if !rep.Passed {
				t.Fatalf("soak failed:\n%s", b.String())
			}
			for _, f := range rep.Faults {
				if f.Injected == 0 {
					t.Errorf("fault %s never injected:\n%s", f.Kind, b.String())
				}
			}
			if rep.Sent == 0 {
				t.Errorf("nothing sent:\n%s", b.String())
			}
		})
	}
}

// A target nothing listens on is one error before any load.
func TestRunUnreachable(t *testing.T) {
	ep := mustEndpoint(t, "unix://"+t.TempDir()+"/none.sock")
	_, err := Run(context.Background(), Config{Endpoint: ep, Duration: time.Second})
	if err == nil || errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("error %v", err)
	}
}
