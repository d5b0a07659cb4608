package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/soak"
)

func init() { extraCommands = append(extraCommands, newSoakCommand) }

// soakOptions are sockit soak's flags.
type soakOptions struct {
	service     string
	frame       string
	maxFrame    int
	greeting    string
	duration    time.Duration
	warmup      time.Duration
	clients     int
	maxMsg      int
	faults      string
	rate        float64
	flood       int
	timeout     time.Duration
	pid         int
	metrics     string
	settle      time.Duration
	json        bool
	allowRemote bool
	tls         clientTLSFlags
}

// errSoakFailed is returned when the run found a loss, a wrong answer to a
// fault or a leak; the report says which.
var errSoakFailed = errors.New("soak failed")

func newSoakCommand(g *globals) *cobra.Command {
	var opts soakOptions
	cmd := &cobra.Command{
		Use:   "soak ENDPOINT",
		Short: "a long mix of good and bad clients: prove nothing is lost and nothing leaks",
		Long: `soak runs --clients well-behaved clients against ENDPOINT for --duration, each
checking every byte of every reply of --service with --frame (give the server's),
and mixes in bad clients at --rate per second of each kind (--faults):

  reset           half a message, then a reset (SO_LINGER 0)
  stall           half a message, then nothing (half-open)
  slowloris       a message one byte a second
  oversized       a message over --max-frame, or a len:W header of 4 GiB
  garbage         random bytes and invalid UTF-8, then a half-close
  flood           --flood connections at once (past the server's --max-conns)
  noread          messages whose replies are never read
  tls-stall       a TLS handshake that stops after 6 bytes (tls:// only)
  udp-flood       2,000 datagrams from a socket that never reads (datagrams only)
  empty-datagram  a 0-byte datagram; big-datagram  a 65,507-byte one

The report counts messages sent, answered and lost, the faults injected and how
the server treated them, and with --pid the server's goroutines (from --metrics),
threads, fds and RSS at the start (after --warmup), at the peak and after the
load, when each must be back within 10 % of its start, or 4 goroutines, 2 fds
and 4 MiB of RSS on a small server (waiting up to --settle).
The run passes when no message was lost, every checked fault was answered as it
should be and nothing leaked: exit 0; else exit 1. A connection the server
closes before answering anything (past its --max-conns) is retried, not lost.

Targets must be on loopback (127.0.0.0/8, ::1, Unix sockets) unless
--allow-remote: soak sends abuse.`,
		Example: `  # two minutes against an echo server, both watched
  sockit serve echo --frame line --read-timeout 2s --max-conns 100 -l tcp://127.0.0.1:7000 &
  sockit soak tcp://127.0.0.1:7000 --frame line --flood 150 --pid $!

  # a hello server over TLS, 30 s, as JSON
  sockit serve hello --frame len:4 --tls-self-signed -l tls://127.0.0.1:7443 &
  sockit soak tls://127.0.0.1:7443 --service hello --frame len:4 --insecure --duration 30s --json

  # UDP: floods, empty and maximal datagrams between the good ones
  sockit serve upper -l udp://127.0.0.1:7001 &
  sockit soak udp://127.0.0.1:7001 --service upper --duration 20s`,
		Args: positional(false, "ENDPOINT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSoak(cmd.Context(), g, args[0], &opts, cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.service, "service", "echo", "what the server runs, to check its replies: "+strings.Join(soak.Services, ", "))
	f.StringVar(&opts.frame, "frame", "raw", "the server's framing: raw, line, delim:SEP, fixed:N, len:W, close")
	f.IntVar(&opts.maxFrame, "max-frame", frame.DefaultMaxFrame, "the server's --max-frame, in bytes (oversized messages are one byte longer)")
	f.StringVar(&opts.greeting, "greeting", "", `the server's --greeting, expected on every connect (escapes \n \r \t \0 \\); hello's default is "Welcome!"`)
	f.DurationVar(&opts.duration, "duration", soak.DefaultDuration, "how long the load runs")
	f.DurationVar(&opts.warmup, "warmup", time.Second, "well-behaved load alone before the start sample")
	f.IntVar(&opts.clients, "clients", soak.DefaultClients, "well-behaved clients")
	f.IntVar(&opts.maxMsg, "max-msg", soak.DefaultMaxMsg, "largest well-behaved message in bytes (one in 64 is up to 16 times larger)")
	f.StringVar(&opts.faults, "faults", "all", "bad clients: all, none, or a comma list of the kinds above")
	f.Float64Var(&opts.rate, "rate", soak.DefaultRate, "bad clients of each kind started per second (a flood every 5/rate s)")
	f.IntVar(&opts.flood, "flood", soak.DefaultFlood, "connections of one flood")
	f.DurationVar(&opts.timeout, "timeout", soak.DefaultTimeout, "connect and reply timeout; a reply later than this is lost")
	f.IntVar(&opts.pid, "pid", 0, "the server's process: sample its fds, RSS and threads (Linux /proc)")
	f.StringVar(&opts.metrics, "metrics", "", "the server's Prometheus /metrics URL, for its goroutines (with --pid)")
	f.DurationVar(&opts.settle, "settle", soak.DefaultSettle, "after the load, how long to wait for the server to come back to its start")
	f.BoolVar(&opts.json, "json", false, "print the report as JSON (schema sockit.soak/v1)")
	f.BoolVar(&opts.allowRemote, "allow-remote", false, "allow a target outside loopback")
	opts.tls.register(f)
	return cmd
}

// config turns the flags into a soak.Config; its errors are usage errors.
func (o *soakOptions) config(g *globals, target string, cmd *cobra.Command) (soak.Config, error) {
	var cfg soak.Config
	ep, err := endpoint.Parse(target)
	if err != nil {
		return cfg, usageError{err}
	}
	spec, err := frame.Parse(o.frame)
	if err != nil {
		return cfg, usageError{err}
	}
	faults, err := soak.ParseFaults(o.faults)
	if err != nil {
		return cfg, usageError{err}
	}
	if o.maxFrame <= 0 || o.clients <= 0 || o.maxMsg <= 0 || o.duration <= 0 || o.rate <= 0 || o.flood <= 0 || o.timeout <= 0 {
		return cfg, usagef("--max-frame, --clients, --max-msg, --duration, --rate, --flood and --timeout must be positive")
	}
	if o.warmup < 0 || o.settle < 0 || o.pid < 0 {
		return cfg, usagef("--warmup, --settle and --pid must not be negative")
	}
	if o.pid > 0 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", o.pid)); err != nil {
			return cfg, usagef("--pid %d: no such process (or no /proc here)", o.pid)
		}
	}
	if o.metrics != "" && o.pid == 0 {
		return cfg, usagef("--metrics needs --pid: the server's process is what is sampled")
	}
	cfg = soak.Config{
		Endpoint: ep, Service: o.service, Frame: spec, MaxFrame: o.maxFrame, Duration: o.duration,
		Warmup: o.warmup, Clients: o.clients, MaxMsg: o.maxMsg, Faults: faults, Rate: o.rate,
		Flood: o.flood, Timeout: o.timeout, PID: o.pid, MetricsURL: o.metrics, Settle: o.settle,
		AllowRemote: o.allowRemote, Logger: g.logger,
	}
	if o.warmup == 0 {
		cfg.Warmup = -1
	}
	if cmd.Flags().Changed("greeting") {
		if cfg.Greeting, err = frame.Unescape(o.greeting, false); err != nil {
			return cfg, usagef("--greeting: %v", err)
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

func runSoak(ctx context.Context, g *globals, target string, o *soakOptions, cmd *cobra.Command) error {
	cfg, err := o.config(g, target, cmd)
	if err != nil {
		return err
	}
	rep, err := soak.Run(ctx, cfg)
	if errors.Is(err, soak.ErrBadConfig) {
		return usageError{errors.New(strings.TrimPrefix(err.Error(), "sockit: "))}
	}
	if err != nil {
		return err
	}
	if o.json {
		if err := writeJSON(g.stdout, rep); err != nil {
			return err
		}
	} else if err := rep.WriteText(g.stdout); err != nil {
		return err
	}
	switch {
	case rep.Interrupted:
		return errInterrupted
	case !rep.Passed:
		return fmt.Errorf("%w: %s", errSoakFailed, strings.Join(rep.Failures, "; "))
	}
	return nil
}
