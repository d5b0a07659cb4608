package endpoint_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockit/sockit/endpoint"
)

// testPKI is a CA with a server and a client certificate, written as PEM
// files.
type testPKI struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage, name string) (certFile, keyFile string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalPKCS8PrivateKey(key)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "PRIVATE KEY", kb)
	}
	p := testPKI{caFile: write("ca.pem", "CERTIFICATE", caDER)}
	p.serverCert, p.serverKey = leaf(2, x509.ExtKeyUsageServerAuth, "server")
	p.clientCert, p.clientKey = leaf(3, x509.ExtKeyUsageClientAuth, "client")
	return p
}

// handshake runs one TLS exchange over loopback TCP and returns the client's
// and the server's handshake errors.
func handshake(t *testing.T, srv endpoint.ServerTLS, cli endpoint.ClientTLS, ep string) (clientErr, serverErr error) {
	t.Helper()
	scfg, _, err := srv.Config()
	if err != nil {
		t.Fatalf("server config: %v", err)
	}
	ccfg, err := cli.Config()
	if err != nil {
		t.Fatalf("client config: %v", err)
	}
	e, err := endpoint.Parse(ep)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := endpoint.ListenConfig{TLS: scfg}.Listen(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		err = c.(*tls.Conn).HandshakeContext(ctx)
		if err == nil {
			_, err = c.Write([]byte("ok"))
		}
		done <- err
	}()
	c, err := endpoint.Dialer{Timeout: 10 * time.Second, TLS: ccfg}.Dial(ctx, e.WithAddr(ln.Addr()))
	if err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var b [2]byte
		_, err = io.ReadFull(c, b[:]) // TLS 1.3 reports a refused client certificate on the first read
		c.Close()
	}
	return err, <-done
}

func TestSelfSignedNames(t *testing.T) {
	tests := []struct {
		hosts     []string
		wantNames []string
		wantIPs   []string
	}{
		{nil, []string{"localhost"}, []string{"127.0.0.1", "::1"}},
		{[]string{"127.0.0.1"}, nil, []string{"127.0.0.1"}},
		{[]string{"[::1]", "Example.COM", "example.com"}, []string{"example.com"}, []string{"::1"}},
		{[]string{""}, []string{"localhost"}, []string{"127.0.0.1", "::1"}},
		{[]string{"0.0.0.0"}, []string{"localhost"}, []string{"127.0.0.1", "::1"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.hosts, ","), func(t *testing.T) {
			cert, err := endpoint.SelfSigned(tt.hosts)
			if err != nil {
				t.Fatal(err)
			}
			leaf := cert.Leaf
			if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
				t.Errorf("key is %T, want ECDSA", leaf.PublicKey)
			}
			for _, n := range tt.wantNames {
				if err := leaf.VerifyHostname(n); err != nil {
					t.Errorf("name %s: %v", n, err)
				}
			}
			for _, ip := range tt.wantIPs {
				if err := leaf.VerifyHostname(ip); err != nil {
					t.Errorf("address %s: %v", ip, err)
				}
			}
			if err := leaf.VerifyHostname("sockit.invalid"); err == nil {
				t.Error("certificate also valid for sockit.invalid")
			}
			if time.Until(leaf.NotAfter) < 300*24*time.Hour {
				t.Errorf("valid only until %v", leaf.NotAfter)
			}
		})
	}
}

func TestParsePin(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	tests := []struct {
		in string
		ok bool
	}{
		{"sha256:" + hex64, true},
		{"SHA256:" + strings.ToUpper(hex64), true},
		{"sha256:" + strings.TrimSuffix(strings.Repeat("AB:", 32), ":"), true},
		{"sha1:" + hex64, false},
		{hex64, false},
		{"sha256:" + hex64[:62], false},
		{"sha256:" + hex64 + "00", false},
		{"sha256:zz" + hex64[2:], false},
		{"sha256:", false},
		{"", false},
	}
	for _, tt := range tests {
		b, err := endpoint.ParsePin(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParsePin(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if err == nil && len(b) != 32 {
			t.Errorf("ParsePin(%q) gave %d bytes", tt.in, len(b))
		}
	}
}

func FuzzParsePin(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("0f", 32))
	f.Add("sha256:AB:CD")
	f.Add("sha256")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := endpoint.ParsePin(s)
		if err == nil && len(b) != 32 {
			t.Fatalf("ParsePin(%q) returned %d bytes", s, len(b))
		}
		if err != nil && b != nil {
			t.Fatalf("ParsePin(%q) returned bytes with an error", s)
		}
	})
}

