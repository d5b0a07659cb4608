package endpoint_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockit/sockit/endpoint"
)

// testTimeout bounds every blocking step of these tests.
const testTimeout = 5 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func mustParse(t testing.TB, s string) endpoint.Endpoint {
	t.Helper()
	e, err := endpoint.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// sockDir returns a temporary directory short enough for Unix socket paths.
func sockDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) < 60 {
		return dir
	}
	dir, err := os.MkdirTemp("", "sk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func skipIfNo(t *testing.T, network, addr string) {
	t.Helper()
	if runtime.GOOS == "windows" && strings.HasPrefix(network, "unix") && network != "unix" {
		t.Skipf("%s is not supported on windows", network)
	}
	if strings.HasSuffix(network, "6") || strings.Contains(addr, "[::1]") {
		ln, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		ln.Close()
	}
}

// serveStreamEcho accepts one connection on ln and echoes it until EOF.
func serveStreamEcho(t *testing.T, ln net.Listener) {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		io.Copy(c, c)
	})
}

func checkEcho(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("echo = %q, want %q", buf, msg)
	}
}

func TestStreamRoundTrip(t *testing.T) {
	dir := sockDir(t)
	tests := []struct{ name, ep string }{
		{"tcp", "tcp://127.0.0.1:0"},
		{"tcp4", "tcp4://127.0.0.1:0"},
		{"bare", "127.0.0.1:0"},
		{"tcp6", "tcp6://[::1]:0"},
		{"tcp-v6", "tcp://[::1]:0"},
		{"unix", "unix://" + filepath.Join(dir, "s.sock")},
		{"unixpacket", "unixpacket://" + filepath.Join(dir, "p.sock")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustParse(t, tt.ep)
			skipIfNo(t, e.Network, e.Address)
			ctx := testContext(t)
			ln, err := endpoint.ListenConfig{}.Listen(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			real := e.WithAddr(ln.Addr())
			if e.IsUnix() {
				if real != e {
					t.Errorf("WithAddr = %v, want %v", real, e)
				}
			} else if strings.HasSuffix(real.Address, ":0") || real.Scheme != e.Scheme {
				t.Errorf("WithAddr = %v, want %s with the bound port", real, e.Scheme)
			}
			serveStreamEcho(t, ln)
			c, err := endpoint.Dialer{Timeout: testTimeout}.Dial(ctx, real)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			checkEcho(t, c, "hello "+tt.name)
			c.Close()
		})
	}
}

// TestUnixRelativePath listens on a path relative to the working directory
// (without changing it) and checks the file appears where expected.
func TestUnixRelativePath(t *testing.T) {
	dir := sockDir(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, filepath.Join(dir, "rel.sock"))
	if err != nil || filepath.IsAbs(rel) || len(rel) > 100 {
		t.Skipf("no short relative path from %s to %s", wd, dir)
	}
	e := mustParse(t, "unix:"+rel)
	if e.Address != rel {
		t.Fatalf("Address = %q, want %q", e.Address, rel)
	}
	ctx := testContext(t)
	ln, err := endpoint.ListenConfig{}.Listen(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "rel.sock")); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("socket file not at %s: %v", dir, err)
	}
	serveStreamEcho(t, ln)
	c, err := endpoint.Dialer{}.Dial(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, c, "relative")
	c.Close()
	ln.Close()
	if _, err := os.Lstat(filepath.Join(dir, "rel.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file still there after Close: %v", err)
	}
}

