package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sockit/sockit/bench"
	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/endpoint/proxy"
	"github.com/sockit/sockit/frame"
)

func init() { extraCommands = append(extraCommands, newBenchCommand) }

// benchOptions are sockit bench's flags.
type benchOptions struct {
	mode        string
	engine      string
	conns       int
	duration    time.Duration
	warmup      time.Duration
	size        int
	frame       string
	payload     string
	depth       int
	rate        float64
	source      string
	sendProxy   string // --send-proxy v1|v2
	verify      bool
	timeout     time.Duration
	pid         int
	failOnError bool
	json        bool
	html        string
	progress    string
	cpuprofile  string
	tls         clientTLSFlags
}

// errBenchErrors is returned with --fail-on-error when errors were counted.
var errBenchErrors = errors.New("errors were counted (--fail-on-error)")

func newBenchCommand(g *globals) *cobra.Command {
	var opts benchOptions
	cmd := &cobra.Command{
		Use:   "bench ENDPOINT",
		Short: "measure a server: messages/s, honest latency percentiles, errors by kind",
		Long: `bench opens --conns connections to ENDPOINT and loads them for --warmup, then
measures for --duration: messages and bytes per second, latency min/p50/p90/p99/
p99.9/max from an HDR histogram, and errors by kind (refused, reset, timeout,
short or mismatched echo, closed, lost). Errors are counted, not fatal: the exit
status is 0 unless --fail-on-error.

Modes (--mode):
  echo      send a message, wait for its echo, repeat (ping-pong)
  pipeline  keep --depth messages in flight per connection
  send      write one way (to a discard server)
  connect   open and close connections; a message is one connect
  idle      open --conns connections and hold them for --duration; with
            --pid the target's memory per connection
  udp       datagrams with --depth in flight per socket, and their loss
            (echo and pipeline on udp:// and unixgram: mean udp)

--rate R fixes the arrival rate across all connections (wrk2): each message
has an intended send time and its latency counts from then, so a stalling
server shows in the percentiles (coordinated omission corrected). Without
--rate the load is closed-loop and latencies are plain round trips.

--engine goroutine runs a goroutine per connection; --engine epoll runs the
connections as protocols on sockit's event loops (cheaper per message).
--pid P adds the target process's CPU time per message and its memory (Linux).`,
		Example: `  # ping-pong against an echo server, 100 connections, 10 s
  sockit serve echo -l tcp://127.0.0.1:7000 &
  sockit bench tcp://127.0.0.1:7000 --conns 100 --duration 10s

  # pipelined, 16 in flight, every byte checked, length-prefixed messages
  sockit bench tcp://127.0.0.1:7000 --mode pipeline --depth 16 --frame len:4 --verify

  # a fixed 20k messages/s with honest latency, and an HTML report
  sockit bench tcp://127.0.0.1:7000 --rate 20000 --html report.html

  # hold 10,000 idle connections from 3 source addresses; server memory per connection
  sockit bench tcp://127.0.0.1:7000 --mode idle --conns 10000 --source 127.0.0.2-127.0.0.4 --pid $(pgrep -n sockit)

  # UDP: 16 sockets, 32 datagrams in flight each, loss reported
  sockit bench udp://127.0.0.1:7000 --conns 16 --depth 32 --json`,
		Args: positional(false, "ENDPOINT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd.Context(), g, args[0], &opts, cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.mode, "mode", "", "echo, pipeline, send, connect, idle or udp (default echo; udp on datagram endpoints)")
	f.StringVar(&opts.engine, "engine", "goroutine", "goroutine (one per connection) or epoll (connections on event loops)")
	f.IntVar(&opts.conns, "conns", bench.DefaultConns, "connections (datagram sockets for udp)")
	f.DurationVar(&opts.duration, "duration", bench.DefaultDuration, "measuring window")
	f.DurationVar(&opts.warmup, "warmup", time.Second, "load before measuring, not counted")
	f.IntVar(&opts.size, "size", 0, "message size in bytes before framing (default 64, or the --payload file's size)")
	f.StringVar(&opts.frame, "frame", "raw", "message framing: raw, line, delim:SEP, fixed:N, len:W, close")
	f.StringVar(&opts.payload, "payload", "random", "message content: random, zero, or a FILE")
	f.IntVar(&opts.depth, "depth", 0, "messages in flight per connection (pipeline: default 16; udp: default 1)")
	f.Float64Var(&opts.rate, "rate", 0, "fixed arrival rate, messages (connects) per second across all connections; 0 = closed loop")
	f.StringVar(&opts.sendProxy, "send-proxy", "", "begin every connection with a PROXY protocol header (v1 or v2) naming it, as a load balancer would, for a server with --proxy-protocol")
	f.StringVar(&opts.source, "source", "", "local address(es) to connect from: ADDR, FIRST-LAST (127.0.0.2-127.0.0.9) or a comma list")
	f.BoolVar(&opts.verify, "verify", false, "check every byte of every echo")
	f.DurationVar(&opts.timeout, "timeout", 0, "connect and echo timeout (default 5s; udp: a datagram's echo later than this is lost, default 1s)")
	f.IntVar(&opts.pid, "pid", 0, "target process: its CPU time per message and RSS before/after (Linux /proc)")
	f.BoolVar(&opts.failOnError, "fail-on-error", false, "exit 1 when any error was counted")
	f.BoolVar(&opts.json, "json", false, "print the result as JSON (schema sockit.bench/v1)")
	f.StringVar(&opts.html, "html", "", "write a self-contained HTML report with latency and throughput plots")
	f.StringVar(&opts.progress, "progress", "auto", "live one-line progress on stderr: auto (on a terminal), always, never")
	f.StringVar(&opts.cpuprofile, "cpuprofile", "", "write a CPU profile of the generator to FILE (for developers)")
	_ = f.MarkHidden("cpuprofile")
	opts.tls.register(f)
	return cmd
}

// config turns the flags into a bench.Config; its errors are usage errors.
func (o *benchOptions) config(g *globals, target string, cmd *cobra.Command) (bench.Config, error) {
	var cfg bench.Config
	ep, err := endpoint.Parse(target)
	if err != nil {
		return cfg, usageError{err}
	}
	spec, err := frame.Parse(o.frame)
	if err != nil {
		return cfg, usageError{err}
	}
	var mode bench.Mode
	if o.mode != "" {
		if mode, err = bench.ParseMode(o.mode); err != nil {
			return cfg, usagef("--mode: %v", strings.TrimPrefix(err.Error(), "sockit: "))
		}
	}
	if o.conns <= 0 {
		return cfg, usagef("--conns must be positive, not %d", o.conns)
	}
	if o.duration <= 0 {
		return cfg, usagef("--duration must be positive, not %v", o.duration)
	}
	if o.warmup < 0 || o.size < 0 || o.depth < 0 || o.rate < 0 || o.timeout < 0 || o.pid < 0 {
		return cfg, usagef("--warmup, --size, --depth, --rate, --timeout and --pid must not be negative")
	}
	payload, err := bench.LoadPayload(o.payload, o.size)
	if err != nil {
		return cfg, usageError{err}
	}
	if payload != nil && o.payload != "zero" && cmd.Flags().Changed("size") && o.size != len(payload) {
		return cfg, usagef("--size %d and --payload %s (%d bytes) disagree; give one of them", o.size, o.payload, len(payload))
	}
	if o.pid > 0 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", o.pid)); err != nil {
			return cfg, usagef("--pid %d: no such process (or no /proc here)", o.pid)
		}
	}
	cfg = bench.Config{
		Endpoint: ep, Mode: mode, Engine: o.engine, Conns: o.conns, Duration: o.duration,
		Warmup: o.warmup, Size: o.size, Frame: spec, Payload: payload, Depth: o.depth,
		Rate: o.rate, Verify: o.verify, Timeout: o.timeout, PID: o.pid, Logger: g.logger,
	}
	if o.sendProxy != "" {
		if cfg.SendProxy, err = proxy.ParseVersion(o.sendProxy); err != nil {
			return cfg, usagef("--send-proxy: %v", err)
		}
		if ep.IsPacket() {
			return cfg, usagef("--send-proxy applies to stream endpoints, not %s", ep.Scheme)
		}
	}
	if o.source != "" {
		if cfg.Sources, err = bench.ParseSources(o.source); err != nil {
			return cfg, usageError{err}
		}
	}
	if ep.IsTLS() {
		if cfg.TLS, err = o.tls.config(""); err != nil {
			return cfg, err
		}
	} else if o.tls.used() {
		g.logger.Warn("TLS options apply to tls:// endpoints only; ignored", "endpoint", ep.String())
	}
	return cfg, nil
}

