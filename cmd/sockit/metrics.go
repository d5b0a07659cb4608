package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sockit/sockit/server"
)

// metricsAddr normalises a --metrics address: a bare port or ":port" binds
// 127.0.0.1, so metrics are never public unless an address says so.
func metricsAddr(s string) (string, error) {
	if _, err := strconv.ParseUint(s, 10, 16); err == nil {
		return net.JoinHostPort("127.0.0.1", s), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("--metrics %q: want HOST:PORT, :PORT or PORT", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("--metrics %q: bad port %q", s, port)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// listenerStatser is a server that counts per listener: a *server.Server,
// or the http service's *httpd.Server (its Limits' counts).
type listenerStatser interface {
	ListenerStats(ln any) (server.Stats, bool)
}

// metricsRegistry holds the Go runtime's and the process's collectors and,
// for a server that counts per listener, sockit's connection counts of each
// bound endpoint, labelled with the service, the endpoint and the engine (no
// per-peer labels: the cardinality stays fixed). proxyRefused, if not nil,
// gives the PROXY protocol's refusals of a listening address.
func metricsRegistry(srv shutdowner, service, engine string, bounds []bound, proxyRefused func(addr string) uint64) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s, ok := srv.(listenerStatser)
	if !ok {
		return reg
	}
	for _, b := range bounds {
		var key any = b.ln
		if b.pc != nil {
			key = b.pc
		}
		stats := func() server.Stats { st, _ := s.ListenerStats(key); return st }
		labels := prometheus.Labels{"service": service, "engine": engine, "endpoint": b.ep.String()}
		with := func(k, v string) prometheus.Labels {
			l := prometheus.Labels{k: v}
			for a, b := range labels {
				l[a] = b
			}
			return l
		}
		counter := func(name, help string, l prometheus.Labels, f func(server.Stats) uint64) {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: l},
				func() float64 { return float64(f(stats())) }))
		}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sockit_connections_open", Help: "Connections admitted and not yet closed.", ConstLabels: labels},
			func() float64 { return float64(stats().Open) }))
		counter("sockit_connections_accepted_total", "Connections admitted.", labels, func(st server.Stats) uint64 { return st.Accepted })
		const refusedHelp = "Connections closed at once, by reason: max-conns, deny (--allow/--deny), verify, proxy-header (--proxy-protocol: no valid header in time, or an untrusted peer)."
		counter("sockit_connections_refused_total", refusedHelp, with("reason", "max-conns"), func(st server.Stats) uint64 { return st.RefusedMaxConns })
		counter("sockit_connections_refused_total", refusedHelp, with("reason", "deny"), func(st server.Stats) uint64 { return st.RefusedDeny })
		counter("sockit_connections_refused_total", refusedHelp, with("reason", "verify"), func(st server.Stats) uint64 { return st.RefusedVerify })
		if proxyRefused != nil && b.ln != nil {
			addr := b.ln.Addr().String()
			counter("sockit_connections_refused_total", refusedHelp, with("reason", "proxy-header"), func(server.Stats) uint64 { return proxyRefused(addr) })
		}
		const timeoutHelp = "Connections closed by a timeout, by kind: idle, read, write."
		counter("sockit_timeouts_total", timeoutHelp, with("kind", "idle"), func(st server.Stats) uint64 { return st.IdleTimeouts })
		counter("sockit_timeouts_total", timeoutHelp, with("kind", "read"), func(st server.Stats) uint64 { return st.ReadTimeouts })
		counter("sockit_timeouts_total", timeoutHelp, with("kind", "write"), func(st server.Stats) uint64 { return st.WriteTimeouts })
		const failedHelp = "Connections that failed, by kind: panic (a protocol panicked), tls (handshake), other."
		counter("sockit_connections_failed_total", failedHelp, with("kind", "panic"), func(st server.Stats) uint64 { return st.Panics })
		counter("sockit_connections_failed_total", failedHelp, with("kind", "tls"), func(st server.Stats) uint64 { return st.TLSFailures })
		counter("sockit_connections_failed_total", failedHelp, with("kind", "other"), func(st server.Stats) uint64 { return st.OtherFailures })
	}
	return reg
}

// startMetrics serves /metrics (and /debug/pprof/ with --pprof) on the
// --metrics address and prints "metrics URL"; the returned func stops it.
func startMetrics(g *globals, f *serverFlags, srv shutdowner, service, engine string, bounds []bound) (func(), error) {
	addr, err := metricsAddr(f.metrics)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	mux := http.NewServeMux()
	reg, err := f.registry(srv, service, engine, bounds)
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, metricsHandlerOpts))
	if f.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	// A scraper that stalls or keeps idle connections open holds nothing for
	// long: the header, the whole exchange and idleness are bounded
	// (/debug/pprof/profile and trace take up to 30 s of their own).
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute, IdleTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.logger.Warn("metrics listener failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
	fmt.Fprintf(g.stdout, "metrics http://%s/metrics\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		<-done
	}, nil
}

// proxyRefusals reads the PROXY protocol's refusals, nil without
// --proxy-protocol.
func (f *serverFlags) proxyRefusals() func(addr string) uint64 {
	if f.proxyProtocol == "" || f.proxyRefused == nil {
		return nil
	}
	return f.proxyRefused.get
}

// registry returns the command's metrics registry, made at the first call:
// metricsRegistry's collectors and the command's own (f.collectors).
func (f *serverFlags) registry(srv shutdowner, service, engine string, bounds []bound) (*prometheus.Registry, error) {
	if f.reg != nil {
		return f.reg, nil
	}
	reg := metricsRegistry(srv, service, engine, bounds, f.proxyRefusals())
	for _, c := range f.collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("--metrics: %w", err)
		}
	}
	f.reg = reg
	return reg, nil
}

// metricsHandlerOpts serve /metrics uncompressed: the page is a few KiB, and
// each gzip writer the handler keeps for a scrape holds about 2 MiB of
// memory (compress/flate's window and tables), which a server that is
// otherwise idle should not carry.
var metricsHandlerOpts = promhttp.HandlerOpts{DisableCompression: true}
