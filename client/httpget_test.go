package client_test

import (
	"bytes"
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
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sockit/sockit/client"
	"github.com/sockit/sockit/service/httpd"
)

// httpTestTimeout bounds every HTTP exchange of these tests.
const httpTestTimeout = 10 * time.Second

// countingListener counts the connections it accepted.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// serveHTTP serves h on ln until the test ends.
func serveHTTP(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	srv := &httpd.Server{Handler: h, Logger: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), httpTestTimeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
}

// startHTTPD serves the http service of cfg on loopback; it returns the
// base URL and the connection counter.
func startHTTPD(t *testing.T, cfg httpd.Config) (string, *countingListener) {
	t.Helper()
	h, err := httpd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return startHandler(t, h)
}

func startHandler(t *testing.T, h http.Handler) (string, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	serveHTTP(t, cl, h)
	return "http://" + ln.Addr().String(), cl
}

// rawServer accepts one connection, records the request's header section,
// sends response as it is and closes. It returns the address and a channel
// that yields the request bytes.
func rawServer(t *testing.T, response string) (string, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(httpTestTimeout))
		var req []byte
		buf := make([]byte, 4096)
		for !bytes.Contains(req, []byte("\r\n\r\n")) {
			n, err := c.Read(buf)
			req = append(req, buf[:n]...)
			if err != nil {
				break
			}
		}
		got <- req
		_, _ = io.WriteString(c, response)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), got
}

func TestHTTPTraceIsTheWire(t *testing.T) {
	const respHeader = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nx-lower-case: kept\r\nContent-Length: 5\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n"
	addr, reqc := rawServer(t, respHeader+"hello")
	var trace, body bytes.Buffer
	resp, err := client.HTTP(context.Background(), client.HTTPRequest{
		URL:     "http://" + addr + "/path?q=1",
		Header:  http.Header{"X-Test": {"a b"}},
		Trace:   &trace,
		Timeout: httpTestTimeout,
	}, &body)
	if err != nil {
		t.Fatal(err)
	}
	req := <-reqc
	if want := string(req) + respHeader; trace.String() != want {
		t.Errorf("trace\n got %q\nwant %q", trace.String(), want)
	}
	if !strings.HasPrefix(string(req), "GET /path?q=1 HTTP/1.1\r\nHost: "+addr+"\r\n") || !strings.Contains(string(req), "\r\nX-Test: a b\r\n") || !strings.Contains(string(req), "\r\nUser-Agent: sockit\r\n") {
		t.Errorf("request %q", req)
	}
	if string(resp.RawHeader) != respHeader {
		t.Errorf("RawHeader %q, want %q", resp.RawHeader, respHeader)
	}
	if body.String() != "hello" || resp.BodyBytes != 5 || resp.StatusCode != 200 || resp.Status != "200 OK" || !resp.OK() {
		t.Errorf("got %d %q body %q (%d bytes)", resp.StatusCode, resp.Status, body.String(), resp.BodyBytes)
	}
}

