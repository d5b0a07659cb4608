package soak

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/frame"
)

// ErrBadConfig is wrapped by every error Run returns for a configuration it
// cannot run: the caller's mistake (the CLI maps it to exit status 2).
var ErrBadConfig = errors.New("sockit: bad soak configuration")

// Services the well-behaved clients know how to check.
var Services = []string{"echo", "upper", "hello", "reply", "discard", "daytime", "chargen", "http"}

// Fault is a kind of bad client.
type Fault string

// The faults. Each runs at Config.Rate per second on the transports where it
// means something (see Applies).
const (
	// Reset sends half a message and resets the connection (SO_LINGER 0;
	// on Unix sockets, which cannot reset, a plain close).
	Reset Fault = "reset"
	// Stall sends half a message and then nothing, holding the connection
	// until the server closes it or the run ends (a half-open peer).
	Stall Fault = "stall"
	// Slowloris sends a message one byte a second.
	Slowloris Fault = "slowloris"
	// Oversized sends a message longer than MaxFrame (line, delim, close)
	// or a len:W header of 4 GiB or more, and expects the framed
	// "ERR frame too long" and a close.
	Oversized Fault = "oversized"
	// Garbage sends random bytes, invalid UTF-8 and control bytes among
	// them, half-closes and reads what comes back.
	Garbage Fault = "garbage"
	// Flood opens Flood connections at once (past the server's --max-conns
	// when Flood is larger), holds them half a second and closes them.
	Flood Fault = "flood"
	// NoRead sends messages and never reads the replies, until the server
	// closes the connection or 10 s pass.
	NoRead Fault = "noread"
	// TLSStall opens a TCP connection to a tls:// endpoint, sends the
	// first bytes of a ClientHello and stalls in the handshake.
	TLSStall Fault = "tls-stall"
	// UDPFlood sends a burst of 2,000 datagrams from a socket that never
	// reads its replies.
	UDPFlood Fault = "udp-flood"
	// EmptyDatagram sends a 0-byte datagram (echo answers with one).
	EmptyDatagram Fault = "empty-datagram"
	// BigDatagram sends a 65,507-byte datagram, the largest UDP over IPv4
	// carries (echo and upper answer it; hello's reply is too large for
	// one datagram and is dropped with a warning).
	BigDatagram Fault = "big-datagram"
)

// Faults lists every fault in report order.
var Faults = []Fault{Reset, Stall, Slowloris, Oversized, Garbage, Flood, NoRead, TLSStall, UDPFlood, EmptyDatagram, BigDatagram}

// Applies reports whether fault f means something against service on
// endpoint e with framing spec and the server's maxFrame (0: the default).
func Applies(f Fault, e endpoint.Endpoint, spec frame.Spec, service string, maxFrame int) bool {
	if maxFrame <= 0 {
		maxFrame = frame.DefaultMaxFrame
	}
	if e.IsPacket() {
		return f == UDPFlood || f == EmptyDatagram || f == BigDatagram
	}
	switch f {
	case TLSStall:
		return e.IsTLS()
	case UDPFlood, EmptyDatagram, BigDatagram:
		return false
	case Oversized:
		switch service {
		case "http":
			return true
		case "daytime", "chargen":
			return false // they do not read: nothing is too long
		}
		if _, ok := oversizedFrame(spec, maxFrame); !ok {
			return false
		}
		return e.Scheme != "unixpacket"
	case Slowloris:
		// With raw framing every byte is a whole message, answered at
		// once: a client writing one a second is a slow, live client,
		// which no timeout may close (only --max-conns bounds how many
		// there are). http reads headers whatever the framing.
		if spec.Kind == frame.Raw && service != "http" {
			return false
		}
		return service != "daytime" && service != "chargen"
	case Stall:
		// daytime and chargen do not read: a slow writer is just idle.
		return service != "daytime" && service != "chargen"
	}
	return true
}

// Defaults for the zero values of Config.
const (
	DefaultDuration = 2 * time.Minute
	DefaultClients  = 8
	DefaultRate     = 1.0
	DefaultFlood    = 200
	DefaultTimeout  = 10 * time.Second
	DefaultSettle   = 30 * time.Second
	DefaultMaxMsg   = 4096
	// Tolerance is how far above its start a sample may end: 10 %.
	Tolerance = 0.10
)

