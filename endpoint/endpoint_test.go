package endpoint_test

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sockit/sockit/endpoint"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParse(t *testing.T) {
	long := "/" + strings.Repeat("a", 99) + ".sock" // 105 bytes: under every limit
	tests := []struct {
		in     string
		want   endpoint.Endpoint
		string string // canonical form; "" means the input itself
	}{
		{"tcp://127.0.0.1:7788", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: "127.0.0.1:7788"}, ""},
		{"tcp4://127.0.0.1:0", endpoint.Endpoint{Scheme: "tcp4", Network: "tcp4", Address: "127.0.0.1:0"}, ""},
		{"tcp6://[::1]:80", endpoint.Endpoint{Scheme: "tcp6", Network: "tcp6", Address: "[::1]:80"}, ""},
		{"tcp://[::1]:80", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: "[::1]:80"}, ""},
		{"tcp://[fe80::1%eth0]:80", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: "[fe80::1%eth0]:80"}, ""},
		{"tcp://[::ffff:1.2.3.4]:80", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: "[::ffff:1.2.3.4]:80"}, ""},
		{"tcp://:7788", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: ":7788"}, ""},
		{"tcp://localhost:80", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: "localhost:80"}, ""},
		{"tcp://example.com.:443", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: "example.com.:443"}, ""},
		{"tcp://my_host-1.internal:65535", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: "my_host-1.internal:65535"}, ""},
		{"tcp://127.0.0.1:0080", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: "127.0.0.1:80"}, "tcp://127.0.0.1:80"},
		{"TCP://127.0.0.1:1", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: "127.0.0.1:1"}, "tcp://127.0.0.1:1"},
		{"udp://127.0.0.1:53", endpoint.Endpoint{Scheme: "udp", Network: "udp", Address: "127.0.0.1:53"}, ""},
		{"udp4://0.0.0.0:53", endpoint.Endpoint{Scheme: "udp4", Network: "udp4", Address: "0.0.0.0:53"}, ""},
		{"udp6://[::]:53", endpoint.Endpoint{Scheme: "udp6", Network: "udp6", Address: "[::]:53"}, ""},
		{"tls://example.com:443", endpoint.Endpoint{Scheme: "tls", Network: "tcp", Address: "example.com:443"}, ""},
		{"tls://[::1]:8443", endpoint.Endpoint{Scheme: "tls", Network: "tcp", Address: "[::1]:8443"}, ""},
		{"127.0.0.1:7788", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: "127.0.0.1:7788"}, "tcp://127.0.0.1:7788"},
		{":7788", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: ":7788"}, "tcp://:7788"},
		{"localhost:80", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: "localhost:80"}, "tcp://localhost:80"},
		{"[::1]:80", endpoint.Endpoint{Scheme: "tcp", Network: "tcp", Address: "[::1]:80"}, "tcp://[::1]:80"},
		{"unix:///abs/x.sock", endpoint.Endpoint{Scheme: "unix", Network: "unix", Address: "/abs/x.sock"}, ""},
		{"unix:/abs/x.sock", endpoint.Endpoint{Scheme: "unix", Network: "unix", Address: "/abs/x.sock"}, "unix:///abs/x.sock"},
		{"unix:rel/x.sock", endpoint.Endpoint{Scheme: "unix", Network: "unix", Address: "rel/x.sock"}, ""},
		{"unix:./test.sock", endpoint.Endpoint{Scheme: "unix", Network: "unix", Address: "./test.sock"}, ""},
		{"unix:../up.sock", endpoint.Endpoint{Scheme: "unix", Network: "unix", Address: "../up.sock"}, ""},
		{"unix:x", endpoint.Endpoint{Scheme: "unix", Network: "unix", Address: "x"}, ""},
		{"unix:with space.sock", endpoint.Endpoint{Scheme: "unix", Network: "unix", Address: "with space.sock"}, ""},
		{"unix:a://b", endpoint.Endpoint{Scheme: "unix", Network: "unix", Address: "a://b"}, ""},
		{"unix:////double", endpoint.Endpoint{Scheme: "unix", Network: "unix", Address: "//double"}, ""},
		{"unix://" + long, endpoint.Endpoint{Scheme: "unix", Network: "unix", Address: long}, ""},
		{"unixgram:///run/g.sock", endpoint.Endpoint{Scheme: "unixgram", Network: "unixgram", Address: "/run/g.sock"}, ""},
		{"unixgram:g.sock", endpoint.Endpoint{Scheme: "unixgram", Network: "unixgram", Address: "g.sock"}, ""},
		{"unixpacket:///run/p.sock", endpoint.Endpoint{Scheme: "unixpacket", Network: "unixpacket", Address: "/run/p.sock"}, ""},
		{"unixpacket:p.sock", endpoint.Endpoint{Scheme: "unixpacket", Network: "unixpacket", Address: "p.sock"}, ""},
		{"fd://3", endpoint.Endpoint{Scheme: "fd", FD: 3}, ""},
		{"fd://0", endpoint.Endpoint{Scheme: "fd", FD: 0}, ""},
		{"fd://007", endpoint.Endpoint{Scheme: "fd", FD: 7}, "fd://7"},
		{"fd://2147483647", endpoint.Endpoint{Scheme: "fd", FD: 2147483647}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := endpoint.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			want := tt.string
			if want == "" {
				want = tt.in
			}
			if s := got.String(); s != want {
				t.Errorf("String() = %q, want %q", s, want)
			}
			again, err := endpoint.Parse(got.String())
			if err != nil || again != got {
				t.Errorf("Parse(String()) = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in     string
		reason string // substring of the error
	}{
		{"", "empty endpoint"},
		{"tcp://127.0.0.1", "missing port"},
		{"tcp://127.0.0.1:", "missing port"},
		{"tcp://[::1]", "missing port"},
		{"tcp://[::1]:", "missing port"},
		{"tcp://", "missing address"},
		{"localhost", "missing port"},
		{"foo", "missing port"},
		{"foo://x", `unknown scheme "foo" (want tcp,`},
		{"http://example.com:80", `unknown scheme "http"`},
		{"tcp://::1:80", "must be in brackets"},
		{"::1:80", "must be in brackets"},
		{"tcp://::1", "must be in brackets"},
		{"fe80::1", "must be in brackets"},
		{"tcp://a:b:80", "too many colons"},
		{"tcp://[::1:80", "missing ]"},
		{"tcp://[::1]x:80", `unexpected "x:80" after ]`},
		{"tcp://[127.0.0.1]:80", "is not an IPv6 address"},
		{"tcp://[localhost]:80", "is not an IPv6 address"},
		{"tcp://[fe80::1%e/0]:80", "bad IPv6 zone"},
		{"tcp://127.0.0.1:65536", "out of range 0-65535"},
		{"tcp://127.0.0.1:99999999999999999999", "out of range"},
		{"udp6://127.0.0.1:1", "is an IPv4 address; udp6:// is IPv6 only (use udp://)"},
		{"tcp6://10.0.0.1:80", "IPv6 only"},
		{"tcp4://[::1]:80", "is an IPv6 address; tcp4:// is IPv4 only (use tcp://)"},
		{"tcp://127.0.0.1:-1", `bad port "-1"`},
		{"tcp://127.0.0.1:+80", `bad port "+80"`},
		{"tcp://127.0.0.1:http", `bad port "http"`},
		{"tcp://127.0.0.1:80/path", `bad port "80/path"`},
		{"tcp://256.1.1.1:80", "bad IPv4 address"},
		{"tcp://01.2.3.4:80", "bad IPv4 address"},
		{"tcp://1.2.3:80", "bad IPv4 address"},
		{"tcp://user@host:80", `bad character '@'`},
		{"tcp://ho st:80", `bad character ' '`},
		{"tcp://a..b:80", "empty label"},
		{"tcp://" + strings.Repeat("a", 64) + ".com:80", "longer than 63 bytes"},
		{"tcp:127.0.0.1:80", "want tcp://HOST:PORT"},
		{"udp:1", "want udp://HOST:PORT"},
		{"tls:x", "want tls://HOST:PORT"},
		{"unix:", "missing path"},
		{"unix://", "missing path"},
		{"unix://host/x.sock", "has no host part (write unix:host/x.sock for a relative path or unix:///host/x.sock for an absolute one)"},
		{"unix://x\n", `has no host part (write "unix:x\n"`},
		{"/x\xffy", `"unix:/x\xffy"`},
		{"/x\ty", `missing scheme (for a Unix socket write "unix:/x\ty")`},
		{"unix://x.sock", "has no host part"},
		{"unixgram://h/x", "has no host part"},
		{"unix:a\x00b", "NUL byte"},
		{"unix:///" + strings.Repeat("x", 200), "-byte limit of a Unix socket address"},
		{"/tmp/x.sock", "missing scheme (for a Unix socket write unix:/tmp/x.sock)"},
		{"./x.sock", "missing scheme"},
		{"fd://", "missing descriptor number"},
		{"fd://-1", "not a non-negative integer"},
		{"fd://x", "not a non-negative integer"},
		{"fd://3/", "not a non-negative integer"},
		{"fd://2147483648", "out of range"},
		{"fd:3", "want fd://N"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := endpoint.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error containing %q", tt.in, got, tt.reason)
			}
			var pe *endpoint.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			if pe.Input != tt.in {
				t.Errorf("ParseError.Input = %q, want %q", pe.Input, tt.in)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.reason) {
				t.Errorf("error %q does not contain %q", msg, tt.reason)
			}
			if want := fmt.Sprintf("bad endpoint %q: ", tt.in); !strings.HasPrefix(msg, want) {
				t.Errorf("error %q does not start with %q", msg, want)
			}
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error %q is not one line", msg)
			}
			if got != (endpoint.Endpoint{}) {
				t.Errorf("Parse returned %+v with its error, want the zero Endpoint", got)
			}
		})
	}
}

