package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/sockit/sockit/client"
	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/server"
)

func init() { extraCommands = append(extraCommands, newListenCommand) }

// listenOptions are sockit listen's flags.
type listenOptions struct {
	server     serverFlags
	keepOpen   bool
	execCmd    string
	shExec     string
	noShutdown bool
	crlf       bool
	hex        bool
	sendOnly   bool
	recvOnly   bool
	udp        bool // -u
}

func newListenCommand(g *globals) *cobra.Command {
	var opts listenOptions
	cmd := &cobra.Command{
		Use:   "listen ENDPOINT | [HOST] PORT",
		Short: "nc -l: accept a connection and pipe it to stdio, or to a process (--exec)",
		Long: `listen accepts one connection on ENDPOINT, copies it to stdout and stdin to it
(half-closing at the end of stdin, unless --no-shutdown), and exits when it
closes: 0 if the peer closed cleanly, 1 if the connection failed, 130 on
SIGINT. "listening ENDPOINT" (with the real port) goes to stderr, since
stdout carries the data.

-k keeps accepting, like ncat -l -k: connections are served at the same time,
what each sends goes to stdout and stdin goes to all of them; it runs until
SIGINT/SIGTERM and then exits 0.

--exec 'CMD ARGS' (split into words like a shell would, but no shell runs) or
--sh-exec 'TEXT' (sh -c TEXT) runs a process per connection, its stdin and
stdout wired to the socket, its stderr to the log, with SOCKIT_PEER_ADDR,
SOCKIT_LOCAL_ADDR and SOCKIT_PROTO in its environment (inetd). The peer's
half-close closes only the process's stdin, so its output still reaches the
peer; its exit closes the connection; a reset or --idle-timeout ends it
(SIGTERM, SIGKILL 2s later). Without -k one connection is served.

On udp and unixgram endpoints each datagram received is printed on a line of
its own and each stdin line goes as one datagram to the peer heard from last
(-k: to every peer heard from).

The netcat form works too: [HOST] PORT (a PORT alone, or -l PORT, listens on
every interface, as nc -l PORT does), -u for UDP, and -v for nc's "Listening on
HOST PORT" and "Connection received on HOST PORT" on stderr.

The server options (--max-conns, --allow/--deny, --idle-timeout,
--read-timeout, --concurrency, TLS) mean what they mean for sockit serve.`,
		Example: `  # one connection, like nc -l
  sockit listen tcp://127.0.0.1:9000

  # the same in netcat's form, with its lines on stderr
  sockit listen -v 127.0.0.1 9000

  # an upper-casing service, a process per connection
  sockit listen -k --exec 'tr a-z A-Z' tcp://127.0.0.1:9000

  # a shell pipeline per connection, only for local peers, at most 10
  sockit listen -k --sh-exec 'date; cat' --allow 127.0.0.0/8 --max-conns 10 :9000

  # TLS with a certificate made at start (its fingerprint is logged)
  sockit listen --tls-self-signed tls://127.0.0.1:8443`,
		Args: netcatArgs("ENDPOINT", true),
		RunE: func(cmd *cobra.Command, args []string) error {
			var vals []string
			if len(args) > 0 {
				v, err := netcatEndpoint(args, opts.udp, true)
				if err != nil {
					return err
				}
				vals = append(vals, v)
			}
			for _, l := range opts.server.listen {
				v, err := netcatEndpoint([]string{l}, opts.udp, true)
				if err != nil {
					return err
				}
				vals = append(vals, v)
			}
			opts.server.listen = nil
			return runListen(cmd.Context(), g, vals, opts)
		},
	}
	f := cmd.Flags()
	opts.server.register(f, serverDefaults{})
	f.BoolVarP(&opts.keepOpen, "keep-open", "k", false, "keep accepting connections, served at the same time")
	f.StringVar(&opts.execCmd, "exec", "", "run CMD ARGS per connection (split into words, no shell)")
	f.StringVar(&opts.shExec, "sh-exec", "", "run sh -c TEXT per connection")
	f.BoolVar(&opts.noShutdown, "no-shutdown", false, "do not half-close the connection at the end of stdin")
	f.BoolVarP(&opts.crlf, "crlf", "C", false, "send line endings as CRLF")
	f.BoolVar(&opts.hex, "hex", false, "hex dump of both directions to stderr (> sent, < received)")
	f.BoolVar(&opts.sendOnly, "send-only", false, "only send stdin; ignore what arrives")
	f.BoolVar(&opts.recvOnly, "recv-only", false, "only receive; never read stdin nor send")
	f.BoolVarP(&opts.udp, "udp", "u", false, "UDP: a bare PORT, HOST PORT or HOST:PORT means udp://")
	return cmd
}

