package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sockit/sockit/endpoint"
)

// DefaultLinger is how long Connect waits for late datagrams after stdin
// ends, when ConnectConfig.Linger is zero.
const DefaultLinger = time.Second

// copyBufSize is the buffer of the copies that look at the bytes (hex dump,
// CRLF, timeouts); plain copies use the kernel's zero-copy paths instead.
const copyBufSize = 64 << 10

// maxDatagram bounds a datagram read or a stdin line sent as one datagram.
const maxDatagram = 64 << 10

// ErrIdleTimeout and ErrReadTimeout are what a *TimeoutError matches with
// errors.Is.
var (
	ErrIdleTimeout = errors.New("sockit: idle timeout")
	ErrReadTimeout = errors.New("sockit: read timeout")
	// ErrSendStalled: after the peer closed its side it took none of the
	// input for maxSendStall lingers, and the rest was not sent.
	ErrSendStalled = errors.New("the peer closed its side and stopped taking data; the rest of the input was not sent")
)

// TimeoutError reports a connection closed by PipeConfig.IdleTimeout (no
// bytes either way) or PipeConfig.ReadTimeout (no bytes from the peer).
type TimeoutError struct {
	// Read is true for a read timeout, false for an idle timeout.
	Read bool
	// Timeout is the limit that passed.
	Timeout time.Duration
	// Addr is the peer.
	Addr string
}

func (e *TimeoutError) Error() string {
	if e.Read {
		return fmt.Sprintf("read timeout (nothing received for %v): %s", e.Timeout, e.Addr)
	}
	return fmt.Sprintf("idle timeout (no data either way for %v): %s", e.Timeout, e.Addr)
}

// Is makes errors.Is match ErrIdleTimeout or ErrReadTimeout.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrIdleTimeout && !e.Read || target == ErrReadTimeout && e.Read
}

// PipeConfig configures Pipe, the netcat pump between stdio and one
// connection. The zero value copies both ways, half-closes the connection at
// the end of the input and has no timeouts.
type PipeConfig struct {
	// NoShutdown keeps the write side open at the end of the input (for
	// peers that take a half-close for an abort).
	NoShutdown bool
	// CRLF turns each bare "\n" of the input into "\r\n".
	CRLF bool
	// SendOnly sends the input and ignores what the peer sends; Pipe
	// returns once the input is sent.
	SendOnly bool
	// RecvOnly never reads the input nor sends anything.
	RecvOnly bool
	// IdleTimeout closes the connection after this long with no bytes
	// either way (a *TimeoutError); zero means never.
	IdleTimeout time.Duration
	// ReadTimeout closes the connection after this long with no bytes from
	// the peer, even while sending (a byte stream has no messages, so this
	// is the slow-loris bound of a raw pump); zero means never.
	ReadTimeout time.Duration
	// Hex, when set, receives a hexdump -C style dump of both directions:
	// lines of sent bytes start with "> ", received with "< ".
	Hex io.Writer
	// Addr names the peer in errors; empty means the connection's remote
	// address.
	Addr string
	// Linger bounds the wait for more input once the peer has closed: the
	// input keeps going to the peer (it may have only half-closed) until it
	// ends or has had nothing new for Linger; what was read is still sent,
	// however slowly the peer takes it, unless the peer takes nothing for 30
	// lingers. On udp and unixgram it is how long
	// to wait for late datagrams after the input ends. Zero means
	// DefaultLinger. An input that is a regular file is always sent whole.
	Linger time.Duration
}

// instrumented reports whether the copies must see the bytes, which rules
// out the kernel's zero-copy paths.
func (cfg *PipeConfig) instrumented() bool {
	return cfg.Hex != nil || cfg.CRLF || cfg.IdleTimeout > 0 || cfg.ReadTimeout > 0
}

