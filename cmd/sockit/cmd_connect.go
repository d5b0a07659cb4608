package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sockit/sockit/client"
	"github.com/sockit/sockit/endpoint"
)

func init() { extraCommands = append(extraCommands, newConnectCommand) }

// connectOptions are sockit connect's flags.
type connectOptions struct {
	timeout     time.Duration
	idleTimeout time.Duration
	noShutdown  bool
	crlf        bool
	hex         bool
	sendOnly    bool
	recvOnly    bool
	source      string
	probe       bool
	linger      time.Duration
	tls         clientTLSFlags
	udp         bool   // -u
	wait        string // -w SECS
	json        bool   // -z --json
}

func newConnectCommand(g *globals) *cobra.Command {
	var opts connectOptions
	cmd := &cobra.Command{
		Use:   "connect ENDPOINT | HOST PORT",
		Short: "netcat: pipe stdin to a socket and the socket to stdout",
		Long: `connect connects to ENDPOINT and copies stdin to the socket and the socket to
stdout. At the end of stdin it half-closes its write side (unless
--no-shutdown) and keeps reading until the peer closes; it exits 0 when the
peer closed cleanly, 1 when the connection failed (refused, reset, timed
out, TLS verification failed), 130 on SIGINT.

On udp and unixgram endpoints each stdin line (line ending removed) is one
datagram and each datagram received is printed on a line of its own; after
the end of stdin it waits --linger for late replies. unixpacket maps lines to
packets the same way, as a connection.

The netcat form works too: HOST PORT as two arguments, -u for UDP, -w SECS as
the connect and idle timeout, -z HOST LOW-HIGH to scan a port range (a line
per open port), and -v for nc's "Connection to HOST PORT port [tcp]
succeeded!" on stderr.

tls:// endpoints verify the server by default (system roots, or --ca);
--pin sha256:HEX accepts exactly the certificate a --tls-self-signed server
printed.`,
		Example: `  # against sockit serve echo: prints hi, exits 0
  printf 'hi\n' | sockit connect tcp://127.0.0.1:7788

  # is the port open? (exit 0 or 1)
  sockit connect -z 127.0.0.1:22

  # the netcat forms: HOST PORT, UDP, a port scan
  printf 'hi\n' | sockit connect -v -w 3 127.0.0.1 7788
  printf 'Michael\n' | sockit connect -u 127.0.0.1 7788
  sockit connect -z 127.0.0.1 7000-7010

  # a UDP exchange, a line per datagram
  printf 'Michael\nTracy\n' | sockit connect udp://127.0.0.1:7788

  # TLS to a server with a self-signed certificate
  sockit connect --pin sha256:3f1c... tls://127.0.0.1:8443

  # see both directions as a hex dump on stderr
  printf 'GET / HTTP/1.0\r\n\r\n' | sockit connect --hex example.com:80 >/dev/null`,
		Args: netcatArgs("ENDPOINT", false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.wait != "" {
				w, err := parseWait(opts.wait)
				if err != nil {
					return err
				}
				if !cmd.Flags().Changed("timeout") {
					opts.timeout = w
				}
				if !cmd.Flags().Changed("idle-timeout") {
					opts.idleTimeout = w
				}
			}
			if opts.probe && len(args) == 2 && strings.Contains(args[1], "-") {
				return runScan(cmd.Context(), g, args[0], args[1], opts)
			}
			arg, err := netcatEndpoint(args, opts.udp, false)
			if err != nil {
				return err
			}
			return runConnect(cmd.Context(), g, arg, opts)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.timeout, "timeout", 10*time.Second, "how long connecting (and a TLS handshake) may take; -z: how long to wait for a UDP port's refusal")
	f.DurationVar(&opts.idleTimeout, "idle-timeout", 0, "close after this long with no data either way (0: never); exits 1")
	f.BoolVar(&opts.noShutdown, "no-shutdown", false, "do not half-close the socket at the end of stdin")
	f.BoolVarP(&opts.crlf, "crlf", "C", false, "send line endings as CRLF")
	f.BoolVar(&opts.hex, "hex", false, "hex dump of both directions to stderr (> sent, < received)")
	f.BoolVar(&opts.sendOnly, "send-only", false, "only send stdin; ignore what arrives and exit at the end of stdin")
	f.BoolVar(&opts.recvOnly, "recv-only", false, "only receive; never read stdin nor send")
	f.StringVar(&opts.source, "source", "", "local address to connect from, ADDR or ADDR:PORT (a path for unixgram)")
	f.BoolVarP(&opts.probe, "zero", "z", false, "only test that the endpoint accepts a connection: exit 0 (open) or 1")
	f.DurationVar(&opts.linger, "linger", client.DefaultLinger, "udp, unixgram: how long to wait for late replies after the end of stdin; streams: how long stdin may pause once the peer has closed")
	f.BoolVarP(&opts.udp, "udp", "u", false, "UDP: a bare HOST:PORT or HOST PORT means udp://")
	f.StringVarP(&opts.wait, "wait", "w", "", "netcat's -w SECS: the connect timeout and the idle timeout")
	f.BoolVar(&opts.json, "json", false, "with -z: print each port open or closed as one sockit.connect/v1 JSON document")
	opts.tls.register(f)
	return cmd
}

// runScan is -z HOST LOW-HIGH: a line per open port on stdout (nc -zv's
// line), exit 0 when one was open, 1 when none was.
func runScan(ctx context.Context, g *globals, host, ports string, opts connectOptions) error {
	lo, hi, ok := portRange(ports)
	if !ok {
		return usagef("-z %s %s: want a port or a range LOW-HIGH", host, ports)
	}
	if hi-lo >= 1<<12 {
		return usagef("-z: %d ports is more than a scan of 4096 at a time", hi-lo+1)
	}
	if opts.tls.used() {
		return usagef("TLS options apply to tls:// endpoints; a scan is of tcp or udp ports")
	}
	var eps []endpoint.Endpoint
	for port := lo; port <= hi; port++ {
		arg, err := netcatEndpoint([]string{host, strconv.Itoa(port)}, opts.udp, false)
		if err != nil {
			return err
		}
		ep, err := endpoint.Parse(arg)
		if err != nil {
			return usageError{err}
		}
		eps = append(eps, ep)
	}
	d := endpoint.Dialer{Timeout: opts.timeout, Source: opts.source}
	if open, err := probe(ctx, g, eps, d, opts, true); err != nil || open > 0 {
		return err
	}
	return fmt.Errorf("no open port on %s in %d-%d", host, lo, hi)
}

// probe is -z: it tries each endpoint in turn and reports it open or
// closed. A scan (a port range) prints nc's line for each open port on
// stdout; a single endpoint prints it on stderr with -v. --json prints the
// sockit.connect/v1 document instead. It returns how many were open, and
// for a single endpoint the reason it was closed.
func probe(ctx context.Context, g *globals, eps []endpoint.Endpoint, d endpoint.Dialer, opts connectOptions, scan bool) (int, error) {
	wait := opts.timeout
	if wait <= 0 || wait > time.Second {
		wait = time.Second
	}
	doc := connectJSON{Schema: "sockit.connect/v1", TimeoutSeconds: opts.timeout.Seconds(), Results: []connectJSONResult{}}
	var closed error
	for _, ep := range eps {
		start := time.Now()
		err := client.Probe(ctx, ep, d, wait)
		if ctx.Err() != nil {
			return doc.Open, ctx.Err()
		}
		r := connectJSONResult{Endpoint: ep.String(), Open: err == nil, Seconds: time.Since(start).Seconds()}
		if _, p, perr := net.SplitHostPort(ep.Address); perr == nil && !ep.IsUnix() {
			r.Port, _ = strconv.Atoi(p)
		}
		if err != nil {
			closed = err
			r.Error = oneLine(err.Error())
			doc.Closed++
			g.logger.Debug("closed", "endpoint", ep.String(), "err", err)
		} else {
			doc.Open++
			g.logger.Debug("open", "endpoint", ep.String())
			switch {
			case opts.json:
			case scan:
				ncConnected(g.stdout, ep)
			case g.verbose >= 1:
				ncConnected(g.stderr, ep)
			}
		}
		doc.Results = append(doc.Results, r)
	}
	if opts.json {
		if err := writeJSON(g.stdout, doc); err != nil {
			return doc.Open, err
		}
	}
	if scan {
		return doc.Open, nil
	}
	return doc.Open, closed
}

// connectJSON is the document of connect -z --json (docs/json.md).
type connectJSON struct {
	Schema         string              `json:"schema"`
	TimeoutSeconds float64             `json:"timeout_seconds"`
	Results        []connectJSONResult `json:"results"`
	Open           int                 `json:"open"`
	Closed         int                 `json:"closed"`
}

type connectJSONResult struct {
	Endpoint string  `json:"endpoint"`
	Port     int     `json:"port,omitempty"`
	Open     bool    `json:"open"`
	Seconds  float64 `json:"seconds"`
	Error    string  `json:"error,omitempty"`
}

// runConnect checks the options, connects and pipes.
func runConnect(ctx context.Context, g *globals, arg string, opts connectOptions) error {
	ep, err := endpoint.Parse(arg)
	if err != nil {
		return usageError{err}
	}
	if ep.Scheme == "fd" {
		return usagef("connect cannot use %q: fd:// names an inherited listener", arg)
	}
	if opts.source != "" && ep.IsUnix() && ep.Scheme != "unixgram" {
		return usagef("--source applies to IP and unixgram endpoints, not %s", ep.Scheme)
	}
	if opts.sendOnly && opts.recvOnly {
		return usagef("--send-only and --recv-only exclude each other")
	}
	if opts.timeout < 0 || opts.idleTimeout < 0 || opts.linger < 0 {
		return usagef("durations cannot be negative")
	}
	d := endpoint.Dialer{Timeout: opts.timeout, Source: opts.source}
	if ep.IsTLS() {
		if d.TLS, err = opts.tls.config(""); err != nil {
			return err
		}
	} else if opts.tls.used() {
		return usagef("TLS options apply to tls:// endpoints, not %s", ep.Scheme)
	}
	if opts.probe {
		_, err := probe(ctx, g, []endpoint.Endpoint{ep}, d, opts, false)
		return err
	}
	if opts.json {
		return usagef("--json applies to -z (a probe or a port scan)")
	}
	cfg := client.ConnectConfig{
		Endpoint: ep,
		Dialer:   d,
		PipeConfig: client.PipeConfig{
			NoShutdown:  opts.noShutdown,
			CRLF:        opts.crlf,
			SendOnly:    opts.sendOnly,
			RecvOnly:    opts.recvOnly,
			IdleTimeout: opts.idleTimeout,
			Linger:      opts.linger,
		},
	}
	if opts.hex {
		cfg.Hex = g.stderr
	}
	if g.verbose >= 1 {
		cfg.OnConnected = func(net.Conn) { ncConnected(g.stderr, ep) }
	}
	var in io.Reader = g.stdin
	if in == nil {
		in = eofReader{}
	}
	g.logger.Debug("connect", "endpoint", ep.String())
	return client.Connect(ctx, cfg, in, g.stdout)
}

// eofReader is an empty input.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
