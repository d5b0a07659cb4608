package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/endpoint/proxy"
	"github.com/sockit/sockit/internal/memtrim"
	"github.com/sockit/sockit/server"
)

// serverFlags are the operational options every server command shares (SPEC
// section 7), so a flag means the same thing in each.
type serverFlags struct {
	listen       []string
	engine       string
	loops        int
	concurrency  string
	workers      int
	queue        int
	maxConns     int
	allow        []string
	deny         []string
	idleTimeout  time.Duration
	readTimeout  time.Duration
	writeTimeout time.Duration
	grace        time.Duration
	unixMode     string
	reusePort    bool
	backlog      int
	tlsCert      string
	tlsKey       string
	selfSigned   bool
	clientCA     string
	metrics      string // --metrics ADDR: Prometheus /metrics
	pprof        bool
	// --proxy-protocol[=required|optional], --proxy-protocol-from,
	// --proxy-header-timeout: PROXY headers from a load balancer.
	proxyProtocol      string
	proxyFrom          []string
	proxyHeaderTimeout time.Duration
	// proxyRefused counts connections the PROXY protocol refused, by
	// listening address (for /metrics).
	proxyRefused *refusalCounts // made by build
	// collectors are more /metrics series a command registers before
	// serving (serve's per-endpoint message meters).
	collectors []prometheus.Collector
	reg        *prometheus.Registry // made by registry
	// tlsHosts are the listen host names a --tls-self-signed certificate is
	// made for; commands whose endpoints are arguments rather than -l set
	// it before build (empty: the hosts of -l, else localhost).
	tlsHosts []string
}

// serverDefaults are the defaults of the flags that bound what one peer
// may hold: zero for netcat-style commands (listen, relay), safeDefaults
// for serve.
type serverDefaults struct {
	maxConns                               int
	idleTimeout, readTimeout, writeTimeout time.Duration
}

// safeDefaults are what `sockit serve SERVICE` runs with unless told
// otherwise (0 turns each off): a peer that opens a connection and never
// sends is closed after 5 minutes, one that begins a message and does not
// finish it (slow-loris) after 30 s, one that does not take its replies
// after 60 s, and connections past what the open-file limit can hold are
// refused instead of failing accept for everyone.
func safeDefaults() serverDefaults {
	return serverDefaults{
		maxConns:     defaultMaxConns(),
		idleTimeout:  5 * time.Minute,
		readTimeout:  30 * time.Second,
		writeTimeout: 60 * time.Second,
	}
}

// defaultMaxConns leaves a tenth of the open-file limit (at least 32
// descriptors) for listeners, the engine's own descriptors, files being
// served and logs; Go raises the soft limit to the hard one at start. It is
// 0 (no limit) where the limit cannot be read or is unlimited.
func defaultMaxConns() int {
	n := openFileLimit()
	if n <= 0 {
		return 0
	}
	return max(n-max(n/10, 32), 1)
}