// Pipe copies in to c and c to out until the peer closes, like netcat (on a
// unixpacket connection a line of in is a packet, as in Connect): at
// the end of in it half-closes c (unless NoShutdown) and keeps reading until
// the peer closes. It returns nil when the peer closed cleanly (or out was
// closed under it), a *ConnError when the connection failed, a *TimeoutError
// when a timeout closed it, and an error wrapping ctx.Err() when ctx ended
// first. c is closed when Pipe returns.
//
// Without Hex, CRLF and timeouts the copies are plain io.Copy calls, so
// the kernel moves the bytes (splice, sendfile) where both ends allow it.
//
// A Read of in that is blocked when Pipe returns is left to return on its
// own (a terminal or pipe cannot be interrupted); if in has a
// SetReadDeadline method, Pipe uses it to unblock the read.
func Pipe(ctx context.Context, c net.Conn, in io.Reader, out io.Writer, cfg PipeConfig) error {
	if cfg.Addr == "" {
		cfg.Addr = c.RemoteAddr().String()
	}
	if c.LocalAddr().Network() == "unixpacket" {
		return pipePackets(ctx, c, in, out, cfg, true)
	}
	var closeOnce sync.Once
	closeConn := func() { closeOnce.Do(func() { c.Close() }) }
	stop := context.AfterFunc(ctx, closeConn)
	defer stop()
	wd := newWatchdog(cfg.IdleTimeout, cfg.ReadTimeout, func(func(string) error) { closeConn() })
	defer wd.stop()
	hd := newHexDumper(cfg.Hex)

	var upc, downc chan error
	var progress *countingReader
	if !cfg.RecvOnly {
		if !isRegularFile(in) {
			progress = &countingReader{r: in}
			in = progress
		}
		upc = make(chan error, 1)
		go func() { upc <- pumpUp(c, in, &cfg, wd, hd) }()
	}
	linger := cfg.Linger
	if linger <= 0 {
		linger = DefaultLinger
	}
	var lingerC <-chan time.Time
	var seen int64
	downc = make(chan error, 1)
	go func() { downc <- pumpDown(c, out, &cfg, wd, hd) }()

	var err error
loop:
	for {
		select {
		case e := <-upc:
			upc = nil
			if e != nil || cfg.SendOnly || downc == nil {
				// An error, or nothing left to wait for: the peer's
				// side had ended first.
				err = e
				break loop
			}
		case e := <-downc:
			downc = nil
			if e == nil && upc != nil {
				// The peer closed its side, perhaps only half: the input
				// still goes out while it keeps coming.
				if !cfg.SendOnly && progress != nil {
					seen = progress.n.Load()
					t := time.NewTicker(linger)
					defer t.Stop()
					lingerC = t.C
				}
				continue
			}
			err = e
			break loop
		case <-lingerC:
			if upc != nil && !progress.stalled(&seen) {
				continue
			}
			if upc != nil && progress.sendStalled() {
				err = &ConnError{Op: "write", Addr: cfg.Addr, Err: ErrSendStalled}
			}
			break loop // no more input for a while, or all of it sent: done
		}
	}
	closeConn()
	if d, ok := in.(interface{ SetReadDeadline(time.Time) error }); ok && upc != nil {
		_ = d.SetReadDeadline(time.Now())
	}
	return endError(ctx, wd, cfg.Addr, err)
}

// endError is a session's result: the interrupt or the watchdog's timeout
// when one ended it, else err.
func endError(ctx context.Context, wd *watchdog, addr string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", addr, ctx.Err())
	case wd.fired() != nil:
		return wd.fired()(addr)
	}
	return err
}

// printDatagram shows a received datagram: in the hex dump, and (unless
// sendOnly) on out as one line, a newline added when it does not end one.
// p must be a slice of a larger buffer when it may need the newline.
func printDatagram(out io.Writer, hd *hexDumper, p []byte, sendOnly bool) error {
	hd.dump('<', p)
	if sendOnly {
		return nil
	}
	if len(p) == 0 || p[len(p)-1] != '\n' {
		p = append(p, '\n')
	}
	_, err := out.Write(p)
	return err
}

