package bench

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/endpoint/proxy"
	"github.com/sockit/sockit/frame"
)

// Mode is what the generator does on each connection.
type Mode string

// Modes (SPEC section 6).
const (
	// Echo sends a message and waits for its echo before sending the next
	// (ping-pong). On a datagram endpoint it is UDP with depth 1.
	Echo Mode = "echo"
	// Pipeline keeps Depth messages in flight per connection.
	Pipeline Mode = "pipeline"
	// Send writes messages one way (to a discard server) and reads nothing
	// back; on a datagram endpoint it sends datagrams.
	Send Mode = "send"
	// Connect opens and closes connections as fast as it can (or at Rate);
	// a message is one completed connect, its latency the connect time.
	Connect Mode = "connect"
	// Idle opens Conns connections and holds them for Duration without
	// sending anything; with PID it reports the target's memory per
	// connection.
	Idle Mode = "idle"
	// UDP exchanges datagrams (Depth in flight per socket) and reports loss.
	UDP Mode = "udp"
)

// Modes lists the modes in the order the CLI documents them.
func Modes() []Mode { return []Mode{Echo, Pipeline, Send, Connect, Idle, UDP} }

// ParseMode parses a mode name.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes() {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("%w %q: want echo, pipeline, send, connect, idle or udp", ErrBadMode, s)
}

// Engines that drive the generator's connections.
const (
	EngineGoroutine = "goroutine"
	EngineEpoll     = "epoll"
)

// Errors returned by Run for a configuration it cannot run. They are the
// caller's mistake (the CLI maps them to exit status 2).
var (
	ErrBadMode   = errors.New("sockit: bad bench mode")
	ErrBadConfig = errors.New("sockit: bad bench configuration")
)

// Defaults for the zero values of Config.
const (
	DefaultConns    = 10
	DefaultDuration = 10 * time.Second
	DefaultSize     = 64
	DefaultDepth    = 16 // pipeline mode
	DefaultTimeout  = 5 * time.Second
	// DefaultLossTimeout is the zero Timeout of datagram endpoints: an echo
	// not back within it is counted lost.
	DefaultLossTimeout = time.Second
)

// Config describes one run. Its zero value is not runnable (it has no
// endpoint); every other zero field has the default its comment names.
// Run does not modify it.
type Config struct {
	// Endpoint is the target.
	Endpoint endpoint.Endpoint
	// Mode is what to do; "" means Echo on a stream endpoint and UDP on a
	// datagram endpoint.
	Mode Mode
	// Engine is EngineGoroutine ("" too) or EngineEpoll.
	Engine string
	// Conns is the number of connections (datagram sockets for UDP);
	// 0 means DefaultConns.
	Conns int
	// Duration is the measuring window; 0 means DefaultDuration.
	Duration time.Duration
	// Warmup runs the load this long before measuring; 0 means none.
	Warmup time.Duration
	// Size is the message size in bytes before framing; 0 means
	// DefaultSize, or the length of Payload when it is set.
	Size int
	// Frame is the framing of messages on streams (datagrams are messages).
	Frame frame.Spec
	// Payload is the message content; nil means random bytes (valid for
	// the framing: no separator inside). It is repeated or cut to Size.
	Payload []byte
	// Depth is the number of messages in flight per connection in
	// Pipeline and UDP mode; 0 means DefaultDepth for Pipeline and 1 for
	// UDP.
	Depth int
	// Rate is a fixed arrival rate in messages (connections in Connect
	// mode) per second across all connections; 0 means closed loop, as
	// fast as replies come. With a rate, latency is counted from each
	// message's intended send time.
	Rate float64
	// Sources are local addresses to dial from, connection i from
	// Sources[i % len]; empty means the system's choice.
	Sources []netip.Addr
	// SendProxy, 1 or 2, begins every stream connection with a PROXY
	// protocol header of that version naming the connection's own
	// addresses, as a load balancer would (for a server with
	// --proxy-protocol); 0 sends none.
	SendProxy byte
	// Verify checks every byte of every echo.
	Verify bool
	// Timeout bounds a connect and the wait for an echo; a connection that
	// waits longer is counted as a timeout and replaced; a datagram whose
	// echo takes longer is counted lost. 0 means DefaultTimeout on streams
	// and DefaultLossTimeout on datagram endpoints.
	Timeout time.Duration
	// TLS configures tls:// endpoints (nil: the defaults).
	TLS *tls.Config
	// PID, when positive, names the target process: its CPU time over the
	// measuring window and its memory (RSS) before and after are reported
	// (Linux /proc).
	PID int
	// Progress, when set, is called about once a second from a goroutine of
	// Run with the state so far.
	Progress func(Progress)
	// Logger receives debug events; nil discards them.
	Logger *slog.Logger
}

