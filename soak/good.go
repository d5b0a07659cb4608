package soak

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sockit/sockit/frame"
)

// good is one well-behaved client.
type good struct {
	s    *settings
	st   *stats
	id   int
	r    *rand.Rand
	next int64 // message number
	stop *atomic.Bool
}

// errRefused marks a connection the server closed before answering anything
// on it: what a server past --max-conns does. The messages are sent again.
var errRefused = errors.New("connection closed before any answer")

// refusedFor is how long, in Timeouts, a client keeps retrying connections
// the server refuses (closed before any answer, as past --max-conns) before
// it reports that it could not get in. Three Timeouts outlast the slots bad
// clients hold (a stalled connection until the server's idle timeout), so a
// good client that still cannot get in then is being starved.
const refusedFor = 3

// refusals tracks a run of refused connections in a row.
type refusals struct {
	first time.Time
	n     int
}

// another counts one more refusal and reports whether the client should
// give up: it has been refused for refusedFor Timeouts.
func (r *refusals) another(timeout time.Duration) bool {
	if r.n == 0 {
		r.first = time.Now()
	}
	r.n++
	return time.Since(r.first) > refusedFor*timeout
}

func (g *good) run(ctx context.Context) {
	switch {
	case g.s.Service == "http":
		g.runHTTP(ctx)
	case g.s.Endpoint.IsPacket():
		g.runDatagram(ctx)
	default:
		for !g.stop.Load() && ctx.Err() == nil {
			g.conn(ctx)
		}
	}
}

// dial opens a connection, retrying refusals (a full backlog, a TLS
// handshake the server closed at --max-conns) for up to Timeout.
func (g *good) dial(ctx context.Context) (net.Conn, error) {
	deadline := time.Now().Add(g.s.Timeout)
	for {
		c, err := g.s.dialer.Dial(ctx, g.s.Endpoint)
		if err == nil {
			g.st.connections.Add(1)
			return c, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, err
		}
		g.st.refused.Add(1)
		pause(ctx, 20*time.Millisecond+time.Duration(g.r.IntN(30))*time.Millisecond)
	}
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// isClosed reports whether err is the peer closing or resetting the
// connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOTCONN) || errors.Is(err, net.ErrClosed)
}

// conn runs one connection of a stream service: its greeting, then batches
// of messages, then a clean close.
func (g *good) conn(ctx context.Context) {
	switch g.s.Service {
	case "daytime", "chargen":
		g.oneShot(ctx)
		return
	}
	msgs := 1 + g.r.IntN(256)
	if g.s.Frame.Kind == frame.Close {
		msgs = 1
	}
	var pending [][]byte // a refused batch, sent again on the next connection
	var refused refusals
	for {
		c, err := g.dial(ctx)
		if err != nil {
			if ctx.Err() == nil {
				g.st.fail("client %d: cannot connect for %v: %v", g.id, g.s.Timeout, err)
				g.countLost(pending, false)
			}
			return
		}
		done := g.st.opened()
		pending, err = g.session(c, msgs, pending)
		c.Close()
		done()
		if !errors.Is(err, errRefused) {
			return
		}
		g.st.refused.Add(1)
		if g.stop.Load() || ctx.Err() != nil {
			return // the server never took the batch: nothing of it was lost
		}
		if refused.another(g.s.Timeout) {
			g.st.fail("client %d: %d connections in a row closed before any answer, for %v", g.id, refused.n, time.Since(refused.first).Round(time.Millisecond))
			g.countLost(pending, false)
			return
		}
		pause(ctx, 10*time.Millisecond)
	}
}

// countLost counts messages without their reply.
func (g *good) countLost(msgs [][]byte, corrupt bool) {
	n := int64(len(msgs))
	g.st.sent.Add(n)
	g.st.lost.Add(n)
	if corrupt {
		g.st.corrupt.Add(1)
	}
}

// wire reads a connection's replies: raw bytes of a stream, framed messages,
// or packets (unixpacket, where each packet is a message).
type wire struct {
	c      net.Conn
	br     *bufio.Reader
	rd     *frame.Reader // framed streams
	packet bool
	buf    []byte
	shut   bool // our side is half-closed
}