// countingReader counts the bytes read through it, and knows whether the
// copy is waiting for input (inside Read) or busy sending what it read.
type countingReader struct {
	r       io.Reader
	n       atomic.Int64
	waiting atomic.Bool
	blocked int // linger ticks the copy has spent sending without progress
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.waiting.Store(true)
	n, err := c.r.Read(p)
	c.waiting.Store(false)
	c.n.Add(int64(n))
	return n, err
}

// maxSendStall is how many lingers a copy may spend blocked sending, after
// the peer's EOF, before the session ends: a peer that half-closed and then
// stopped reading (or vanished) must not hold the session for ever.
const maxSendStall = 30

// stalled reports, at a linger tick after the peer closed its side, whether
// the input has stopped: nothing new since *seen and the copy waiting for
// more. A copy blocked sending what it already read (a peer that reads
// slowly) is not stalled, ending then would lose those bytes, unless it has
// made no progress for maxSendStall lingers.
func (c *countingReader) stalled(seen *int64) bool {
	n := c.n.Load()
	if n != *seen {
		*seen, c.blocked = n, 0
		return false
	}
	if c.waiting.Load() {
		return true
	}
	c.blocked++
	return c.sendStalled()
}

// sendStalled reports whether stalled gave up on a copy blocked sending.
func (c *countingReader) sendStalled() bool { return c.blocked >= maxSendStall }

// isRegularFile reports whether r is an *os.File on a regular file (whose
// reads never block for long, and which sendfile can send).
func isRegularFile(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular()
}

// errOutputClosed marks the end of the output (a closed pipe), which ends
// a pump quietly.
var errOutputClosed = errors.New("output closed")

// pumpUp copies in to c, then half-closes c.
func pumpUp(c net.Conn, in io.Reader, cfg *PipeConfig, wd *watchdog, hd *hexDumper) error {
	var err error
	if !cfg.instrumented() {
		_, err = io.Copy(c, in)
	} else {
		err = copyInstrumented(c, in, func(p []byte) []byte {
			wd.touch(false)
			hd.dump('>', p)
			return p
		}, cfg.CRLF)
	}
	if err != nil {
		return &ConnError{Op: "write", Addr: cfg.Addr, Err: err}
	}
	if !cfg.NoShutdown {
		closeWrite(c)
	}
	return nil
}

// pumpDown copies c to out (or drops it with SendOnly).
func pumpDown(c net.Conn, out io.Writer, cfg *PipeConfig, wd *watchdog, hd *hexDumper) error {
	if cfg.SendOnly {
		out = io.Discard
	}
	var err error
	if !cfg.instrumented() {
		_, err = io.Copy(out, c)
	} else {
		err = copyInstrumented(out, c, func(p []byte) []byte {
			wd.touch(true)
			hd.dump('<', p)
			return p
		}, false)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EPIPE), errors.Is(err, errOutputClosed):
		// Whoever read our output is gone (`sockit connect ... | head`).
		return nil
	}
	return &ConnError{Op: "read", Addr: cfg.Addr, Err: err}
}

