package main

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/metrics"
	"github.com/sockit/sockit/service"
)

// serveOptions are sockit serve's flags.
type serveOptions struct {
	server     serverFlags
	frame      string
	maxFrame   int
	greeting   string
	timeFormat string
	table      string
	defReply   string
	closeOn    string
	// http
	httpRoot  string
	httpDelay time.Duration
	accessLog bool
	// httpMetricsPath is --metrics-path: http serves /metrics itself.
	httpMetricsPath string
	// chat
	maxQueue   int
	rateLimit  float64
	echoStdout bool
	hub        string
	instance   string
	hubTimeout time.Duration
}

// chatFlags are the flags only service chat takes.
var chatFlags = []string{"max-queue", "rate-limit", "echo-stdout", "hub", "instance", "hub-timeout"}

func newServeCommand(g *globals) *cobra.Command {
	var opts serveOptions
	cmd := &cobra.Command{
		Use:   "serve SERVICE [-l ENDPOINT]...",
		Short: "serve a classic service: " + strings.Join(service.Names(), ", ") + ", http",
		Long: `serve runs a built-in service on one or more endpoints until SIGINT or SIGTERM,
then shuts down gracefully within --grace (a second signal exits at once).

Services:
  echo      replies each message unchanged (RFC 862)
  discard   reads and drops (RFC 863)
  chargen   streams the RFC 864 character pattern
  daytime   sends the time and closes (RFC 867)
  hello     greets "Welcome!", answers M with "Hello, M!", "exit" closes
  upper     answers M upper-cased, surrounding whitespace stripped
  reply     answers from a table (--table), else --default; alias chatbot
  chat      rooms in the shape of ncat --chat: /nick, /join, /who, /rooms, /me (--hub)
  files     seed 002's downloader: GET NAME [OFFSET], LIST [DIR], a bare NAME (--root)
  http      HTTP/1.1: /, /hello/{name}, /healthz, files under /files/ (--root)

Without -l it listens on tcp://127.0.0.1:7788 and udp://127.0.0.1:7788. For
each endpoint it prints "listening ENDPOINT" on stdout with the real port.`,
		Example: `  # seed 000's hello server on TCP and UDP port 7788
  sockit serve hello

  # upper on TCP, UDP and a Unix socket (seed 004's socketserver examples)
  sockit serve upper -l tcp://127.0.0.1:9999 -l udp://127.0.0.1:9999 -l unix:./test.sock

  # seed 004's comma-delimited server
  sockit serve echo --frame delim:, --greeting 'Hello,World,Bye,Bye,Yingxuan' -l tcp://127.0.0.1:8889

  # seed 002's downloader: the files of a directory, read-only
  sockit serve files --root ./public -l tcp://127.0.0.1:9000

  # chat rooms, as ncat --chat; several instances share rooms through NATS
  sockit serve chat -l tcp://127.0.0.1:8000 --hub nats://127.0.0.1:4222

  # the chat program of seed 001, with its own table
  sockit serve reply --table replies.json -l tcp://127.0.0.1:8888

  # a port chosen by the kernel, printed on stdout
  sockit serve echo -l tcp://127.0.0.1:0`,
		Args: positional(false, "SERVICE ("+strings.Join(service.Names(), ", ")+", http)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), g, args[0], opts, cmd)
		},
	}
	f := cmd.Flags()
	opts.server.register(f, safeDefaults())
	f.StringVar(&opts.frame, "frame", "raw", "message framing: raw, line, delim:SEP, fixed:N (echo, discard), len:W, close")
	f.IntVar(&opts.maxFrame, "max-frame", frame.DefaultMaxFrame, "largest message accepted, in bytes")
	f.StringVar(&opts.greeting, "greeting", "", `sent on connect exactly as given (escapes \n \r \t \0 \\); hello's default is "Welcome!"`)
	f.StringVar(&opts.timeFormat, "time-format", "2006-01-02 15:04:05", "daytime: Go time layout, local time")
	f.StringVar(&opts.table, "table", "", "reply: JSON object of message → reply")
	f.StringVar(&opts.defReply, "default", "Sorry", "reply: the answer to a message not in the table")
	f.StringVar(&opts.closeOn, "close-on", "Bye", "reply: close the connection after sending this reply")
	f.StringVar(&opts.httpRoot, "root", "", "files: the directory served, read-only (default .); http: serve it under /files/")
	f.DurationVar(&opts.httpDelay, "delay", 0, "http: wait this long before answering every route but /healthz")
	f.BoolVar(&opts.accessLog, "access-log", true, "http: log every request")
	f.StringVar(&opts.httpMetricsPath, "metrics-path", "", "http: also serve the Prometheus metrics at this path (e.g. /metrics) on the service's own listeners")
	f.IntVar(&opts.maxQueue, "max-queue", service.DefaultChatMaxQueue, "chat: bytes a client may have queued and not read; a client over it is dropped as too slow")
	f.Float64Var(&opts.rateLimit, "rate-limit", 0, "chat: messages per second a client may send, the excess dropped with a notice (0: no limit)")
	f.BoolVar(&opts.echoStdout, "echo-stdout", false, "chat: also print every room's traffic on stdout, as \"#ROOM LINE\"")
	f.StringVar(&opts.hub, "hub", "", "chat: share rooms with every instance on this NATS server (nats://HOST:PORT)")
	f.StringVar(&opts.instance, "instance", "", "chat: this instance's name on the hub (default HOSTNAME:PORT of the first -l)")
	f.DurationVar(&opts.hubTimeout, "hub-timeout", service.DefaultHubTimeout, "chat: how long /who and /rooms wait for the other instances")
	return cmd
}

