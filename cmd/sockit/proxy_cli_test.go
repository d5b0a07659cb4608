package main

// sockit behind real load balancers that send PROXY protocol headers
// (HAProxy's send-proxy and send-proxy-v2, nginx stream's proxy_protocol;
// .ci/peers-lb.sh installs them) and behind its own relay --send-proxy.
// Every client dials from an address of its own on 127.0.0.0/8, so the
// server can only tell them apart by the header: --allow 127.0.0.2 serves
// the client from 127.0.0.2 and refuses the one from 127.0.0.3, while the
// balancer itself always connects from 127.0.0.1.

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dialFrom connects to addr from source (an address on 127.0.0.0/8),
// writes msg, half-closes and returns what came back before the close.
func dialFrom(t *testing.T, source, addr, msg string) string {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, source, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return ""
	}
	_ = c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	return string(b)
}

// checkBehind runs the two clients through the balancer at front and
// checks what the server behind it (p) served, refused and logged.
func checkBehind(t *testing.T, p *serveProc, front string) {
	t.Helper()
	if got := dialFrom(t, "127.0.0.2", front, "hello\n"); got != "hello\n" {
		t.Fatalf("client 127.0.0.2 through %s got %q\nserver stderr:\n%s", front, got, p.stderr.String())
	}
	if got := dialFrom(t, "127.0.0.3", front, "hello\n"); got != "" {
		t.Fatalf("client 127.0.0.3 (not allowed) got %q", got)
	}
	if !waitFor(5*time.Second, func() bool {
		return strings.Contains(p.stderr.String(), "peer refused by --allow/--deny") && strings.Contains(p.stderr.String(), "peer=127.0.0.3:")
	}) {
		t.Fatalf("the refusal does not name the client from the header:\n%s", p.stderr.String())
	}
}

// serveBehind starts sockit serve echo that takes headers only from
// 127.0.0.1 and serves only 127.0.0.2; it returns the process and its
// host:port.
func serveBehind(t *testing.T, eng string, extra ...string) (*serveProc, string) {
	t.Helper()
	args := append([]string{"echo", "-l", "tcp://127.0.0.1:0", "--engine", eng,
		"--proxy-protocol", "--proxy-protocol-from", "127.0.0.1", "--allow", "127.0.0.2"}, extra...)
	p, eps := startServe(t, args...)
	host, port := hostPort(t, eps[0])
	return p, net.JoinHostPort(host, port)
}

func TestBehindHAProxy(t *testing.T) {
	haproxy := needPeer(t, "haproxy")
	for _, eng := range []string{"goroutine", "epoll"} {
		for _, send := range []string{"send-proxy", "send-proxy-v2"} {
			t.Run(eng+"/"+send, func(t *testing.T) {
				p, backend := serveBehind(t, eng)
				front := net.JoinHostPort("127.0.0.1", freePort(t))
				cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
				writeFile(t, cfg, fmt.Sprintf(`global
  maxconn 64
defaults
  mode tcp
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend front
  bind %s
  default_backend sockit
backend sockit
  server echo %s %s
`, front, backend, send))
				hp := startPeer(t, nil, haproxy, "-db", "-f", cfg)
				waitListening(t, hp, front)
				checkBehind(t, p, front)
				// A peer that is not the balancer, sending a header of its own,
				// is refused: only 127.0.0.1 may send one.
				if got := dialFrom(t, "127.0.0.2", backend, "PROXY TCP4 127.0.0.2 127.0.0.1 1 2\r\nhello\n"); got != "" {
					t.Fatalf("a header from outside --proxy-protocol-from was served: %q", got)
				}
			})
		}
	}
}