// copyInstrumented copies src to dst through see (called with each chunk
// read), turning bare LF into CRLF when crlf is set. A write error is
// wrapped with errOutputClosed when dst is not a connection and it is EPIPE.
func copyInstrumented(dst io.Writer, src io.Reader, see func([]byte) []byte, crlf bool) error {
	buf := make([]byte, copyBufSize)
	var conv []byte
	var prev byte
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			p := buf[:n]
			if crlf {
				conv, prev = appendCRLF(conv[:0], p, prev)
				p = conv
			}
			p = see(p)
			if _, werr := dst.Write(p); werr != nil {
				return werr
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// appendCRLF appends p to dst with each "\n" not preceded by "\r" turned
// into "\r\n"; prev is the byte before p.
func appendCRLF(dst, p []byte, prev byte) ([]byte, byte) {
	for _, b := range p {
		if b == '\n' && prev != '\r' {
			dst = append(dst, '\r')
		}
		dst = append(dst, b)
		prev = b
	}
	return dst, prev
}

// closeWrite half-closes c's write side: a TLS close_notify and then the
// TCP FIN for TLS, shutdown(SHUT_WR) for TCP and Unix streams. Connections
// that cannot half-close are left open.
func closeWrite(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		_ = tc.CloseWrite()
		c = tc.NetConn()
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// ConnectConfig configures Connect. Endpoint has to be set; the rest of the
// zero value connects with no timeout of its own and pipes both ways.
type ConnectConfig struct {
	// Endpoint is where to connect.
	Endpoint endpoint.Endpoint
	// Dialer connects (Timeout: how long connecting may take; Source; TLS).
	Dialer endpoint.Dialer
	// PipeConfig is how the bytes flow once connected (its Linger is also
	// how long to wait for late datagrams).
	PipeConfig
	// OnConnected, if not nil, is called once the connection is made
	// (after a TLS handshake), before any byte moves: netcat's -v line.
	OnConnected func(net.Conn)
}

// Connect is `sockit connect`: it dials cfg.Endpoint and pipes in and out
// through the connection (see Pipe). On datagram endpoints (udp, unixgram)
// each line of in (its line ending removed) is one datagram and each
// datagram received is written to out followed by "\n" if it has none; after
// the end of in it waits Linger for late replies and returns nil. unixpacket
// maps lines to packets the same way but is a connection: at the end of in
// it half-closes and reads until the peer closes.
//
// A failure to connect is a *ConnError with Op "dial".
func Connect(ctx context.Context, cfg ConnectConfig, in io.Reader, out io.Writer) error {
	c, err := cfg.Dialer.Dial(ctx, cfg.Endpoint)
	if err == nil && cfg.OnConnected != nil {
		cfg.OnConnected(c)
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", cfg.Endpoint.Address, ctx.Err())
		}
		return &ConnError{Op: "dial", Addr: cfg.Endpoint.Address, Err: err}
	}
	if cfg.Addr == "" {
		cfg.Addr = cfg.Endpoint.Address
	}
	switch kindOf(cfg.Endpoint) {
	case datagram:
		return pipePackets(ctx, c, in, out, cfg.PipeConfig, false)
	case seqpacket:
		return pipePackets(ctx, c, in, out, cfg.PipeConfig, true)
	}
	return Pipe(ctx, c, in, out, cfg.PipeConfig)
}

// Probe is `sockit connect -z`: it reports whether ep accepts connections
// (nil) or not (a *ConnError). A stream endpoint is dialed and closed at once
// (a tls:// one after its handshake). On UDP, which has no connections, an
// empty datagram is sent and the port counts as closed only if the system
// reports it unreachable within wait.
func Probe(ctx context.Context, ep endpoint.Endpoint, d endpoint.Dialer, wait time.Duration) error {
	c, err := d.Dial(ctx, ep)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", ep.Address, ctx.Err())
		}
		return &ConnError{Op: "dial", Addr: ep.Address, Err: err}
	}
	defer c.Close()
	if ep.Scheme != "udp" && ep.Scheme != "udp4" && ep.Scheme != "udp6" {
		return nil
	}
	if _, err := c.Write(nil); err != nil {
		return &ConnError{Op: "write", Addr: ep.Address, Err: err}
	}
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", ep.Address, ctx.Err())
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return &ConnError{Op: "read", Addr: ep.Address, Err: err}
		}
	}
	return nil
}