func TestPacketRoundTrip(t *testing.T) {
	dir := sockDir(t)
	tests := []struct{ name, ep string }{
		{"udp", "udp://127.0.0.1:0"},
		{"udp4", "udp4://127.0.0.1:0"},
		{"udp6", "udp6://[::1]:0"},
		{"unixgram", "unixgram://" + filepath.Join(dir, "g.sock")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustParse(t, tt.ep)
			skipIfNo(t, e.Network, e.Address)
			ctx := testContext(t)
			pc, err := endpoint.ListenConfig{}.ListenPacket(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			pc.SetDeadline(time.Now().Add(testTimeout))

			c, err := endpoint.Dialer{}.Dial(ctx, e.WithAddr(pc.LocalAddr()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(testTimeout))
			var clientPath string
			if e.IsUnix() {
				clientPath = c.LocalAddr().String()
				if !strings.HasPrefix(clientPath, os.TempDir()) {
					t.Errorf("unixgram client bound %q, want a path in %s", clientPath, os.TempDir())
				}
			}
			for _, msg := range []string{"one", "", "three"} {
				if _, err := c.Write([]byte(msg)); err != nil {
					t.Fatalf("client write: %v", err)
				}
				buf := make([]byte, 100)
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					t.Fatalf("server read: %v", err)
				}
				if string(buf[:n]) != msg {
					t.Fatalf("server got %q, want %q", buf[:n], msg)
				}
				if _, err := pc.WriteTo([]byte("re:"+msg), from); err != nil {
					t.Fatalf("server reply to %v: %v", from, err)
				}
				n, err = c.Read(buf)
				if err != nil {
					t.Fatalf("client read: %v", err)
				}
				if string(buf[:n]) != "re:"+msg {
					t.Fatalf("client got %q, want %q", buf[:n], "re:"+msg)
				}
			}
			if err := c.Close(); err != nil {
				t.Errorf("client close: %v", err)
			}
			if err := c.Close(); err == nil {
				t.Errorf("second client close: no error, want one")
			}
			if clientPath != "" {
				if _, err := os.Lstat(clientPath); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("client path %s still there after Close: %v", clientPath, err)
				}
			}
			pc.Close()
			if e.IsUnix() {
				if _, err := os.Lstat(e.Address); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("server path %s still there after Close: %v", e.Address, err)
				}
			}
		})
	}
}

func TestUnixpacketKeepsBoundaries(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("unixpacket is a Linux feature here")
	}
	e := mustParse(t, "unixpacket://"+filepath.Join(sockDir(t), "p.sock"))
	ctx := testContext(t)
	ln, err := endpoint.ListenConfig{}.Listen(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := []string{"a", "bb", "ccc"}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		for _, want := range msgs {
			buf := make([]byte, 100)
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != want {
				t.Errorf("server read %q, %v; want %q", buf[:n], err, want)
				return
			}
		}
		c.Write([]byte("x"))
		c.Write([]byte("yy"))
	})
	c, err := endpoint.Dialer{}.Dial(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	for _, m := range msgs {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"x", "yy"} {
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("client read %q, %v; want %q", buf[:n], err, want)
		}
	}
}

// selfSigned makes a certificate for 127.0.0.1, ::1 and localhost.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sockit test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

func TestTLSRoundTrip(t *testing.T) {
	cert, pool := selfSigned(t)
	ctx := testContext(t)
	lc := endpoint.ListenConfig{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}
	ln, err := lc.Listen(ctx, mustParse(t, "tls://127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	real := mustParse(t, "tls://127.0.0.1:0").WithAddr(ln.Addr())
	if !real.IsTLS() {
		t.Fatalf("WithAddr lost the tls scheme: %v", real)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				t.Errorf("accept: %v", err)
				return
			}
			c.SetDeadline(time.Now().Add(testTimeout))
			io.Copy(c, c)
			c.Close()
		}
	})

	// ServerName defaults to the IP, which the certificate's IP SAN covers.
	cfg := &tls.Config{RootCAs: pool}
	c, err := endpoint.Dialer{Timeout: testTimeout, TLS: cfg}.Dial(ctx, real)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*tls.Conn); !ok {
		t.Errorf("Dial returned %T, want *tls.Conn", c)
	}
	if cfg.ServerName != "" {
		t.Errorf("Dial modified the caller's tls.Config")
	}
	if err := endpoint.SetNoDelay(c, true); err != nil {
		t.Errorf("SetNoDelay through tls.Conn: %v", err)
	}
	checkEcho(t, c, "over tls")
	c.Close()

	// A name the certificate does not cover fails verification.
	_, err = endpoint.Dialer{Timeout: testTimeout, TLS: &tls.Config{RootCAs: pool, ServerName: "other.example"}}.Dial(ctx, real)
	if err == nil {
		t.Fatal("dial with a wrong ServerName succeeded")
	}
	if !strings.HasPrefix(err.Error(), "dial "+real.String()+": ") {
		t.Errorf("error %q does not name the endpoint", err)
	}
}

