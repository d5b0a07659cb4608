//go:build linux

package epoll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/internal/engine/goroutine"
	"github.com/sockit/sockit/internal/rawio"
	"github.com/sockit/sockit/proto"
)

// Engine is the epoll engine. It is safe for concurrent use.
type Engine struct {
	log   *slog.Logger
	nloop int
	next  atomic.Uint32

	// fallback serves what the loops cannot: connections without a raw
	// socket (TLS) and datagram endpoints.
	fallback *goroutine.Engine

	startOnce sync.Once
	startErr  error
	loops     []*loop
	addrs     addrCache

	loopAccepts atomic.Int64 // connections the loops accepted and admitted (tests)
	stopped     atomic.Bool  // stopping, readable without mu (the loops' accept)

	mu       sync.Mutex
	stopping bool
	changed  chan struct{} // closed and replaced when a loop's live count drops or a Shutdown begins on a loop
	// inShutdown counts, per loop, the callbacks of that loop now inside
	// Shutdown: no Shutdown waits for those loops (they cannot make
	// progress until the callback returns).
	inShutdown map[*loop]int
}

var _ engine.Engine = (*Engine)(nil)

// New makes an epoll engine with cfg.Loops loops (GOMAXPROCS when 0). The
// loops start with the first Serve call.
func New(cfg engine.Config) (*Engine, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	n := cfg.Loops
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &Engine{
		log:      log,
		nloop:    n,
		fallback: goroutine.New(cfg),
		changed:  make(chan struct{}),

		inShutdown: make(map[*loop]int),
	}, nil
}

// Name is "epoll".
func (e *Engine) Name() string { return "epoll" }

func (e *Engine) start() error {
	e.startOnce.Do(func() {
		for i := 0; i < e.nloop; i++ {
			l, err := newLoop(e)
			if err != nil {
				e.startErr = fmt.Errorf("sockit: epoll engine: %w", err)
				for _, l := range e.loops {
					l.stop()
				}
				e.loops = nil
				return
			}
			e.loops = append(e.loops, l)
			go l.run()
		}
	})
	return e.startErr
}

func (e *Engine) isStopping() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stopping
}

// ServeListener serves the connections of ln on the loops. From the first
// connection on, the loops accept from ln's socket themselves (accept.go);
// this goroutine goes on accepting through ln too, handing what it gets to a
// loop round robin (a dup and a close per connection), and sees ln closed,
// when it takes the loops' duplicates of the socket away.
func (e *Engine) ServeListener(ln net.Listener, f proto.Factory, opts engine.Options) error {
	if err := e.start(); err != nil {
		return err
	}
	if e.isStopping() || len(e.loops) == 0 {
		return engine.ErrEngineClosed
	}
	o := opts
	if o.Logger == nil {
		o.Logger = e.log
	}
	var backoff engine.Backoff
	var onLoops *lgroup // the loops accepting too, from the first connection on
	noLoopAccept := false
	var byGo int64 // connections this goroutine accepted
	defer func() {
		if onLoops != nil {
			onLoops.stop()
			o.Logger.Debug("stopped accepting", "addr", ln.Addr().String(), "accepted_by_loops", onLoops.accepted.Load(), "accepted_by_go", byGo)
		}
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if onLoops != nil && (errors.Is(err, net.ErrClosed) || e.isStopping() || !engine.Temporary(err)) {
				onLoops.close() // the loops stop accepting now, not when they get to it
			}
			if errors.Is(err, net.ErrClosed) || e.isStopping() {
				return nil
			}
			if !engine.Temporary(err) {
				return err
			}
			d := backoff.Next()
			o.Logger.Warn("accept failed; backing off", "err", err, "retry_in", d)
			time.Sleep(d)
			continue
		}
		backoff.Reset()
		if e.isStopping() {
			_ = nc.Close()
			continue
		}
		if onLoops == nil && !noLoopAccept {
			onLoops = e.listenOnLoops(ln, nc, f, &o)
			noLoopAccept = onLoops == nil
		}
		var release func()
		if o.Admit != nil {
			r, ok := o.Admit(nc.LocalAddr(), nc.RemoteAddr())
			if !ok {
				_ = nc.Close()
				continue
			}
			release = r
		}
		byGo++
		_ = e.serveConn(nc, f, &o, release)
	}
}

