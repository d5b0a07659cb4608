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
	json         bool
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

--json prints one sockit.send/v1 document instead (docs/json.md): every
message and reply, with the connect, first-byte and reply times.

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
	f.BoolVar(&opts.json, "json", false, "print each message and reply, with timings, as one sockit.send/v1 JSON document")
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
	var rec *sendRecorder
	var line []byte
	onReply := func(reply []byte) error {
		line = append(line[:0], reply...)
		if !bytes.HasSuffix(line, []byte("\n")) {
			line = append(line, '\n')
		}
		_, err := g.stdout.Write(line)
		return err
	}
	if opts.json {
		rec = newSendRecorder(ep, spec, opts.timeout, msgs, opts.readGreeting && !ep.IsPacket())
		cfg.Trace = rec.trace()
		onReply = rec.reply
	}
	err = client.Send(ctx, cfg, msgs, onReply)
	if rec != nil {
		if werr := writeJSON(g.stdout, rec.document(err)); werr != nil && err == nil {
			err = werr
		}
	}
	// A message the framing cannot carry is the user's mistake, found before
	// anything was sent.
	if errors.Is(err, client.ErrFixedSize) || errors.Is(err, frame.ErrReplyTooLong) {
		return usageError{err}
	}
	return err
}

// sendJSON is the document of send --json (docs/json.md).
type sendJSON struct {
	Schema         string             `json:"schema"`
	Endpoint       string             `json:"endpoint"`
	Frame          string             `json:"frame"`
	TimeoutSeconds float64            `json:"timeout_seconds"`
	Exchanges      []sendJSONExchange `json:"exchanges"`
	Messages       int                `json:"messages"`
	Replies        int                `json:"replies"`
	TotalSeconds   float64            `json:"total_seconds"`
	OK             bool               `json:"ok"`
	Error          string             `json:"error,omitempty"`
}

type sendJSONExchange struct {
	Index            int      `json:"index"`
	Message          *string  `json:"message,omitempty"`
	MessageBase64    []byte   `json:"message_base64,omitempty"`
	Reply            *string  `json:"reply,omitempty"`
	ReplyBase64      []byte   `json:"reply_base64,omitempty"`
	ConnectSeconds   *float64 `json:"connect_seconds,omitempty"`
	FirstByteSeconds *float64 `json:"first_byte_seconds,omitempty"`
	ReplySeconds     *float64 `json:"reply_seconds,omitempty"`
	Error            string   `json:"error,omitempty"`
}

// sendRecorder builds send --json's document from client.Send's trace and
// replies. Every call comes from Send's goroutine.
type sendRecorder struct {
	doc   sendJSON
	msgs  [][]byte
	start time.Time
	// The exchange under way: its entry, and when it was dialled, when its
	// connection came up, and when its message was written (the greeting's
	// clock starts at the connection).
	cur         *sendJSONExchange
	dialed, out time.Time
	// greets: every connection begins with a greeting; greeting: the
	// current connection's has not come yet.
	greets, greeting bool
}

func newSendRecorder(ep endpoint.Endpoint, spec frame.Spec, timeout time.Duration, msgs [][]byte, greets bool) *sendRecorder {
	f := spec.String()
	if ep.IsPacket() {
		f = "datagram"
	}
	return &sendRecorder{
		doc: sendJSON{
			Schema: "sockit.send/v1", Endpoint: ep.String(), Frame: f,
			TimeoutSeconds: timeout.Seconds(), Exchanges: []sendJSONExchange{}, Messages: len(msgs),
		},
		msgs:   msgs,
		start:  time.Now(),
		greets: greets,
	}
}

// begin makes exchange i the current one, if it is not already.
func (r *sendRecorder) begin(i int) *sendJSONExchange {
	if r.cur != nil && r.cur.Index == i {
		return r.cur
	}
	r.doc.Exchanges = append(r.doc.Exchanges, sendJSONExchange{Index: i})
	r.cur = &r.doc.Exchanges[len(r.doc.Exchanges)-1]
	if i >= 0 {
		r.cur.Message, r.cur.MessageBase64 = wireBytes(r.msgs[i])
	}
	return r.cur
}

func secondsSince(t time.Time) *float64 {
	s := time.Since(t).Seconds()
	return &s
}

func (r *sendRecorder) trace() *client.SendTrace {
	return &client.SendTrace{
		Dialing: func(int) { r.dialed = time.Now() },
		Connected: func(i int) {
			r.out = time.Now()
			if r.greets {
				i, r.greeting = -1, true
			}
			r.begin(i).ConnectSeconds = secondsSince(r.dialed)
		},
		Wrote: func(i int) {
			r.begin(i)
			r.out = time.Now()
		},
		FirstByte: func(i int) { r.begin(i).FirstByteSeconds = secondsSince(r.out) },
	}
}

// reply records the reply to the current exchange, or the connection's
// greeting.
func (r *sendRecorder) reply(b []byte) error {
	if r.greeting {
		r.greeting = false
		r.begin(-1)
	}
	x := r.cur
	x.Reply, x.ReplyBase64 = wireBytes(b)
	x.ReplySeconds = secondsSince(r.out)
	if x.FirstByteSeconds == nil {
		x.FirstByteSeconds = x.ReplySeconds // it was read with an earlier reply
	}
	if x.Index >= 0 {
		r.doc.Replies++
	}
	return nil
}

// document finishes the report with Send's outcome.
func (r *sendRecorder) document(err error) sendJSON {
	r.doc.TotalSeconds = time.Since(r.start).Seconds()
	r.doc.OK = err == nil
	if err != nil {
		r.doc.Error = oneLine(err.Error())
		var nr *client.NoReplyError
		if errors.As(err, &nr) {
			x := r.begin(nr.Index)
			if x.Reply == nil && x.ReplyBase64 == nil {
				x.Error = r.doc.Error
			}
		}
	}
	return r.doc
}