func TestTLSNeedsCertificate(t *testing.T) {
	e := mustParse(t, "tls://127.0.0.1:0")
	for _, cfg := range []*tls.Config{nil, {}} {
		ln, err := endpoint.ListenConfig{TLS: cfg}.Listen(testContext(t), e)
		if err == nil {
			ln.Close()
			t.Fatal("Listen without a certificate succeeded")
		}
		if !errors.Is(err, endpoint.ErrNoCertificate) || !strings.Contains(err.Error(), "tls endpoint needs a certificate") {
			t.Errorf("error = %v, want ErrNoCertificate", err)
		}
	}
}

// staleSocket leaves a socket file of network at path with nothing bound.
func staleSocket(t *testing.T, network, path string) {
	t.Helper()
	addr := &net.UnixAddr{Name: path, Net: network}
	switch network {
	case "unixgram":
		c, err := net.ListenUnixgram(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	default:
		ln, err := net.ListenUnix(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close()
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("no stale socket at %s: %v", path, err)
	}
}

// listenAny listens on a stream or datagram endpoint.
func listenAny(ctx context.Context, lc endpoint.ListenConfig, e endpoint.Endpoint) (io.Closer, error) {
	if e.IsPacket() {
		return lc.ListenPacket(ctx, e)
	}
	return lc.Listen(ctx, e)
}

func TestUnixSocketFiles(t *testing.T) {
	for _, network := range []string{"unix", "unixpacket", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			skipIfNo(t, network, "")
			if network == "unixpacket" && runtime.GOOS != "linux" {
				t.Skip("unixpacket is a Linux feature here")
			}
			ctx := testContext(t)
			dir := sockDir(t)

			t.Run("stale removed", func(t *testing.T) {
				path := filepath.Join(dir, "stale.sock")
				staleSocket(t, network, path)
				l, err := listenAny(ctx, endpoint.ListenConfig{}, mustParse(t, network+"://"+path))
				if err != nil {
					t.Fatalf("listen over a stale socket: %v", err)
				}
				l.Close()
			})

			t.Run("live in use", func(t *testing.T) {
				path := filepath.Join(dir, "live.sock")
				e := mustParse(t, network+"://"+path)
				live, err := listenAny(ctx, endpoint.ListenConfig{}, e)
				if err != nil {
					t.Fatal(err)
				}
				defer live.Close()
				l, err := listenAny(ctx, endpoint.ListenConfig{}, e)
				if err == nil {
					l.Close()
					t.Fatal("second listen on a live socket succeeded")
				}
				if !errors.Is(err, syscall.EADDRINUSE) {
					t.Errorf("error %v is not EADDRINUSE", err)
				}
				var oe *endpoint.OpError
				if !errors.As(err, &oe) || oe.Endpoint != e || oe.Op != "listen" {
					t.Errorf("error %v is not an OpError for %v", err, e)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name %s", err, path)
				}
				if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
					t.Errorf("live socket file disturbed: %v", err)
				}
			})

			t.Run("live of another type in use", func(t *testing.T) {
				path := filepath.Join(dir, "other.sock")
				other := "unixgram"
				if network == "unixgram" {
					other = "unix"
				}
				live, err := listenAny(ctx, endpoint.ListenConfig{}, mustParse(t, other+"://"+path))
				if err != nil {
					t.Fatal(err)
				}
				defer live.Close()
				l, err := listenAny(ctx, endpoint.ListenConfig{}, mustParse(t, network+"://"+path))
				if err == nil {
					l.Close()
					t.Fatal("listen over a live socket of another type succeeded")
				}
				if !errors.Is(err, syscall.EADDRINUSE) {
					t.Errorf("error %v is not EADDRINUSE", err)
				}
			})

			t.Run("regular file kept", func(t *testing.T) {
				path := filepath.Join(dir, "file.sock")
				if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
					t.Fatal(err)
				}
				l, err := listenAny(ctx, endpoint.ListenConfig{}, mustParse(t, network+"://"+path))
				if err == nil {
					l.Close()
					t.Fatal("listen over a regular file succeeded")
				}
				if !strings.Contains(err.Error(), "is not a socket") || !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not say %s is not a socket", err, path)
				}
				if !errors.Is(err, fs.ErrExist) {
					t.Errorf("error %v is not fs.ErrExist", err)
				}
				if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
					t.Errorf("file changed: %q, %v", b, err)
				}
			})

			t.Run("directory kept", func(t *testing.T) {
				path := filepath.Join(dir, "adir")
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
				l, err := listenAny(ctx, endpoint.ListenConfig{}, mustParse(t, network+"://"+path))
				if err == nil {
					l.Close()
					t.Fatal("listen over a directory succeeded")
				}
				if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
					t.Errorf("directory disturbed: %v", err)
				}
			})

			t.Run("removed on close and mode applied", func(t *testing.T) {
				path := filepath.Join(dir, "mode.sock")
				l, err := listenAny(ctx, endpoint.ListenConfig{UnixMode: 0o660}, mustParse(t, network+"://"+path))
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Lstat(path)
				if err != nil {
					t.Fatal(err)
				}
				if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o660 {
					t.Errorf("mode = %v, want 0660", fi.Mode().Perm())
				}
				if err := l.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
				if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("socket file still there after Close: %v", err)
				}
			})

			t.Run("replaced file not removed on close", func(t *testing.T) {
				path := filepath.Join(dir, "replaced.sock")
				l, err := listenAny(ctx, endpoint.ListenConfig{}, mustParse(t, network+"://"+path))
				if err != nil {
					t.Fatal(err)
				}
				os.Remove(path)
				if err := os.WriteFile(path, []byte("new owner"), 0o600); err != nil {
					t.Fatal(err)
				}
				l.Close()
				if b, err := os.ReadFile(path); err != nil || string(b) != "new owner" {
					t.Errorf("Close removed a file it did not create: %q, %v", b, err)
				}
			})

			t.Run("newer server's socket kept on close", func(t *testing.T) {
				// serve -l unix://P & A; rm P; serve -l unix://P & B; kill A:
				// B must stay reachable.
				path := filepath.Join(dir, "newer.sock")
				e := mustParse(t, network+"://"+path)
				a, err := listenAny(ctx, endpoint.ListenConfig{}, e)
				if err != nil {
					t.Fatal(err)
				}
				os.Remove(path)
				b, err := listenAny(ctx, endpoint.ListenConfig{}, e)
				if err != nil {
					a.Close()
					t.Fatal(err)
				}
				defer b.Close()
				a.Close()
				fi, err := os.Lstat(path)
				if err != nil || fi.Mode().Type() != fs.ModeSocket {
					t.Fatalf("closing the first listener removed the second's socket file: %v", err)
				}
				if network != "unixgram" {
					c, err := net.DialTimeout(network, path, 5*time.Second)
					if err != nil {
						t.Fatalf("second server unreachable: %v", err)
					}
					c.Close()
				}
				b.Close()
				if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("the second listener's Close left its file: %v", err)
				}
			})
		})
	}
}