func TestPredicates(t *testing.T) {
	tests := []struct {
		in                   string
		packet, unixish, tls bool
	}{
		{"tcp://:1", false, false, false},
		{"tcp4://:1", false, false, false},
		{"tcp6://:1", false, false, false},
		{"udp://:1", true, false, false},
		{"udp4://:1", true, false, false},
		{"udp6://:1", true, false, false},
		{"tls://:1", false, false, true},
		{"unix:x", false, true, false},
		{"unixgram:x", true, true, false},
		{"unixpacket:x", false, true, false},
		{"fd://3", false, false, false},
	}
	for _, tt := range tests {
		e, err := endpoint.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if e.IsPacket() != tt.packet || e.IsUnix() != tt.unixish || e.IsTLS() != tt.tls {
			t.Errorf("%s: IsPacket, IsUnix, IsTLS = %v, %v, %v; want %v, %v, %v",
				tt.in, e.IsPacket(), e.IsUnix(), e.IsTLS(), tt.packet, tt.unixish, tt.tls)
		}
	}
}

func TestWithAddr(t *testing.T) {
	tests := []struct {
		in   string
		addr net.Addr
		want string
	}{
		{"tcp://:0", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40123}, "tcp://127.0.0.1:40123"},
		{"tcp://:0", &net.TCPAddr{IP: net.IPv6unspecified, Port: 40123}, "tcp://[::]:40123"},
		{"tcp6://[::1]:0", &net.TCPAddr{IP: net.IPv6loopback, Port: 9}, "tcp6://[::1]:9"},
		{"tls://localhost:0", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}, "tls://127.0.0.1:8443"},
		{"udp://:0", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}, "udp://127.0.0.1:53"},
		{"unix:rel.sock", &net.UnixAddr{Name: "rel.sock", Net: "unix"}, "unix:rel.sock"},
		{"fd://3", &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 80}, "tcp://10.0.0.1:80"},
		{"fd://3", &net.UnixAddr{Name: "/run/x.sock", Net: "unixpacket"}, "unixpacket:///run/x.sock"},
		{"fd://4", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 53}, "udp://10.0.0.1:53"},
		// Addresses that do not fit leave the endpoint alone.
		{"tcp://:0", nil, "tcp://:0"},
		{"tcp://:0", (*net.TCPAddr)(nil), "tcp://:0"},
		{"tcp://:0", &net.UnixAddr{Name: "/x", Net: "unix"}, "tcp://:0"},
		{"unixgram:/x", &net.UnixAddr{Name: "", Net: "unixgram"}, "unixgram:///x"},
		{"unix:/x", &net.IPAddr{IP: net.IPv4(1, 2, 3, 4)}, "unix:///x"},
	}
	for _, tt := range tests {
		e, err := endpoint.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.WithAddr(tt.addr).String(); got != tt.want {
			t.Errorf("Parse(%q).WithAddr(%v) = %q, want %q", tt.in, tt.addr, got, tt.want)
		}
	}
	if got := (endpoint.Endpoint{}).WithAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}).String(); got != "tcp://127.0.0.1:1" {
		t.Errorf("zero Endpoint WithAddr = %q, want tcp://127.0.0.1:1", got)
	}
}

