package goroutine

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/proto"
)

// Engine is the goroutine engine. Create it with New; it is safe for
// concurrent use.
//
// Lock order: Engine.mu before nothing (it is never held while calling into a
// conn or a protocol); conn.mu is a leaf.
type Engine struct {
	log *slog.Logger
	wg  sync.WaitGroup // every goroutine the engine started

	mu       sync.Mutex
	conns    map[*conn]struct{}
	packets  map[*packetEndpoint]struct{}
	changed  chan struct{} // closed and replaced when a conn ends
	stopping bool          // Shutdown or Close began
	done     chan struct{} // closed when Shutdown or Close began

	// hookBeforeArm, if set (by tests, before serving), runs on a loop
	// between running its posted events and arming its blocking read: the
	// window in which a wake-up must not be lost.
	hookBeforeArm func()
	// hookBatchBuffers, if set (by tests, before serving), is given each
	// endpoint's receive buffers when they are made.
	hookBatchBuffers func(*batchBuffers)

	stoppers engine.Stoppers // goroutines inside Shutdown
}

var _ engine.Engine = (*Engine)(nil)

// New makes a goroutine engine.
func New(cfg engine.Config) *Engine {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Engine{
		log:     log,
		conns:   make(map[*conn]struct{}),
		packets: make(map[*packetEndpoint]struct{}),
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Name is "goroutine".
func (e *Engine) Name() string { return "goroutine" }

func (e *Engine) isStopping() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stopping
}

func (e *Engine) trackConn(c *conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return false
	}
	e.conns[c] = struct{}{}
	return true
}

func (e *Engine) untrackConn(c *conn) {
	e.mu.Lock()
	if _, ok := e.conns[c]; ok {
		delete(e.conns, c)
		close(e.changed)
		e.changed = make(chan struct{})
	}
	e.mu.Unlock()
}

func withDefaults(o engine.Options, log *slog.Logger) *engine.Options {
	if o.Logger == nil {
		o.Logger = log
	}
	if o.Mode == "" {
		o.Mode = engine.PerConn
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	switch {
	case o.Queue < 0:
		o.Queue = 0
	case o.Queue == 0:
		o.Queue = o.Workers
	}
	return &o
}

// ServeListener accepts from ln until it is closed.
func (e *Engine) ServeListener(ln net.Listener, f proto.Factory, opts engine.Options) error {
	if e.isStopping() {
		return engine.ErrEngineClosed
	}
	o := withDefaults(opts, e.log)
	var queue chan net.Conn
	if o.Mode == engine.Pool {
		queue = make(chan net.Conn, o.Queue)
		for range o.Workers {
			e.wg.Add(1)
			go e.worker(queue, o, f)
		}
		defer close(queue)
	}
	var backoff engine.Backoff
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || e.isStopping() {
				return nil // the listener was closed
			}
			if !engine.Temporary(err) {
				return err
			}
			d := backoff.Next()
			o.Logger.Warn("accept failed; backing off", "err", err, "retry_in", d)
			select {
			case <-time.After(d):
			case <-e.done:
			}
			continue
		}
		backoff.Reset()
		release, ok := e.admit(nc, o)
		if !ok {
			continue
		}
		switch o.Mode {
		case engine.Serial:
			e.wg.Add(1)
			e.serveConn(nc, o, f, release)
		case engine.Pool:
			select {
			case queue <- withRelease(nc, release):
			default:
				o.Logger.Warn("worker queue full; connection closed", "peer", addrString(nc.RemoteAddr()), "workers", o.Workers, "queue", o.Queue)
				_ = nc.Close()
				if release != nil {
					release()
				}
			}
		default:
			e.wg.Add(1)
			go e.serveConn(nc, o, f, release)
		}
	}
}

// admit runs the Admit hook; a refused connection is closed at once.
func (e *Engine) admit(nc net.Conn, o *engine.Options) (func(), bool) {
	if e.isStopping() {
		_ = nc.Close()
		return nil, false
	}
	if o.Admit == nil {
		return nil, true
	}
	release, ok := o.Admit(nc.LocalAddr(), nc.RemoteAddr())
	if !ok {
		_ = nc.Close()
		return nil, false
	}
	return release, true
}

