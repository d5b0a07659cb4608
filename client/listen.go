package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Hub is `sockit listen -k`: connections served at the same time share one
// input, which goes to all of them, and one output, which gets what each of
// them sends (in chunks written whole, so one peer's bytes never split
// another's write). The zero value is not usable; use NewHub. A Hub is safe
// for concurrent use.
type Hub struct {
	out   io.Writer
	outMu sync.Mutex

	mu    sync.Mutex
	conns map[net.Conn]*hubConn
}

// hubConn is one connection's write side; writes to one connection are
// serialized.
type hubConn struct {
	mu sync.Mutex
	c  net.Conn
}

// NewHub returns a Hub writing to out.
func NewHub(out io.Writer) *Hub {
	return &Hub{out: out, conns: make(map[net.Conn]*hubConn)}
}

// Broadcast copies in to every connection being served until in ends or
// fails, and returns the number of bytes read. A connection whose write
// fails is closed; data read while no connection is served is dropped (like
// ncat -l -k). The connections are not half-closed at the end of in: each
// one's life is its own.
func (h *Hub) Broadcast(in io.Reader) (int64, error) {
	buf := make([]byte, copyBufSize)
	var total int64
	for {
		n, err := in.Read(buf)
		total += int64(n)
		if n > 0 {
			h.mu.Lock()
			targets := make([]*hubConn, 0, len(h.conns))
			for _, hc := range h.conns {
				targets = append(targets, hc)
			}
			h.mu.Unlock()
			for _, hc := range targets {
				hc.mu.Lock()
				if _, werr := hc.c.Write(buf[:n]); werr != nil {
					hc.c.Close()
				}
				hc.mu.Unlock()
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Serve pipes one connection: what it sends goes to the Hub's output (unless
// cfg.SendOnly), and while it is served it gets the Hub's input (unless
// cfg.RecvOnly). Hex, IdleTimeout and ReadTimeout apply as in Pipe; CRLF
// and NoShutdown do not (the input is shared). It returns when the peer
// closes (nil), the connection fails (*ConnError), a timeout passes
// (*TimeoutError) or ctx ends; c is closed then.
func (h *Hub) Serve(ctx context.Context, c net.Conn, cfg PipeConfig) error {
	if cfg.Addr == "" {
		cfg.Addr = c.RemoteAddr().String()
	}
	var closeOnce sync.Once
	closeConn := func() { closeOnce.Do(func() { c.Close() }) }
	stop := context.AfterFunc(ctx, closeConn)
	defer stop()
	wd := newWatchdog(cfg.IdleTimeout, cfg.ReadTimeout, func(func(string) error) { closeConn() })
	defer wd.stop()
	hd := newHexDumper(cfg.Hex)

	if !cfg.RecvOnly {
		var w net.Conn = c
		if wd != nil || hd != nil {
			w = &seenConn{Conn: c, see: func(p []byte) { wd.touch(false); hd.dump('>', p) }}
		}
		hc := &hubConn{c: w}
		h.mu.Lock()
		h.conns[c] = hc
		h.mu.Unlock()
		defer func() {
			h.mu.Lock()
			delete(h.conns, c)
			h.mu.Unlock()
		}()
	}
	out := io.Writer(&lockedWriter{mu: &h.outMu, w: h.out})
	if cfg.SendOnly {
		out = io.Discard
	}
	err := copyInstrumented(out, c, func(p []byte) []byte {
		wd.touch(true)
		hd.dump('<', p)
		return p
	}, false)
	closeConn()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", cfg.Addr, ctx.Err())
	case wd.fired() != nil:
		return wd.fired()(cfg.Addr)
	case err == nil:
		return nil
	}
	return &ConnError{Op: "read", Addr: cfg.Addr, Err: err}
}

// seenConn shows each write to a function first.
type seenConn struct {
	net.Conn
	see func([]byte)
}

func (s *seenConn) Write(p []byte) (int, error) {
	s.see(p)
	return s.Conn.Write(p)
}

// lockedWriter writes each chunk whole under a shared lock.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// PacketListenConfig configures ListenPackets. The zero value works.
type PacketListenConfig struct {
	// All sends each input line to every peer heard from (listen -k), not
	// only to the latest.
	All bool
	// SendOnly drops the datagrams received (but still learns the peers);
	// CRLF ends each datagram sent with "\r\n".
	SendOnly, CRLF bool
	// Hex dumps both directions as in PipeConfig.
	Hex io.Writer
	// IdleTimeout returns nil after this long with no datagram either way;
	// zero means never.
	IdleTimeout time.Duration
}

// ListenPackets is `sockit listen` on a datagram endpoint (udp, unixgram):
// each datagram received is written to out followed by "\n" if it has none,
// and each line of in (line ending removed) is sent as one datagram to the
// peer heard from last (to all of them with All). It runs until ctx ends or
// IdleTimeout passes (both return nil) or pc fails; it does not close pc.
func ListenPackets(ctx context.Context, pc net.PacketConn, in io.Reader, out io.Writer, cfg PacketListenConfig) error {
	var mu sync.Mutex
	var last net.Addr
	peers := map[string]net.Addr{}
	hd := newHexDumper(cfg.Hex)
	done := make(chan struct{})
	defer close(done)
	wd := newWatchdog(cfg.IdleTimeout, 0, func(func(string) error) { pc.SetReadDeadline(time.Now()) })
	defer wd.stop()
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Now()) })
	defer stop()

	if in != nil {
		go func() {
			r := newLineReader(in)
			for {
				line, err := r.next(cfg.CRLF)
				if line != nil {
					mu.Lock()
					var to []net.Addr
					if cfg.All {
						for _, a := range peers {
							to = append(to, a)
						}
					} else if last != nil {
						to = append(to, last)
					}
					mu.Unlock()
					for _, a := range to {
						select {
						case <-done:
							return
						default:
						}
						wd.touch(false)
						hd.dump('>', line)
						_, _ = pc.WriteTo(line, a)
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
	buf := make([]byte, maxDatagram+1)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if ctx.Err() != nil || wd.fired() != nil || (errors.As(err, &ne) && ne.Timeout()) {
				return nil
			}
			return fmt.Errorf("read %s: %w", pc.LocalAddr(), err)
		}
		wd.touch(true)
		if from != nil && from.String() != "" {
			mu.Lock()
			last = from
			peers[from.String()] = from
			mu.Unlock()
		}
		if err := printDatagram(out, hd, buf[:n], cfg.SendOnly); err != nil {
			return nil // stdout closed: done
		}
	}
}