func (f *serverFlags) register(fs *pflag.FlagSet, d serverDefaults) {
	fs.StringArrayVarP(&f.listen, "listen", "l", nil, "endpoint to listen on (repeatable), e.g. tcp://127.0.0.1:7788, udp://:7788, unix:///tmp/s.sock, fd://3")
	fs.StringVar(&f.engine, "engine", "goroutine", "engine that runs connections: goroutine or epoll (Linux)")
	fs.IntVar(&f.loops, "loops", 0, "event loops of the epoll engine (0: one per core)")
	fs.StringVar(&f.concurrency, "concurrency", "goroutine", "dispatch of the goroutine engine: goroutine (one per connection), pool or serial")
	fs.IntVar(&f.workers, "workers", 4, "--concurrency pool: number of workers")
	fs.IntVar(&f.queue, "queue", 0, "--concurrency pool: connections waiting for a worker (0: as many as workers); a connection to a full queue is closed")
	maxConnsHelp := "most concurrent connections; more are accepted and closed at once (0: no limit)"
	if d.maxConns > 0 {
		maxConnsHelp += "; the default is the open-file limit less a tenth"
	}
	fs.IntVar(&f.maxConns, "max-conns", d.maxConns, maxConnsHelp)
	fs.StringArrayVar(&f.allow, "allow", nil, "serve only peers in this CIDR or address (repeatable)")
	fs.StringArrayVar(&f.deny, "deny", nil, "refuse peers in this CIDR or address (repeatable; deny wins)")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", d.idleTimeout, "close a connection with no bytes either way for this long (0: never)")
	fs.DurationVar(&f.readTimeout, "read-timeout", d.readTimeout, "close a connection that began a message and did not finish it within this long (0: never)")
	fs.DurationVar(&f.writeTimeout, "write-timeout", d.writeTimeout, "close a connection whose queued replies are not all taken by the peer within this long (checked at this period; 0: never)")
	fs.DurationVar(&f.grace, "grace", 10*time.Second, "on SIGINT/SIGTERM, how long in-flight connections may take to finish")
	fs.StringVar(&f.unixMode, "unix-mode", "", "permissions of new Unix socket files, octal (e.g. 0660)")
	fs.BoolVar(&f.reusePort, "reuse-port", false, "set SO_REUSEPORT so several processes can share the port")
	fs.IntVar(&f.backlog, "backlog", 0, "listen backlog (0: the system default)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "certificate (PEM) for tls:// endpoints")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key (PEM) for tls:// endpoints")
	fs.BoolVar(&f.selfSigned, "tls-self-signed", false, "tls:// endpoints: make an ECDSA certificate for the listen host names at start and log its sha256 fingerprint (for clients' --pin)")
	fs.StringVar(&f.clientCA, "client-ca", "", "tls:// endpoints: require client certificates signed by a CA in this PEM file (mutual TLS)")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus /metrics on this address (HOST:PORT; a bare PORT or :PORT binds 127.0.0.1; port 0 picks one, printed as \"metrics URL\")")
	fs.BoolVar(&f.pprof, "pprof", false, "also serve /debug/pprof/ on the --metrics listener")
	fs.StringVar(&f.proxyProtocol, "proxy-protocol", "", "read a PROXY protocol header (v1 or v2, HAProxy's) from every connection and serve it as the client it names: required (the bare flag) or optional (peers outside --proxy-protocol-from are served as they are)")
	fs.Lookup("proxy-protocol").NoOptDefVal = "required"
	fs.StringArrayVar(&f.proxyFrom, "proxy-protocol-from", nil, "trust PROXY headers only from this CIDR or address, the load balancer's (repeatable); other peers are refused, or served as they are with --proxy-protocol=optional")
	fs.DurationVar(&f.proxyHeaderTimeout, "proxy-header-timeout", 0, "how long a peer has to send its whole PROXY header (0: 5s)")
}

// build validates the flags and returns the server and listen configuration.
// Every problem is a usage error.
func (f *serverFlags) build(g *globals) (*server.Server, endpoint.ListenConfig, error) {
	var lc endpoint.ListenConfig
	conc, err := server.ParseConcurrency(f.concurrency)
	if err != nil {
		return nil, lc, usagef("--concurrency: %v", err)
	}
	if f.workers <= 0 {
		return nil, lc, usagef("--workers must be at least 1, not %d", f.workers)
	}
	if f.queue < 0 || f.maxConns < 0 || f.backlog < 0 || f.loops < 0 {
		return nil, lc, usagef("--queue, --max-conns, --backlog and --loops cannot be negative")
	}
	if f.idleTimeout < 0 || f.readTimeout < 0 || f.writeTimeout < 0 || f.grace < 0 {
		return nil, lc, usagef("durations cannot be negative")
	}
	if f.pprof && f.metrics == "" {
		return nil, lc, usagef("--pprof needs --metrics ADDR: it is served on the metrics listener")
	}
	if f.metrics != "" {
		if _, err := metricsAddr(f.metrics); err != nil {
			return nil, lc, usageError{err}
		}
	}
	parse := func(flag string, vals []string) ([]netip.Prefix, error) {
		var out []netip.Prefix
		for _, v := range vals {
			for _, part := range strings.Split(v, ",") {
				p, err := server.ParsePrefix(strings.TrimSpace(part))
				if err != nil {
					return nil, usagef("--%s: %v", flag, err)
				}
				out = append(out, p)
			}
		}
		return out, nil
	}
	allow, err := parse("allow", f.allow)
	if err != nil {
		return nil, lc, err
	}
	deny, err := parse("deny", f.deny)
	if err != nil {
		return nil, lc, err
	}
	if err := f.buildProxy(g, &lc, parse); err != nil {
		return nil, lc, err
	}
	srv := &server.Server{
		Engine:       f.engine,
		Loops:        f.loops,
		Concurrency:  conc,
		Workers:      f.workers,
		Queue:        f.queue,
		MaxConns:     f.maxConns,
		Allow:        allow,
		Deny:         deny,
		IdleTimeout:  f.idleTimeout,
		ReadTimeout:  f.readTimeout,
		WriteTimeout: f.writeTimeout,
		Logger:       g.logger,
	}
	if f.queue == 0 {
		srv.Queue = 0
	}
	if _, err := srv.EngineName(); err != nil {
		return nil, lc, usageError{err}
	}
	lc.ReusePort = f.reusePort
	lc.Backlog = f.backlog
	if f.unixMode != "" {
		m, err := strconv.ParseUint(f.unixMode, 8, 32)
		if err != nil || m > 0o777 {
			return nil, lc, usagef("--unix-mode %q: want octal permissions like 0660", f.unixMode)
		}
		lc.UnixMode = os.FileMode(m)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, lc, usagef("--tls-cert and --tls-key go together")
	}
	if f.selfSigned && f.tlsCert != "" {
		return nil, lc, usagef("--tls-self-signed and --tls-cert exclude each other")
	}
	if f.clientCA != "" && f.tlsCert == "" && !f.selfSigned {
		return nil, lc, usagef("--client-ca needs --tls-cert/--tls-key or --tls-self-signed")
	}
	if f.tlsCert != "" || f.selfSigned {
		st := endpoint.ServerTLS{
			CertFile:     f.tlsCert,
			KeyFile:      f.tlsKey,
			SelfSigned:   f.selfSigned,
			Hosts:        f.certHosts(),
			ClientCAFile: f.clientCA,
		}
		cfg, fingerprint, err := st.Config()
		if err != nil {
			if f.selfSigned && f.tlsCert == "" && f.clientCA == "" {
				return nil, lc, fmt.Errorf("tls: %w", err) // not the user's mistake
			}
			return nil, lc, usagef("tls options: %v", err)
		}
		lc.TLS = cfg
		if f.selfSigned {
			g.logger.Info("tls self-signed certificate", "fingerprint", fingerprint, "hosts", strings.Join(st.Hosts, ","))
		}
	}
	return srv, lc, nil
}

// refusalCounts counts by listening address; the zero value is ready.
type refusalCounts struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (r *refusalCounts) add(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = make(map[string]uint64)
	}
	r.n[addr]++
}