func runServe(ctx context.Context, g *globals, name string, opts serveOptions, cmd *cobra.Command) error {
	if name == "http" {
		return runServeHTTP(ctx, g, opts, cmd)
	}
	for _, flag := range []string{"root", "delay", "access-log", "metrics-path"} {
		if cmd.Flags().Changed(flag) && !(flag == "root" && name == "files") {
			return usagef("--%s applies to service http only", flag)
		}
	}
	for _, flag := range chatFlags {
		if cmd.Flags().Changed(flag) && name != "chat" {
			return usagef("--%s applies to service chat only", flag)
		}
	}
	spec, err := frame.Parse(opts.frame)
	if err != nil {
		return usageError{err}
	}
	if opts.maxFrame <= 0 {
		return usagef("--max-frame must be positive, not %d", opts.maxFrame)
	}
	if spec.Kind == frame.Fixed && spec.N > opts.maxFrame {
		// A connection would hold N bytes before its first message.
		return usagef("--frame %s is larger than --max-frame %d: raise --max-frame to at least %d", spec, opts.maxFrame, spec.N)
	}
	cfg := service.Config{
		Frame:      spec,
		MaxFrame:   opts.maxFrame,
		TimeFormat: opts.timeFormat,
		Logger:     g.logger,
		Root:       opts.httpRoot,
	}
	if name == "files" {
		dir := cmp.Or(opts.httpRoot, ".")
		if st, err := os.Stat(dir); err != nil {
			return usagef("--root: %v", err)
		} else if !st.IsDir() {
			return usagef("--root %s is not a directory", dir)
		}
		// files waits --read-timeout for a connection's request line: 10 s
		// unless given, 0 for no limit.
		cfg.RequestTimeout = service.DefaultFilesRequestTimeout
		if cmd.Flags().Changed("read-timeout") {
			cfg.RequestTimeout = opts.server.readTimeout
			if cfg.RequestTimeout == 0 {
				cfg.RequestTimeout = -1
			}
		}
	}
	if name == "chat" {
		// A chat member may be quiet for hours, as in ncat: no idle
		// timeout unless given.
		if !cmd.Flags().Changed("idle-timeout") {
			opts.server.idleTimeout = 0
		}
		rooms, err := chatRooms(g, opts, cmd)
		if err != nil {
			return err
		}
		defer rooms.Close()
		cfg.Rooms = rooms
	}
	if cmd.Flags().Changed("greeting") {
		gr, err := frame.Unescape(opts.greeting, false)
		if err != nil {
			return usagef("--greeting: %v", err)
		}
		cfg.Greeting = gr
		if cfg.Greeting == nil {
			cfg.Greeting = []byte{}
		}
	}
	if cmd.Flags().Changed("default") {
		cfg.Default = &opts.defReply
	}
	if cmd.Flags().Changed("close-on") {
		cfg.CloseOn = &opts.closeOn
	}
	if opts.table != "" {
		if cfg.Table, err = service.LoadTable(opts.table); err != nil {
			return usagef("--table: %v", err)
		}
	}
	var opened []*service.Service
	defer func() {
		for _, s := range opened {
			if s.Close != nil {
				_ = s.Close()
			}
		}
	}()
	newService := func(c service.Config) (*service.Service, error) {
		s, err := service.New(name, c)
		if err == nil {
			opened = append(opened, s)
		}
		return s, err
	}
	svc, err := newService(cfg)
	if errors.Is(err, service.ErrUnknownService) {
		// The library does not know http: serve does.
		return usagef("unknown service %q (services: %s, http)", name, strings.Join(service.Names(), ", "))
	}
	if err != nil {
		return usageError{err}
	}
	// unixpacket keeps message boundaries: each packet is one message,
	// whatever --frame says.
	rawCfg := cfg
	rawCfg.Frame = frame.Spec{}
	packetSvc, err := newService(rawCfg)
	if err != nil {
		return usageError{err}
	}

	listen := opts.server.listen
	if len(listen) == 0 {
		listen = []string{"tcp://127.0.0.1:7788"}
		if svc.NewDatagram != nil {
			listen = append(listen, "udp://127.0.0.1:7788")
		}
	}
	eps, err := parseEndpoints(listen)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		if packetEndpoint(ep) && svc.NewDatagram == nil {
			return usagef("service %s does not speak datagrams; %s is a datagram endpoint", name, ep)
		}
		if name == "files" && ep.Scheme == "unixpacket" {
			return usagef("service files sends files as a byte stream; %s keeps packets (use unix://)", ep)
		}
	}
	srv, lc, err := opts.server.buildFor(g, eps)
	if err != nil {
		return err
	}
	bounds, err := listenAll(ctx, lc, eps)
	if err != nil {
		return err
	}
	// With --metrics each endpoint's service counts its messages into a
	// meter of its own, labelled with the endpoint.
	services := make([]*service.Service, len(bounds))
	for i, b := range bounds {
		c, shared := cfg, svc
		if b.ep.Scheme == "unixpacket" {
			c, shared = rawCfg, packetSvc
		}
		services[i] = shared
		if opts.server.metrics == "" {
			continue
		}
		c.Meter = metrics.New()
		if services[i], err = newService(c); err != nil {
			for _, b := range bounds {
				b.close()
			}
			return err
		}
		engineName, _ := srv.EngineName()
		opts.server.collectors = append(opts.server.collectors, metrics.Collector(c.Meter,
			prometheus.Labels{"service": name, "endpoint": b.ep.String(), "engine": engineName}))
	}
	index := make(map[bound]int, len(bounds))
	for i, b := range bounds {
		index[b] = i
	}
	return serveUntilSignal(ctx, g, srv, bounds, &opts.server, name, func(b bound) error {
		s := services[index[b]]
		if b.pc != nil {
			return srv.ServePacket(b.pc, s.NewDatagram())
		}
		return srv.Serve(b.ln, s.Stream)
	})
}

