package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func v2(t testing.TB, src, dst net.Addr, tlvs ...proxyproto.TLV) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, src, dst)
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	client4 = &net.TCPAddr{IP: net.ParseIP("192.0.2.7").To4(), Port: 51000}
	front4  = &net.TCPAddr{IP: net.ParseIP("198.51.100.1").To4(), Port: 443}
	client6 = &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 51000}
	front6  = &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}
)

// TestHeaderLenAndParse runs headerLen and Parse over whole, partial and
// bad headers of both versions.
func TestHeaderLenAndParse(t *testing.T) {
	v2ipv4 := v2(t, client4, front4)
	v2tlv := v2(t, client6, front6, proxyproto.TLV{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("example.com")})
	v2local := v2(t, nil, nil)
	v2unix := v2(t, &net.UnixAddr{Name: "/run/c.sock", Net: "unix"}, &net.UnixAddr{Name: "/run/s.sock", Net: "unix"})
	huge := append([]byte(nil), v2ipv4[:14]...)
	huge = append(huge, 0xff, 0xff)
	tests := []struct {
		name    string
		in      string
		n       int   // headerLen: whole header's length, 0 for "more"
		lenErr  error // headerLen's error
		parsed  string
		wantSrc string // the source Parse reads, "" for none
	}{
		{name: "v1 tcp4", in: "PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\nGET /", n: 45, wantSrc: "192.0.2.7:51000"},
		{name: "v1 tcp6", in: "PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n", n: 46, wantSrc: "[2001:db8::7]:51000"},
		{name: "v1 unknown", in: "PROXY UNKNOWN\r\n", n: 15},
		{name: "v1 partial", in: "PROXY TCP4 192.0.2.7 ", n: 0},
		{name: "v1 prefix only", in: "PRO", n: 0},
		{name: "v1 LF before CRLF", in: "PROXY \n\r\n", lenErr: ErrBadHeader},
		{name: "v1 no CR", in: "PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\nhello", lenErr: ErrBadHeader},
		{name: "v1 too long", in: "PROXY " + strings.Repeat("9", 120), lenErr: ErrHeaderTooLong},
		{name: "v2 ipv4", in: string(v2ipv4) + "data", n: len(v2ipv4), wantSrc: "192.0.2.7:51000"},
		{name: "v2 ipv6 with TLV", in: string(v2tlv), n: len(v2tlv), wantSrc: "[2001:db8::7]:51000"},
		{name: "v2 local", in: string(v2local), n: len(v2local)},
		{name: "v2 unix", in: string(v2unix), n: len(v2unix), wantSrc: "/run/c.sock"},
		{name: "v2 partial fixed part", in: string(v2ipv4[:13]), n: 0},
		{name: "v2 partial addresses", in: string(v2ipv4[:20]), n: 0},
		{name: "v2 too long", in: string(huge), lenErr: ErrHeaderTooLong},
		{name: "garbage", in: "GET / HTTP/1.1\r\n", lenErr: ErrNoHeader},
		{name: "TLS hello", in: "\x16\x03\x01\x02\x00", lenErr: ErrNoHeader},
		{name: "almost v1", in: "PROXYTCP4", lenErr: ErrNoHeader},
		{name: "empty", in: "", n: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := headerLen([]byte(tt.in))
			if !errors.Is(err, tt.lenErr) || n != tt.n {
				t.Fatalf("headerLen = %d, %v; want %d, %v", n, err, tt.n, tt.lenErr)
			}
			if n == 0 {
				return
			}
			h, err := Parse([]byte(tt.in[:n]))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := ""
			if h.SourceAddr != nil {
				got = h.SourceAddr.String()
			}
			if got != tt.wantSrc {
				t.Fatalf("source %q, want %q", got, tt.wantSrc)
			}
		})
	}
}