// pipePackets pipes lines as datagrams, or as packets of a connection when
// seq is set.
func pipePackets(ctx context.Context, c net.Conn, in io.Reader, out io.Writer, cfg PipeConfig, seq bool) error {
	linger := cfg.Linger
	if linger <= 0 {
		linger = DefaultLinger
	}
	var closeOnce sync.Once
	closeConn := func() { closeOnce.Do(func() { c.Close() }) }
	defer closeConn()
	stop := context.AfterFunc(ctx, closeConn)
	defer stop()
	wd := newWatchdog(cfg.IdleTimeout, cfg.ReadTimeout, func(func(string) error) { closeConn() })
	defer wd.stop()
	hd := newHexDumper(cfg.Hex)

	upc := make(chan error, 1)
	var progress *countingReader
	if cfg.RecvOnly {
		upc = nil
	} else {
		progress = &countingReader{r: in}
		in = progress
		go func() {
			r := newLineReader(in)
			for {
				line, rerr := r.next(cfg.CRLF)
				if line != nil {
					wd.touch(false)
					hd.dump('>', line)
					if _, err := c.Write(line); err != nil {
						upc <- &ConnError{Op: "write", Addr: cfg.Addr, Err: err}
						return
					}
				}
				if rerr != nil {
					if seq && !cfg.NoShutdown {
						closeWrite(c)
					}
					upc <- nil
					return
				}
			}
		}()
	}
	downc := make(chan error, 1)
	go func() {
		buf := make([]byte, maxDatagram+1)
		for {
			n, err := c.Read(buf)
			if err != nil {
				if errors.Is(err, io.EOF) {
					downc <- nil
				} else {
					downc <- err
				}
				return
			}
			wd.touch(true)
			if err := printDatagram(out, hd, buf[:n], cfg.SendOnly); err != nil {
				downc <- errOutputClosed
				return
			}
		}
	}()

	var err error
	var lingerC <-chan time.Time
	var seen int64
loop:
	for {
		select {
		case e := <-upc:
			upc = nil
			if e != nil || lingerC != nil {
				err = e
				break loop
			}
			if !seq {
				// Late replies may still come; a datagram socket has no
				// end of its own.
				_ = c.SetReadDeadline(time.Now().Add(linger))
			}
		case e := <-downc:
			downc = nil
			var ne net.Error
			switch {
			case e == nil, errors.Is(e, errOutputClosed):
				if upc != nil && !errors.Is(e, errOutputClosed) {
					if seq && !cfg.SendOnly {
						// The peer closed its side; the input still goes
						// out while it keeps coming (see Pipe).
						seen = progress.n.Load()
						t := time.NewTicker(linger)
						defer t.Stop()
						lingerC = t.C
					}
					continue
				}
			case errors.Is(e, os.ErrDeadlineExceeded) && upc == nil && wd.fired() == nil:
				// Linger passed.
			case errors.As(e, &ne) && ne.Timeout() && wd.fired() == nil && upc == nil:
			default:
				err = &ConnError{Op: "read", Addr: cfg.Addr, Err: e}
			}
			break loop
		case <-lingerC:
			if upc != nil && !progress.stalled(&seen) {
				continue
			}
			break loop
		}
	}
	closeConn()
	return endError(ctx, wd, cfg.Addr, err)
}

// lineReader reads the lines of an input as datagrams.
type lineReader struct {
	r    *bufio.Reader
	line []byte
}

func newLineReader(in io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(in, maxDatagram)}
}

// next returns the next line without its "\n" or "\r\n" (with "\r\n" added
// back when crlf is set), valid until the next call. A line longer than
// maxDatagram comes in pieces. At the end of the input it returns the last
// unterminated line, if any, with the error (io.EOF).
func (l *lineReader) next(crlf bool) ([]byte, error) {
	p, err := l.r.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		err = nil // a piece of a long line
	case err == nil:
		p = p[:len(p)-1]
		if n := len(p); n > 0 && p[n-1] == '\r' {
			p = p[:n-1]
		}
	case len(p) == 0:
		return nil, err
	}
	l.line = append(l.line[:0], p...)
	if crlf {
		l.line = append(l.line, '\r', '\n')
	}
	return l.line, err
}

// watchdog closes a connection when it has been idle (no bytes either way)
// or silent (no bytes received) for too long. A nil *watchdog does nothing.
type watchdog struct {
	idle, read time.Duration
	onFire     func(why func(addr string) error)

	mu       sync.Mutex
	lastAny  time.Time
	lastRead time.Time
	timer    *time.Timer
	stopped  bool
	why      func(addr string) error
}