func (g *good) newWire(c net.Conn) *wire {
	w := &wire{c: c, packet: g.s.Endpoint.Scheme == "unixpacket"}
	if w.packet {
		w.buf = make([]byte, g.s.maxRead)
		return w
	}
	w.br = bufio.NewReaderSize(c, 64<<10)
	if g.s.Frame.Kind != frame.Raw {
		w.rd = frame.NewReader(w.br, g.s.Frame, g.s.maxRead)
	}
	return w
}

// raw reads n bytes of a stream, or one packet.
func (w *wire) raw(n int) ([]byte, error) {
	if w.packet {
		return w.next()
	}
	b := make([]byte, n)
	k, err := io.ReadFull(w.br, b)
	return b[:k], err
}

// next reads one framed message or packet.
func (w *wire) next() ([]byte, error) {
	if w.packet {
		n, err := w.c.Read(w.buf)
		if err == nil && n == 0 {
			err = io.EOF
		}
		return w.buf[:n], err
	}
	return w.rd.ReadMessage()
}

// session runs up to msgs messages on c. It returns the batch to send again
// and errRefused when the server closed c before answering anything.
func (g *good) session(c net.Conn, msgs int, pending [][]byte) ([][]byte, error) {
	s := g.s
	w := g.newWire(c)
	answered := false
	var held [][]byte
	if len(s.Greeting) > 0 {
		_ = c.SetReadDeadline(time.Now().Add(s.Timeout))
		got, err := w.raw(len(s.Greeting))
		if err != nil {
			if len(got) == 0 && isClosed(err) {
				return pending, errRefused
			}
			g.st.fail("client %d: greeting: %v", g.id, err)
			g.countLost(pending, false)
			return nil, err
		}
		if !bytes.Equal(got, s.Greeting) {
			g.st.fail("client %d: greeting %q, want %q", g.id, trunc(got), trunc(s.Greeting))
			g.countLost(pending, true)
			return nil, errMismatch
		}
		answered = true
	}
	for sent := 0; sent < msgs && !g.stop.Load(); {
		batch := pending
		pending = nil
		if batch == nil {
			k := 1
			if s.Frame.Kind != frame.Close && g.r.IntN(4) == 0 {
				k = 2 + g.r.IntN(7)
			}
			for range k {
				batch = append(batch, s.message(g.r, g.id, g.next))
				g.next++
			}
		}
		ok, err := g.exchange(w, batch)
		if s.Service == "discard" {
			// Nothing is confirmed until the server's close.
			held = append(held, batch...)
			if err != nil {
				if isClosed(err) {
					return held, errRefused
				}
				g.countLost(held, false)
				g.st.fail("client %d: %v", g.id, err)
				return nil, err
			}
			sent += len(batch)
			continue
		}
		if err != nil && !answered && ok == 0 && isClosed(err) {
			return batch, errRefused
		}
		g.st.sent.Add(int64(len(batch)))
		g.st.answered.Add(int64(ok))
		if err != nil {
			g.st.lost.Add(int64(len(batch) - ok))
			if errors.Is(err, errMismatch) {
				g.st.corrupt.Add(1)
			}
			g.st.fail("client %d: %v", g.id, err)
			return nil, err
		}
		answered = true
		sent += len(batch)
	}
	switch {
	case s.Service == "reply" && !g.stop.Load() && g.r.IntN(2) == 0:
		return nil, g.bye(w)
	case s.Service == "discard":
		// The server's close after our half-close says it read everything;
		// a reset says it closed without reading (past --max-conns).
		err := g.closed(w)
		switch {
		case err == nil:
			g.st.sent.Add(int64(len(held)))
			g.st.answered.Add(int64(len(held)))
		case isClosed(err):
			return held, errRefused
		default:
			g.countLost(held, false)
			g.st.fail("client %d: waiting for the server's close: %v", g.id, err)
		}
		return nil, err
	case s.Frame.Kind == frame.Close:
		// The reply ended with the close.
		if err := g.closed(w); err != nil {
			g.st.fail("client %d: waiting for the server's close: %v", g.id, err)
			return nil, err
		}
	}
	return nil, nil
}

