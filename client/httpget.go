package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultMaxRedirects is how many redirects HTTP follows when asked to and
// HTTPRequest.MaxRedirects is 0.
const DefaultMaxRedirects = 10

// maxWireHeader bounds what the wire recorder keeps of one header section.
const maxWireHeader = 1 << 20

// ErrTooManyRedirects is returned (wrapped) when HTTP stops following
// redirects at HTTPRequest.MaxRedirects.
var ErrTooManyRedirects = errors.New("sockit: too many redirects")

// HTTPRequest is one exchange of `sockit http get|head` (seed 001's
// print_http_header, done with net/http). The zero value is not usable: URL
// must be set.
type HTTPRequest struct {
	// Method is GET or HEAD; empty means GET.
	Method string
	// URL is an http:// or https:// URL.
	URL string
	// Header is added to the request. A Host entry sets the Host header; a
	// User-Agent entry replaces sockit's.
	Header http.Header
	// Timeout bounds the whole exchange: connecting, TLS, the response and
	// its body. Zero means no limit.
	Timeout time.Duration
	// UnixSocket, when set, is the path of a Unix socket every connection
	// goes to, whatever the URL's host (curl's --unix-socket); the URL still
	// gives the Host header, the path and the scheme (https means TLS over
	// the socket).
	UnixSocket string
	// TLS configures https; nil verifies the server with the system roots,
	// TLS 1.2 and later. An empty ServerName means the URL's host.
	TLS *tls.Config
	// FollowRedirects follows up to MaxRedirects redirects (0 means
	// DefaultMaxRedirects); without it a 3xx response is the answer.
	FollowRedirects bool
	MaxRedirects    int
	// Trace, when set, receives the exact bytes of each request's header
	// section as written to the connection and of each response's header
	// section as read from it (the plaintext, for https), in the order they
	// crossed the wire. Writes to it are serialised.
	Trace io.Writer
	// UserAgent is sent unless Header has one; empty means "sockit".
	UserAgent string
}

// HTTPResponse is what HTTP received.
type HTTPResponse struct {
	// Proto, StatusCode and Status ("200 OK") are the final response's.
	Proto      string
	StatusCode int
	Status     string
	// Header is the final response's header, parsed.
	Header http.Header
	// RawHeader is the status line and header section of every response
	// of the exchange (interim 1xx responses and each redirect followed
	// included), exactly as received, each ending with its empty line.
	RawHeader []byte
	// URL is the final URL (after redirects).
	URL string
	// BodyBytes is how many body bytes were written to the body writer.
	BodyBytes int64
	// Redirects is how many redirects were followed.
	Redirects int
	// Timing is when each step of the final request was done, as curl's
	// -w times are.
	Timing HTTPTiming
}

// HTTPTiming holds when each step of an exchange was done, each counted from
// the start of the exchange (curl's time_namelookup, time_connect,
// time_appconnect, time_starttransfer and time_total). With redirects
// followed, the steps are the final request's; a step that did not happen
// (no DNS for an IP address, no TLS for http) is zero.
type HTTPTiming struct {
	DNS       time.Duration // the name was resolved
	Connect   time.Duration // the TCP (or Unix) connection was up
	TLS       time.Duration // the TLS handshake was done
	FirstByte time.Duration // the first byte of the response arrived
	Total     time.Duration // the body was read (or the exchange failed)
}

// OK reports whether the status is 2xx or 3xx (exit status 0 of `sockit
// http`).
func (r *HTTPResponse) OK() bool { return r.StatusCode >= 200 && r.StatusCode < 400 }

// HTTP performs the request and streams the response body (none for HEAD) to
// body, which may be nil to discard it. A response with any status is a
// success for HTTP; the caller decides what a 4xx or 5xx means (see OK).
// Errors name the method and URL and say what failed: connection refused,
// TLS verification, a timeout ("timed out after"), too many redirects.
//
// Each connection carries one request (keep-alive is off), so the wire
// bytes of Trace and RawHeader belong to exactly one exchange each; HTTP/1.1
// only, no proxy from the environment, no transparent gzip (the body is
// what the server sent).
func HTTP(ctx context.Context, req HTTPRequest, body io.Writer) (*HTTPResponse, error) {
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = http.MethodGet
	}
	if method != http.MethodGet && method != http.MethodHead {
		return nil, fmt.Errorf("http: method %q: want GET or HEAD", req.Method)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return nil, fmt.Errorf("http: bad URL %q: %w", req.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("http: URL %q: scheme must be http or https", req.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("http: URL %q has no host", req.URL)
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	rec := &wireRecorder{trace: req.Trace, start: time.Now()}
	tr := newHTTPTransport(req.UnixSocket, req.TLS, rec)
	defer tr.CloseIdleConnections()
	maxRedirects := req.MaxRedirects
	if maxRedirects <= 0 {
		maxRedirects = DefaultMaxRedirects
	}
	hc := &http.Client{
		Transport: tr,
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if !req.FollowRedirects {
				return http.ErrUseLastResponse
			}
			if len(via) > maxRedirects {
				return fmt.Errorf("%w (%d)", ErrTooManyRedirects, maxRedirects)
			}
			return nil
		},
	}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSDone:              func(httptrace.DNSDoneInfo) { rec.mark(&rec.timing.DNS) },
		GotFirstResponseByte: func() { rec.mark(&rec.timing.FirstByte) },
	})
	hreq, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	ua := req.UserAgent
	if ua == "" {
		ua = "sockit"
	}
	hreq.Header.Set("User-Agent", ua)
	for k, vs := range req.Header {
		if http.CanonicalHeaderKey(k) == "Host" {
			if len(vs) > 0 {
				hreq.Host = vs[len(vs)-1]
			}
			continue
		}
		hreq.Header.Del(k)
		for _, v := range vs {
			hreq.Header.Add(k, v)
		}
	}
	fail := func(err error) error {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if req.Timeout > 0 && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s %s: timed out after %v: %w", method, req.URL, req.Timeout, err)
		}
		return fmt.Errorf("%s %s: %w", method, req.URL, err)
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, fail(err)
	}
	defer resp.Body.Close()
	out := &HTTPResponse{
		Proto:      resp.Proto,
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Header:     resp.Header,
		URL:        resp.Request.URL.String(),
	}
	for r := resp.Request; r.Response != nil; r = r.Response.Request {
		out.Redirects++
	}
	if method == http.MethodGet {
		if body == nil {
			body = io.Discard
		}
		out.BodyBytes, err = io.Copy(body, resp.Body)
	}
	rec.mark(&rec.timing.Total)
	out.RawHeader = rec.raw()
	out.Timing = rec.times()
	if err != nil {
		return out, fail(err)
	}
	return out, nil
}