// ServeConn runs f on nc, accepted or dialed elsewhere, on one of the loops.
func (e *Engine) ServeConn(nc net.Conn, f proto.Factory, opts engine.Options, release func()) error {
	if err := e.start(); err != nil {
		return err
	}
	if e.isStopping() || len(e.loops) == 0 {
		_ = nc.Close()
		if release != nil {
			release()
		}
		return engine.ErrEngineClosed
	}
	o := opts
	if o.Logger == nil {
		o.Logger = e.log
	}
	return e.serveConn(nc, f, &o, release)
}

func (e *Engine) serveConn(nc net.Conn, f proto.Factory, o *engine.Options, release func()) error {
	fd, packet, err := detach(nc)
	if err != nil {
		// No raw socket (TLS, a wrapped conn): the goroutine engine serves
		// it, with the same semantics.
		return e.fallback.ServeConn(nc, f, *o, release)
	}
	c := &conn{fd: fd, packet: packet, o: o, release: release}
	e.addrs.fill(c, nc.LocalAddr(), nc.RemoteAddr())
	// Round robin, skipping a loop that has ended (its epoll wait failed).
	first := int(e.next.Add(1))
	for i := 0; i < len(e.loops); i++ {
		l := e.loops[(first+i)%len(e.loops)]
		if !e.addLive(l) {
			break
		}
		if l.post(func() { l.open(c, f) }) {
			return nil
		}
		e.connDone(l)
	}
	unix.Close(fd)
	if release != nil {
		release()
	}
	return engine.ErrEngineClosed
}

// addrCache lets connections share their addresses' memory: connections
// accepted on one address have equal local addresses, and Unix peers are
// mostly unnamed, so a connection takes the endpoints value of the one
// before when the addresses are equal. An IP peer is kept in the conn itself
// (rip, rport, rkind). Used by ServeListener's goroutine and, for what they
// accept, by the loops.
type addrCache struct {
	mu     sync.Mutex
	last   *endpoints
	lastIP netip.AddrPort // last.local as an AddrPort when last is shareIP's
}

// shareIP returns the endpoints of a connection with an IP peer on local,
// making the local net.Addr with mk only when the last one differs.
func (a *addrCache) shareIP(local netip.AddrPort, mk func() net.Addr) *endpoints {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil || !a.lastIP.IsValid() || a.lastIP != local {
		a.last, a.lastIP = &endpoints{local: mk()}, local
	}
	return a.last
}

// share returns the endpoints of local and remote (nil for an IP peer).
func (a *addrCache) share(local, remote net.Addr) *endpoints {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l := a.last; l == nil || !sameAddr(l.local, local) || !sameAddr(l.remote, remote) {
		a.last, a.lastIP = &endpoints{local: local, remote: remote}, netip.AddrPort{}
	}
	return a.last
}

// fill sets the addresses of c, accepted through Go: an IP peer inline, the
// rest shared.
func (a *addrCache) fill(c *conn, local, remote net.Addr) {
	if t, ok := remote.(*net.TCPAddr); ok && t.Zone == "" {
		if ap := t.AddrPort(); ap.IsValid() {
			c.rip, c.rport, c.rkind = ap.Addr().As16(), ap.Port(), 16
			if ap.Addr().Is4() {
				c.rkind = 4
			}
			if l, ok := local.(*net.TCPAddr); ok && l.Zone == "" && l.AddrPort().IsValid() {
				c.ep = a.shareIP(l.AddrPort(), func() net.Addr { return local })
				return
			}
			remote = nil
		}
	}
	c.ep = a.share(local, remote)
}

