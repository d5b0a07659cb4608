package soak

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sockit/sockit/frame"
)

// holdCap bounds how many bad clients of one kind hold connections at once.
const holdCap = 64

// noReadFor bounds a never-reading client.
const noReadFor = 10 * time.Second

// oversizedFrame is the message (or header) a bad client sends to exceed
// maxFrame with framing spec; ok is false where no such message exists
// (raw and fixed framing have no over-long message; a len:1 or len:2 header
// cannot exceed a larger limit).
func oversizedFrame(spec frame.Spec, maxFrame int) ([]byte, bool) {
	switch spec.Kind {
	case frame.Line, frame.Delim, frame.Close:
		return bytes.Repeat([]byte{'o'}, maxFrame+1), true
	case frame.Len:
		h := make([]byte, 8)
		var limit uint64
		switch spec.W {
		case 1:
			limit = 0xFF
		case 2:
			limit = 0xFFFF
		case 4:
			limit = 0xFFFFFFFF // 4 GiB
		case 8:
			limit = 1 << 40
		}
		if uint64(maxFrame) >= limit {
			return nil, false
		}
		binary.BigEndian.PutUint64(h, limit)
		return h[8-spec.W:], true
	}
	return nil, false
}

// partial is the start of a message that never ends: what stalled and reset
// clients send.
func (s *settings) partial() []byte {
	if s.Service == "http" {
		return []byte("GET / HTTP/1.1\r\nHost: soak\r\n")
	}
	switch s.Frame.Kind {
	case frame.Len:
		h := make([]byte, 8)
		binary.BigEndian.PutUint64(h, 100)
		return append(h[8-s.Frame.W:], bytes.Repeat([]byte{'p'}, 50)...)
	case frame.Fixed:
		return bytes.Repeat([]byte{'p'}, max(1, s.Frame.N/2))
	}
	return []byte("a partial message, no end")
}

// faulter runs the bad clients of one kind.
type faulter struct {
	s    *settings
	st   *stats
	kind Fault
	fs   *faultStats
	hold chan struct{} // a slot per connection-holding client
	r    *rand.Rand
	mu   sync.Mutex
}

