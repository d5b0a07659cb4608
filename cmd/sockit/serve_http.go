package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

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
		for _, name := range []string{"frame", "max-frame", "greeting", "time-format", "table", "default", "close-on"} {
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
	limits, lc, err := opts.server.build(g)
	if err != nil {
		return err
	}
	if name, _ := limits.EngineName(); name != "goroutine" {
		return usagef("service http runs on net/http's goroutines; --engine %s does not apply", opts.server.engine)
	}
	if err := checkTLS(eps, lc.TLS != nil); err != nil {
		return err
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
		ReadHeaderTimeout: opts.server.readTimeout,
		IdleTimeout:       opts.server.idleTimeout,
		Logger:            g.logger,
	}
	bounds, err := listenAll(ctx, lc, eps)
	if err != nil {
		return err
	}
	return serveHTTPUntilSignal(ctx, g, srv, bounds, opts.server.grace)
}

// serveHTTPUntilSignal is serveUntilSignal for the http server: it prints
// "listening ENDPOINT" for every endpoint, serves them all, and on ctx's end
// (SIGINT/SIGTERM) shuts down with net/http's graceful drain (requests in
// flight finish, idle keep-alive connections are closed) within grace.
func serveHTTPUntilSignal(ctx context.Context, g *globals, srv *httpd.Server, bounds []bound, grace time.Duration) error {
	errc := make(chan error, len(bounds))
	var wg sync.WaitGroup
	for _, b := range bounds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- srv.Serve(b.ln)
		}()
	}
	for _, b := range bounds {
		fmt.Fprintf(g.stdout, "listening %s\n", b.ep)
	}
	if fl, ok := g.stdout.(interface{ Sync() error }); ok {
		_ = fl.Sync()
	}
	g.logger.Info("serving", "endpoints", len(bounds), "service", "http")

	var serveErr error
	select {
	case <-ctx.Done():
		g.logger.Info("shutting down", "grace", grace)
	case serveErr = <-errc:
		// A listener failed for good: shut the rest down too.
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	wg.Wait()
	close(errc)
	if serveErr != nil && !errors.Is(serveErr, httpd.ErrServerClosed) {
		return serveErr
	}
	for err := range errc {
		if err != nil && !errors.Is(err, httpd.ErrServerClosed) {
			return err
		}
	}
	if shutErr != nil {
		g.logger.Warn("grace period over; remaining connections closed", "grace", grace)
	}
	return nil
}