func TestBehindNginxStream(t *testing.T) {
	nginx := needPeer(t, "nginx")
	module := "/usr/lib/nginx/modules/ngx_stream_module.so"
	if _, err := os.Stat(module); err != nil {
		t.Skipf("nginx's stream module is not installed (.ci/peers-lb.sh installs libnginx-mod-stream)")
	}
	for _, eng := range []string{"goroutine", "epoll"} {
		t.Run(eng, func(t *testing.T) {
			p, backend := serveBehind(t, eng)
			front := net.JoinHostPort("127.0.0.1", freePort(t))
			dir := t.TempDir()
			cfg := filepath.Join(dir, "nginx.conf")
			writeFile(t, cfg, fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 64; }
stream {
  server {
    listen %s;
    proxy_pass %s;
    proxy_protocol on;
    proxy_half_close on;
  }
}
`, module, dir, dir, front, backend))
			ng := startPeer(t, nil, nginx, "-p", dir, "-c", cfg)
			waitListening(t, ng, front)
			defer func() {
				if t.Failed() {
					b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
					t.Logf("nginx error.log:\n%s", b)
				}
			}()
			checkBehind(t, p, front)
		})
	}
}

// TestRelaySendProxy: sockit relay --send-proxy v1|v2 is the balancer in
// front of sockit serve --proxy-protocol, on both engines; a plain (TLS
// terminating) relay in front works the same.
func TestRelaySendProxy(t *testing.T) {
	for _, eng := range []string{"goroutine", "epoll"} {
		for _, v := range []string{"v1", "v2"} {
			t.Run(eng+"/"+v, func(t *testing.T) {
				p, backend := serveBehind(t, eng)
				r := startNC(t, ncOpts{}, "relay", "--send-proxy", v, "tcp://127.0.0.1:0", "tcp://"+backend)
				host, port := hostPort(t, r.endpoints(t, 1)[0])
				checkBehind(t, p, net.JoinHostPort(host, port))
			})
		}
	}
}

// TestProxyHeaderRefusalsCounted: garbage, a truncated header and a
// silent peer are closed within --proxy-header-timeout, logged and counted
// in /metrics as reason="proxy-header" (the exposition parsed with
// expfmt), while a good connection beside them is served at once.
func TestProxyHeaderRefusalsCounted(t *testing.T) {
	for _, eng := range []string{"goroutine", "epoll"} {
		t.Run(eng, func(t *testing.T) {
			p, addr := serveBehind(t, eng, "--proxy-header-timeout", "500ms", "--metrics", "0")
			ep := "tcp://" + addr
			url := metricsURL(t, p)
			silent, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer silent.Close()
			start := time.Now()
			if got := dialFrom(t, "127.0.0.1", addr, "PROXY TCP4 127.0.0.2 127.0.0.1 5000 7\r\nok\n"); got != "ok\n" {
				t.Fatalf("a good connection beside a silent one got %q", got)
			}
			for _, bad := range []string{"GET / HTTP/1.0\r\n\r\n", "PROXY TCP4 127.0.0.2", "\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"} {
				if got := dialFrom(t, "127.0.0.1", addr, bad); got != "" {
					t.Fatalf("%q was answered %q", bad, got)
				}
			}
			_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := silent.Read(make([]byte, 1)); err == nil {
				t.Fatal("the silent peer was answered")
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("the silent peer was closed after %v, want about 500ms", d)
			}
			labels := map[string]string{"engine": eng, "service": "echo", "endpoint": ep, "reason": "proxy-header"}
			var got float64
			waitFor(5*time.Second, func() bool {
				got = metricValue(t, scrapeFamilies(t, url), "sockit_connections_refused_total", labels)
				return got == 4
			})
			if got != 4 {
				t.Fatalf("proxy-header refusals = %v, want 4 (garbage, truncated, bad v2, silent)", got)
			}
			if accepted := metricValue(t, scrapeFamilies(t, url), "sockit_connections_accepted_total", map[string]string{"engine": eng, "service": "echo", "endpoint": ep}); accepted != 1 {
				t.Fatalf("accepted = %v, want 1", accepted)
			}
			if !strings.Contains(p.stderr.String(), "connection refused: PROXY protocol") {
				t.Fatalf("refusals not logged:\n%s", p.stderr.String())
			}
		})
	}
}

func TestProxyProtocolUsage(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "echo", "-l", "tcp://127.0.0.1:0", "--proxy-protocol-from", "10.0.0.0/8"},
		{"serve", "echo", "-l", "tcp://127.0.0.1:0", "--proxy-protocol=optional"},
		{"serve", "echo", "-l", "tcp://127.0.0.1:0", "--proxy-protocol=maybe"},
		{"serve", "echo", "-l", "tcp://127.0.0.1:0", "--proxy-protocol", "--proxy-protocol-from", "10.0.0.300"},
		{"serve", "echo", "-l", "udp://127.0.0.1:0", "--proxy-protocol"},
		{"relay", "--send-proxy", "v3", "tcp://127.0.0.1:0", "tcp://127.0.0.1:1"},
	} {
		_, stderr, code := runSockit(t, args...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line", args, code, stderr)
		}
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitListening waits until a peer accepts connections on addr. It
// dials from 127.0.0.2, the allowed client, so that nothing is refused.
func waitListening(t *testing.T, p *peer, addr string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: time.Second}
	if !waitFor(serveStartTimeout, func() bool {
		c, err := d.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("%s is not listening on %s\nstdout:\n%s\nstderr:\n%s", filepath.Base(p.cmd.Path), addr, p.stdout.String(), p.stderr.String())
	}
}

// TestServeHTTPBehindProxy: serve http --proxy-protocol logs the header's
// client, answers curl --haproxy-protocol (an independent header writer)
// and refuses a request without a header.
func TestServeHTTPBehindProxy(t *testing.T) {
	base, p := serveHTTPTCP(t, "--proxy-protocol", "-v")
	host, port := hostPort(t, base)
	addr := net.JoinHostPort(host, port)
	if got := dialFrom(t, "127.0.0.1", addr, "PROXY TCP4 192.0.2.9 198.51.100.1 40000 80\r\nGET /healthz HTTP/1.0\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.0 200") {
		t.Fatalf("request behind a header got %q", got)
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(p.stderr.String(), "peer=192.0.2.9:40000") }) {
		t.Fatalf("the access log does not name the header's client:\n%s", p.stderr.String())
	}
	curl := needPeer(t, "curl")
	out, _, code := runPeer(t, nil, curl, "-sS", "--max-time", "5", "--haproxy-protocol", "-o", "/dev/null", "-w", "%{http_code}", base+"/healthz")
	if code != 0 || out != "200" {
		t.Fatalf("curl --haproxy-protocol: exit %d, status %q", code, out)
	}
	if out, _, code := runPeer(t, nil, curl, "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", base+"/healthz"); code == 0 && out == "200" {
		t.Fatal("a request without a header was served")
	}
}

// TestListenExecPeerBehindProxy: listen --sh-exec behind --proxy-protocol
// gives the process the header's client as SOCKIT_PEER_ADDR.
func TestListenExecPeerBehindProxy(t *testing.T) {
	l := startNC(t, ncOpts{}, "listen", "--proxy-protocol", "--sh-exec", `echo "$SOCKIT_PEER_ADDR"`, "tcp://127.0.0.1:0")
	host, port := hostPort(t, l.endpoints(t, 1)[0])
	got := dialFrom(t, "127.0.0.1", net.JoinHostPort(host, port), "PROXY TCP4 192.0.2.9 198.51.100.1 40000 7000\r\n")
	if got != "192.0.2.9:40000\n" {
		t.Fatalf("the process saw SOCKIT_PEER_ADDR %q, want the header's 192.0.2.9:40000", got)
	}
}