// run starts a bad client at once and then every 1/Rate seconds (a flood
// every 5/Rate) until ctx is done, and waits for them.
func (f *faulter) run(ctx context.Context) {
	every := time.Duration(float64(time.Second) / f.s.Rate)
	if f.kind == Flood {
		every *= 5
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(every)
	defer t.Stop()
	for first := true; ; first = false {
		// The first starts at once, so that a short run meets every kind.
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		select {
		case f.hold <- struct{}{}:
		default:
			continue // enough of this kind are holding connections
		}
		f.fs.injected.Add(1)
		wg.Go(func() {
			defer func() { <-f.hold }()
			f.one(ctx)
		})
	}
}

func (f *faulter) rand() *rand.Rand {
	f.mu.Lock()
	defer f.mu.Unlock()
	return rand.New(rand.NewPCG(f.r.Uint64(), f.r.Uint64()))
}

// dial opens a bad client's connection. Failures are counted as the server
// closing it (a refusal); the returned func closes and uncounts it.
func (f *faulter) dial(ctx context.Context) (net.Conn, func(), bool) {
	c, err := f.s.dialer.Dial(ctx, f.s.Endpoint)
	if err != nil {
		if ctx.Err() == nil {
			f.fs.serverClosed.Add(1)
		}
		return nil, nil, false
	}
	f.fs.conns.Add(1)
	done := f.st.opened()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	return c, func() { stop(); c.Close(); done() }, true
}

// dialTCP opens the TCP connection under a tls:// endpoint (or the plain
// connection of any other), for faults that act below TLS.
func (f *faulter) dialTCP(ctx context.Context) (net.Conn, func(), bool) {
	if !f.s.Endpoint.IsTLS() {
		return f.dial(ctx)
	}
	d := net.Dialer{Timeout: f.s.Timeout}
	c, err := d.DialContext(ctx, "tcp", f.s.Endpoint.Address)
	if err != nil {
		if ctx.Err() == nil {
			f.fs.serverClosed.Add(1)
		}
		return nil, nil, false
	}
	f.fs.conns.Add(1)
	done := f.st.opened()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	return c, func() { stop(); c.Close(); done() }, true
}

// waitClose reads and drops what c sends until the server closes it (counted)
// or ctx ends the run.
func (f *faulter) waitClose(ctx context.Context, c net.Conn) {
	_, err := io.Copy(io.Discard, c)
	if ctx.Err() == nil && (err == nil || isClosed(err)) {
		f.fs.serverClosed.Add(1)
	}
}

func (f *faulter) one(ctx context.Context) {
	s := f.s
	switch f.kind {
	case Reset:
		raw, closeRaw, ok := f.dialTCP(ctx)
		if !ok {
			return
		}
		defer closeRaw()
		c := raw
		if s.Endpoint.IsTLS() {
			tc := tls.Client(raw, s.tlsConfig())
			_ = tc.SetDeadline(time.Now().Add(s.Timeout))
			if err := tc.HandshakeContext(ctx); err != nil {
				f.fs.serverClosed.Add(1)
				return
			}
			c = tc
		}
		_, _ = c.Write(s.partial())
		pause(ctx, time.Duration(f.rand().IntN(50))*time.Millisecond)
		if tcp, ok := raw.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
	case Stall:
		c, done, ok := f.dial(ctx)
		if !ok {
			return
		}
		defer done()
		if _, err := c.Write(s.partial()); err != nil {
			f.fs.serverClosed.Add(1)
			return
		}
		f.waitClose(ctx, c)
	case TLSStall:
		c, done, ok := f.dialTCP(ctx)
		if !ok {
			return
		}
		defer done()
		// A TLS record header announcing a ClientHello that never comes.
		if _, err := c.Write([]byte{0x16, 0x03, 0x01, 0x00, 0xc8, 0x01}); err != nil {
			f.fs.serverClosed.Add(1)
			return
		}
		f.waitClose(ctx, c)
	case Slowloris:
		c, done, ok := f.dial(ctx)
		if !ok {
			return
		}
		defer done()
		closed := make(chan struct{})
		go func() { f.waitClose(ctx, c); close(closed) }()
		msg := append(s.partial(), bytes.Repeat([]byte{'s'}, 1<<20)...)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for i := 0; i < len(msg); i++ {
			if _, err := c.Write(msg[i : i+1]); err != nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-closed:
				return
			case <-t.C:
			}
		}
		c.Close()
		<-closed
	case Oversized:
		f.oversized(ctx)
	case Garbage:
		c, done, ok := f.dial(ctx)
		if !ok {
			return
		}
		defer done()
		r := f.rand()
		g := make([]byte, 4096)
		for i := range g {
			g[i] = byte(r.Uint32())
		}
		// Invalid UTF-8, NULs and line ends for sure, wherever they land.
		copy(g[r.IntN(4000):], "\xff\xfe\xc0\x80\x00\r\n\xed\xa0\x80")
		_ = c.SetDeadline(time.Now().Add(s.Timeout))
		if _, err := c.Write(g); err != nil {
			f.fs.serverClosed.Add(1)
			return
		}
		_ = closeWrite(c)
		n, err := io.Copy(io.Discard, io.LimitReader(c, 1<<20))
		if n < 1<<20 && (err == nil || isClosed(err)) && ctx.Err() == nil {
			f.fs.serverClosed.Add(1)
		}
	case Flood:
		f.flood(ctx)
	case NoRead:
		c, done, ok := f.dial(ctx)
		if !ok {
			return
		}
		defer done()
		var out []byte
		m := bytes.Repeat([]byte{'n'}, min(512, s.msgCap))
		if s.Service == "http" {
			for len(out) < 64<<10 {
				out = append(out, "GET / HTTP/1.1\r\nHost: soak\r\n\r\n"...)
			}
		} else if s.Endpoint.Scheme != "unixpacket" {
			if s.Frame.Kind == frame.Fixed {
				m = bytes.Repeat([]byte{'n'}, s.Frame.N)
			}
			for len(out) < 64<<10 {
				var err error
				if out, err = s.Frame.Append(out, m); err != nil {
					f.st.fail("noread: %v", err)
					return
				}
			}
		} else {
			out = m
		}
		end := time.Now().Add(noReadFor)
		_ = c.SetWriteDeadline(end)
		for written := 0; written < 64<<20; written += len(out) {
			if _, err := c.Write(out); err != nil {
				if isClosed(err) {
					f.fs.serverClosed.Add(1)
				}
				return
			}
		}
	case UDPFlood:
		c, done, ok := f.dial(ctx)
		if !ok {
			return
		}
		defer done()
		m := make([]byte, 64)
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			_, _ = c.Write(m) // a full buffer drops it: that is the flood
		}
	case EmptyDatagram, BigDatagram:
		c, done, ok := f.dial(ctx)
		if !ok {
			return
		}
		defer done()
		m := []byte{}
		if f.kind == BigDatagram {
			m = bytes.Repeat([]byte{'b'}, s.udpMax)
		}
		want, checked := []byte(nil), false
		switch s.Service {
		case "echo":
			want, checked = m, true
		case "upper":
			want, checked = bytes.ToUpper(m), true
		}
		buf := make([]byte, 65536)
		// Like a good client: resend every Timeout/4 until the echo comes
		// or Timeout passes.
		deadline := time.Now().Add(s.Timeout)
		for ctx.Err() == nil && time.Now().Before(deadline) {
			if _, err := c.Write(m); err != nil {
				if ctx.Err() != nil {
					return
				}
				if retryable(err) {
					// A full receive queue (a unixgram server during a
					// flood): the datagram was not sent; try again.
					pause(ctx, 10*time.Millisecond)
					continue
				}
				if checked {
					f.fs.unexpected.Add(1)
					f.st.fail("%s: send: %v", f.kind, err)
				}
				return
			}
			if !checked {
				return
			}
			wait := time.Now().Add(s.Timeout / 4)
			if wait.After(deadline) {
				wait = deadline
			}
			_ = c.SetReadDeadline(wait)
			n, err := c.Read(buf)
			if err == nil && bytes.Equal(buf[:n], want) {
				f.fs.expected.Add(1)
				return
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !isClosed(err) && !retryable(err) {
				break
			}
		}
		if ctx.Err() == nil {
			f.fs.unexpected.Add(1)
			f.st.fail("%s: no echo of a %d-byte datagram within %v", f.kind, len(m), s.Timeout)
		}
	}
}