// newHTTPTransport returns a transport whose every connection goes through
// rec (one request per connection).
func newHTTPTransport(unixSocket string, tlsCfg *tls.Config, rec *wireRecorder) *http.Transport {
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	dialRaw := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if unixSocket != "" {
			return dialer.DialContext(ctx, "unix", unixSocket)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialRaw(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			rec.mark(&rec.timing.Connect)
			return rec.wrap(c), nil
		},
		// TLS is done here rather than by the transport so that the
		// recorder sits above it and sees the plaintext.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialRaw(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			rec.mark(&rec.timing.Connect)
			cfg := &tls.Config{MinVersion: tls.VersionTLS12}
			if tlsCfg != nil {
				cfg = tlsCfg.Clone()
			}
			cfg.NextProtos = []string{"http/1.1"}
			if cfg.ServerName == "" {
				host, _, err := net.SplitHostPort(addr)
				if err != nil {
					host = addr
				}
				cfg.ServerName = host
			}
			tc := tls.Client(c, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = c.Close()
				return nil, fmt.Errorf("tls: %w", err)
			}
			rec.mark(&rec.timing.TLS)
			return rec.wrap(tc), nil
		},
		DisableKeepAlives:     true,
		DisableCompression:    true,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 0,
	}
}

// wireRecorder keeps (and traces) the header sections that cross its
// connections.
type wireRecorder struct {
	trace io.Writer
	start time.Time

	mu      sync.Mutex
	headers []byte // every response header section, as received
	timing  HTTPTiming
}

// mark sets one of timing's steps to now. Each connection of a redirect
// chain marks them again, so they end up the final request's.
func (r *wireRecorder) mark(step *time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if step == &r.timing.Connect {
		r.timing.TLS, r.timing.FirstByte = 0, 0 // a new connection
	}
	*step = time.Since(r.start)
}

func (r *wireRecorder) times() HTTPTiming {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.timing
}

func (r *wireRecorder) wrap(c net.Conn) net.Conn { return &wireConn{Conn: c, rec: r} }

func (r *wireRecorder) emit(b []byte, response bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if response {
		r.headers = append(r.headers, b...)
	}
	if r.trace != nil {
		_, _ = r.trace.Write(b)
	}
}

func (r *wireRecorder) raw() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.headers)
}

// wireConn records the request header section written to it and the
// response header sections read from it (interim 1xx ones and the final
// one). It carries one request.
type wireConn struct {
	net.Conn
	rec *wireRecorder

	wmu   sync.Mutex
	wbuf  []byte
	wdone bool

	rbuf  []byte // read only by the transport's one reading goroutine
	rdone bool
}

var headerEnd = []byte("\r\n\r\n")

// Write records before writing, so that the request is traced before the
// response it causes can be read.
func (c *wireConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	if !c.wdone {
		c.wbuf = append(c.wbuf, p...)
		if i := bytes.Index(c.wbuf, headerEnd); i >= 0 {
			c.rec.emit(c.wbuf[:i+len(headerEnd)], false)
			c.wbuf, c.wdone = nil, true
		} else if len(c.wbuf) > maxWireHeader {
			c.wbuf, c.wdone = nil, true
		}
	}
	c.wmu.Unlock()
	return c.Conn.Write(p)
}

func (c *wireConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.rdone {
		c.rbuf = append(c.rbuf, p[:n]...)
		for !c.rdone {
			i := bytes.Index(c.rbuf, headerEnd)
			if i < 0 {
				if len(c.rbuf) > maxWireHeader {
					c.rbuf, c.rdone = nil, true
				}
				break
			}
			block := c.rbuf[:i+len(headerEnd)]
			c.rec.emit(block, true)
			// "HTTP/1.1 1xx" is an interim response: another header
			// section follows.
			interim := len(block) > 9 && block[9] == '1'
			c.rbuf = c.rbuf[i+len(headerEnd):]
			if !interim {
				c.rbuf, c.rdone = nil, true
			}
		}
	}
	return n, err
}