// runListen checks the options, listens and serves.
func runListen(ctx context.Context, g *globals, args []string, opts listenOptions) error {
	vals := append(append([]string(nil), args...), opts.server.listen...)
	if len(vals) == 0 {
		return usagef("listen needs an ENDPOINT")
	}
	eps, err := parseEndpoints(vals)
	if err != nil {
		return err
	}
	if opts.execCmd != "" && opts.shExec != "" {
		return usagef("--exec and --sh-exec exclude each other")
	}
	if opts.sendOnly && opts.recvOnly {
		return usagef("--send-only and --recv-only exclude each other")
	}
	var argv []string
	switch {
	case opts.execCmd != "":
		if argv, err = client.SplitWords(opts.execCmd); err != nil {
			return usagef("--exec: %v", err)
		}
		if _, err := exec.LookPath(argv[0]); err != nil {
			return usagef("--exec: %v", err)
		}
	case opts.shExec != "":
		argv = []string{"/bin/sh", "-c", opts.shExec}
	}
	packets := 0
	for _, ep := range eps {
		if packetEndpoint(ep) {
			packets++
		}
	}
	if packets > 0 && (argv != nil || len(eps) > 1) {
		return usagef("a datagram endpoint is listened on alone and without --exec")
	}
	if !opts.keepOpen && argv == nil && len(eps) > 1 {
		return usagef("several endpoints need -k or --exec")
	}
	opts.server.tlsHosts = endpointHosts(eps)
	srv, lc, err := opts.server.buildFor(g, eps)
	if err != nil {
		return err
	}
	bounds, err := listenAll(ctx, lc, eps)
	if err != nil {
		return err
	}
	// stdout carries the data: the listening lines go to stderr.
	gl := *g
	gl.stdout = g.stderr
	stdin := g.stdin
	if stdin == nil {
		stdin = eofReader{}
	}
	pc := client.PipeConfig{
		NoShutdown:  opts.noShutdown,
		CRLF:        opts.crlf,
		SendOnly:    opts.sendOnly,
		RecvOnly:    opts.recvOnly,
		IdleTimeout: opts.server.idleTimeout,
		ReadTimeout: opts.server.readTimeout,
	}
	if opts.hex {
		pc.Hex = g.stderr
	}

	if g.verbose >= 1 { // nc's lines
		for _, b := range bounds {
			fmt.Fprintf(g.stderr, "Listening on %s\n", ncHostPort(b.ep.Address))
		}
	}
	if packets > 0 {
		return listenPackets(ctx, &gl, bounds[0], stdin, g.stdout, opts, pc)
	}

	// Without -k one connection is served, then the command ends.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var taken atomic.Bool
	var result error
	var resultMu sync.Mutex
	single := !opts.keepOpen
	claim := func(c net.Conn) bool {
		if !single {
			return true
		}
		if taken.CompareAndSwap(false, true) {
			return true
		}
		g.logger.Info("already connected; connection closed", "peer", c.RemoteAddr().String())
		return false
	}
	// A single connection ends with the command: SIGINT ends it at once
	// instead of after the grace period.
	connCtx := func(hctx context.Context) (context.Context, func()) {
		if !single {
			return hctx, func() {}
		}
		cctx, cancel := context.WithCancel(hctx)
		stop := context.AfterFunc(ctx, cancel)
		return cctx, func() { stop(); cancel() }
	}
	finish := func(err error) {
		if !single {
			return
		}
		resultMu.Lock()
		result = err
		resultMu.Unlock()
		stop()
	}

	// serveOne serves the one connection that ends the command (without -k):
	// claim it, run, finish with its result. (The server completed its TLS
	// handshake: a client that failed it does not end the command.)
	serveOne := func(run func(ctx context.Context, c net.Conn, peer string) error) server.HandlerFunc {
		return func(hctx context.Context, c net.Conn) {
			if !claim(c) {
				return
			}
			hctx, done := connCtx(hctx)
			defer done()
			finish(run(hctx, c, c.RemoteAddr().String()))
		}
	}
	var handler server.HandlerFunc
	switch {
	case argv != nil:
		handler = serveOne(func(hctx context.Context, c net.Conn, peer string) error {
			err := client.Exec(hctx, c, client.ExecConfig{
				Argv:        argv,
				Proto:       protoOf(c, eps),
				Logger:      g.logger,
				IdleTimeout: opts.server.idleTimeout,
				ReadTimeout: opts.server.readTimeout,
			})
			logExec(g, peer, err)
			return err
		})
	case opts.keepOpen:
		hub := client.NewHub(g.stdout)
		if !opts.recvOnly {
			go func() { _, _ = hub.Broadcast(stdin) }()
		}
		handler = func(hctx context.Context, c net.Conn) {
			peer := c.RemoteAddr().String()
			g.logger.Debug("connection", "peer", peer)
			err := hub.Serve(hctx, c, pc)
			logEnd(g, peer, err)
		}
	default:
		handler = serveOne(func(hctx context.Context, c net.Conn, peer string) error {
			g.logger.Debug("connection", "peer", peer)
			return client.Pipe(hctx, c, stdin, g.stdout, pc)
		})
	}
	if g.verbose >= 1 {
		inner := handler
		handler = func(hctx context.Context, c net.Conn) {
			fmt.Fprintf(g.stderr, "Connection received on %s\n", ncHostPort(c.RemoteAddr().String()))
			inner(hctx, c)
		}
	}
	err = serveUntilSignal(sctx, &gl, srv, bounds, &opts.server, "listen", func(b bound) error {
		return srv.ServeFunc(b.ln, handler)
	})
	if err != nil {
		return err
	}
	if !single {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // interrupted: 130
	}
	resultMu.Lock()
	defer resultMu.Unlock()
	var ee *exec.ExitError
	if errors.As(result, &ee) {
		return nil // the child's own status is logged, not ours
	}
	return result
}