func TestFingerprintMatchesPin(t *testing.T) {
	cert, err := endpoint.SelfSigned(nil)
	if err != nil {
		t.Fatal(err)
	}
	fp := endpoint.Fingerprint(cert.Certificate[0])
	if !strings.HasPrefix(fp, "sha256:") || len(fp) != len("sha256:")+64 {
		t.Fatalf("fingerprint %q", fp)
	}
	if _, err := endpoint.ParsePin(fp); err != nil {
		t.Fatalf("own fingerprint does not parse as a pin: %v", err)
	}
}

func TestTLSHandshakes(t *testing.T) {
	pki := newTestPKI(t)
	selfSigned := endpoint.ServerTLS{SelfSigned: true, Hosts: []string{"127.0.0.1"}}
	_, fp, err := selfSigned.Config()
	if err != nil {
		t.Fatal(err)
	}
	if fp == "" {
		t.Fatal("no fingerprint for a self-signed certificate")
	}
	fromFiles := endpoint.ServerTLS{CertFile: pki.serverCert, KeyFile: pki.serverKey}
	mutual := endpoint.ServerTLS{CertFile: pki.serverCert, KeyFile: pki.serverKey, ClientCAFile: pki.caFile}
	other := "sha256:" + strings.Repeat("00", 32)

	tests := []struct {
		name       string
		srv        endpoint.ServerTLS
		cli        endpoint.ClientTLS
		ep         string
		wantClient bool // client handshake succeeds
		wantErrIs  error
	}{
		{"system roots refuse self-signed", selfSigned, endpoint.ClientTLS{}, "tls://127.0.0.1:0", false, nil},
		{"insecure", selfSigned, endpoint.ClientTLS{Insecure: true}, "tls://127.0.0.1:0", true, nil},
		{"ca", fromFiles, endpoint.ClientTLS{CAFile: pki.caFile}, "tls://127.0.0.1:0", true, nil},
		{"ca wrong name", fromFiles, endpoint.ClientTLS{CAFile: pki.caFile, ServerName: "other.example"}, "tls://127.0.0.1:0", false, nil},
		{"ca with sni", fromFiles, endpoint.ClientTLS{CAFile: pki.caFile, ServerName: "localhost"}, "tls://127.0.0.1:0", true, nil},
		{"pin other", selfSigned, endpoint.ClientTLS{Pins: []string{other}}, "tls://127.0.0.1:0", false, endpoint.ErrPinMismatch},
		{"pin other insecure", selfSigned, endpoint.ClientTLS{Pins: []string{other}, Insecure: true}, "tls://127.0.0.1:0", false, endpoint.ErrPinMismatch},
		{"mutual without client cert", mutual, endpoint.ClientTLS{CAFile: pki.caFile}, "tls://127.0.0.1:0", false, nil},
		{"mutual with client cert", mutual, endpoint.ClientTLS{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}, "tls://127.0.0.1:0", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cerr, serr := handshake(t, tt.srv, tt.cli, tt.ep)
			if (cerr == nil) != tt.wantClient {
				t.Errorf("client: %v, want success=%v (server: %v)", cerr, tt.wantClient, serr)
			}
			if tt.wantErrIs != nil && !errors.Is(cerr, tt.wantErrIs) {
				t.Errorf("client error %v, want %v", cerr, tt.wantErrIs)
			}
			if tt.wantClient && serr != nil {
				t.Errorf("server: %v", serr)
			}
		})
	}
}