// Config describes one soak run. Only Endpoint is required.
type Config struct {
	// Endpoint is the server under test.
	Endpoint endpoint.Endpoint
	// Service is what the server runs, so replies can be checked: one of
	// Services; "" means echo (any echo server works).
	Service string
	// Frame is the server's framing (datagrams ignore it).
	Frame frame.Spec
	// MaxFrame is the server's --max-frame; 0 means frame.DefaultMaxFrame.
	// Oversized messages are one byte longer.
	MaxFrame int
	// Greeting is what the server sends on connect before anything else,
	// as raw bytes. Nil means the service's default (hello: "Welcome!"
	// framed; others nothing); use an empty non-nil slice for none.
	Greeting []byte
	// Duration is how long load runs; 0 means DefaultDuration.
	Duration time.Duration
	// Warmup runs well-behaved clients alone this long before the start
	// sample is taken, so the code the load touches is paged in and the
	// server's pools exist; 0 means a second, a negative value none.
	Warmup time.Duration
	// Clients is the number of well-behaved clients; 0 means DefaultClients.
	Clients int
	// MaxMsg bounds a well-behaved message's size; 0 means DefaultMaxMsg
	// (kept below MaxFrame). One message in 64 is up to 16 times larger.
	MaxMsg int
	// Faults lists the faults to inject; nil means every one that applies.
	// An empty non-nil slice injects none.
	Faults []Fault
	// Rate is how many clients of each fault start per second; 0 means
	// DefaultRate. Each kind starts one at once, then at Rate; Flood once every 5/Rate seconds.
	Rate float64
	// Flood is the number of connections of one flood; 0 means DefaultFlood.
	Flood int
	// Timeout bounds a connect and the wait for each reply; 0 means
	// DefaultTimeout. A reply later than this counts its message lost.
	Timeout time.Duration
	// TLS configures tls:// endpoints.
	TLS *tls.Config
	// PID, when positive, is the server's process: its fds, RSS and threads
	// (and goroutines, with MetricsURL) are sampled from /proc.
	PID int
	// MetricsURL, when set, is a Prometheus /metrics URL of the server;
	// go_goroutines is read from it.
	MetricsURL string
	// Settle is how long, after the load stopped, Run waits for the
	// server's samples to come back within Tolerance of the start; 0 means
	// DefaultSettle.
	Settle time.Duration
	// AllowRemote permits targets outside loopback.
	AllowRemote bool
	// Logger receives progress and fault details at debug level; nil
	// discards them.
	Logger *slog.Logger
	// Progress, when set, is called about once a second with the counts so
	// far.
	Progress func(Progress)
}

// Progress is the state of a run reported to Config.Progress.
type Progress struct {
	Elapsed  time.Duration
	Sent     int64
	Answered int64
	Lost     int64
	Faults   int64
}

// settings is a Config with its defaults applied.
type settings struct {
	Config
	faults  []Fault
	dialer  endpoint.Dialer
	udpMax  int // the largest datagram the endpoint carries
	msgCap  int // the largest well-behaved message the framing carries
	maxRead int // the largest reply a good client accepts
}