// releasedConn carries an admitted connection and its release through the
// pool's queue.
type releasedConn struct {
	net.Conn
	release func()
}

func withRelease(nc net.Conn, release func()) net.Conn {
	if release == nil {
		return nc
	}
	return releasedConn{nc, release}
}

func (e *Engine) worker(queue chan net.Conn, o *engine.Options, f proto.Factory) {
	defer e.wg.Done()
	for nc := range queue {
		var release func()
		if rc, ok := nc.(releasedConn); ok {
			nc, release = rc.Conn, rc.release
		}
		if e.isStopping() {
			_ = nc.Close()
			if release != nil {
				release()
			}
			continue
		}
		e.wg.Add(1)
		e.serveConn(nc, o, f, release)
	}
}

// ServeConn serves nc, accepted or dialed elsewhere, on a goroutine of its
// own (the epoll engine also hands over the connections it cannot run itself,
// such as TLS).
func (e *Engine) ServeConn(nc net.Conn, f proto.Factory, opts engine.Options, release func()) error {
	if e.isStopping() {
		_ = nc.Close()
		if release != nil {
			release()
		}
		return engine.ErrEngineClosed
	}
	e.wg.Add(1)
	go e.serveConn(nc, withDefaults(opts, e.log), f, release)
	return nil
}

// serveConn serves one admitted connection on the calling goroutine; the
// caller did e.wg.Add(1).
func (e *Engine) serveConn(nc net.Conn, o *engine.Options, f proto.Factory, release func()) {
	defer e.wg.Done()
	if release != nil {
		defer release()
	}
	newConn(e, nc, o).serve(f)
}

// Shutdown ends every connection gracefully (see engine.Engine).
func (e *Engine) Shutdown(ctx context.Context) error {
	e.beginStop()
	self := engine.GoroutineID()
	defer e.stoppers.Enter(self)()
	e.mu.Lock()
	close(e.changed) // other Shutdowns stop waiting for this caller's conn
	e.changed = make(chan struct{})
	e.mu.Unlock()
	for _, c := range e.snapshot() {
		c.shutdown()
	}
	for _, p := range e.snapshotPackets() {
		p.close()
	}
	for {
		e.mu.Lock()
		waiting := 0
		for c := range e.conns {
			if !e.stoppers.Has(c.loopGID.Load()) {
				waiting++
			}
		}
		ch := e.changed
		e.mu.Unlock()
		if waiting == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			e.abortAll(engine.ErrShutdown, self)
			return ctx.Err()
		}
	}
}

// Close aborts every connection and waits (up to a few seconds, in case a
// callback never returns) for their goroutines.
func (e *Engine) Close() error {
	e.beginStop()
	e.abortAll(nil, engine.GoroutineID())
	for _, p := range e.snapshotPackets() {
		p.close()
	}
	return nil
}

// abortAll aborts every connection but the caller's own and waits a bounded
// time for their loops to finish.
func (e *Engine) abortAll(cause error, self uint64) {
	for _, c := range e.snapshot() {
		if c.loopGID.Load() != self {
			c.kill(cause)
		}
	}
	deadline := time.NewTimer(2 * time.Second)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		waiting := 0
		for c := range e.conns {
			if c.loopGID.Load() != self {
				waiting++
			}
		}
		ch := e.changed
		e.mu.Unlock()
		if waiting == 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			e.log.Warn("connections still running a callback after abort", "count", waiting)
			return
		}
	}
}

// Wait blocks until every goroutine the engine started has ended. Servers
// call it after Shutdown or Close when they must not leak goroutines.
func (e *Engine) Wait() { e.wg.Wait() }

func (e *Engine) beginStop() {
	e.mu.Lock()
	if !e.stopping {
		e.stopping = true
		close(e.done)
	}
	e.mu.Unlock()
}

func (e *Engine) snapshot() []*conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*conn, 0, len(e.conns))
	for c := range e.conns {
		out = append(out, c)
	}
	return out
}

func (e *Engine) snapshotPackets() []*packetEndpoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*packetEndpoint, 0, len(e.packets))
	for p := range e.packets {
		out = append(out, p)
	}
	return out
}
