package server

import (
	"context"
	"errors"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/sockit/sockit/internal/engine"
)

// HandlerFunc serves one connection in the blocking style of socketserver's
// handle(): it owns c until it returns, after which c is closed. ctx is
// cancelled when a shutdown's deadline passes (or on Close); a handler that
// blocks in I/O is also unblocked then, because c is closed.
type HandlerFunc func(ctx context.Context, c net.Conn)

// ServeFunc accepts connections on ln and runs h for each, with the server's
// limits and hooks (Allow/Deny, MaxConns, Verify, HandleError for a panicking
// handler) and its Concurrency (goroutine per connection, Pool or Serial). It
// is for commands that move bytes between sockets and processes (relays,
// netcat's listen, --exec), where a protocol's callbacks would only get in the
// way. It blocks until Shutdown or Close and returns ErrServerClosed.
//
// Shutdown stops accepting and waits for the handlers to return; at its
// deadline their contexts are cancelled and their connections closed.
// IdleTimeout and ReadTimeout are the handler's to apply; on a TLS listener
// the shorter of them (10 s when neither is set) also bounds the handshake
// ServeFunc completes before the handler sees the connection.
func (s *Server) ServeFunc(ln net.Listener, h HandlerFunc) error {
	if err := s.init(); err != nil {
		_ = ln.Close()
		return err
	}
	if !s.track(ln, nil) {
		_ = ln.Close()
		return ErrServerClosed
	}
	defer s.serving.Done()
	defer s.untrack(ln, nil)
	defer ln.Close()

	t := s.tallyOf(ln)
	var queue chan handled
	var workers sync.WaitGroup
	switch s.Concurrency {
	case Pool:
		n, q := s.Workers, s.Queue
		if n <= 0 {
			n = 4
		}
		if q == 0 {
			q = n
		} else if q < 0 {
			q = 0
		}
		queue = make(chan handled, q)
		for range n {
			workers.Add(1)
			go func() {
				defer workers.Done()
				for hc := range queue {
					s.runHandler(hc, h)
				}
			}()
		}
		defer func() { close(queue); workers.Wait() }()
	}
	var backoff engine.Backoff
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosing() {
				return ErrServerClosed
			}
			if !engine.Temporary(err) {
				return err
			}
			d := backoff.Next()
			s.log.Warn("accept failed; backing off", "err", err, "retry_in", d)
			time.Sleep(d)
			continue
		}
		backoff.Reset()
		release, ok := s.admit(t, c.LocalAddr(), c.RemoteAddr())
		if !ok {
			_ = c.Close()
			continue
		}
		hc := handled{c: c, release: release, t: t}
		switch s.Concurrency {
		case Serial:
			s.runHandler(hc, h)
		case Pool:
			select {
			case queue <- hc:
			default:
				s.log.Warn("worker queue full; connection closed", "peer", c.RemoteAddr().String(), "workers", s.Workers, "queue", s.Queue)
				_ = c.Close()
				release()
			}
		default:
			go s.runHandler(hc, h)
		}
	}
}

type handled struct {
	c       net.Conn
	release func()
	t       *tally // the listener's counts
}

// handlerSet tracks the running handlers for Shutdown.
type handlerSet struct {
	mu       sync.Mutex
	conns    map[net.Conn]runningHandler
	changed  chan struct{}   // closed and replaced when a handler ends or a Shutdown begins
	stoppers engine.Stoppers // goroutines inside Shutdown: not waited for
}

// runningHandler is one handler's cancel function and goroutine.
type runningHandler struct {
	cancel context.CancelFunc
	gid    uint64
}

// signal wakes every Shutdown waiting on hs. hs.mu is held.
func (hs *handlerSet) signal() {
	close(hs.changed)
	hs.changed = make(chan struct{})
}

func (s *Server) handlers() *handlerSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hset == nil {
		s.hset = &handlerSet{conns: make(map[net.Conn]runningHandler), changed: make(chan struct{})}
	}
	return s.hset
}

func (s *Server) runHandler(hc handled, h HandlerFunc) {
	hs := s.handlers()
	ctx, cancel := context.WithCancel(context.Background())
	hs.mu.Lock()
	hs.conns[hc.c] = runningHandler{cancel: cancel, gid: engine.GoroutineID()}
	hs.mu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			err := &engine.PanicError{Value: v, Stack: debug.Stack()}
			s.log.Error("handler panicked", "peer", hc.c.RemoteAddr().String(), "panic", v, "stack", string(err.Stack))
			s.handleError(hc.t, hc.c.RemoteAddr(), err)
		}
		cancel()
		_ = hc.c.Close()
		hc.release()
		hs.mu.Lock()
		delete(hs.conns, hc.c)
		hs.signal()
		hs.mu.Unlock()
	}()
	if s.isClosing() {
		return
	}
	if tc, ok := hc.c.(engine.Handshaker); ok {
		// As on the engines: the handler sees only connections whose TLS
		// handshake succeeded; a failure is logged with its peer and
		// reported, and disturbs nothing else.
		if err := engine.Handshake(ctx, tc, s.ReadTimeout, s.IdleTimeout); err != nil {
			if !s.isClosing() {
				s.log.Info("tls handshake failed", "peer", hc.c.RemoteAddr().String(), "err", err)
				s.handleError(hc.t, hc.c.RemoteAddr(), err)
			}
			return
		}
	}
	h(ctx, hc.c)
}

// shutdownHandlers waits for the running handlers; at ctx's end it cancels
// them and closes their connections. A handler that calls Shutdown itself is
// not waited for (it could not finish while it waits), and neither is any
// other handler waiting in Shutdown.
func (s *Server) shutdownHandlers(ctx context.Context, self uint64) error {
	s.mu.Lock()
	hs := s.hset
	s.mu.Unlock()
	if hs == nil {
		return nil
	}
	defer hs.stoppers.Enter(self)()
	hs.mu.Lock()
	hs.signal()
	hs.mu.Unlock()
	for {
		hs.mu.Lock()
		n := 0
		for _, r := range hs.conns {
			if !hs.stoppers.Has(r.gid) {
				n++
			}
		}
		ch := hs.changed
		hs.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			hs.mu.Lock()
			for c, r := range hs.conns {
				if r.gid != self {
					r.cancel()
					_ = c.Close()
				}
			}
			hs.mu.Unlock()
			return ctx.Err()
		}
	}
}
