package httpd_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/server"
	"github.com/sockit/sockit/service/httpd"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every exchange of these tests.
const testTimeout = 10 * time.Second

// serveOn runs an httpd.Server with handler h on ln; the server is shut
// down at cleanup.
func serveOn(t *testing.T, ln net.Listener, h http.Handler, limits *server.Server) *httpd.Server {
	t.Helper()
	srv := &httpd.Server{Handler: h, Limits: limits, Logger: slog.New(slog.DiscardHandler)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-done:
			if err != httpd.ErrServerClosed {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(testTimeout):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return srv
}

// newHandler returns the handler of cfg, closed at cleanup.
func newHandler(t *testing.T, cfg httpd.Config) *httpd.Handler {
	t.Helper()
	h, err := httpd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// start serves cfg on a loopback TCP port and returns host:port.
func start(t *testing.T, cfg httpd.Config) string {
	t.Helper()
	return startHandler(t, newHandler(t, cfg))
}

func startHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, ln, h, nil)
	return ln.Addr().String()
}

// arrivals wraps h so that each request is announced on the returned
// channel when it reaches the handler.
func arrivals(h http.Handler) (http.Handler, <-chan string) {
	ch := make(chan string, 16)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- r.URL.Path
		h.ServeHTTP(w, r)
	}), ch
}

// await waits (bounded) for a request to arrive.
func await(t *testing.T, ch <-chan string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatal("the request did not reach the handler")
	}
}

// rawExchange sends req on a new connection and returns everything the
// server sent until it closed (req should say Connection: close).
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", req, err)
	}
	return string(b)
}

var dateRE = regexp.MustCompile(`(?m)^Date: [^\r]*\r\n`)