func TestHTTPHeadAndStatus(t *testing.T) {
	base, _ := startHTTPD(t, httpd.Config{})
	ctx := context.Background()
	resp, err := client.HTTP(ctx, client.HTTPRequest{Method: "HEAD", URL: base + "/hello/x", Timeout: httpTestTimeout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := string(resp.RawHeader)
	if !strings.HasPrefix(raw, "HTTP/1.1 200 OK\r\n") || !strings.Contains(raw, "\r\nContent-Length: 18\r\n") ||
		!strings.Contains(raw, "\r\nContent-Type: text/html; charset=utf-8\r\n") || !strings.HasSuffix(raw, "\r\n\r\n") {
		t.Errorf("HEAD raw header %q", raw)
	}
	if resp.BodyBytes != 0 {
		t.Errorf("HEAD body bytes %d", resp.BodyBytes)
	}

	var body bytes.Buffer
	resp, err = client.HTTP(ctx, client.HTTPRequest{URL: base + "/missing", Timeout: httpTestTimeout}, &body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 404 || resp.OK() || body.String() != "404 page not found\n" {
		t.Errorf("404: %d ok=%v %q", resp.StatusCode, resp.OK(), body.String())
	}
}

func TestHTTPRedirects(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/from", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/to", http.StatusFound) })
	mux.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "arrived") })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	base, _ := startHandler(t, mux)
	ctx := context.Background()

	var body bytes.Buffer
	resp, err := client.HTTP(ctx, client.HTTPRequest{URL: base + "/from", Timeout: httpTestTimeout}, &body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 302 || !resp.OK() || resp.Header.Get("Location") != "/to" {
		t.Errorf("without -L: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	body.Reset()
	resp, err = client.HTTP(ctx, client.HTTPRequest{URL: base + "/from", FollowRedirects: true, Timeout: httpTestTimeout}, &body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body.String() != "arrived" || resp.URL != base+"/to" {
		t.Errorf("with -L: %d %q at %s", resp.StatusCode, body.String(), resp.URL)
	}
	if n := strings.Count(string(resp.RawHeader), "HTTP/1.1 "); n != 2 {
		t.Errorf("with -L: raw headers of %d responses, want 2:\n%s", n, resp.RawHeader)
	}

	_, err = client.HTTP(ctx, client.HTTPRequest{URL: base + "/loop", FollowRedirects: true, MaxRedirects: 3, Timeout: httpTestTimeout}, nil)
	if !errors.Is(err, client.ErrTooManyRedirects) {
		t.Errorf("redirect loop: %v, want ErrTooManyRedirects", err)
	}
}

func TestHTTPHostHeader(t *testing.T) {
	hostc := make(chan string, 1)
	base, _ := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hostc <- r.Host + "|" + r.Header.Get("User-Agent")
	}))
	_, err := client.HTTP(context.Background(), client.HTTPRequest{
		URL:     base + "/",
		Header:  http.Header{"Host": {"example.test"}, "User-Agent": {"mine/1"}},
		Timeout: httpTestTimeout,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := <-hostc; got != "example.test|mine/1" {
		t.Errorf("server saw %q", got)
	}
}

func TestHTTPUnixSocket(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "h.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpd.New(httpd.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	serveHTTP(t, ln, h)
	var body bytes.Buffer
	resp, err := client.HTTP(context.Background(), client.HTTPRequest{URL: "http://localhost/hello/unix", UnixSocket: sock, Timeout: httpTestTimeout}, &body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body.String() != "<h1>hello, unix!</h1>" {
		t.Errorf("over a Unix socket: %d %q", resp.StatusCode, body.String())
	}
}

func TestHTTPTLS(t *testing.T) {
	certPEM, keyPEM := selfSignedPEM(t, "127.0.0.1")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpd.New(httpd.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	serveHTTP(t, ln, h)
	url := "https://" + ln.Addr().String() + "/hello/tls"
	ctx := context.Background()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	var body, trace bytes.Buffer
	resp, err := client.HTTP(ctx, client.HTTPRequest{URL: url, TLS: &tls.Config{RootCAs: pool}, Trace: &trace, Timeout: httpTestTimeout}, &body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body.String() != "<h1>hello, tls!</h1>" {
		t.Errorf("https with the CA: %d %q", resp.StatusCode, body.String())
	}
	if !strings.HasPrefix(trace.String(), "GET /hello/tls HTTP/1.1\r\n") || !strings.Contains(trace.String(), "\r\n\r\nHTTP/1.1 200 OK\r\n") {
		t.Errorf("https trace is not the plaintext:\n%q", trace.String())
	}

	// Verified by default: the system roots do not know this certificate.
	_, err = client.HTTP(ctx, client.HTTPRequest{URL: url, Timeout: httpTestTimeout}, nil)
	var uae x509.UnknownAuthorityError
	if !errors.As(err, &uae) {
		t.Errorf("https without the CA: %v, want an unknown authority error", err)
	}
	resp, err = client.HTTP(ctx, client.HTTPRequest{URL: url, TLS: &tls.Config{InsecureSkipVerify: true}, Timeout: httpTestTimeout}, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("https insecure: %v", err)
	}
}

func TestHTTPErrors(t *testing.T) {
	ctx := context.Background()
	dead := closedPort(t)
	_, err := client.HTTP(ctx, client.HTTPRequest{URL: "http://" + dead + "/", Timeout: httpTestTimeout}, nil)
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "GET http://"+dead+"/") {
		t.Errorf("closed port: %v", err)
	}

	base, _ := startHTTPD(t, httpd.Config{Delay: time.Minute})
	t0 := time.Now()
	_, err = client.HTTP(ctx, client.HTTPRequest{URL: base + "/", Timeout: 200 * time.Millisecond}, nil)
	if err == nil || !strings.Contains(err.Error(), "timed out after 200ms") {
		t.Errorf("slow server: %v, want a timeout", err)
	}
	if d := time.Since(t0); d > httpTestTimeout/2 {
		t.Errorf("the 200ms timeout took %v", d)
	}

	for _, req := range []client.HTTPRequest{
		{Method: "POST", URL: base},
		{URL: "ftp://127.0.0.1/"},
		{URL: "http:///nohost"},
		{URL: "http://[::1"},
	} {
		if _, err := client.HTTP(ctx, req, nil); err == nil {
			t.Errorf("%+v: no error", req)
		}
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// selfSignedPEM makes an ECDSA certificate for host.
func selfSignedPEM(t *testing.T, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP(host)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// shortTempDir returns a directory short enough for a Unix socket path.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 80 {
		var err error
		if dir, err = os.MkdirTemp("", "ck"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return dir
}

// FuzzWireConn feeds arbitrary response bytes through the wire recorder:
// it must never panic, and what it records is a prefix of what arrived,
// ending at a header end.
func FuzzWireConn(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"), 3)
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"), 1)
	f.Add([]byte("\r\n\r\n\r\n\r\n"), 2)
	f.Add([]byte("HTTP/1.1 1"), 7)
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		if chunk <= 0 || chunk > 64 {
			chunk = 1 + chunk&63
		}
		raw := client.RecordResponseHeader(data, chunk)
		if !bytes.HasPrefix(data, raw) {
			t.Fatalf("recorded %q is not a prefix of %q", raw, data)
		}
		if len(raw) > 0 && !bytes.HasSuffix(raw, []byte("\r\n\r\n")) {
			t.Fatalf("recorded %q does not end a header section", raw)
		}
	})
}
