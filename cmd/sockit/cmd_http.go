package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sockit/sockit/client"
)

func init() { extraCommands = append(extraCommands, newHTTPCommand) }

// httpOptions are sockit http get/head's flags.
type httpOptions struct {
	output     string
	headers    []string
	timeout    time.Duration
	unixSocket string
	trace      bool
	follow     bool
	json       bool
	tls        clientTLSFlags
}

func (o *httpOptions) register(fs *pflag.FlagSet) {
	fs.StringVarP(&o.output, "output", "o", "", "write what would go to stdout (get: the body, head: the headers) to this file instead")
	fs.StringArrayVarP(&o.headers, "header", "H", nil, "add a request header 'Name: value' (repeatable; 'Host: x' sets the Host header)")
	fs.DurationVar(&o.timeout, "timeout", 0, "limit for the whole exchange: connecting, TLS, response and body (0: none)")
	fs.StringVar(&o.unixSocket, "unix-socket", "", "connect to this Unix socket instead of the URL's host (as curl)")
	fs.BoolVar(&o.trace, "trace", false, "print the exact request and response header bytes, as on the wire, to stderr")
	fs.BoolVarP(&o.follow, "location", "L", false, "follow redirects (at most 10)")
	fs.BoolVar(&o.json, "json", false, "print status, headers and timings as one sockit.http/v1 JSON document (get: the body goes to -o, or is only counted)")
	o.tls.register(fs)
}

func newHTTPCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "http get|head URL",
		Short: "an HTTP/1.1 client: print a response's body (get) or its headers (head)",
		Long: `http sends one GET or HEAD request (HTTP/1.1, net/http underneath) and prints
the body (get) or the status line and headers exactly as received (head). It
exits 0 on a 2xx or 3xx status and 1 otherwise (also on a failed connection,
TLS verification or timeout), with one line on stderr saying why.

Redirects are not followed unless -L is given. https verifies the server by
default (system roots, or --ca FILE); --insecure skips that. --trace prints
the request and response header sections on stderr byte for byte as they
crossed the connection (the plaintext for https), seed 001's
print_http_header. Each request uses a connection of its own.

--json prints one sockit.http/v1 document (docs/json.md) instead: the
status, the headers, the body's size and when each step was done, as curl's
-w times (DNS, connect, TLS, first byte, total); the body then goes only to
-o FILE.`,
		Example: `  # seed 001's print_http_header, against sockit serve http
  sockit http head http://127.0.0.1:7788/

  # the body to stdout, the wire headers to stderr
  sockit http get --trace http://127.0.0.1:7788/hello/world

  # a server on a Unix socket; the URL gives the Host header and path
  sockit http get --unix-socket /tmp/http.sock http://localhost/healthz

  # https with a private CA, a header, a file
  sockit http get --ca ca.pem -H 'Accept: text/html' -o index.html https://127.0.0.1:8443/`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("http %s: want get or head", args[0])
			}
			return usagef("http: want get or head")
		},
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		var opts httpOptions
		name := strings.ToLower(method)
		sub := &cobra.Command{
			Use:   name + " URL",
			Short: map[string]string{"get": "GET a URL, body to stdout", "head": "HEAD a URL, status line and headers to stdout"}[name],
			Long:  cmd.Long,
			Example: map[string]string{
				"get":  "  sockit http get http://127.0.0.1:7788/hello/world\n  sockit http get -o page.html -L https://example.com/",
				"head": "  sockit http head http://127.0.0.1:7788/\n  sockit http head --trace --insecure https://127.0.0.1:8443/",
			}[name],
			Args: positional(false, "URL"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runHTTP(cmd.Context(), g, method, args[0], opts)
			},
		}
		opts.register(sub.Flags())
		cmd.AddCommand(sub)
	}
	return cmd
}

// runHTTP performs one request and prints what it got.
func runHTTP(ctx context.Context, g *globals, method, rawURL string, opts httpOptions) error {
	if opts.timeout < 0 {
		return usagef("--timeout cannot be negative")
	}
	u := normalizeURL(rawURL, opts.unixSocket != "")
	if pu, err := url.Parse(u); err != nil {
		return usagef("bad URL %q: %v", rawURL, err)
	} else if pu.Scheme != "http" && pu.Scheme != "https" {
		return usagef("URL %q: the scheme must be http or https", rawURL)
	} else if pu.Host == "" {
		return usagef("URL %q has no host", rawURL)
	}
	hdr, err := parseHeaders(opts.headers)
	if err != nil {
		return err
	}
	tlsCfg, err := opts.tls.config("")
	if err != nil {
		return err
	}
	req := client.HTTPRequest{
		Method:          method,
		URL:             u,
		Header:          hdr,
		Timeout:         opts.timeout,
		UnixSocket:      opts.unixSocket,
		TLS:             tlsCfg,
		FollowRedirects: opts.follow,
	}
	if opts.trace {
		req.Trace = g.stderr
	}
	out := g.stdout
	if opts.json {
		out = io.Discard
	}
	var file *os.File
	if opts.output != "" && opts.output != "-" {
		if file, err = os.Create(opts.output); err != nil {
			return fmt.Errorf("-o: %w", err)
		}
		defer file.Close()
		out = file
	}
	var body io.Writer
	if method == http.MethodGet {
		body = out
	}
	g.logger.Debug("http", "method", method, "url", u)
	start := time.Now()
	resp, err := client.HTTP(ctx, req, body)
	if opts.json {
		return writeHTTPJSON(ctx, g, method, u, resp, err, file, time.Since(start))
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return errInterrupted
		}
		if resp != nil && method == http.MethodHead {
			_, _ = out.Write(resp.RawHeader)
		}
		return err
	}
	if method == http.MethodHead {
		raw := resp.RawHeader
		if len(raw) == 0 {
			raw = formatHeader(resp)
		}
		if _, err := out.Write(raw); err != nil {
			return err
		}
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return fmt.Errorf("-o: %w", err)
		}
	}
	if !resp.OK() {
		return fmt.Errorf("%s %s: %s", method, u, resp.Status)
	}
	return nil
}