// Progress is the state of a run reported to Config.Progress.
type Progress struct {
	Elapsed   time.Duration // since the first connection was opened
	Warmup    bool          // still warming up
	Rate      float64       // messages per second over the last interval
	Messages  int64         // messages counted so far (measuring window only)
	Errors    int64         // errors so far, warm-up included
	Conns     int           // connections currently open
	Remaining time.Duration // until the run ends
}

// settings is a Config with its defaults applied and its message prepared.
type settings struct {
	Config
	packet  bool
	msg     []byte // payload, unframed
	wire    []byte // one framed message
	wires   []byte // copies of wire, as many as one write carries: shared by every connection, never written
	maxRecv int    // largest reply the decoder accepts
}

// sendBatch is the number of messages per write in send mode without a
// rate: about 64 KiB.
func (s *settings) sendBatch() int {
	if s.Mode == Send && s.Rate == 0 {
		return max(1, (64<<10)/len(s.wire))
	}
	return 1
}

// ParseSources parses --source: one address, a range "127.0.0.2-127.0.0.9"
// (inclusive, at most 65536 addresses) or a comma-separated list of either.
func ParseSources(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := netip.ParseAddr(strings.Trim(lo, "[]"))
		if err != nil {
			return nil, fmt.Errorf("bad source %q: not an IP address", part)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b, err := netip.ParseAddr(strings.Trim(hi, "[]"))
		if err != nil {
			return nil, fmt.Errorf("bad source range %q: %q is not an IP address", part, hi)
		}
		if a.Is4() != b.Is4() || a.Zone() != b.Zone() || b.Less(a) {
			return nil, fmt.Errorf("bad source range %q: want FIRST-LAST of one family, FIRST <= LAST", part)
		}
		for x := a; ; x = x.Next() {
			if len(out) >= 1<<16 {
				return nil, fmt.Errorf("bad source range %q: more than 65536 addresses", part)
			}
			out = append(out, x)
			if x == b {
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bad source %q: no address", s)
	}
	return out, nil
}

// LoadPayload turns --payload into Config.Payload: "random" is nil, "zero"
// is Size zero bytes, anything else is a file whose contents are the message.
func LoadPayload(s string, size int) ([]byte, error) {
	switch s {
	case "", "random":
		return nil, nil
	case "zero":
		if size <= 0 {
			size = DefaultSize
		}
		return make([]byte, size), nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("payload file %s is empty", s)
	}
	return b, nil
}

func badConfig(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
}

// prepare validates cfg, applies defaults and builds the message.
func prepare(cfg Config) (*settings, error) {
	s := &settings{Config: cfg}
	ep := cfg.Endpoint
	if ep.Scheme == "" {
		return nil, badConfig("no endpoint")
	}
	if ep.Scheme == "fd" {
		return nil, badConfig("an fd:// endpoint cannot be dialed")
	}
	s.packet = ep.IsPacket()
	switch s.Mode {
	case "":
		s.Mode = Echo
		if s.packet {
			s.Mode = UDP
		}
	case Echo, Pipeline, Send, Connect, Idle, UDP:
	default:
		return nil, fmt.Errorf("%w %q", ErrBadMode, s.Mode)
	}
	if s.packet {
		switch s.Mode {
		case Connect, Idle:
			return nil, badConfig("mode %s needs a stream endpoint, not %s", s.Mode, ep.Scheme)
		case Echo:
			s.Mode, s.Depth = UDP, 1
		case Pipeline:
			s.Mode = UDP
		}
	} else if s.Mode == UDP {
		return nil, badConfig("mode udp needs a datagram endpoint (udp://, unixgram:), not %s", ep.Scheme)
	}
	switch s.Engine {
	case "", EngineGoroutine:
		s.Engine = EngineGoroutine
	case EngineEpoll:
	default:
		return nil, badConfig("engine %q: want goroutine or epoll", s.Engine)
	}
	if s.Conns < 0 || s.Duration < 0 || s.Warmup < 0 || s.Size < 0 || s.Depth < 0 || s.Rate < 0 || s.Timeout < 0 {
		return nil, badConfig("negative conns, duration, warmup, size, depth, rate or timeout")
	}
	if s.Conns == 0 {
		s.Conns = DefaultConns
	}
	if s.Duration == 0 {
		s.Duration = DefaultDuration
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
		if s.packet {
			s.Timeout = DefaultLossTimeout
		}
	}
	if s.Depth == 0 {
		s.Depth = 1
		if s.Mode == Pipeline {
			s.Depth = DefaultDepth
		}
	}
	if s.Mode == Echo {
		s.Depth = 1
	}
	if s.Depth > 1<<16 {
		return nil, badConfig("depth %d is over 65536", s.Depth)
	}
	if len(s.Sources) > 0 && ep.IsUnix() {
		return nil, badConfig("--source applies to IP endpoints, not %s", ep.Scheme)
	}
	if s.Rate > 0 && s.Mode == Idle {
		return nil, badConfig("--rate does not apply to idle mode")
	}
	if s.Frame.Kind == frame.Close && s.Mode == Pipeline {
		return nil, badConfig("framing close carries one message per connection: use mode echo or send")
	}
	if err := s.Frame.Validate(); err != nil {
		return nil, badConfig("%v", err)
	}
	if err := s.buildMessage(); err != nil {
		return nil, err
	}
	if !s.packet && (s.Mode == Echo || s.Mode == Pipeline || s.Mode == Send) {
		// All messages are the same bytes: every write is a prefix of one
		// read-only buffer, which stays in the cache.
		s.wires = bytes.Repeat(s.wire, max(s.Depth, s.sendBatch()))
	}
	return s, nil
}

// buildMessage makes the payload and its framed form.
func (s *settings) buildMessage() error {
	size := s.Size
	if s.Frame.Kind == frame.Fixed {
		if size != 0 && size != s.Frame.N {
			return badConfig("--size %d does not match framing %s", size, s.Frame)
		}
		size = s.Frame.N
	}
	if size == 0 {
		size = DefaultSize
		if s.Payload != nil {
			size = len(s.Payload)
		}
	}
	if s.Frame.Kind == frame.Len && s.Frame.W < 8 && uint64(size) >= 1<<(8*s.Frame.W) {
		return badConfig("--size %d is too long for framing %s", size, s.Frame)
	}
	if size > 64<<20 {
		return badConfig("--size %d is over 64 MiB", size)
	}
	if s.packet && size > 65507 {
		return badConfig("--size %d is over the largest UDP datagram (65507)", size)
	}
	msg := make([]byte, size)
	if s.Payload == nil {
		fillRandom(msg, s.forbidden())
	} else {
		for i := 0; i < size; i += copy(msg[i:], s.Payload) {
		}
		if bad := s.forbidden(); len(bad) > 0 {
			for _, c := range bad {
				if bytes.IndexByte(msg, c) >= 0 && s.Frame.Kind == frame.Line {
					return badConfig("the payload contains %q, which framing line uses to end a message", c)
				}
			}
			if s.Frame.Kind == frame.Delim && bytes.Contains(msg, s.Frame.Sep) {
				return badConfig("the payload contains the separator of framing %s", s.Frame)
			}
		}
	}
	s.msg = msg
	if !s.packet {
		wire, err := s.Frame.Append(nil, msg)
		if err != nil {
			return badConfig("framing the message: %v", err)
		}
		s.wire = wire
	} else {
		s.wire = msg
	}
	s.maxRecv = max(size+len(s.wire), frame.DefaultMaxFrame)
	return nil
}

// forbidden lists the bytes a random payload must avoid for the framing.
func (s *settings) forbidden() []byte {
	if s.packet {
		return nil
	}
	switch s.Frame.Kind {
	case frame.Line:
		return []byte{'\n', '\r'}
	case frame.Delim:
		return s.Frame.Sep
	}
	return nil
}

// fillRandom fills b with random bytes none of which is in bad; with bad
// given it uses printable ASCII only, so a delimiter can never appear across
// two messages either.
func fillRandom(b []byte, bad []byte) {
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	if len(bad) == 0 {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+"
	var ok []byte
	for i := 0; i < len(alphabet); i++ {
		if bytes.IndexByte(bad, alphabet[i]) < 0 {
			ok = append(ok, alphabet[i])
		}
	}
	if len(ok) == 0 {
		for c := 0; c < 256; c++ {
			if bytes.IndexByte(bad, byte(c)) < 0 {
				ok = append(ok, byte(c))
			}
		}
	}
	for i := range b {
		b[i] = ok[r.IntN(len(ok))]
	}
}

// dialer returns the dialer of connection i.
func (s *settings) dialer(i int) endpoint.Dialer {
	d := endpoint.Dialer{Timeout: s.Timeout, TLS: s.TLS}
	if n := len(s.Sources); n > 0 {
		d.Source = s.Sources[i%n].String()
	}
	if v := s.SendProxy; v != 0 {
		d.Preface = func(c net.Conn) error { return proxy.WriteHeader(c, v, c.LocalAddr(), c.RemoteAddr()) }
	}
	return d
}