// listenPackets serves a datagram endpoint until ctx ends or the idle
// timeout passes.
func listenPackets(ctx context.Context, g *globals, b bound, stdin io.Reader, stdout io.Writer, opts listenOptions, pc client.PipeConfig) error {
	defer b.close()
	g.logger.Info("serving", "endpoints", 1)
	if _, err := io.WriteString(g.stdout, "listening "+b.ep.String()+"\n"); err != nil {
		return err
	}
	cfg := client.PacketListenConfig{
		All:         opts.keepOpen,
		SendOnly:    opts.sendOnly,
		CRLF:        opts.crlf,
		Hex:         pc.Hex,
		IdleTimeout: pc.IdleTimeout,
	}
	if opts.recvOnly {
		stdin = nil
	}
	return client.ListenPackets(ctx, b.pc, stdin, stdout, cfg)
}

// protoOf names the transport of c for SOCKIT_PROTO: the scheme of the
// endpoint it was accepted on.
func protoOf(c net.Conn, eps []endpoint.Endpoint) string {
	if len(eps) == 1 {
		return eps[0].Scheme
	}
	la := c.LocalAddr()
	for _, ep := range eps {
		if ep.Network == la.Network() || (ep.IsTLS() && la.Network() == "tcp") {
			return ep.Scheme
		}
	}
	return la.Network()
}

// endpointHosts returns the hosts of the IP endpoints, for a self-signed
// certificate.
func endpointHosts(eps []endpoint.Endpoint) []string {
	var hosts []string
	for _, ep := range eps {
		if ep.IsUnix() || ep.Address == "" {
			continue
		}
		if h, _, err := net.SplitHostPort(ep.Address); err == nil && !slices.Contains(hosts, h) {
			hosts = append(hosts, h) // each host once
		}
	}
	return hosts
}

// logExec logs how a --exec connection ended.
func logExec(g *globals, peer string, err error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		g.logger.Debug("exec done", "peer", peer)
	case errors.As(err, &ee):
		g.logger.Info("exec exited", "peer", peer, "status", strings.TrimPrefix(ee.Error(), "exit status "))
	default:
		g.logger.Warn("exec ended", "peer", peer, "err", err)
	}
}

// logEnd logs how a piped connection ended.
func logEnd(g *globals, peer string, err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		g.logger.Debug("connection closed", "peer", peer)
		return
	}
	g.logger.Warn("connection ended", "peer", peer, "err", err)
}