func TestListenOptionErrors(t *testing.T) {
	ctx := testContext(t)
	dir := sockDir(t)
	tests := []struct {
		name string
		lc   endpoint.ListenConfig
		ep   string
		want string
	}{
		{"negative backlog", endpoint.ListenConfig{Backlog: -1}, "tcp://127.0.0.1:0", "negative backlog"},
		{"mode bits", endpoint.ListenConfig{UnixMode: os.ModeSetuid | 0o600}, "unix://" + filepath.Join(dir, "m.sock"), "bits other than permissions"},
		{"datagram on Listen", endpoint.ListenConfig{}, "udp://127.0.0.1:0", "datagram endpoint (use ListenPacket)"},
		{"unixgram on Listen", endpoint.ListenConfig{}, "unixgram://" + filepath.Join(dir, "g.sock"), "datagram endpoint (use ListenPacket)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := tt.lc.Listen(ctx, mustParse(t, tt.ep))
			if err == nil {
				ln.Close()
				t.Fatal("Listen succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "listen "+tt.ep+": ") {
				t.Errorf("error %q, want \"listen %s: ...%s...\"", err, tt.ep, tt.want)
			}
		})
	}
	for _, ep := range []string{"tcp://127.0.0.1:0", "tls://127.0.0.1:0", "unix://" + filepath.Join(dir, "s.sock")} {
		pc, err := endpoint.ListenConfig{}.ListenPacket(ctx, mustParse(t, ep))
		if err == nil {
			pc.Close()
			t.Fatalf("ListenPacket(%s) succeeded", ep)
		}
		if !strings.Contains(err.Error(), "stream endpoint (use Listen)") {
			t.Errorf("ListenPacket(%s) error %q", ep, err)
		}
	}
	for _, e := range []endpoint.Endpoint{{}, {Scheme: "tcp", Network: "udp", Address: ":0"}, {Scheme: "bogus"}} {
		if ln, err := (endpoint.ListenConfig{}).Listen(ctx, e); err == nil {
			ln.Close()
			t.Errorf("Listen(%+v) succeeded", e)
		}
		if c, err := (endpoint.Dialer{}).Dial(ctx, e); err == nil {
			c.Close()
			t.Errorf("Dial(%+v) succeeded", e)
		}
	}
}

