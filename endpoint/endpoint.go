package endpoint

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Endpoint is a parsed endpoint. The zero value is not valid: build endpoints
// with [Parse] (or [Endpoint.WithAddr] from a parsed one). An Endpoint is a
// plain value, comparable with ==.
type Endpoint struct {
	// Scheme is the scheme in lower case: "tcp", "tcp4", "tcp6", "udp",
	// "udp4", "udp6", "unix", "unixgram", "unixpacket", "tls" or "fd". A bare
	// HOST:PORT has scheme "tcp".
	Scheme string
	// Network is the Go network for net.Listen and net.Dial: the scheme
	// itself, "tcp" for tls, and "" for fd.
	Network string
	// Address is "host:port" in net.JoinHostPort form (an IPv6 host is
	// bracketed, the port is decimal without leading zeros) for IP schemes,
	// the Unix path as given (relative or absolute) for Unix schemes, and ""
	// for fd.
	Address string
	// FD is the descriptor number of an fd://N endpoint, 0 otherwise.
	FD int
}

// ParseError reports input that is not an endpoint. Its message is one line:
//
//	bad endpoint "tcp://127.0.0.1": missing port
type ParseError struct {
	Input  string // the text given to Parse
	Reason string // what is wrong with it
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("bad endpoint %q: %s", e.Input, e.Reason)
}

// schemeList is how errors name the known schemes.
const schemeList = "tcp, tcp4, tcp6, udp, udp4, udp6, tls, unix, unixgram, unixpacket or fd"

// networkOf returns the Go network of a lower-case scheme and whether the
// scheme is known.
func networkOf(scheme string) (string, bool) {
	switch scheme {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "unix", "unixgram", "unixpacket":
		return scheme, true
	case "tls":
		return "tcp", true
	case "fd":
		return "", true
	}
	return "", false
}

func isUnixScheme(scheme string) bool {
	return scheme == "unix" || scheme == "unixgram" || scheme == "unixpacket"
}

// Parse parses an endpoint (see the package documentation for the syntax).
// A bad endpoint gives a [*ParseError].
func Parse(s string) (Endpoint, error) {
	bad := func(format string, args ...any) (Endpoint, error) {
		return Endpoint{}, &ParseError{Input: s, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return bad("empty endpoint")
	}

	scheme, rest := "", s
	if i := strings.IndexByte(s, ':'); i > 0 {
		name, after := s[:i], s[i+1:]
		if lower, ok := asciiLower(name); ok {
			if _, known := networkOf(lower); known {
				scheme, rest = lower, after
			}
		}
		if scheme == "" && strings.HasPrefix(after, "//") {
			return bad("unknown scheme %q (want %s)", name, schemeList)
		}
	}

	switch {
	case scheme == "":
		if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") {
			return bad("missing scheme (for a Unix socket write %s)", shown("unix:"+s))
		}
		return parseIP("tcp", s, true, bad)
	case isUnixScheme(scheme):
		path := rest
		if strings.HasPrefix(rest, "//") {
			path = rest[2:]
			if path != "" && path[0] != '/' {
				return bad("a %s endpoint has no host part (write %s for a relative path or %s for an absolute one)", scheme, shown(scheme+":"+path), shown(scheme+":///"+path))
			}
		}
		if reason := checkUnixPath(path); reason != "" {
			return bad("%s", reason)
		}
		return Endpoint{Scheme: scheme, Network: scheme, Address: path}, nil
	case !strings.HasPrefix(rest, "//"):
		if scheme == "fd" {
			return bad("want fd://N")
		}
		return bad("want %s://HOST:PORT", scheme)
	case scheme == "fd":
		n := rest[2:]
		if n == "" {
			return bad("missing descriptor number (want fd://N)")
		}
		if !allDigits(n) {
			return bad("descriptor %q is not a non-negative integer", n)
		}
		fd, err := strconv.ParseUint(n, 10, 31)
		if err != nil || fd > math.MaxInt32 {
			return bad("descriptor %s is out of range", n)
		}
		return Endpoint{Scheme: "fd", FD: int(fd)}, nil
	default:
		return parseIP(scheme, rest[2:], false, bad)
	}
}