func TestZeroEndpointString(t *testing.T) {
	if s := (endpoint.Endpoint{}).String(); s != "" {
		t.Errorf("zero Endpoint String() = %q, want \"\"", s)
	}
}

// FuzzParse checks that Parse never panics and that what it accepts has a
// canonical String that parses back to the same Endpoint.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"tcp://127.0.0.1:80", "[::1]:80", ":0", "unix:x", "unix:///x", "fd://3",
		"tcp://[fe80::1%eth0]:1", "udp6://[::]:53", "tls://h:1", "foo://x", "unix://h/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := endpoint.Parse(s)
		if err != nil {
			var pe *endpoint.ParseError
			if !errors.As(err, &pe) || pe.Input != s {
				t.Fatalf("Parse(%q): error %v is not a *ParseError for the input", s, err)
			}
			if e != (endpoint.Endpoint{}) {
				t.Fatalf("Parse(%q) returned %+v with an error", s, e)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("Parse(%q): error %q is not UTF-8", s, err)
			}
			for _, r := range err.Error() {
				if !strconv.IsPrint(r) {
					t.Fatalf("Parse(%q): error %q has an unprintable character", s, err)
				}
			}
			return
		}
		str := e.String()
		again, err := endpoint.Parse(str)
		if err != nil {
			t.Fatalf("Parse(%q) = %+v; its String %q does not parse: %v", s, e, str, err)
		}
		if again != e {
			t.Fatalf("Parse(%q) = %+v; Parse(%q) = %+v", s, e, str, again)
		}
		if again.String() != str {
			t.Fatalf("String not stable: %q then %q", str, again.String())
		}
	})
}

func ExampleParse() {
	for _, s := range []string{"127.0.0.1:7788", "tcp://[::1]:80", "unix:./test.sock", "unix:///run/app.sock", "fd://3", "tcp://127.0.0.1"} {
		e, err := endpoint.Parse(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s network=%q address=%q\n", e, e.Network, e.Address)
	}
	// Output:
	// tcp://127.0.0.1:7788 network="tcp" address="127.0.0.1:7788"
	// tcp://[::1]:80 network="tcp" address="[::1]:80"
	// unix:./test.sock network="unix" address="./test.sock"
	// unix:///run/app.sock network="unix" address="/run/app.sock"
	// fd://3 network="" address=""
	// bad endpoint "tcp://127.0.0.1": missing port
}