// newWatchdog returns nil when both limits are zero.
func newWatchdog(idle, read time.Duration, onFire func(why func(addr string) error)) *watchdog {
	if idle <= 0 && read <= 0 {
		return nil
	}
	now := time.Now()
	w := &watchdog{idle: idle, read: read, onFire: onFire, lastAny: now, lastRead: now}
	w.mu.Lock()
	w.timer = time.AfterFunc(w.nextLocked(now), w.check)
	w.mu.Unlock()
	return w
}

// nextLocked returns how long until the earliest limit could pass.
func (w *watchdog) nextLocked(now time.Time) time.Duration {
	d := time.Duration(1<<63 - 1)
	if w.idle > 0 {
		d = min(d, w.lastAny.Add(w.idle).Sub(now))
	}
	if w.read > 0 {
		d = min(d, w.lastRead.Add(w.read).Sub(now))
	}
	return max(d, time.Millisecond)
}

func (w *watchdog) check() {
	w.mu.Lock()
	if w.stopped || w.why != nil {
		w.mu.Unlock()
		return
	}
	now := time.Now()
	switch {
	case w.idle > 0 && now.Sub(w.lastAny) >= w.idle:
		d := w.idle
		w.why = func(addr string) error { return &TimeoutError{Timeout: d, Addr: addr} }
	case w.read > 0 && now.Sub(w.lastRead) >= w.read:
		d := w.read
		w.why = func(addr string) error { return &TimeoutError{Read: true, Timeout: d, Addr: addr} }
	default:
		w.timer.Reset(w.nextLocked(now))
		w.mu.Unlock()
		return
	}
	why := w.why
	w.mu.Unlock()
	w.onFire(why)
}

// touch records bytes moving; received says they came from the peer.
func (w *watchdog) touch(received bool) {
	if w == nil {
		return
	}
	now := time.Now()
	w.mu.Lock()
	w.lastAny = now
	if received {
		w.lastRead = now
	}
	w.mu.Unlock()
}

// fired returns the error maker of the limit that passed, or nil.
func (w *watchdog) fired() func(addr string) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.why
}

func (w *watchdog) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.stopped = true
	w.timer.Stop()
	w.mu.Unlock()
}

// hexDumper writes hexdump -C style lines of both directions; a nil
// *hexDumper does nothing. Offsets count each direction on its own.
type hexDumper struct {
	mu   sync.Mutex
	w    io.Writer
	sent int64
	recv int64
	line []byte
}

func newHexDumper(w io.Writer) *hexDumper {
	if w == nil {
		return nil
	}
	return &hexDumper{w: w}
}

// dump writes p, marked '>' (sent) or '<' (received).
func (h *hexDumper) dump(dir byte, p []byte) {
	if h == nil || len(p) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	off := &h.recv
	if dir == '>' {
		off = &h.sent
	}
	h.line = AppendHexDump(h.line[:0], dir, *off, p)
	*off += int64(len(p))
	_, _ = h.w.Write(h.line)
}

// AppendHexDump appends a hexdump -C style dump of p to dst, the first byte
// at offset off, each line prefixed with dir and a space when dir is not 0:
//
//	> 00000000  68 65 6c 6c 6f 0a                                 |hello.|
func AppendHexDump(dst []byte, dir byte, off int64, p []byte) []byte {
	const hexDigits = "0123456789abcdef"
	for len(p) > 0 {
		n := min(len(p), 16)
		if dir != 0 {
			dst = append(dst, dir, ' ')
		}
		dst = fmt.Appendf(dst, "%08x  ", off)
		for i := range 16 {
			if i < n {
				dst = append(dst, hexDigits[p[i]>>4], hexDigits[p[i]&0xf], ' ')
			} else {
				dst = append(dst, ' ', ' ', ' ')
			}
			if i == 7 {
				dst = append(dst, ' ')
			}
		}
		dst = append(dst, ' ', '|')
		for _, b := range p[:n] {
			if b < 0x20 || b > 0x7e {
				b = '.'
			}
			dst = append(dst, b)
		}
		dst = append(dst, '|', '\n')
		p = p[n:]
		off += int64(n)
	}
	return dst
}