var errMismatch = errors.New("wrong reply")

// exchange writes a batch of messages in one write (a packet each on
// unixpacket) and reads their replies; it returns how many were answered
// right.
func (g *good) exchange(w *wire, batch [][]byte) (int, error) {
	s := g.s
	c := w.c
	_ = c.SetDeadline(time.Now().Add(s.Timeout))
	if w.packet {
		for _, m := range batch {
			if _, err := c.Write(m); err != nil {
				return 0, err
			}
		}
	} else {
		var out []byte
		for _, m := range batch {
			var err error
			if out, err = s.Frame.Append(out, m); err != nil {
				return 0, err
			}
		}
		if _, err := c.Write(out); err != nil {
			return 0, err
		}
	}
	if s.Service == "discard" {
		return len(batch), nil
	}
	if s.Frame.Kind == frame.Close {
		if err := w.closeWrite(); err != nil {
			return 0, err
		}
	}
	if w.rd == nil && !w.packet {
		// Raw replies come in any cut: read the bytes of all of them.
		var want []byte
		for _, m := range batch {
			want = append(want, s.expect(m)...)
		}
		got, err := w.raw(len(want))
		if err != nil {
			if len(got) > 0 {
				return countWhole(got, batch, s), fmt.Errorf("reply: %d of %d bytes, then %w", len(got), len(want), err)
			}
			return 0, fmt.Errorf("reply: %w", err)
		}
		if !bytes.Equal(got, want) {
			return countWhole(got, batch, s), fmt.Errorf("%w: %v", errMismatch, mismatch(got, want))
		}
		return len(batch), nil
	}
	for i, m := range batch {
		got, err := w.next()
		if err != nil {
			return i, fmt.Errorf("reply %d of %d: %w", i+1, len(batch), err)
		}
		want := s.expect(m)
		if s.Frame.Kind == frame.Close && len(got) == 0 && len(want) > 0 {
			// A server past --max-conns closes unread (a FIN, no bytes),
			// which close framing cannot tell from an empty message; no
			// service answers a non-empty message with nothing, so it is
			// a refusal (retried, and failed after refusedFor Timeouts of them in a row).
			return 0, fmt.Errorf("reply: closed with no bytes: %w", io.EOF)
		}
		if !bytes.Equal(got, want) {
			return i, fmt.Errorf("%w: %v", errMismatch, mismatch(got, want))
		}
	}
	return len(batch), nil
}

// closeWrite half-closes the connection once.
func (w *wire) closeWrite() error {
	if w.shut {
		return nil
	}
	w.shut = true
	return closeWrite(w.c)
}

// closeWrite half-closes c (a TLS connection sends its close_notify).
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// closed half-closes the connection, unless already done, and expects the
// server's close with nothing more.
func (g *good) closed(w *wire) error {
	if err := w.closeWrite(); err != nil {
		return err
	}
	_ = w.c.SetReadDeadline(time.Now().Add(g.s.Timeout))
	var b [512]byte
	n, err := w.c.Read(b[:])
	switch {
	case n > 0:
		err = fmt.Errorf("%d unexpected bytes before the close: %q", n, trunc(b[:n]))
	case errors.Is(err, io.EOF):
		return nil
	}
	return err
}

// countWhole counts the messages of batch whose raw replies arrived whole and
// right at the start of got.
func countWhole(got []byte, batch [][]byte, s *settings) int {
	for i, m := range batch {
		w := s.expect(m)
		if !bytes.HasPrefix(got, w) {
			return i
		}
		got = got[len(w):]
	}
	return len(batch)
}

