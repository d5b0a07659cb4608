package main

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/sockit/sockit/metrics"
	"github.com/sockit/sockit/service/httpd"
)

// runServeHTTP is `sockit serve http`: the httpd handler on net/http, with
// the connections admitted by the server flags' server.Server (--max-conns,
// --allow/--deny, --concurrency), on tcp, unix and tls endpoints.
// --read-timeout bounds a TLS handshake and a request's headers (default
// 10s); --idle-timeout closes keep-alive connections idle that long (default
// 120s).
func runServeHTTP(ctx context.Context, g *globals, opts serveOptions, cmd *cobra.Command) error {
	if cmd != nil {
		for _, name := range []string{"frame", "max-frame", "greeting", "time-format", "table", "default", "close-on", "write-timeout"} {
			if cmd.Flags().Changed(name) {
				return usagef("service http does not take --%s", name)
			}
		}
	}
	if opts.httpDelay < 0 {
		return usagef("--delay cannot be negative")
	}
	listen := opts.server.listen
	if len(listen) == 0 {
		listen = []string{"tcp://127.0.0.1:7788"}
	}
	eps, err := parseEndpoints(listen)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		if packetEndpoint(ep) {
			return usagef("service http does not speak datagrams; %s is a datagram endpoint", ep)
		}
	}
	limits, lc, err := opts.server.buildFor(g, eps)
	if err != nil {
		return err
	}
	if name, _ := limits.EngineName(); name != "goroutine" {
		return usagef("service http runs on net/http's goroutines; --engine %s does not apply", opts.server.engine)
	}
	if opts.httpMetricsPath != "" && (!strings.HasPrefix(opts.httpMetricsPath, "/") || strings.ContainsAny(opts.httpMetricsPath, " ?#{}")) {
		return usagef("--metrics-path %q: want a path such as /metrics", opts.httpMetricsPath)
	}
	h, err := httpd.New(httpd.Config{
		Root:      opts.httpRoot,
		Delay:     opts.httpDelay,
		Logger:    g.logger,
		AccessLog: opts.accessLog,
	})
	if err != nil {
		return usagef("--root: %v", err)
	}
	defer h.Close()
	srv := &httpd.Server{
		Handler:           h,
		Limits:            limits,
		ReadHeaderTimeout: httpTimeout(cmd, "read-timeout", opts.server.readTimeout),
		IdleTimeout:       httpTimeout(cmd, "idle-timeout", opts.server.idleTimeout),
		Logger:            g.logger,
	}
	bounds, err := listenAll(ctx, lc, eps)
	if err != nil {
		return err
	}
	if opts.server.metrics != "" || opts.httpMetricsPath != "" {
		// One handler serves every listener: its meter is labelled with
		// all of their endpoints.
		names := make([]string, len(bounds))
		for i, b := range bounds {
			names[i] = b.ep.String()
		}
		srv.Meter = metrics.New()
		opts.server.collectors = append(opts.server.collectors, metrics.Collector(srv.Meter,
			prometheus.Labels{"service": "http", "endpoint": strings.Join(names, ","), "engine": "net/http"}))
	}
	if opts.httpMetricsPath != "" {
		// /metrics on the service's own listeners, beside its routes.
		reg, err := opts.server.registry(srv, "http", "net/http", bounds)
		if err != nil {
			for _, b := range bounds {
				b.close()
			}
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("GET "+opts.httpMetricsPath, promhttp.HandlerFor(reg, metricsHandlerOpts))
		mux.Handle("/", h)
		srv.Handler = mux
	}
	// net/http's graceful drain on SIGINT/SIGTERM: requests in flight
	// finish, idle keep-alive connections are closed.
	return serveUntilSignal(ctx, g, srv, bounds, &opts.server, "http", func(b bound) error { return srv.Serve(b.ln) })
}

// httpTimeout is a timeout flag's value for serve http: 0, which gives
// httpd's own defaults (DefaultReadHeaderTimeout, DefaultIdleTimeout),
// unless the flag was given; the message services' defaults do not apply.
func httpTimeout(cmd *cobra.Command, name string, v time.Duration) time.Duration {
	if cmd != nil && !cmd.Flags().Changed(name) {
		return 0
	}
	return v
}