// chatRooms makes the rooms every chat endpoint shares.
func chatRooms(g *globals, opts serveOptions, cmd *cobra.Command) (*service.ChatRooms, error) {
	if opts.maxQueue <= 0 {
		return nil, usagef("--max-queue must be positive, not %d", opts.maxQueue)
	}
	if opts.rateLimit < 0 {
		return nil, usagef("--rate-limit must not be negative, not %g", opts.rateLimit)
	}
	if opts.hubTimeout <= 0 {
		return nil, usagef("--hub-timeout must be positive, not %s", opts.hubTimeout)
	}
	co := service.ChatOptions{
		MaxQueue:   opts.maxQueue,
		RateLimit:  opts.rateLimit,
		Logger:     g.logger,
		Hub:        opts.hub,
		Instance:   opts.instance,
		HubTimeout: opts.hubTimeout,
	}
	if cmd.Flags().Changed("max-frame") {
		co.MaxLine = opts.maxFrame
	}
	if opts.echoStdout {
		co.Echo = cmd.OutOrStdout()
	}
	if opts.hub != "" {
		u, err := url.Parse(strings.Split(opts.hub, ",")[0])
		if err != nil || u.Scheme != "nats" && u.Scheme != "tls" || u.Host == "" {
			return nil, usagef("--hub %q: want nats://HOST:PORT", opts.hub)
		}
		if co.Instance == "" {
			co.Instance = defaultInstance(opts.server.listen)
		}
	}
	rooms, err := service.NewChatRooms(co)
	if err != nil {
		return nil, err
	}
	return rooms, nil
}

// defaultInstance is HOSTNAME:PORT of the first listen endpoint (the
// process id instead of a port the kernel picks or a Unix socket's).
func defaultInstance(listen []string) string {
	host, _ := os.Hostname()
	port := "7788"
	if len(listen) > 0 {
		port = strconv.Itoa(os.Getpid())
		if ep, err := endpoint.Parse(listen[0]); err == nil {
			if _, p, err := net.SplitHostPort(ep.Address); err == nil && p != "0" {
				port = p
			}
		}
	}
	return host + ":" + port
}

// checkTLS refuses tls:// endpoints without a certificate before anything is
// opened.
func checkTLS(eps []endpoint.Endpoint, haveCert bool) error {
	for _, ep := range eps {
		if ep.IsTLS() && !haveCert {
			return usagef("%s needs --tls-cert and --tls-key, or --tls-self-signed", ep)
		}
	}
	return nil
}