// bye ends a reply session the service's way: "Bye" is answered "Bye", and
// the server closes.
func (g *good) bye(w *wire) error {
	ok, err := g.exchange(w, [][]byte{[]byte(replyBye)})
	if err == nil {
		_, err = w.next()
		if errors.Is(err, io.EOF) {
			err = nil
		} else if err == nil {
			err = errors.New("the server did not close after Bye")
		}
	}
	g.st.sent.Add(1)
	g.st.answered.Add(int64(ok))
	if ok == 0 {
		g.st.lost.Add(1)
	}
	if err != nil {
		g.st.fail("client %d: after Bye: %v", g.id, err)
	}
	return err
}

// oneShot runs one connection of a service that answers the connect itself:
// daytime (one message, then the server closes) and chargen (a stream the
// client reads 16 KiB of and closes).
func (g *good) oneShot(ctx context.Context) {
	s := g.s
	var refused refusals
	for {
		c, err := g.dial(ctx)
		if err != nil {
			if ctx.Err() == nil {
				g.st.fail("client %d: cannot connect for %v: %v", g.id, s.Timeout, err)
				g.countLost([][]byte{nil}, false)
			}
			return
		}
		done := g.st.opened()
		_ = c.SetDeadline(time.Now().Add(s.Timeout))
		var got []byte
		if s.Service == "daytime" {
			if s.Frame.Kind == frame.Raw {
				got, err = io.ReadAll(c)
			} else {
				rd := frame.NewReader(c, s.Frame, 256)
				if got, err = rd.ReadMessage(); err == nil {
					if _, err = rd.ReadMessage(); errors.Is(err, io.EOF) {
						err = nil
					} else if err == nil {
						err = errors.New("daytime sent a second message")
					}
				}
			}
		} else {
			got = make([]byte, 16<<10)
			var n int
			n, err = io.ReadFull(c, got)
			got = got[:n]
		}
		c.Close()
		done()
		if err == nil && len(got) == 0 || err != nil && len(got) == 0 && isClosed(err) {
			// Closed before anything came: refused.
			g.st.refused.Add(1)
			if g.stop.Load() || ctx.Err() != nil {
				return
			}
			if refused.another(s.Timeout) {
				g.st.fail("client %d: %d connections in a row closed before any answer, for %v", g.id, refused.n, time.Since(refused.first).Round(time.Millisecond))
				g.countLost([][]byte{nil}, false)
				return
			}
			pause(ctx, 10*time.Millisecond)
			continue
		}
		if err == nil {
			if s.Service == "daytime" {
				err = checkDaytime(got, time.Now())
			} else {
				err = checkChargen(got)
			}
		}
		g.st.sent.Add(1)
		if err != nil {
			g.st.lost.Add(1)
			if !isClosed(err) && !errors.Is(err, os.ErrDeadlineExceeded) {
				g.st.corrupt.Add(1)
			}
			g.st.fail("client %d: %s: %v", g.id, s.Service, err)
			return
		}
		g.st.answered.Add(1)
		// A connection per message: leave the ports time to recycle.
		pause(ctx, 5*time.Millisecond)
		return
	}
}