// parseIP parses the HOST:PORT of an IP scheme; bare is true when the input
// had no scheme.
func parseIP(scheme, hp string, bare bool, bad func(string, ...any) (Endpoint, error)) (Endpoint, error) {
	if hp == "" {
		return bad("missing address (want HOST:PORT)")
	}
	var host, port string
	if hp[0] == '[' {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return bad("missing ] after IPv6 address")
		}
		host = hp[1:end]
		after := hp[end+1:]
		switch {
		case after == "" || after == ":":
			return bad("missing port")
		case after[0] != ':':
			return bad("unexpected %q after ]", after)
		}
		port = after[1:]
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() {
			return bad("%q in brackets is not an IPv6 address", host)
		}
		if z := addr.Zone(); z != "" && !validZone(z) {
			return bad("bad IPv6 zone %q", z)
		}
	} else {
		i := strings.LastIndexByte(hp, ':')
		if i < 0 {
			if looksIPv6(hp) {
				return bad("IPv6 address must be in brackets with a port, e.g. %s://[::1]:80", scheme)
			}
			switch {
			case !bare:
				return bad("missing port")
			case strings.Contains(hp, "/"):
				return bad("missing port (want HOST:PORT, or unix:PATH for a Unix socket)")
			}
			return bad("missing port (want HOST:PORT)")
		}
		host, port = hp[:i], hp[i+1:]
		if strings.Contains(host, ":") {
			if looksIPv6(hp) || looksIPv6(host) {
				return bad("IPv6 address must be in brackets, e.g. %s://[::1]:80", scheme)
			}
			return bad("too many colons in %q", hp)
		}
		if reason := checkHost(host); reason != "" {
			return bad("%s", reason)
		}
	}
	if port == "" {
		return bad("missing port")
	}
	if !allDigits(port) {
		return bad("bad port %q", port)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return bad("port %s out of range 0-65535", port)
	}
	network, _ := networkOf(scheme)
	// An address of the other family can never be reached on a family's
	// own scheme: say so now, not at dial time.
	if a, err := netip.ParseAddr(host); err == nil {
		switch {
		case strings.HasSuffix(network, "6") && a.Is4():
			return bad("%s is an IPv4 address; %s:// is IPv6 only (use %s://)", host, scheme, strings.TrimSuffix(scheme, "6"))
		case strings.HasSuffix(network, "4") && !a.Unmap().Is4():
			return bad("%s is an IPv6 address; %s:// is IPv4 only (use %s://)", host, scheme, strings.TrimSuffix(scheme, "4"))
		}
	}
	return Endpoint{Scheme: scheme, Network: network, Address: net.JoinHostPort(host, strconv.FormatUint(p, 10))}, nil
}

// checkHost returns why host (not bracketed; possibly empty) is not a host,
// or "" if it is one.
func checkHost(host string) string {
	if host == "" {
		return ""
	}
	numeric := true
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c >= '0' && c <= '9' || c == '.':
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_':
			numeric = false
		default:
			return fmt.Sprintf("bad character %q in host %q", c, host)
		}
	}
	if numeric {
		if addr, err := netip.ParseAddr(host); err != nil || !addr.Is4() {
			return fmt.Sprintf("bad IPv4 address %q", host)
		}
		return ""
	}
	name := strings.TrimSuffix(host, ".")
	if len(name) > 253 {
		return fmt.Sprintf("host name %q is longer than 253 bytes", host)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return fmt.Sprintf("empty label in host name %q", host)
		}
		if len(label) > 63 {
			return fmt.Sprintf("label %q of host name is longer than 63 bytes", label)
		}
	}
	return ""
}

// looksIPv6 reports whether s is an IPv6 address written without brackets.
func looksIPv6(s string) bool {
	addr, err := netip.ParseAddr(s)
	return err == nil && addr.Is6()
}