// TestParseRefusesBadContents: headers that frame well but say nonsense.
func TestParseRefusesBadContents(t *testing.T) {
	bad := v2(t, client4, front4)
	bad[12] = 0x31 // version 3
	for name, in := range map[string]string{
		"v1 bad address": "PROXY TCP4 999.0.2.7 198.51.100.1 51000 443\r\n",
		"v1 bad port":    "PROXY TCP4 192.0.2.7 198.51.100.1 99999 443\r\n",
		"v1 bad family":  "PROXY TCP5 192.0.2.7 198.51.100.1 1 443\r\n",
		"v1 v6 in tcp4":  "PROXY TCP4 2001:db8::7 2001:db8::1 1 2\r\n",
		"v2 version 3":   string(bad),
		"trailing bytes": "PROXY UNKNOWN\r\nx",
		"truncated":      "PROXY UNKNOWN",
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: Parse = %v, want a refusal", name, err)
		}
	}
}

// listen starts a Listener on network ("tcp" on 127.0.0.1 or "unix" in a
// temporary directory) and serves each accepted connection with an echo
// that first writes "REMOTE LOCAL\n".
func listen(t *testing.T, network string, c Config) (*Listener, string) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s.sock")
	}
	inner, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = 2 * time.Second
	}
	ln := Listen(inner, c)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.WriteString(nc, nc.RemoteAddr().String()+" "+nc.LocalAddr().String()+"\n")
				_, _ = io.Copy(nc, nc)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln, inner.Addr().String()
}

// exchange dials, writes the chunks (pausing between them), half-closes
// and returns everything the server sent back.
func exchange(t *testing.T, network, addr string, pause time.Duration, chunks ...[]byte) (string, error) {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	for i, b := range chunks {
		if i > 0 {
			time.Sleep(pause)
		}
		if _, err := c.Write(b); err != nil {
			return "", err
		}
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	out, err := io.ReadAll(c)
	return string(out), err
}

func TestListenerServesTheHeadersAddresses(t *testing.T) {
	v1 := []byte("PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n")
	v2b := v2(t, client6, front6)
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			_, addr := listen(t, network, Config{})
			for _, tt := range []struct {
				name   string
				chunks [][]byte
				want   string
			}{
				{"v1 and data in one write", [][]byte{append(append([]byte(nil), v1...), "hello"...)}, "192.0.2.7:51000 198.51.100.1:443\nhello"},
				{"v2 then data", [][]byte{v2b, []byte("hello")}, "[2001:db8::7]:51000 [2001:db8::1]:443\nhello"},
				{"v1 a byte at a time", splitBytes(v1, []byte("x")), "192.0.2.7:51000 198.51.100.1:443\nx"},
				{"v2 in three pieces", [][]byte{v2b[:5], v2b[5:17], v2b[17:], []byte("PROXY UNKNOWN\r\n")}, "[2001:db8::7]:51000 [2001:db8::1]:443\nPROXY UNKNOWN\r\n"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					got, err := exchange(t, network, addr, 5*time.Millisecond, tt.chunks...)
					if err != nil || got != tt.want {
						t.Fatalf("got %q, %v; want %q", got, err, tt.want)
					}
				})
			}
		})
	}
}

func splitBytes(parts ...[]byte) [][]byte {
	var out [][]byte
	for _, p := range parts {
		for i := range p {
			out = append(out, p[i:i+1])
		}
	}
	return out
}

// TestLocalKeepsTheSocketsAddresses: a LOCAL header (a health check) and
// v1's UNKNOWN are served with the socket's own addresses.
func TestLocalKeepsTheSocketsAddresses(t *testing.T) {
	_, addr := listen(t, "tcp", Config{})
	for _, hdr := range [][]byte{v2(t, nil, nil), []byte("PROXY UNKNOWN\r\n")} {
		got, err := exchange(t, "tcp", addr, 0, hdr, []byte("ok"))
		if err != nil {
			t.Fatal(err)
		}
		line, rest, _ := strings.Cut(got, "\n")
		remote, local, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(remote, "127.0.0.1:") || local != addr || rest != "ok" {
			t.Fatalf("got %q; want the socket's addresses (local %s) and ok", got, addr)
		}
	}
}