func (c *Config) settings() (*settings, error) {
	s := &settings{Config: *c}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, a...))
	}
	if s.Endpoint.Scheme == "" {
		return nil, bad("no endpoint")
	}
	if s.Endpoint.Scheme == "fd" {
		return nil, bad("soak needs an address to connect to, not fd://")
	}
	if s.Service == "" {
		s.Service = "echo"
	}
	if s.Service == "chatbot" {
		s.Service = "reply"
	}
	if !slices.Contains(Services, s.Service) {
		return nil, bad("unknown service %q: want one of %s", s.Service, strings.Join(Services, ", "))
	}
	if err := s.Frame.Validate(); err != nil {
		return nil, bad("%v", err)
	}
	if s.Endpoint.IsPacket() && s.Service == "http" {
		return nil, bad("http runs on streams, not %s", s.Endpoint.Scheme)
	}
	if !s.Endpoint.IsPacket() && s.Endpoint.Scheme != "unixpacket" && s.Frame.Kind == frame.Raw &&
		(s.Service == "hello" || s.Service == "reply") {
		return nil, bad("raw framing cannot check %s's replies (each depends on where the server's read ends): give the server's --frame, e.g. line", s.Service)
	}
	if s.Frame.Kind == frame.Fixed && s.Service != "echo" && s.Service != "discard" {
		return nil, bad("fixed framing is for echo and discard only")
	}
	if s.Frame.Kind == frame.Close && s.Service != "echo" && s.Service != "upper" && s.Service != "discard" {
		return nil, bad("close framing is checked for echo, upper and discard only")
	}
	if s.MaxFrame == 0 {
		s.MaxFrame = frame.DefaultMaxFrame
	}
	if s.Duration == 0 {
		s.Duration = DefaultDuration
	}
	if s.Warmup == 0 {
		s.Warmup = time.Second
	}
	if s.Clients == 0 {
		s.Clients = DefaultClients
	}
	if s.MaxMsg == 0 {
		s.MaxMsg = DefaultMaxMsg
	}
	if s.Rate == 0 {
		s.Rate = DefaultRate
	}
	if s.Flood == 0 {
		s.Flood = DefaultFlood
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Settle == 0 {
		s.Settle = DefaultSettle
	}
	if s.Duration < 0 || s.Clients < 0 || s.MaxMsg < 0 || s.Rate < 0 || s.Flood < 0 || s.Timeout < 0 || s.Settle < 0 || s.MaxFrame < 0 {
		return nil, bad("durations, counts and rates must not be negative")
	}
	if s.Frame.Kind == frame.Fixed {
		s.MaxMsg = s.Frame.N
	}
	// Room for a message's id and for what a reply adds ("Hello, …!").
	s.msgCap = s.MaxFrame
	if s.Frame.Kind == frame.Len && s.Frame.W < 8 {
		s.msgCap = min(s.msgCap, 1<<(8*s.Frame.W)-1)
	}
	if s.Frame.Kind != frame.Fixed {
		s.msgCap = max(1, s.msgCap-32)
	}
	s.MaxMsg = min(s.MaxMsg, s.msgCap)
	if s.Endpoint.IsPacket() {
		s.udpMax = 65507
		s.MaxMsg = min(s.MaxMsg, 8192)
	}
	s.maxRead = max(s.MaxFrame, 16*s.MaxMsg) + 64
	if s.Greeting == nil && s.Service == "hello" {
		g, err := s.Frame.Append(nil, []byte("Welcome!"))
		if err != nil {
			return nil, bad("%v", err)
		}
		if s.Endpoint.Scheme == "unixpacket" {
			g = []byte("Welcome!")
		}
		s.Greeting = g
	}
	if c.Faults == nil {
		for _, f := range Faults {
			if Applies(f, s.Endpoint, s.Frame, s.Service, s.MaxFrame) {
				s.faults = append(s.faults, f)
			}
		}
	} else {
		for _, f := range c.Faults {
			if !slices.Contains(Faults, f) {
				return nil, bad("unknown fault %q", f)
			}
			if !Applies(f, s.Endpoint, s.Frame, s.Service, s.MaxFrame) {
				return nil, bad("fault %s does not apply to %s with --frame %s", f, s.Endpoint.Scheme, s.Frame)
			}
			if !slices.Contains(s.faults, f) {
				s.faults = append(s.faults, f)
			}
		}
	}
	s.dialer = endpoint.Dialer{Timeout: s.Timeout, TLS: s.TLS}
	if !s.AllowRemote {
		if err := checkLoopback(s.Endpoint); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ParseFaults parses a comma-separated list of faults; "all" (or "") means
// nil, every fault that applies, and "none" an empty list.
func ParseFaults(s string) ([]Fault, error) {
	switch strings.TrimSpace(s) {
	case "", "all":
		return nil, nil
	case "none":
		return []Fault{}, nil
	}
	var out []Fault
	for part := range strings.SplitSeq(s, ",") {
		f := Fault(strings.TrimSpace(part))
		if !slices.Contains(Faults, f) {
			names := make([]string, len(Faults))
			for i, f := range Faults {
				names[i] = string(f)
			}
			return nil, fmt.Errorf("%w: unknown fault %q: want all, none or a list of %s", ErrBadConfig, f, strings.Join(names, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// checkLoopback refuses an IP endpoint whose host is not a loopback address
// (every address a name resolves to must be one).
func checkLoopback(e endpoint.Endpoint) error {
	if e.IsUnix() {
		return nil
	}
	host, _, err := net.SplitHostPort(e.Address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Unmap().IsLoopback() {
			return nil
		}
		return fmt.Errorf("%w: %s is not a loopback address: soak sends abuse, so it targets only 127.0.0.0/8 and ::1 unless --allow-remote", ErrBadConfig, host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: resolving %s: %v", ErrBadConfig, host, err)
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return fmt.Errorf("%w: %s resolves to %s, not a loopback address: soak targets only 127.0.0.0/8 and ::1 unless --allow-remote", ErrBadConfig, host, a)
		}
	}
	return nil
}