// runDatagram exchanges datagrams on one socket: each gets its reply within
// Timeout, sent again every quarter of it.
func (g *good) runDatagram(ctx context.Context) {
	s := g.s
	c, err := g.dial(ctx)
	if err != nil {
		g.st.fail("client %d: %v", g.id, err)
		return
	}
	done := g.st.opened()
	defer done()
	defer c.Close()
	buf := make([]byte, 65536)
	var prev []byte // the previous reply expected, which a resend may repeat
	for !g.stop.Load() && ctx.Err() == nil {
		m := s.message(g.r, g.id, g.next)
		g.next++
		if s.Service == "discard" {
			if _, err := c.Write(m); err != nil {
				if retryable(err) {
					pause(ctx, time.Millisecond)
					continue
				}
				if ctx.Err() == nil {
					g.st.fail("client %d: send: %v", g.id, err)
				}
				return
			}
			g.st.sent.Add(1)
			pause(ctx, time.Millisecond)
			continue
		}
		want := s.expect(m)
		g.st.sent.Add(1)
		ok := false
		deadline := time.Now().Add(s.Timeout)
		for attempt := 0; !ok && time.Now().Before(deadline); attempt++ {
			if attempt > 0 {
				g.st.resent.Add(1)
			}
			if _, err := c.Write(m); err != nil && !retryable(err) {
				if ctx.Err() == nil {
					g.st.fail("client %d: send: %v", g.id, err)
				}
				break
			}
			wait := time.Now().Add(s.Timeout / 4)
			if wait.After(deadline) {
				wait = deadline
			}
			_ = c.SetReadDeadline(wait)
			for {
				n, err := c.Read(buf)
				if err != nil {
					// A timeout resends; ECONNREFUSED is an ICMP
					// from a port not yet (or no longer) bound.
					break
				}
				got := buf[:n]
				if g.datagramOK(got, want) {
					ok = true
					break
				}
				if prev != nil && bytes.Equal(got, prev) {
					continue // a late answer to a resent datagram
				}
				g.st.fail("client %d: %v", g.id, mismatch(got, want))
				g.st.corrupt.Add(1)
				g.st.lost.Add(1)
				return
			}
		}
		if !ok {
			g.st.lost.Add(1)
			g.st.fail("client %d: no reply to a %d-byte datagram within %v", g.id, len(m), s.Timeout)
			continue
		}
		g.st.answered.Add(1)
		prev = want
	}
}

// retryable reports whether a datagram send failed without harm to the
// socket: an ICMP port unreachable (ECONNREFUSED, from a port not yet or no
// longer bound) or a full queue (ENOBUFS; EAGAIN from a Unix datagram peer
// whose receive queue is full).
func retryable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.EAGAIN)
}

func (g *good) datagramOK(got, want []byte) bool {
	switch g.s.Service {
	case "daytime":
		return checkDaytime(got, time.Now()) == nil
	case "chargen":
		return len(got) == 512 && checkChargen(got) == nil
	}
	return bytes.Equal(got, want)
}

// runHTTP sends GET /hello/NAME requests on kept-alive connections and checks
// each page.
func (g *good) runHTTP(ctx context.Context) {
	s := g.s
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := g.dial(ctx)
			if err != nil {
				return nil, err
			}
			return &countedConn{Conn: c, done: g.st.opened()}, nil
		},
		MaxIdleConnsPerHost:   1,
		ResponseHeaderTimeout: s.Timeout,
		DisableCompression:    true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: s.Timeout}
	for !g.stop.Load() && ctx.Err() == nil {
		name := string(s.message(g.r, g.id, g.next))
		g.next++
		want := "<h1>hello, " + name + "!</h1>"
		var err error
		var refused refusals
		for {
			var body []byte
			body, err = get(ctx, hc, "http://soak/hello/"+name)
			if err == nil && string(body) != want {
				err = fmt.Errorf("%w: %v", errMismatch, mismatch(body, []byte(want)))
			}
			// A connection closed or reset before the response is the
			// server refusing it (past --max-conns): GET again.
			if err == nil || !isClosed(err) || ctx.Err() != nil || refused.another(s.Timeout) {
				break
			}
			g.st.refused.Add(1)
			tr.CloseIdleConnections()
			pause(ctx, 10*time.Millisecond+time.Duration(g.r.IntN(20))*time.Millisecond)
		}
		g.st.sent.Add(1)
		if err != nil {
			if ctx.Err() != nil {
				g.st.sent.Add(-1)
				return
			}
			g.st.lost.Add(1)
			if errors.Is(err, errMismatch) {
				g.st.corrupt.Add(1)
			}
			g.st.fail("client %d: GET /hello/%s: %v", g.id, name, err)
			tr.CloseIdleConnections()
			continue
		}
		g.st.answered.Add(1)
		if g.r.IntN(64) == 0 {
			tr.CloseIdleConnections()
		}
	}
}

func get(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	return body, nil
}

// countedConn counts the close of a connection the HTTP transport owns.
type countedConn struct {
	net.Conn
	done func()
}

func (c *countedConn) Close() error {
	c.done()
	return c.Conn.Close()
}