// TestRefusals: garbage, a truncated header, a silent peer and an
// untrusted one are closed (the silent one at the timeout), counted and
// reported, while a good connection opened meanwhile is served at once.
func TestRefusals(t *testing.T) {
	var mu sync.Mutex
	var reasons []error
	ln, addr := listen(t, "tcp", Config{
		HeaderTimeout: 300 * time.Millisecond,
		OnRefuse: func(_, _ net.Addr, err error) {
			mu.Lock()
			reasons = append(reasons, err)
			mu.Unlock()
		},
	})
	// A silent peer first: it must delay nobody.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	if got, err := exchange(t, "tcp", addr, 0, []byte("PROXY UNKNOWN\r\nfast")); err != nil || !strings.HasSuffix(got, "\nfast") {
		t.Fatalf("good connection beside a silent one: %q, %v", got, err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("the good connection waited %v behind a silent one", d)
	}
	for _, in := range []string{"GET / HTTP/1.1\r\n\r\n", "PROXY TCP4 192.0.2.7 198.51.100.1", "PROXY TCP4 999.1.1.1 1.1.1.1 1 1\r\n"} {
		if got, _ := exchange(t, "tcp", addr, 0, []byte(in)); got != "" {
			t.Errorf("%q was answered %q", in, got)
		}
	}
	_ = silent.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("silent peer: read %d, %v; want closed", n, err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("silent peer closed after %v, want about the 300ms timeout", d)
	}
	// OnRefuse runs after the close the peer sees: wait for all four.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(reasons)
		mu.Unlock()
		if n >= 4 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[error]bool{ErrNoHeader: false, ErrTruncated: false, ErrBadHeader: false, ErrTimeout: false}
	for _, r := range reasons {
		for w := range want {
			if errors.Is(r, w) {
				want[w] = true
			}
		}
	}
	for w, seen := range want {
		if !seen {
			t.Errorf("no refusal for %v among %v", w, reasons)
		}
	}
	if ln.Refused() != 4 {
		t.Errorf("Refused() = %d, want 4", ln.Refused())
	}
}

