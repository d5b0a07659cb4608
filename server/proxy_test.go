package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/endpoint/proxy"
	"github.com/sockit/sockit/internal/conntest"
	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/server"
)

// addrProto writes "REMOTE LOCAL|FACTORY-REMOTE\n" on open, then echoes.
type addrProto struct {
	proto.Base
	info proto.ConnInfo
	t    proto.Transport
}

func (p *addrProto) OnOpen(t proto.Transport) {
	p.t = t
	_ = t.Write([]byte(t.RemoteAddr().String() + " " + t.LocalAddr().String() + "|" + p.info.RemoteAddr.String() + "\n"))
}
func (p *addrProto) OnData(d []byte) { _ = p.t.Write(d) }

// TestProxyProtocolOnEveryEngine: behind a PROXY header, on every engine
// and stream transport (TLS beneath the header too), a protocol sees the
// client's address from the header, --allow/--deny judge it, --max-conns
// counts the connection and bytes after the header arrive whole; a
// connection without a header is refused and the server carries on.
func TestProxyProtocolOnEveryEngine(t *testing.T) {
	tlsCfg, _, err := endpoint.ServerTLS{SelfSigned: true, Hosts: []string{"127.0.0.1"}}.Config()
	if err != nil {
		t.Fatal(err)
	}
	for _, eng := range engines {
		for _, scheme := range []string{"tcp", "unix", "tls"} {
			t.Run(eng+"/"+scheme, func(t *testing.T) {
				addr := "127.0.0.1:0"
				if scheme == "unix" {
					addr = filepath.Join(t.TempDir(), "p.sock")
				}
				ep, err := endpoint.Parse(scheme + "://" + addr)
				if err != nil {
					t.Fatal(err)
				}
				refused := make(chan error, 16)
				lc := endpoint.ListenConfig{TLS: tlsCfg, Proxy: &proxy.Config{
					HeaderTimeout: 2 * time.Second,
					OnRefuse:      func(_, _ net.Addr, err error) { refused <- err },
				}}
				ln, err := lc.Listen(context.Background(), ep)
				if err != nil {
					t.Fatal(err)
				}
				logs := &conntest.LogBuffer{}
				srv := conntest.NewServer(eng)
				srv.Logger = conntest.NewLogger(logs)
				srv.Deny = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
				srv.MaxConns = 2
				served := make(chan error, 1)
				go func() {
					served <- srv.Serve(ln, func(info proto.ConnInfo) proto.Protocol { return &addrProto{info: info} })
				}()
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					if err := srv.Shutdown(ctx); err != nil {
						t.Errorf("shutdown: %v", err)
					}
					if err := <-served; !errors.Is(err, server.ErrServerClosed) {
						t.Errorf("Serve: %v", err)
					}
				}()
				dial := func(header string) net.Conn {
					t.Helper()
					c, err := net.DialTimeout(ln.Addr().Network(), ln.Addr().String(), 5*time.Second)
					if err != nil {
						t.Fatal(err)
					}
					_ = c.SetDeadline(time.Now().Add(5 * time.Second))
					t.Cleanup(func() { c.Close() })
					if _, err := io.WriteString(c, header); err != nil {
						t.Fatal(err)
					}
					if scheme == "tls" {
						tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
						_ = tc.Handshake() // a refused connection fails here
						return tc
					}
					return c
				}
				hello := func(c net.Conn) (string, error) {
					if _, err := io.WriteString(c, "ping"); err != nil {
						return "", err
					}
					b := make([]byte, 256)
					n, err := io.ReadAtLeast(c, b, 1)
					got := string(b[:n])
					for err == nil && !strings.HasSuffix(got, "ping") {
						n, err = c.Read(b)
						got += string(b[:n])
					}
					return got, err
				}
				first := dial("PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n")
				got, err := hello(first)
				want := "192.0.2.7:51000 198.51.100.1:443|192.0.2.7:51000\nping"
				if err != nil || got != want {
					t.Fatalf("got %q, %v; want %q", got, err, want)
				}
				second := dial("PROXY TCP6 2001:db8::7 2001:db8::1 51001 443\r\n")
				if got, err := hello(second); err != nil || !strings.HasPrefix(got, "[2001:db8::7]:51001 ") {
					t.Fatalf("second: %q, %v", got, err)
				}
				// Past --max-conns 2 (the header's client counted).
				if got, _ := hello(dial("PROXY TCP4 192.0.2.8 198.51.100.1 51002 443\r\n")); got != "" {
					t.Fatalf("third connection past max-conns got %q", got)
				}
				second.Close()
				conntest.Eventually(t, 5*time.Second, "second closed", func() bool { return srv.ActiveConns() == 1 })
				// Denied by the header's address.
				if got, _ := hello(dial("PROXY TCP4 203.0.113.9 198.51.100.1 1 443\r\n")); got != "" {
					t.Fatalf("denied client got %q", got)
				}
				// No header at all.
				if got, _ := hello(dial("GET / HTTP/1.0\r\n\r\n")); got != "" {
					t.Fatalf("headerless connection got %q", got)
				}
				select {
				case err := <-refused:
					if !errors.Is(err, proxy.ErrNoHeader) {
						t.Fatalf("refused for %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the headerless connection was not refused")
				}
				// The first connection was never disturbed.
				if _, err := io.WriteString(first, "again"); err != nil {
					t.Fatal(err)
				}
				if b := conntest.ReadN(t, first, 5); string(b) != "again" {
					t.Fatalf("first after the refusals: %q", b)
				}
				st := srv.Stats()
				if st.RefusedMaxConns != 1 || st.RefusedDeny != 1 || st.Accepted != 2 {
					t.Fatalf("stats %+v: want 1 max-conns, 1 deny, 2 accepted", st)
				}
				// Refusals are logged once a second at most: the first names
				// the header's client.
				if !logs.Contains("peer=192.0.2.8:51002") {
					t.Fatalf("the refusal is not logged with the header's address:\n%s", logs)
				}
			})
		}
	}
}

// TestProxyProtocolRefusesDatagramEndpoints: there is no stream to begin
// with a header.
func TestProxyProtocolRefusesDatagramEndpoints(t *testing.T) {
	lc := endpoint.ListenConfig{Proxy: &proxy.Config{}}
	for _, e := range []string{"udp://127.0.0.1:0", "unixpacket://" + filepath.Join(t.TempDir(), "x.sock")} {
		ep, err := endpoint.Parse(e)
		if err != nil {
			t.Fatal(err)
		}
		var lerr error
		if ep.IsPacket() {
			_, lerr = lc.ListenPacket(context.Background(), ep)
		} else {
			_, lerr = lc.Listen(context.Background(), ep)
		}
		if lerr == nil || !strings.Contains(lerr.Error(), "PROXY") {
			t.Errorf("%s: %v, want a PROXY protocol refusal", e, lerr)
		}
	}
}