func TestRoutesExactBytes(t *testing.T) {
	addr := start(t, httpd.Config{})
	tests := []struct {
		name, req, want string
	}{
		{"index", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n<h1>Index</h1>"},
		{"index HEAD", "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n"},
		{"index HTTP/1.0", "GET / HTTP/1.0\r\n\r\n",
			"HTTP/1.0 200 OK\r\nContent-Length: 14\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<h1>Index</h1>"},
		{"hello", "GET /hello/Michael HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 24\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n<h1>hello, Michael!</h1>"},
		{"hello escaped", "GET /hello/%3Cscript%3E%26%22 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 41\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n<h1>hello, &lt;script&gt;&amp;&#34;!</h1>"},
		{"hello utf-8 and slash", "GET /hello/%E4%BD%A0%2F%E5%A5%BD HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 24\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n<h1>hello, 你/好!</h1>"},
		{"hello HEAD", "HEAD /hello/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 18\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n"},
		{"healthz", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nok\n"},
		{"404", "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 19\r\nConnection: close\r\n\r\n404 page not found\n"},
		{"404 empty name", "GET /hello/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 19\r\nConnection: close\r\n\r\n404 page not found\n"},
		{"404 files without root", "GET /files/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 19\r\nConnection: close\r\n\r\n404 page not found\n"},
		{"405 POST /", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 19\r\nConnection: close\r\n\r\nMethod Not Allowed\n"},
		{"405 DELETE hello", "DELETE /hello/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 19\r\nConnection: close\r\n\r\nMethod Not Allowed\n"},
		{"405 PUT healthz", "PUT /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 19\r\nConnection: close\r\n\r\nMethod Not Allowed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rawExchange(t, addr, tt.req)
			if !strings.Contains(got, "\r\nDate: ") {
				t.Errorf("no Date header in\n%q", got)
			}
			got = dateRE.ReplaceAllString(got, "")
			if got != tt.want {
				t.Errorf("response\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestGoClient(t *testing.T) {
	addr := start(t, httpd.Config{})
	hc := &http.Client{Timeout: testTimeout}
	defer hc.CloseIdleConnections()
	tests := []struct {
		method, path string
		status       int
		ctype, body  string
		allow        string
	}{
		{"GET", "/", 200, httpd.ContentTypeHTML, "<h1>Index</h1>", ""},
		{"HEAD", "/", 200, httpd.ContentTypeHTML, "", ""},
		{"GET", "/hello/a%20b", 200, httpd.ContentTypeHTML, "<h1>hello, a b!</h1>", ""},
		{"GET", "/hello/%3Cb%3E", 200, httpd.ContentTypeHTML, "<h1>hello, &lt;b&gt;!</h1>", ""},
		{"GET", "/healthz", 200, httpd.ContentTypeText, "ok\n", ""},
		{"HEAD", "/healthz", 200, httpd.ContentTypeText, "", ""},
		{"GET", "/index.html", 404, httpd.ContentTypeText, "404 page not found\n", ""},
		{"GET", "/hello/a/b", 404, httpd.ContentTypeText, "404 page not found\n", ""},
		{"POST", "/", 405, httpd.ContentTypeText, "Method Not Allowed\n", "GET, HEAD"},
		{"OPTIONS", "/hello/x", 405, httpd.ContentTypeText, "Method Not Allowed\n", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, "http://"+addr+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tt.ctype {
				t.Errorf("Content-Type %q, want %q", ct, tt.ctype)
			}
			if string(body) != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
			if a := resp.Header.Get("Allow"); a != tt.allow {
				t.Errorf("Allow %q, want %q", a, tt.allow)
			}
			if tt.method == "HEAD" && resp.ContentLength <= 0 {
				t.Errorf("HEAD: Content-Length %d, want the GET body's length", resp.ContentLength)
			}
		})
	}
}

// makeRoot makes a root directory with a file, a subdirectory, a symlink
// inside and a symlink leading out, next to a secret file outside it.
func makeRoot(t *testing.T) (root, secret string) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "root")
	secret = "TOP-SECRET-" + t.Name()
	for _, d := range []string{root, filepath.Join(root, "sub"), filepath.Join(root, "withindex")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "secret.txt"), secret)
	write(filepath.Join(root, "a.txt"), "hello file\n")
	write(filepath.Join(root, "sub", "b.html"), "<p>b</p>")
	write(filepath.Join(root, "withindex", "index.html"), "<p>index</p>")
	if err := os.Symlink("a.txt", filepath.Join(root, "inside-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(root, "out-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../secret.txt", filepath.Join(root, "sub", "rel-out-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(root, "out-dir")); err != nil {
		t.Fatal(err)
	}
	return root, secret
}

func TestFiles(t *testing.T) {
	root, secret := makeRoot(t)
	addr := start(t, httpd.Config{Root: root})
	tests := []struct {
		name, path string
		status     int
		body       string // substring, "" for none
	}{
		{"file", "/files/a.txt", 200, "hello file\n"},
		{"nested", "/files/sub/b.html", 200, "<p>b</p>"},
		{"symlink inside", "/files/inside-link", 200, "hello file\n"},
		{"directory listing", "/files/", 200, `<a href="a.txt">a.txt</a>`},
		{"subdirectory listing", "/files/sub/", 200, `<a href="b.html">b.html</a>`},
		{"directory without slash", "/files/sub", 301, ""},
		{"index.html", "/files/withindex/", 200, "<p>index</p>"},
		{"missing", "/files/nope.txt", 404, "404 page not found"},
		{"through a file", "/files/a.txt/x", 404, "404 page not found"},
		{"symlink out", "/files/out-link", 403, "403 Forbidden"},
		{"relative symlink out", "/files/sub/rel-out-link", 403, "403 Forbidden"},
		{"symlinked directory out", "/files/out-dir/secret.txt", 403, "403 Forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rawExchange(t, addr, "GET "+tt.path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			status := statusOf(t, got)
			if status != tt.status {
				t.Errorf("GET %s: status %d, want %d\n%s", tt.path, status, tt.status, got)
			}
			if tt.body != "" && !strings.Contains(got, tt.body) {
				t.Errorf("GET %s: no %q in\n%s", tt.path, tt.body, got)
			}
			if strings.Contains(got, secret) {
				t.Errorf("GET %s: the secret leaked:\n%s", tt.path, got)
			}
		})
	}
}

// TestFilesEscapes sends escape attempts as raw request lines (a client
// library would clean them first): none may reach outside the root.
func TestFilesEscapes(t *testing.T) {
	root, secret := makeRoot(t)
	addr := start(t, httpd.Config{Root: root})
	paths := []string{
		"/files/../secret.txt",
		"/files/../../secret.txt",
		"/files/%2e%2e/secret.txt",
		"/files/%2E%2E/secret.txt",
		"/files/..%2fsecret.txt",
		"/files/..%2Fsecret.txt",
		"/files/%2e%2e%2fsecret.txt",
		"/files/sub/../../secret.txt",
		"/files/sub/%2e%2e/%2e%2e/secret.txt",
		"/files/.%2e/secret.txt",
		"/files/..\\secret.txt",
		"/files/%5c..%5csecret.txt",
		"/files//../secret.txt",
		"/files/out-link",
		"/files/sub/rel-out-link",
		"/files/out-dir/secret.txt",
		"/files/out-dir/root/../secret.txt",
		"/files/%00",
		"/files/a.txt%00",
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			got := rawExchange(t, addr, "GET "+p+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if strings.Contains(got, secret) {
				t.Fatalf("GET %s leaked the secret:\n%s", p, got)
			}
			switch status := statusOf(t, got); status {
			case 400, 403, 404:
			case 301, 307, 308:
				// net/http's router cleans the path and redirects:
				// the target must not be a file outside the root.
				loc := headerOf(got, "Location")
				if strings.HasPrefix(loc, "/files/") && !strings.Contains(loc, "..") {
					break
				}
				follow := rawExchange(t, addr, "GET "+loc+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				if strings.Contains(follow, secret) || statusOf(t, follow) == 200 {
					t.Errorf("GET %s redirects to %s, which answers\n%s", p, loc, follow)
				}
			default:
				t.Errorf("GET %s: status %d, want 400, 403, 404 or a redirect\n%s", p, status, got)
			}
		})
	}
}

func TestFilesSpecial(t *testing.T) {
	root, _ := makeRoot(t)
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	addr := start(t, httpd.Config{Root: root})
	// A FIFO would block an open without O_NONBLOCK: the request must be
	// answered at once, with 403.
	got := rawExchange(t, addr, "GET /files/fifo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if s := statusOf(t, got); s != 403 {
		t.Errorf("GET a FIFO: status %d, want 403\n%s", s, got)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []httpd.Config{
		{Root: filepath.Join(dir, "missing")},
		{Root: file},
		{Delay: -time.Second},
	} {
		if h, err := httpd.New(cfg); err == nil {
			h.Close()
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
}

func statusOf(t *testing.T, resp string) int {
	t.Helper()
	r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(resp)), nil)
	if err != nil {
		t.Fatalf("parsing the response %q: %v", resp, err)
	}
	r.Body.Close()
	return r.StatusCode
}

func headerOf(resp, name string) string {
	r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(resp)), nil)
	if err != nil {
		return ""
	}
	r.Body.Close()
	return r.Header.Get(name)
}

func TestDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	addr := start(t, httpd.Config{Delay: delay})
	hc := &http.Client{Timeout: testTimeout}
	defer hc.CloseIdleConnections()
	get := func(path string) time.Duration {
		t0 := time.Now()
		resp, err := hc.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(t0)
	}
	for _, p := range []string{"/", "/hello/x"} {
		if d := get(p); d < delay {
			t.Errorf("GET %s took %v, want at least the delay %v", p, d, delay)
		}
	}
	// /healthz is never delayed; "well under the delay" allows for a slow
	// machine without being a tight timing assertion.
	if d := get("/healthz"); d >= delay {
		t.Errorf("GET /healthz took %v, want no delay", d)
	}
}

// TestDelayCancelled checks that a request whose client goes away during the
// delay is dropped (the access log says 499) rather than answered.
func TestDelayCancelled(t *testing.T) {
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	h, arrived := arrivals(newHandler(t, httpd.Config{Delay: time.Minute, AccessLog: true, Logger: log}))
	addr := startHandler(t, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	await(t, arrived)
	c.Close()
	waitFor(t, func() bool { return strings.Contains(logs.String(), "status=499") })
}

func TestAccessLog(t *testing.T) {
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	root, _ := makeRoot(t)
	addr := start(t, httpd.Config{AccessLog: true, Logger: log, Root: root})
	rawExchange(t, addr, "GET /hello/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	rawExchange(t, addr, "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	rawExchange(t, addr, "GET /files/a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	rawExchange(t, addr, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`msg=http method=GET path=/hello/x status=200 bytes=18 duration=\S+ peer=127\.0\.0\.1:\d+`),
		regexp.MustCompile(`msg=http method=POST path=/nope status=404 bytes=19 `),
		regexp.MustCompile(`msg=http method=GET path=/files/a.txt status=200 bytes=11 `),
		regexp.MustCompile(`msg=http method=HEAD path=/ status=200 bytes=0 `),
	}
	waitFor(t, func() bool { return strings.Count(logs.String(), "msg=http ") >= len(want) })
	for _, re := range want {
		if !re.MatchString(logs.String()) {
			t.Errorf("access log lacks %s:\n%s", re, logs)
		}
	}
}

func TestNoAccessLog(t *testing.T) {
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	addr := start(t, httpd.Config{Logger: log})
	rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if strings.Contains(logs.String(), "msg=http") {
		t.Errorf("access log without AccessLog:\n%s", logs)
	}
}

// TestGracefulShutdown: a request in flight (in its delay) when Shutdown
// begins is answered in full; new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	const delay = 300 * time.Millisecond
	h, arrived := arrivals(newHandler(t, httpd.Config{Delay: delay}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := &httpd.Server{Handler: h}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// An idle keep-alive connection must not hold the shutdown up.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := http.ReadResponse(bufio.NewReader(idle), nil); err != nil {
		t.Fatal(err)
	}
	await(t, arrived)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, "GET /hello/inflight HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Shut down once the request is in its handler (in the delay).
	await(t, arrived)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	shut := make(chan error, 1)
	t0 := time.Now()
	go func() { shut <- srv.Shutdown(ctx) }()

	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "<h1>hello, inflight!</h1>" {
		t.Errorf("in-flight body %q", body)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if d := time.Since(t0); d > testTimeout/2 {
		t.Errorf("Shutdown took %v", d)
	}
	if err := <-served; err != httpd.ErrServerClosed {
		t.Errorf("Serve: %v, want ErrServerClosed", err)
	}
	if c2, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c2.Close()
		t.Error("a connection was accepted after Shutdown")
	}
}

// TestLimits: the server.Server's MaxConns and Deny apply to HTTP
// connections (closed at once, no bytes), and a slot is free again once
// net/http closed its connection.
func TestLimits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limits := &server.Server{MaxConns: 1, Logger: slog.New(slog.DiscardHandler)}
	serveOn(t, ln, newHandler(t, httpd.Config{}), limits)
	addr := ln.Addr().String()

	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(first, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(first)
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	// The first connection is kept alive: a second one is over the limit.
	refused(t, addr)
	first.Close()
	waitFor(t, func() bool { return limits.ActiveConns() == 0 })
	got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.HasSuffix(got, "<h1>Index</h1>") {
		t.Errorf("after the first connection closed: %q", got)
	}

	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deny := &server.Server{Logger: slog.New(slog.DiscardHandler)}
	p, _ := server.ParsePrefix("127.0.0.0/8")
	deny.Deny = append(deny.Deny, p)
	serveOn(t, ln2, newHandler(t, httpd.Config{}), deny)
	refused(t, ln2.Addr().String())
}

// refused checks that a connection to addr is closed at once with no bytes
// (a FIN, or a reset when the request was still unread).
func refused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	b, err := io.ReadAll(c)
	if len(b) > 0 {
		t.Errorf("refused connection got %q", b)
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("refused connection: %v, want EOF or a reset", err)
	}
}

func TestUnixAndTLS(t *testing.T) {
	// Unix socket.
	dir := t.TempDir()
	if len(dir) > 80 {
		var err error
		if dir, err = os.MkdirTemp("", "hd"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	sock := filepath.Join(dir, "h.sock")
	uln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, uln, newHandler(t, httpd.Config{}), nil)
	uc := &http.Client{Timeout: testTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	defer uc.CloseIdleConnections()
	checkGet(t, uc, "http://localhost/hello/unix", "<h1>hello, unix!</h1>")

	// TLS through endpoint's listener, with a self-signed certificate.
	cert, err := endpoint.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := endpoint.Parse("tls://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lc := endpoint.ListenConfig{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	tln, err := lc.Listen(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, httpd.Config{})
	var sawTLS sync.Once
	tlsSeen := make(chan bool, 1)
	srv := &httpd.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawTLS.Do(func() { tlsSeen <- r.TLS != nil })
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 500 * time.Millisecond}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-served
	}()
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	tc := &http.Client{Timeout: testTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer tc.CloseIdleConnections()
	checkGet(t, tc, "https://"+tln.Addr().String()+"/", "<h1>Index</h1>")
	if !<-tlsSeen {
		t.Error("the handler saw no r.TLS on a tls listener")
	}

	// A peer that never finishes its handshake is closed after
	// ReadHeaderTimeout (net/http alone would wait forever).
	c, err := net.Dial("tcp", tln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("a silent TLS peer got bytes")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("a silent TLS peer was not closed within the test timeout")
	}
}

func checkGet(t *testing.T, hc *http.Client, url, want string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != want {
		t.Errorf("GET %s: %d %q, want 200 %q", url, resp.StatusCode, body, want)
	}
}

// waitFor polls cond until it holds, failing the test after testTimeout.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", testTimeout)
		}
		time.Sleep(wait)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSmugglingClosesTheConnection: a request with both Content-Length and
// Transfer-Encoding is answered, then its connection closes (RFC 9112
// §6.3): the request hidden behind its chunked body is never served.
func TestSmugglingClosesTheConnection(t *testing.T) {
	h, seen := arrivals(newHandler(t, httpd.Config{}))
	addr := startHandler(t, h)
	req := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\n" +
		"GET /hello/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	got := rawExchange(t, addr, req)
	if strings.Contains(got, "smuggled") || strings.Count(got, "HTTP/1.1 ") != 1 {
		t.Fatalf("the smuggled request was answered:\n%s", got)
	}
	if !strings.Contains(got, "Connection: close") {
		t.Fatalf("the response does not say the connection closes:\n%s", got)
	}
	select {
	case path := <-seen:
		if path != "/" {
			t.Fatalf("handler saw %q first", path)
		}
	case <-time.After(testTimeout):
		t.Fatal("the first request never reached the handler")
	}
	select {
	case path := <-seen:
		t.Fatalf("handler saw a second request %q", path)
	default:
	}
	// A plain request keeps its connection (and a pipelined one after it
	// is served), so only Transfer-Encoding closes.
	got = rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /hello/two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if strings.Count(got, "HTTP/1.1 200") != 2 {
		t.Fatalf("two pipelined plain requests:\n%s", got)
	}
}