func (r *refusalCounts) get(addr string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[addr]
}

// buildProxy sets lc.Proxy from the --proxy-protocol flags.
func (f *serverFlags) buildProxy(g *globals, lc *endpoint.ListenConfig, parse func(string, []string) ([]netip.Prefix, error)) error {
	if f.proxyProtocol == "" {
		if len(f.proxyFrom) > 0 || f.proxyHeaderTimeout != 0 {
			return usagef("--proxy-protocol-from and --proxy-header-timeout need --proxy-protocol")
		}
		return nil
	}
	from, err := parse("proxy-protocol-from", f.proxyFrom)
	if err != nil {
		return err
	}
	refused := &refusalCounts{}
	f.proxyRefused = refused
	cfg := &proxy.Config{From: from, HeaderTimeout: f.proxyHeaderTimeout, Logger: g.logger,
		OnRefuse: func(ln, _ net.Addr, _ error) { refused.add(ln.String()) }}
	switch f.proxyProtocol {
	case "required":
	case "optional":
		if len(from) == 0 {
			return usagef("--proxy-protocol=optional needs --proxy-protocol-from: it says which peers send a header")
		}
		cfg.Optional = true
	default:
		return usagef("--proxy-protocol %q: want required or optional", f.proxyProtocol)
	}
	if f.proxyHeaderTimeout < 0 {
		return usagef("durations cannot be negative")
	}
	lc.Proxy = cfg
	return nil
}

// buildFor is build for the endpoints a command will listen on: it also
// refuses a tls:// endpoint without a certificate, before anything is
// opened.
func (f *serverFlags) buildFor(g *globals, eps []endpoint.Endpoint) (*server.Server, endpoint.ListenConfig, error) {
	srv, lc, err := f.build(g)
	if err != nil {
		return nil, lc, err
	}
	if err := checkTLS(eps, lc.TLS != nil); err != nil {
		return nil, lc, err
	}
	if lc.Proxy != nil {
		for _, ep := range eps {
			if packetEndpoint(ep) || ep.Network == "unixpacket" {
				return nil, lc, usagef("--proxy-protocol applies to tcp, tls and unix endpoints, not %s", ep)
			}
		}
	}
	return srv, lc, nil
}