// TestTLSPinSelfSigned pins the very certificate a self-signed server made,
// with and without a CA.
func TestTLSPinSelfSigned(t *testing.T) {
	cert, err := endpoint.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	kb, _ := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	srv := endpoint.ServerTLS{CertFile: certFile, KeyFile: keyFile}
	_, fp, err := srv.Config()
	if err != nil {
		t.Fatal(err)
	}
	if fp != endpoint.Fingerprint(cert.Certificate[0]) {
		t.Fatalf("fingerprint of the file %s, of the certificate %s", fp, endpoint.Fingerprint(cert.Certificate[0]))
	}
	if cerr, serr := handshake(t, srv, endpoint.ClientTLS{Pins: []string{fp}}, "tls://127.0.0.1:0"); cerr != nil || serr != nil {
		t.Errorf("pin: client %v, server %v", cerr, serr)
	}
	// The certificate itself as the CA, plus the pin: both verified.
	if cerr, serr := handshake(t, srv, endpoint.ClientTLS{Pins: []string{fp}, CAFile: certFile}, "tls://127.0.0.1:0"); cerr != nil || serr != nil {
		t.Errorf("pin and ca: client %v, server %v", cerr, serr)
	}
	// Pin right, name wrong, CA given: the name check still applies.
	if cerr, _ := handshake(t, srv, endpoint.ClientTLS{Pins: []string{fp}, CAFile: certFile, ServerName: "wrong.example"}, "tls://127.0.0.1:0"); cerr == nil {
		t.Error("pin and ca with a wrong name: handshake succeeded")
	}
}

func TestTLSMinVersion(t *testing.T) {
	srv := endpoint.ServerTLS{SelfSigned: true}
	scfg, _, err := srv.Config()
	if err != nil {
		t.Fatal(err)
	}
	if scfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("server MinVersion %x", scfg.MinVersion)
	}
	ccfg, err := endpoint.ClientTLS{}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if ccfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("client MinVersion %x", ccfg.MinVersion)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	servers := []endpoint.ServerTLS{
		{},
		{CertFile: missing},
		{CertFile: missing, KeyFile: missing},
		{SelfSigned: true, CertFile: missing, KeyFile: missing},
		{SelfSigned: true, ClientCAFile: notPEM},
	}
	for i, s := range servers {
		if _, _, err := s.Config(); err == nil {
			t.Errorf("server %d %+v: no error", i, s)
		}
	}
	if _, _, err := (endpoint.ServerTLS{}).Config(); !errors.Is(err, endpoint.ErrNoCertificate) {
		t.Errorf("empty server config: %v, want ErrNoCertificate", err)
	}
	clients := []endpoint.ClientTLS{
		{CAFile: missing},
		{CAFile: notPEM},
		{CertFile: missing},
		{CertFile: missing, KeyFile: missing},
		{Pins: []string{"sha256:00"}},
	}
	for i, c := range clients {
		if _, err := c.Config(); err == nil {
			t.Errorf("client %d %+v: no error", i, c)
		}
	}
}

// TestTLSALPN: the protocols of --alpn are offered in order and the server's
// choice (ServerTLS.ALPN) is what both ends see; with no protocol in common
// a server that requires one refuses the handshake.
func TestTLSALPN(t *testing.T) {
	for _, tc := range []struct {
		name      string
		srv, cli  []string
		want      string
		wantError bool
	}{
		{"common", []string{"sockit/1", "h2"}, []string{"x", "sockit/1"}, "sockit/1", false},
		{"client offers none", []string{"sockit/1"}, nil, "", false},
		{"none in common", []string{"sockit/1"}, []string{"other"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scfg, _, err := endpoint.ServerTLS{SelfSigned: true, Hosts: []string{"127.0.0.1"}, ALPN: tc.srv}.Config()
			if err != nil {
				t.Fatal(err)
			}
			ccfg, err := endpoint.ClientTLS{Insecure: true, ALPN: tc.cli}.Config()
			if err != nil {
				t.Fatal(err)
			}
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			_ = a.SetDeadline(time.Now().Add(5 * time.Second))
			_ = b.SetDeadline(time.Now().Add(5 * time.Second))
			srv, cli := tls.Server(a, scfg), tls.Client(b, ccfg)
			serr := make(chan error, 1)
			go func() { serr <- srv.Handshake() }()
			cerr := cli.Handshake()
			if tc.wantError {
				if cerr == nil {
					t.Fatal("handshake succeeded without a protocol in common")
				}
				return
			}
			if cerr != nil {
				t.Fatal(cerr)
			}
			if err := <-serr; err != nil {
				t.Fatal(err)
			}
			if got := cli.ConnectionState().NegotiatedProtocol; got != tc.want {
				t.Fatalf("client negotiated %q, want %q", got, tc.want)
			}
			if got := srv.ConnectionState().NegotiatedProtocol; got != tc.want {
				t.Fatalf("server negotiated %q, want %q", got, tc.want)
			}
		})
	}
}