func runBench(ctx context.Context, g *globals, target string, o *benchOptions, cmd *cobra.Command) error {
	cfg, err := o.config(g, target, cmd)
	if err != nil {
		return err
	}
	var prog *progressLine
	switch o.progress {
	case "auto":
		if f, ok := g.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			prog = &progressLine{w: g.stderr}
		}
	case "always":
		prog = &progressLine{w: g.stderr}
	case "never":
	default:
		return usagef("--progress must be auto, always or never, not %q", o.progress)
	}
	if prog != nil {
		cfg.Progress = prog.show
	}
	if o.cpuprofile != "" {
		stop, perr := startCPUProfile(o.cpuprofile)
		if perr != nil {
			return fmt.Errorf("--cpuprofile: %w", perr)
		}
		defer stop()
	}
	res, err := bench.Run(ctx, cfg)
	if prog != nil {
		prog.clear()
	}
	if errors.Is(err, bench.ErrBadConfig) || errors.Is(err, bench.ErrBadMode) {
		return usageError{err}
	}
	if res == nil {
		return err
	}
	interrupted := err != nil
	if o.html != "" {
		if herr := writeHTMLFile(o.html, res); herr != nil {
			return fmt.Errorf("--html: %w", herr)
		}
	}
	if o.json {
		if werr := writeJSON(g.stdout, res); werr != nil {
			return werr
		}
	} else if werr := res.WriteText(g.stdout); werr != nil {
		return werr
	}
	if interrupted {
		return errInterrupted
	}
	if o.failOnError && res.ErrorTotal > 0 {
		return errBenchErrors
	}
	return nil
}

// startCPUProfile starts a CPU profile written to path; the returned func
// stops it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// writeHTMLFile writes the report through a temporary file and a rename.
func writeHTMLFile(path string, res *bench.Result) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := res.WriteHTML(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// progressLine is the live one-line progress on a terminal.
type progressLine struct {
	w     io.Writer
	width int
}

func (p *progressLine) show(pr bench.Progress) {
	phase := "measuring"
	if pr.Warmup {
		phase = "warming up"
	}
	line := fmt.Sprintf("%s  %5.1fs  %10.0f msg/s  conns %d  errors %d  %s left",
		phase, pr.Elapsed.Seconds(), pr.Rate, pr.Conns, pr.Errors, pr.Remaining.Round(time.Second))
	pad := max(p.width-len(line), 0)
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

func (p *progressLine) clear() {
	if p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
	}
}