func sameAddr(x, y net.Addr) bool {
	switch x := x.(type) {
	case nil:
		return y == nil
	case *net.TCPAddr:
		y, ok := y.(*net.TCPAddr)
		return ok && x.Port == y.Port && x.Zone == y.Zone && x.IP.Equal(y.IP) && len(x.IP) == len(y.IP)
	case *net.UnixAddr:
		y, ok := y.(*net.UnixAddr)
		return ok && *x == *y
	}
	return false
}

// detach takes the socket out of nc: a duplicate of its descriptor (still
// non-blocking) is returned and nc is closed.
func detach(nc net.Conn) (fd int, packet bool, err error) {
	rc := rawio.SocketOf(nc)
	if rc == nil {
		return -1, false, errors.New("not one of Go's own TCP or Unix sockets")
	}
	var dupErr error
	cerr := rc.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
		if dupErr == nil {
			typ, _ := unix.GetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_TYPE)
			packet = typ == unix.SOCK_SEQPACKET
		}
	})
	if cerr != nil {
		return -1, false, cerr
	}
	if dupErr != nil {
		return -1, false, dupErr
	}
	_ = nc.Close()
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, false, err
	}
	return fd, packet, nil
}

// open makes and registers a connection on the loop, then runs OnOpen.
func (l *loop) open(c *conn, f proto.Factory) {
	c.l = l
	fd, o, release := c.fd, c.o, c.release
	if o.IdleTimeout > 0 || o.ReadTimeout > 0 || o.WriteTimeout > 0 {
		c.tm = new(connTimers)
	}
	local, remote := c.LocalAddr(), c.RemoteAddr()
	ok := false
	func() {
		defer func() {
			if v := recover(); v != nil {
				o.Logger.Error("protocol factory panicked", "peer", addrString(remote), "panic", v)
			}
		}()
		c.p = f(proto.ConnInfo{LocalAddr: local, RemoteAddr: remote, Network: o.Network})
		ok = c.p != nil
	}()
	if !ok {
		unix.Close(fd)
		if release != nil {
			release()
		}
		l.e.connDone(l)
		return
	}
	_, c.idler = c.p.(proto.Idler)
	if err := l.register(c); err != nil {
		o.Logger.Error("epoll register failed", "peer", addrString(remote), "err", err)
		unix.Close(fd)
		if release != nil {
			release()
		}
		l.e.connDone(l)
		return
	}
	c.touch()
	if o.IdleTimeout > 0 {
		c.tm.idleTimer = l.newConnTimer(c.checkIdle)
		l.resetTimer(c.tm.idleTimer, o.IdleTimeout)
	}
	c.call(func() { c.p.OnOpen(c) })
	if l.e.isStopping() {
		c.shutdown()
	}
}

// addLive counts a connection handed to l (before its open is posted or
// run). It refuses, false, once Shutdown has begun: Shutdown waits for the
// live count to drop to zero, and a connection counted after it looked
// would be opened behind its back.
func (e *Engine) addLive(l *loop) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return false
	}
	l.live++
	return true
}