// validZone reports whether an IPv6 zone is made of characters that keep
// the bracketed form unambiguous (interface names and numbers).
func validZone(z string) bool {
	for i := 0; i < len(z); i++ {
		c := z[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// checkUnixPath returns why path cannot name a Unix socket, or "".
func checkUnixPath(path string) string {
	switch {
	case path == "":
		return "missing path"
	case strings.IndexByte(path, 0) >= 0:
		return "path contains a NUL byte"
	case len(path) > maxUnixPath:
		return fmt.Sprintf("path is %d bytes, over the %d-byte limit of a Unix socket address", len(path), maxUnixPath)
	}
	return ""
}

// shown returns s for an error message: as is when it is printable, quoted
// otherwise, so that messages stay on one line.
func shown(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// asciiLower lowers an ASCII scheme name; ok is false if s is not one
// (a letter followed by letters, digits, '+', '-' or '.').
func asciiLower(s string) (string, bool) {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return "", false
		}
	}
	return string(b), true
}

// String returns the canonical form of e: "tcp://127.0.0.1:7788",
// "tcp://[::1]:80", "unix:///abs/x.sock", "unix:rel/x.sock", "fd://3".
// Parse(e.String()) == e for every endpoint Parse returns. The zero
// Endpoint's String is "".
func (e Endpoint) String() string {
	switch {
	case e.Scheme == "":
		return ""
	case e.Scheme == "fd":
		return "fd://" + strconv.Itoa(e.FD)
	case isUnixScheme(e.Scheme):
		if strings.HasPrefix(e.Address, "/") {
			return e.Scheme + "://" + e.Address
		}
		return e.Scheme + ":" + e.Address
	default:
		return e.Scheme + "://" + e.Address
	}
}

// IsPacket reports whether e is a datagram endpoint (udp, udp4, udp6,
// unixgram), served with [ListenConfig.ListenPacket]. An fd:// endpoint
// reports false: its kind is known only from the socket.
func (e Endpoint) IsPacket() bool {
	switch e.Scheme {
	case "udp", "udp4", "udp6", "unixgram":
		return true
	}
	return false
}

// IsUnix reports whether e is a Unix-domain endpoint (unix, unixgram,
// unixpacket).
func (e Endpoint) IsUnix() bool { return isUnixScheme(e.Scheme) }

// IsTLS reports whether e is a tls:// endpoint.
func (e Endpoint) IsTLS() bool { return e.Scheme == "tls" }

// WithAddr returns e with its address replaced by a, the address a socket
// really got (so that a server listening on port 0 can print
// "listening tcp://127.0.0.1:40123"). The scheme is kept; an fd:// endpoint
// (or the zero Endpoint) takes the scheme of a's network. If a is nil or does
// not fit the scheme (an unnamed Unix socket, a TCP address for a Unix
// endpoint), e is returned unchanged.
func (e Endpoint) WithAddr(a net.Addr) Endpoint {
	var addr string
	switch a := a.(type) {
	case *net.TCPAddr:
		if a == nil {
			return e
		}
		addr = a.String()
	case *net.UDPAddr:
		if a == nil {
			return e
		}
		addr = a.String()
	case *net.UnixAddr:
		if a == nil {
			return e
		}
		addr = a.Name
	default:
		return e
	}
	scheme := e.Scheme
	if scheme == "" || scheme == "fd" {
		scheme = a.Network()
	}
	network, ok := networkOf(scheme)
	if !ok {
		return e
	}
	c := Endpoint{Scheme: scheme, Network: network, Address: addr}
	if p, err := Parse(c.String()); err != nil || p != c {
		return e
	}
	return c
}

// check reports why e cannot be used: the zero value, or a value Parse
// would not have produced.
func (e Endpoint) check() error {
	if e == (Endpoint{}) {
		return fmt.Errorf("zero Endpoint (build endpoints with Parse)")
	}
	if p, err := Parse(e.String()); err != nil || p != e {
		return fmt.Errorf("invalid Endpoint %+v (build endpoints with Parse)", e)
	}
	return nil
}
