package main

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/sockit/sockit/client"
	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/frame"
)

func init() { extraCommands = append(extraCommands, newSendCommand) }

// sendOptions are sockit send's flags and arguments.
type sendOptions struct {
	endpoint     string
	msgs         []string
	frame        string
	maxFrame     int
	timeout      time.Duration
	quiet        time.Duration
	readGreeting bool
	source       string
	tls          clientTLSFlags
}

func newSendCommand(g *globals) *cobra.Command {
	var opts sendOptions
	cmd := &cobra.Command{
		Use:   "send ENDPOINT MSG...",
		Short: "send messages and print one reply to each",
		Long: `send sends each MSG to ENDPOINT, waits for one reply and prints it on its own
line (a newline is added unless the reply ends with one).

In each MSG the escapes \n \r \t \0 \xHH and \\ are interpreted. On streams
(tcp, tls, unix, unixpacket) every MSG is sent framed (--frame) over one
connection; with --frame close each MSG gets its own connection and half-close.
tls:// endpoints verify the server by default (--ca, --pin, --insecure).
On datagram endpoints (udp, unixgram) each MSG is one datagram and its reply one
datagram, whatever --frame says.

In raw framing a reply is what arrives until --quiet passes with no more bytes.
--read-greeting first reads and prints one message, for servers that greet
(like hello over TCP), so that replies never shift by one.

Exit status: 0 when every reply came, 1 when one is missing or the connection
failed, 2 for a usage error, 130 when interrupted.`,
		Example: `  # seed 000's UDP client: three datagrams, three replies
  sockit send udp://127.0.0.1:7788 Michael Tracy Sarah

  # hello over TCP greets first: read the greeting, then the replies
  sockit send --read-greeting tcp://127.0.0.1:7788 Michael Tracy

  # line framing, with escapes in the message
  sockit send --frame line 127.0.0.1:7788 'a\tb' 'second'

  # length-prefixed binary message over a Unix socket
  sockit send --frame len:4 unix:///tmp/echo.sock '\x00\x01\xff'

  # a Unix datagram server (send binds a temporary path for the replies)
  sockit send unixgram:///tmp/upper.sock 'hello world'

  # TLS to a server with a self-signed certificate
  sockit send --frame line --pin sha256:3f1c... tls://127.0.0.1:8443 ping`,
		Args: positional(true, "ENDPOINT", "MESSAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.endpoint, opts.msgs = args[0], args[1:]
			return runSend(cmd.Context(), g, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.frame, "frame", "raw", "message framing: raw, line, delim:SEP, fixed:N, len:W, close")
	f.IntVar(&opts.maxFrame, "max-frame", frame.DefaultMaxFrame, "largest reply accepted, in bytes")
	f.DurationVar(&opts.timeout, "timeout", client.DefaultTimeout, "how long to wait for each reply (and for connecting)")
	f.DurationVar(&opts.quiet, "quiet", client.DefaultQuiet, "raw framing: a reply ends after this long with no more bytes")
	f.BoolVar(&opts.readGreeting, "read-greeting", false, "read and print one message before sending (servers that greet)")
	f.StringVar(&opts.source, "source", "", "local address to send from, ADDR[:PORT]")
	opts.tls.register(f)
	return cmd
}

// runSend checks the options, sends the messages and prints the replies.
func runSend(ctx context.Context, g *globals, opts sendOptions) error {
	ep, err := endpoint.Parse(opts.endpoint)
	if err != nil {
		return usageError{err}
	}
	if ep.Scheme == "fd" {
		return usagef("send cannot use %q: fd:// names an inherited listener", opts.endpoint)
	}
	if opts.source != "" && ep.IsUnix() && ep.Scheme != "unixgram" {
		return usagef("--source applies to IP and unixgram endpoints, not %s", ep.Scheme)
	}
	spec, err := frame.Parse(opts.frame)
	if err != nil {
		return usagef("--frame: %v", err)
	}
	if opts.maxFrame <= 0 {
		return usagef("--max-frame must be positive, not %d", opts.maxFrame)
	}
	if opts.timeout <= 0 {
		return usagef("--timeout must be positive, not %v", opts.timeout)
	}
	if opts.quiet <= 0 {
		return usagef("--quiet must be positive, not %v", opts.quiet)
	}
	msgs := make([][]byte, len(opts.msgs))
	for i, s := range opts.msgs {
		if msgs[i], err = frame.Unescape(s, true); err != nil {
			return usagef("message %q: %v", s, err)
		}
	}
	d := endpoint.Dialer{Timeout: opts.timeout, Source: opts.source}
	if ep.IsTLS() {
		if d.TLS, err = opts.tls.config(""); err != nil {
			return err
		}
	} else if opts.tls.used() {
		return usagef("TLS options apply to tls:// endpoints, not %s", ep.Scheme)
	}
	cfg := client.SendConfig{
		Endpoint:     ep,
		Dialer:       d,
		Frame:        spec,
		MaxFrame:     opts.maxFrame,
		Timeout:      opts.timeout,
		Quiet:        opts.quiet,
		ReadGreeting: opts.readGreeting,
	}
	if g.logger != nil {
		g.logger.Debug("send", "endpoint", opts.endpoint, "frame", spec.String(), "messages", len(msgs))
	}
	var line []byte
	err = client.Send(ctx, cfg, msgs, func(reply []byte) error {
		line = append(line[:0], reply...)
		if !bytes.HasSuffix(line, []byte("\n")) {
			line = append(line, '\n')
		}
		_, err := g.stdout.Write(line)
		return err
	})
	// A message the framing cannot carry is the user's mistake, found before
	// anything was sent.
	if errors.Is(err, client.ErrFixedSize) || errors.Is(err, frame.ErrReplyTooLong) {
		return usageError{err}
	}
	return err
}