// connDone uncounts a connection of l once it has ended.
func (e *Engine) connDone(l *loop) {
	e.mu.Lock()
	l.live--
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

// ServePacket runs a datagram endpoint (on the goroutine engine's datagram
// loop).
func (e *Engine) ServePacket(pc net.PacketConn, p proto.DatagramProtocol, o engine.Options) error {
	if e.isStopping() {
		return engine.ErrEngineClosed
	}
	return e.fallback.ServePacket(pc, p, o)
}

// Shutdown ends every connection gracefully. Called from a callback on a
// loop, it cannot wait for anything of that loop (the loop is busy running
// the caller): it waits for the other loops' connections; the caller's loop
// closes its own gracefully after the callback returns, aborts what is left
// at ctx's deadline, and stops (see the package documentation).
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.stopping = true
	e.stopped.Store(true)
	e.mu.Unlock()
	e.startOnce.Do(func() {}) // wait for a start in progress; none after this
	var self *loop
	for _, l := range e.loops {
		if l.onLoop() {
			self = l
		}
		l.post(func() {
			l.closeListeners() // no new connections
			for _, c := range l.conns.all() {
				c.shutdown()
			}
		})
	}
	if self != nil {
		e.mu.Lock()
		e.inShutdown[self]++
		close(e.changed) // other Shutdowns stop waiting for this loop
		e.changed = make(chan struct{})
		e.mu.Unlock()
		defer func() {
			e.mu.Lock()
			if e.inShutdown[self]--; e.inShutdown[self] <= 0 {
				delete(e.inShutdown, self)
			}
			e.mu.Unlock()
		}()
		if dl, ok := ctx.Deadline(); ok {
			l := self
			l.addTimer(time.Until(dl), func() {
				for _, c := range l.conns.all() {
					c.lose(engine.ErrShutdown)
				}
			})
		}
	}
	// The fallback engine (TLS connections) runs on the caller's goroutine,
	// so that it knows a caller that is one of its own callbacks.
	loopErr := make(chan error, 1)
	go func() {
		err := e.waitLive(ctx, self)
		if err != nil {
			e.abortAll(engine.ErrShutdown)
			_ = e.waitLive(timeoutCtx(2*time.Second), self)
		}
		loopErr <- err
	}()
	ferr := e.fallback.Shutdown(ctx)
	err := <-loopErr
	if err == nil {
		err = ferr
	}
	e.stopLoops(self)
	return err
}

// waitLive waits until no connection is live on the loops but self (the
// caller's own loop, when called from a callback; it cannot make progress
// while we wait, so none of its connections, opened or still queued, counts).
func (e *Engine) waitLive(ctx context.Context, self *loop) error {
	for {
		e.mu.Lock()
		live := 0
		for _, l := range e.loops {
			if l != self && e.inShutdown[l] == 0 {
				live += l.live
			}
		}
		ch := e.changed
		e.mu.Unlock()
		if live <= 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func timeoutCtx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	_ = cancel // released by the timeout
	return ctx
}

func (e *Engine) abortAll(cause error) {
	for _, l := range e.loops {
		l.post(func() {
			l.closeListeners()
			for _, c := range l.conns.all() {
				c.lose(cause)
			}
		})
	}
}

// stopLoops ends the loops once their connections are gone; the caller's own
// loop (Shutdown from a callback) ends after the callback returns.
func (e *Engine) stopLoops(self *loop) {
	for _, l := range e.loops {
		l.stop()
	}
	for _, l := range e.loops {
		e.mu.Lock()
		busy := e.inShutdown[l] > 0
		e.mu.Unlock()
		if l == self || busy {
			continue // ends after its callback returns
		}
		select {
		case <-l.done:
		case <-time.After(2 * time.Second):
			e.log.Warn("event loop did not stop in time")
		}
	}
}

// Close aborts every connection and stops the loops.
func (e *Engine) Close() error {
	e.mu.Lock()
	e.stopping = true
	e.stopped.Store(true)
	e.mu.Unlock()
	e.startOnce.Do(func() {})
	var self *loop
	for _, l := range e.loops {
		if l.onLoop() {
			self = l
		}
	}
	e.abortAll(nil)
	_ = e.waitLive(timeoutCtx(2*time.Second), self)
	_ = e.fallback.Close()
	e.stopLoops(self)
	return nil
}

// stop makes the loop exit once it has no connections left. After the loop
// has ended it does nothing (in particular it never writes the eventfd the
// loop closed).
func (l *loop) stop() {
	l.mu.Lock()
	if !l.quit {
		l.stopping = true
		l.wakeLocked()
	}
	l.mu.Unlock()
}
