// Command sockit is the network toolkit's one binary: servers for the classic
// services, netcat-class clients and a load generator. Each subcommand lives in
// its own cmd_<name>.go and is a thin layer over the library packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit statuses (SPEC section 5).
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// usageError marks an error as the user's mistake: one line, exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit status 2).
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// errInterrupted is returned by client commands stopped by SIGINT.
var errInterrupted = errors.New("interrupted")

// exitCode maps an error to the documented exit status, in one place.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	default:
		return exitFailure
	}
}

// globals are the flags every command has.
type globals struct {
	logFormat string
	logLevel  string
	// verbose is how many -v: 1 prints netcat's human lines (connect,
	// listen), 2 also debug logging (as --log-level debug).
	verbose int
	stdout  io.Writer
	stderr  io.Writer
	stdin   io.Reader
	logger  *slog.Logger
}

func (g *globals) setupLogger() error {
	level := slog.LevelInfo
	if g.verbose >= 2 {
		level = slog.LevelDebug
	}
	switch g.logLevel {
	case "":
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return usagef("--log-level must be debug, info, warn or error, not %q", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text", "":
		g.logger = slog.New(slog.NewTextHandler(g.stderr, opts))
	case "json":
		opts.ReplaceAttr = jsonDurations
		g.logger = slog.New(slog.NewJSONHandler(g.stderr, opts))
	default:
		return usagef("--log-format must be text or json, not %q", g.logFormat)
	}
	return nil
}

func newRootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "sockit",
		Short: "sockit is a network toolkit: classic servers, netcat-class clients, a load generator",
		Long: `sockit serves the classic network services (echo, discard, chargen, daytime,
hello, upper, reply) and HTTP on TCP, UDP, Unix sockets and TLS; talks to any
peer like netcat and socat (send, connect, listen, relay); fetches URLs (http,
fetch); and measures servers with honest latency percentiles (bench).

Endpoints: tcp://HOST:PORT, tcp4://, tcp6://, udp://HOST:PORT, udp4://, udp6://,
unix:///abs/path.sock or unix:rel/path.sock, unixgram:..., unixpacket:...,
tls://HOST:PORT, fd://N (an inherited listener). A bare HOST:PORT means tcp://.`,
		Example: `  sockit serve hello
  sockit send udp://127.0.0.1:7788 Michael Tracy Sarah
  printf 'hi\n' | sockit connect tcp://127.0.0.1:7788
  sockit bench tcp://127.0.0.1:7788 --conns 100 --duration 5s`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return g.setupLogger()
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetIn(g.stdin)
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format on stderr: text or json")
	root.PersistentFlags().CountVarP(&g.verbose, "verbose", "v", "-v: netcat's human lines on stderr (connect, listen); -vv: debug logging too")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn or error (default info; -vv is debug)")
	// Flag parsing errors are usage errors (exit 2).
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{err}
	})
	root.AddCommand(
		newVersionCommand(g),
		newServeCommand(g),
	)
	for _, add := range extraCommands {
		root.AddCommand(add(g))
	}
	return root
}

// extraCommands lets each cmd_<name>.go register itself without editing this
// file's list.
var extraCommands []func(*globals) *cobra.Command

// run executes the CLI with the given arguments and streams and returns the
// exit status. Tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr, stdin: stdin}
	root := newRootCommand(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		// Unknown commands and argument-count errors come from cobra
		// without our usage marker.
		if isCobraUsageError(err) {
			err = usageError{err}
		}
		// Library errors already name sockit ("sockit: bad {N..M} range"):
		// one prefix, not two.
		msg := err.Error()
		if !strings.HasPrefix(msg, "sockit: ") {
			msg = "sockit: " + msg
		}
		if g.logFormat == "json" {
			// With JSON logs the final error is a JSON line too.
			l := g.logger
			if l == nil { // a flag error, before the logger was made
				l = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{ReplaceAttr: jsonDurations}))
			}
			l.Error(msg, "exit", exitCode(err))
		} else {
			fmt.Fprintln(stderr, msg)
		}
	}
	if err != nil && errors.Is(err, context.Canceled) {
		err = errInterrupted
	}
	return exitCode(err)
}

// jsonDurations writes durations in JSON logs as Go writes them ("10s",
// "1.5ms"), not as integer nanoseconds.
func jsonDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

func main() {
	ctx, stop := signalContext()
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// signalContext returns a context cancelled by the first SIGINT or SIGTERM; a
// second signal exits at once with status 1 (SPEC section 4).
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			return
		}
		<-ch
		fmt.Fprintln(os.Stderr, "sockit: second signal, exiting now")
		os.Exit(exitFailure)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