func TestFromTrustsOnlyTheLoadBalancer(t *testing.T) {
	elsewhere := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	t.Run("required", func(t *testing.T) {
		ln, addr := listen(t, "tcp", Config{From: elsewhere})
		if got, _ := exchange(t, "tcp", addr, 0, []byte("PROXY UNKNOWN\r\nhi")); got != "" {
			t.Fatalf("an untrusted peer was served: %q", got)
		}
		waitRefused(t, ln, 1)
	})
	t.Run("optional", func(t *testing.T) {
		_, addr := listen(t, "tcp", Config{From: elsewhere, Optional: true})
		// Its bytes are data, even those that look like a header.
		got, err := exchange(t, "tcp", addr, 0, []byte("PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n"))
		if err != nil || !strings.HasPrefix(got, "127.0.0.1:") || !strings.HasSuffix(got, "\nPROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n") {
			t.Fatalf("got %q, %v; want the socket's address and the bytes echoed", got, err)
		}
	})
	t.Run("trusted", func(t *testing.T) {
		_, addr := listen(t, "tcp", Config{From: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Optional: true})
		got, err := exchange(t, "tcp", addr, 0, []byte("PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n"))
		if err != nil || got != "192.0.2.7:51000 198.51.100.1:443\n" {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("unix peers are trusted", func(t *testing.T) {
		_, addr := listen(t, "unix", Config{From: elsewhere})
		got, err := exchange(t, "unix", addr, 0, []byte("PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n"))
		if err != nil || got != "192.0.2.7:51000 198.51.100.1:443\n" {
			t.Fatalf("got %q, %v", got, err)
		}
	})
}

func waitRefused(t *testing.T, ln *Listener, n uint64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for ln.Refused() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := ln.Refused(); got != n {
		t.Fatalf("Refused() = %d, want %d", got, n)
	}
}

// TestMaxPendingAndClose: past MaxPending waiting peers a new one is
// refused at once; Close closes the waiting ones and returns.
func TestMaxPendingAndClose(t *testing.T) {
	ln, addr := listen(t, "tcp", Config{MaxPending: 2, HeaderTimeout: 10 * time.Second})
	var waiting []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waiting = append(waiting, c)
	}
	deadline := time.Now().Add(2 * time.Second)
	for ln.pending.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got, _ := exchange(t, "tcp", addr, 0, []byte("PROXY UNKNOWN\r\nx")); got != "" {
		t.Fatalf("a third peer was served past MaxPending 2: %q", got)
	}
	waitRefused(t, ln, 1)
	done := make(chan struct{})
	go func() { ln.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return with peers waiting for their header")
	}
	for _, c := range waiting {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a waiting peer was not closed")
		}
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

// TestReadHeaderBytesTakesOnlyTheHeader: the byte-wise reader (for
// connections that cannot be peeked at) stops at the header's end.
func TestReadHeaderBytesTakesOnlyTheHeader(t *testing.T) {
	for _, hdr := range [][]byte{[]byte("PROXY UNKNOWN\r\n"), v2(t, client4, front4)} {
		r := bytes.NewReader(append(append([]byte(nil), hdr...), "rest"...))
		buf := make([]byte, MaxHeader)
		n, err := readHeaderBytes(r, buf)
		if err != nil || n != len(hdr) || r.Len() != 4 {
			t.Fatalf("%q: n %d, err %v, %d left; want %d and 4 left", hdr, n, err, r.Len(), len(hdr))
		}
	}
	if _, err := readHeaderBytes(strings.NewReader("PROXY TCP4"), make([]byte, MaxHeader)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated: %v", err)
	}
}

// TestWriteHeaderRoundTrips: what WriteHeader writes, the listener reads
// back as the same addresses, both versions; v1 names a Unix peer UNKNOWN.
func TestWriteHeaderRoundTrips(t *testing.T) {
	for _, v := range []byte{1, 2} {
		for _, pair := range [][2]net.Addr{{client4, front4}, {client6, front6}} {
			var b bytes.Buffer
			if err := WriteHeader(&b, v, pair[0], pair[1]); err != nil {
				t.Fatal(err)
			}
			h, err := Parse(b.Bytes())
			if err != nil {
				t.Fatalf("v%d: %v", v, err)
			}
			if h.Version != v || h.SourceAddr.String() != pair[0].String() || h.DestinationAddr.String() != pair[1].String() {
				t.Fatalf("v%d: got %v → %v", v, h.SourceAddr, h.DestinationAddr)
			}
		}
	}
	var b bytes.Buffer
	u := &net.UnixAddr{Name: "@", Net: "unix"}
	if err := WriteHeader(&b, 1, u, u); err != nil || b.String() != "PROXY UNKNOWN\r\n" {
		t.Fatalf("v1 of a Unix peer: %q, %v", b.String(), err)
	}
	if _, err := ParseVersion("v3"); err == nil {
		t.Fatal("v3 parsed")
	}
}

// FuzzHeader feeds headerLen, Parse and the byte-wise reader garbage
// before, inside and after headers: none may panic, read past a header
// or accept what headerLen did not frame.
func FuzzHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\nGET /"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP6 ::1 ::1 1 2\r\n\x00\xff"))
	f.Add(v2(f, client4, front4))
	f.Add(append(v2(f, client6, front6, proxyproto.TLV{Type: proxyproto.PP2_TYPE_ALPN, Value: []byte("h2")}), "tail"...))
	f.Add(v2(f, nil, nil))
	f.Add([]byte("garbage PROXY TCP4\r\n"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := headerLen(b)
		if err != nil || n == 0 {
			if _, perr := Parse(b); perr == nil {
				t.Fatalf("Parse accepted %q that headerLen did not frame (%d, %v)", b, n, err)
			}
			return
		}
		if n > len(b) || n > MaxHeader {
			t.Fatalf("headerLen %d of %d bytes", n, len(b))
		}
		r := bytes.NewReader(b)
		m, err := readHeaderBytes(r, make([]byte, MaxHeader))
		if err != nil || m != n || r.Len() != len(b)-n {
			t.Fatalf("readHeaderBytes = %d, %v with %d left; headerLen %d of %d", m, err, r.Len(), n, len(b))
		}
		h, err := Parse(b[:n])
		if err != nil {
			return
		}
		if h.Command.IsProxy() && h.TransportProtocol.IsStream() && h.SourceAddr != nil {
			if _, err := h.Format(); err != nil {
				t.Fatalf("a parsed header does not format again: %v", err)
			}
		}
	})
}