func TestAddressInUse(t *testing.T) {
	ctx := testContext(t)
	for _, ep := range []string{"tcp://127.0.0.1:0", "udp://127.0.0.1:0"} {
		t.Run(ep, func(t *testing.T) {
			e := mustParse(t, ep)
			first, err := listenAny(ctx, endpoint.ListenConfig{}, e)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			var addr net.Addr
			switch l := first.(type) {
			case net.Listener:
				addr = l.Addr()
			case net.PacketConn:
				addr = l.LocalAddr()
			}
			taken := e.WithAddr(addr)
			second, err := listenAny(ctx, endpoint.ListenConfig{}, taken)
			if err == nil {
				second.Close()
				t.Fatal("second listen on a bound port succeeded")
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("error %v is not EADDRINUSE", err)
			}
			if want := "listen " + taken.String() + ": bind: "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
}

func TestReusePort(t *testing.T) {
	if runtime.GOOS == "windows" {
		ln, err := endpoint.ListenConfig{ReusePort: true}.Listen(testContext(t), mustParse(t, "tcp://127.0.0.1:0"))
		if err == nil {
			ln.Close()
			t.Fatal("ReusePort on windows succeeded")
		}
		return
	}
	ctx := testContext(t)
	lc := endpoint.ListenConfig{ReusePort: true, Backlog: 1}
	for _, ep := range []string{"tcp://127.0.0.1:0", "udp://127.0.0.1:0"} {
		t.Run(ep, func(t *testing.T) {
			e := mustParse(t, ep)
			first, err := listenAny(ctx, lc, e)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			var addr net.Addr
			switch l := first.(type) {
			case net.Listener:
				addr = l.Addr()
			case net.PacketConn:
				addr = l.LocalAddr()
			}
			second, err := listenAny(ctx, lc, e.WithAddr(addr))
			if err != nil {
				t.Fatalf("second listener with ReusePort: %v", err)
			}
			second.Close()
		})
	}
}

func TestBacklog(t *testing.T) {
	ctx := testContext(t)
	for _, ep := range []string{"tcp://127.0.0.1:0", "unix://" + filepath.Join(sockDir(t), "b.sock")} {
		t.Run(ep, func(t *testing.T) {
			ln, err := endpoint.ListenConfig{Backlog: 1}.Listen(ctx, mustParse(t, ep))
			if runtime.GOOS == "windows" {
				if err == nil {
					ln.Close()
					t.Fatal("Backlog on windows succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			serveStreamEcho(t, ln)
			c, err := endpoint.Dialer{}.Dial(ctx, mustParse(t, ep).WithAddr(ln.Addr()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			checkEcho(t, c, "backlog")
		})
	}
}

func TestDial(t *testing.T) {
	ctx := testContext(t)
	ln, err := endpoint.ListenConfig{}.Listen(ctx, mustParse(t, "tcp://127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	target := mustParse(t, "tcp://127.0.0.1:0").WithAddr(ln.Addr())

	t.Run("source", func(t *testing.T) {
		for _, src := range []string{"127.0.0.1", "[127.0.0.1]", "127.0.0.1:0", ":0"} {
			var wg sync.WaitGroup
			wg.Go(func() {
				c, err := ln.Accept()
				if err != nil {
					t.Errorf("accept: %v", err)
					return
				}
				c.Close()
			})
			c, err := endpoint.Dialer{Source: src}.Dial(ctx, target)
			if err != nil {
				t.Fatalf("Source %q: %v", src, err)
			}
			if la := c.LocalAddr().(*net.TCPAddr); !la.IP.Equal(net.IPv4(127, 0, 0, 1)) || la.Port == 0 {
				t.Errorf("Source %q: local address %v", src, la)
			}
			c.Close()
			wg.Wait()
		}
	})

	t.Run("source port", func(t *testing.T) {
		// Find a free port, then dial from it.
		probe, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := probe.LocalAddr().(*net.UDPAddr).Port
		probe.Close()
		srv, err := endpoint.ListenConfig{}.ListenPacket(ctx, mustParse(t, "udp://127.0.0.1:0"))
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		src := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		c, err := endpoint.Dialer{Source: src}.Dial(ctx, mustParse(t, "udp://127.0.0.1:0").WithAddr(srv.LocalAddr()))
		if err != nil {
			t.Skipf("port %d taken meanwhile: %v", port, err)
		}
		defer c.Close()
		if got := c.LocalAddr().String(); got != src {
			t.Errorf("local address %s, want %s", got, src)
		}
		c.Write([]byte("hi"))
		srv.SetReadDeadline(time.Now().Add(testTimeout))
		buf := make([]byte, 10)
		_, from, err := srv.ReadFrom(buf)
		if err != nil || from.String() != src {
			t.Errorf("server saw %v, %v; want %s", from, err, src)
		}
	})

	tests := []struct {
		name string
		d    endpoint.Dialer
		ep   string
		want string
	}{
		{"fd", endpoint.Dialer{}, "fd://3", "cannot be dialed"},
		{"bad source", endpoint.Dialer{Source: "localhost"}, target.String(), `bad source address "localhost"`},
		{"bad source port", endpoint.Dialer{Source: "127.0.0.1:x"}, target.String(), "bad port"},
		{"unix source", endpoint.Dialer{Source: "/tmp/x"}, "unix:///nonexistent/x.sock", "source address applies to IP and unixgram"},
		{"refused unix", endpoint.Dialer{}, "unix://" + filepath.Join(sockDir(t), "none.sock"), "dial unix://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.d.Dial(ctx, mustParse(t, tt.ep))
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "dial "+tt.ep+": ") {
				t.Errorf("error %q, want \"dial %s: ...%s...\"", err, tt.ep, tt.want)
			}
		})
	}

	t.Run("refused tcp", func(t *testing.T) {
		probe, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := mustParse(t, "tcp://127.0.0.1:0").WithAddr(probe.Addr())
		probe.Close()
		c, err := endpoint.Dialer{Timeout: testTimeout}.Dial(ctx, closed)
		if err == nil {
			c.Close()
			t.Skip("something listens on the freed port")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("error %v is not ECONNREFUSED", err)
		}
		if want := "dial " + closed.String() + ": connect: "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %q does not start with %q", err, want)
		}
	})
}

func TestUnixgramDialFailureLeavesNoFile(t *testing.T) {
	skipIfNo(t, "unixgram", "")
	before := tempSockets(t)
	c, err := endpoint.Dialer{}.Dial(testContext(t), mustParse(t, "unixgram://"+filepath.Join(sockDir(t), "nobody.sock")))
	if err == nil {
		c.Close()
		t.Fatal("dial to a missing unixgram path succeeded")
	}
	if after := tempSockets(t); len(after) > len(before) {
		t.Errorf("temporary sockets left behind: %v then %v", before, after)
	}
}

func tempSockets(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(os.TempDir(), "sockit-*.sock"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSetNoDelay(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := endpoint.SetNoDelay(a, false); err != nil {
		t.Errorf("SetNoDelay on a pipe: %v", err)
	}
}