// certHosts returns the host names a self-signed certificate is for: those
// set in tlsHosts, else those of the -l endpoints, else localhost.
func (f *serverFlags) certHosts() []string {
	if len(f.tlsHosts) > 0 {
		return f.tlsHosts
	}
	var eps []endpoint.Endpoint
	for _, v := range f.listen {
		if ep, err := endpoint.Parse(v); err == nil {
			eps = append(eps, ep)
		}
	}
	return endpointHosts(eps)
}

// parseEndpoints parses -l values (or the defaults); a bad one is a usage
// error.
func parseEndpoints(vals []string) ([]endpoint.Endpoint, error) {
	eps := make([]endpoint.Endpoint, 0, len(vals))
	for _, v := range vals {
		ep, err := endpoint.Parse(v)
		if err != nil {
			return nil, usageError{err}
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

// bound is one open listener or datagram endpoint.
type bound struct {
	ep endpoint.Endpoint // with the real address
	ln net.Listener
	pc net.PacketConn
}

func (b bound) close() {
	if b.ln != nil {
		_ = b.ln.Close()
	}
	if b.pc != nil {
		_ = b.pc.Close()
	}
}

// listenAll opens every endpoint; on a failure it closes those already open
// and returns an error naming the endpoint.
func listenAll(ctx context.Context, lc endpoint.ListenConfig, eps []endpoint.Endpoint) ([]bound, error) {
	var out []bound
	fail := func(ep endpoint.Endpoint, err error) ([]bound, error) {
		for _, b := range out {
			b.close()
		}
		var oe *endpoint.OpError
		if errors.As(err, &oe) {
			return nil, err // it names the endpoint already
		}
		return nil, fmt.Errorf("listen %s: %w", ep, err)
	}
	for _, ep := range eps {
		var b bound
		var err error
		if packetEndpoint(ep) {
			b.pc, err = lc.ListenPacket(ctx, ep)
			if err == nil {
				b.ep = ep.WithAddr(b.pc.LocalAddr())
			}
		} else {
			b.ln, err = lc.Listen(ctx, ep)
			if err == nil {
				b.ep = ep.WithAddr(b.ln.Addr())
			}
		}
		if err != nil {
			return fail(ep, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// packetEndpoint reports whether ep is a datagram endpoint, looking at the
// socket itself for fd://N.
func packetEndpoint(ep endpoint.Endpoint) bool {
	if ep.Scheme == "fd" {
		return fdIsPacket(ep.FD)
	}
	return ep.IsPacket()
}

// shutdowner is a server serveUntilSignal can stop: a *server.Server, or the
// http service's *httpd.Server (net/http's graceful drain).
type shutdowner interface {
	Shutdown(ctx context.Context) error
}

// serveUntilSignal prints "listening ENDPOINT" for every bound endpoint, runs
// serve for each, and on ctx's end (SIGINT/SIGTERM) shuts the server down
// gracefully within grace. It returns nil after a clean shutdown; Serve's
// server.ErrServerClosed (which httpd.Server returns too) is not an error.
func serveUntilSignal(ctx context.Context, g *globals, srv shutdowner, bounds []bound, f *serverFlags, service string, serve func(b bound) error) error {
	grace := f.grace
	engineName := "net/http"
	if s, ok := srv.(*server.Server); ok {
		engineName, _ = s.EngineName()
	}
	if f.metrics != "" {
		stop, err := startMetrics(g, f, srv, service, engineName, bounds)
		if err != nil {
			for _, b := range bounds {
				b.close()
			}
			return err
		}
		defer stop()
	}
	errc := make(chan error, len(bounds))
	var wg sync.WaitGroup
	for _, b := range bounds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- serve(b)
		}()
	}
	for _, b := range bounds {
		fmt.Fprintf(g.stdout, "listening %s\n", b.ep)
	}
	if fl, ok := g.stdout.(interface{ Sync() error }); ok {
		_ = fl.Sync()
	}
	g.logger.Info("serving", "endpoints", len(bounds), "engine", engineName)
	// Hand the memory of a burst back to the system once it is over.
	trimCtx, stopTrim := context.WithCancel(context.Background())
	defer stopTrim()
	trim := memtrim.Config{Logger: g.logger}
	if s, ok := srv.(interface{ ActiveConns() int }); ok {
		trim.Conns = s.ActiveConns
	}
	go memtrim.Run(trimCtx, trim)

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
	if serveErr != nil && !errors.Is(serveErr, server.ErrServerClosed) {
		return serveErr
	}
	for err := range errc {
		if err != nil && !errors.Is(err, server.ErrServerClosed) {
			return err
		}
	}
	if shutErr != nil {
		g.logger.Warn("grace period over; remaining connections closed", "grace", grace)
	}
	return nil
}