// normalizeURL adds http:// to a URL without a scheme (as curl does), and
// a host to a bare path when a Unix socket is given.
func normalizeURL(s string, unix bool) string {
	if unix && strings.HasPrefix(s, "/") {
		return "http://localhost" + s
	}
	if !strings.Contains(s, "://") {
		return "http://" + s
	}
	return s
}

// parseHeaders parses -H 'Name: value' flags; a bad one is a usage error.
func parseHeaders(vals []string) (http.Header, error) {
	h := http.Header{}
	for _, v := range vals {
		name, value, ok := strings.Cut(v, ":")
		if !ok || !validHeaderName(name) {
			return nil, usagef("-H %q: want 'Name: value'", v)
		}
		value = strings.TrimSpace(value)
		if strings.ContainsAny(value, "\r\n\x00") {
			return nil, usagef("-H %q: a header value cannot hold CR, LF or NUL", v)
		}
		h.Add(name, value)
	}
	return h, nil
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// formatHeader writes a response's status line and headers when the wire
// bytes were not recorded.
func formatHeader(resp *client.HTTPResponse) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\r\n", resp.Proto, resp.Status)
	_ = resp.Header.Write(&b)
	b.WriteString("\r\n")
	return []byte(b.String())
}

// httpJSON is the document of http get|head --json (docs/json.md).
type httpJSON struct {
	Schema    string              `json:"schema"`
	Method    string              `json:"method"`
	URL       string              `json:"url"`
	FinalURL  string              `json:"final_url,omitempty"`
	Proto     string              `json:"proto,omitempty"`
	Status    int                 `json:"status"`
	Reason    string              `json:"reason,omitempty"`
	Headers   map[string][]string `json:"headers"`
	Bytes     int64               `json:"bytes"`
	Redirects int                 `json:"redirects"`
	Timings   httpJSONTimings     `json:"timings"`
	OK        bool                `json:"ok"`
	Error     string              `json:"error,omitempty"`
}

type httpJSONTimings struct {
	DNS       float64 `json:"dns_seconds"`
	Connect   float64 `json:"connect_seconds"`
	TLS       float64 `json:"tls_seconds"`
	FirstByte float64 `json:"first_byte_seconds"`
	Total     float64 `json:"total_seconds"`
}

// writeHTTPJSON prints the document of one exchange and returns the
// command's outcome: the exchange's error, or a non-2xx/3xx status.
func writeHTTPJSON(ctx context.Context, g *globals, method, u string, resp *client.HTTPResponse, err error, file *os.File, took time.Duration) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return errInterrupted
	}
	doc := httpJSON{Schema: "sockit.http/v1", Method: method, URL: u, Headers: map[string][]string{}}
	doc.Timings.Total = took.Seconds()
	if resp != nil {
		doc.FinalURL, doc.Proto, doc.Status = resp.URL, resp.Proto, resp.StatusCode
		_, doc.Reason, _ = strings.Cut(resp.Status, " ")
		for k, v := range resp.Header {
			doc.Headers[k] = v
		}
		doc.Bytes, doc.Redirects = resp.BodyBytes, resp.Redirects
		t := resp.Timing
		doc.Timings = httpJSONTimings{t.DNS.Seconds(), t.Connect.Seconds(), t.TLS.Seconds(), t.FirstByte.Seconds(), t.Total.Seconds()}
	}
	if err == nil && file != nil {
		if cerr := file.Close(); cerr != nil {
			err = fmt.Errorf("-o: %w", cerr)
		}
	}
	if err == nil && !resp.OK() {
		err = fmt.Errorf("%s %s: %s", method, u, resp.Status)
	}
	doc.OK = err == nil
	if err != nil {
		doc.Error = oneLine(err.Error())
	}
	if werr := writeJSON(g.stdout, doc); werr != nil && err == nil {
		return werr
	}
	return err
}
