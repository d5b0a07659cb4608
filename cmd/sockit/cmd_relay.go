package main

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/sockit/sockit/client"
	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/endpoint/proxy"
)

func init() { extraCommands = append(extraCommands, newRelayCommand) }

// relayOptions are sockit relay's flags.
type relayOptions struct {
	server  serverFlags
	timeout time.Duration
	source  string
	tls     clientTLSFlags
	// sendProxy is --send-proxy v1|v2.
	sendProxy string
}

func newRelayCommand(g *globals) *cobra.Command {
	var opts relayOptions
	cmd := &cobra.Command{
		Use:   "relay LISTEN_ENDPOINT TARGET_ENDPOINT",
		Short: "socat: accept on one endpoint and connect each connection to another",
		Long: `relay accepts connections on LISTEN_ENDPOINT, connects each one to
TARGET_ENDPOINT and copies both ways until both sides are done, passing each
half-close on. Any pair of stream transports works: port forwarding
(tcp → tcp), TCP → Unix socket, TLS termination (tls:// → tcp://), TLS
origination (tcp:// → tls://, verified with the client TLS options). A target
that cannot be reached closes only that client's connection, logged.

Between plain TCP and Unix sockets the bytes move with splice(2), never
through user space; --idle-timeout and --read-timeout need to see the bytes
and so copy through a buffer.

It prints "listening ENDPOINT" on stdout and runs until SIGINT/SIGTERM, then
shuts down gracefully within --grace. The server options (--max-conns,
--allow/--deny, --idle-timeout, --read-timeout, --concurrency, --tls-*) mean
what they mean for sockit serve.`,
		Example: `  # forward a local port
  sockit relay tcp://127.0.0.1:8080 tcp://10.0.0.5:80

  # be the load balancer: pass each client's address on in a PROXY v2 header
  sockit relay --send-proxy v2 tcp://127.0.0.1:8080 tcp://127.0.0.1:7000

  # the server behind it, taking headers only from the relay
  sockit serve echo -l tcp://127.0.0.1:7000 --proxy-protocol --proxy-protocol-from 127.0.0.1

  # expose a Unix socket service on TCP, local peers only
  sockit relay --allow 127.0.0.0/8 tcp://127.0.0.1:9000 unix:///run/app.sock

  # TLS termination in front of a plain server
  sockit relay --tls-cert cert.pem --tls-key key.pem tls://:8443 tcp://127.0.0.1:8080`,
		Args: positional(false, "LISTEN-ENDPOINT", "TARGET-ENDPOINT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRelay(cmd.Context(), g, args[0], args[1], opts)
		},
	}
	f := cmd.Flags()
	opts.server.register(f, serverDefaults{})
	f.DurationVar(&opts.timeout, "timeout", 10*time.Second, "how long connecting to the target (and its TLS handshake) may take")
	f.StringVar(&opts.source, "source", "", "local address to connect to the target from, ADDR or ADDR:PORT")
	f.StringVar(&opts.sendProxy, "send-proxy", "", "write a PROXY protocol header (v1 or v2) to the target before the client's bytes, naming the client, as HAProxy's send-proxy does")
	opts.tls.register(f)
	return cmd
}

// runRelay checks the options, listens and relays.
func runRelay(ctx context.Context, g *globals, listenArg, targetArg string, opts relayOptions) error {
	if len(opts.server.listen) > 0 {
		return usagef("relay takes its listen endpoint as an argument, not -l")
	}
	eps, err := parseEndpoints([]string{listenArg})
	if err != nil {
		return err
	}
	target, err := endpoint.Parse(targetArg)
	if err != nil {
		return usageError{err}
	}
	for _, ep := range []endpoint.Endpoint{eps[0], target} {
		if ep.Scheme != "fd" && ep.IsPacket() || ep.Scheme == "fd" && packetEndpoint(ep) {
			return usagef("relay connects streams; %s is a datagram endpoint", ep)
		}
	}
	if target.Scheme == "fd" {
		return usagef("the target %q cannot be fd://", targetArg)
	}
	if opts.source != "" && target.IsUnix() {
		return usagef("--source applies to IP targets, not %s", target.Scheme)
	}
	if opts.timeout < 0 {
		return usagef("durations cannot be negative")
	}
	var sendProxy byte
	if opts.sendProxy != "" {
		if sendProxy, err = proxy.ParseVersion(opts.sendProxy); err != nil {
			return usagef("--send-proxy: %v", err)
		}
	}
	d := endpoint.Dialer{Timeout: opts.timeout, Source: opts.source}
	if target.IsTLS() {
		if d.TLS, err = opts.tls.config(""); err != nil {
			return err
		}
	} else if opts.tls.used() {
		return usagef("the client TLS options apply to a tls:// target, not %s", target.Scheme)
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
	cfg := client.RelayConfig{
		Target:      target,
		Dialer:      d,
		IdleTimeout: opts.server.idleTimeout,
		ReadTimeout: opts.server.readTimeout,
		SendProxy:   sendProxy,
	}
	handler := func(hctx context.Context, c net.Conn) {
		peer := c.RemoteAddr().String()
		err := client.Relay(hctx, c, cfg)
		var ce *client.ConnError
		switch {
		case err == nil, errors.Is(err, context.Canceled):
			g.logger.Debug("relayed", "peer", peer)
		case errors.As(err, &ce) && ce.Op == "dial":
			g.logger.Warn("target unreachable; client closed", "peer", peer, "target", target.String(), "err", err)
		default:
			g.logger.Info("relay ended", "peer", peer, "err", err)
		}
	}
	return serveUntilSignal(ctx, g, srv, bounds, &opts.server, "relay", func(b bound) error {
		return srv.ServeFunc(b.ln, handler)
	})
}