// oversized sends a message over the server's limit and expects its framed
// "ERR frame too long" (after any greeting), then the close; for http, a
// header larger than net/http's limit and a 431. A connection the server
// closes before answering anything (past --max-conns) is tried again.
func (f *faulter) oversized(ctx context.Context) {
	var refused refusals
	for {
		if !f.oversizedOnce(ctx) || ctx.Err() != nil {
			return
		}
		if refused.another(f.s.Timeout) {
			break
		}
		pause(ctx, 20*time.Millisecond)
	}
	f.fs.unexpected.Add(1)
	f.st.fail("oversized: %d connections in a row closed before any answer, for %v", refused.n, time.Since(refused.first).Round(time.Millisecond))
}

// oversizedOnce runs one oversized client; it reports whether the server
// refused the connection.
func (f *faulter) oversizedOnce(ctx context.Context) (refused bool) {
	s := f.s
	c, done, ok := f.dial(ctx)
	if !ok {
		return ctx.Err() == nil
	}
	defer done()
	var msg, want []byte
	if s.Service == "http" {
		msg = append([]byte("GET / HTTP/1.1\r\nHost: soak\r\nX-Big: "), bytes.Repeat([]byte{'h'}, 1<<20+1)...)
		msg = append(msg, "\r\n\r\n"...)
		want = []byte("HTTP/1.1 431 ")
	} else {
		msg, _ = oversizedFrame(s.Frame, s.MaxFrame)
		want = append(append([]byte(nil), s.Greeting...), s.Frame.AppendError(nil)...)
	}
	_ = c.SetDeadline(time.Now().Add(s.Timeout))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if _, err := c.Write(msg); err == nil && s.Frame.Kind == frame.Close && s.Service != "http" {
			_ = closeWrite(c)
		}
	}()
	got, err := io.ReadAll(io.LimitReader(c, 1<<16))
	<-wrote
	if ctx.Err() != nil {
		return false
	}
	closedOK := err == nil || isClosed(err)
	if closedOK {
		f.fs.serverClosed.Add(1)
	}
	if closedOK && len(got) == 0 {
		return true
	}
	match := bytes.Equal(got, want)
	if s.Service == "http" {
		match = bytes.HasPrefix(got, want)
	}
	if match && closedOK {
		f.fs.expected.Add(1)
		return false
	}
	f.fs.unexpected.Add(1)
	f.st.fail("oversized: got %q then %v, want %q and a close", trunc(got), err, strings.TrimSpace(string(want)))
	return false
}

// flood opens Flood connections at once, holds them half a second, and
// closes them; the server closing some (past --max-conns) is counted.
func (f *faulter) flood(ctx context.Context) {
	s := f.s
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for range s.Flood {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			var c net.Conn
			var done func()
			var ok bool
			if s.Endpoint.IsTLS() {
				c, done, ok = f.dialTCP(ctx) // a TLS handshake each would flood the CPU, not the accept queue
			} else {
				c, done, ok = f.dial(ctx)
			}
			<-sem
			if !ok {
				return
			}
			defer done()
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			_, err := io.Copy(io.Discard, io.LimitReader(c, 1<<16))
			if ctx.Err() == nil && (err == nil || isClosed(err)) {
				f.fs.serverClosed.Add(1)
			}
		})
	}
	wg.Wait()
}

// tlsConfig is the configuration TLS faults handshake with.
func (s *settings) tlsConfig() *tls.Config {
	cfg := &tls.Config{}
	if s.TLS != nil {
		cfg = s.TLS.Clone()
	}
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(s.Endpoint.Address)
		cfg.ServerName = host
	}
	return cfg
}
