package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/internal/ratelog"
	"github.com/sockit/sockit/proto"
)

// ErrServerClosed is returned by Serve and ServePacket after Shutdown or Close.
var ErrServerClosed = errors.New("sockit: server closed")

// PanicError is what HandleError receives when a protocol callback or a
// handler panicked: the panic value and the goroutine's stack.
type PanicError = engine.PanicError

// Concurrency is how stream connections are dispatched (socketserver's
// mix-ins). It applies to the goroutine engine; event-loop engines serve every
// connection on their loops.
type Concurrency string

// Concurrency modes.
const (
	// Goroutine serves each connection on its own goroutine (ThreadingMixIn).
	// It is the default.
	Goroutine Concurrency = "goroutine"
	// Pool serves connections on Workers goroutines fed by a queue of Queue
	// connections; a connection arriving to a full queue is closed at once and
	// logged (seed 002's process pool).
	Pool Concurrency = "pool"
	// Serial serves one connection at a time (the plain TCPServer).
	Serial Concurrency = "serial"
)

// ParseConcurrency parses a --concurrency value.
func ParseConcurrency(s string) (Concurrency, error) {
	switch c := Concurrency(s); c {
	case Goroutine, Pool, Serial:
		return c, nil
	case "":
		return Goroutine, nil
	}
	return "", fmt.Errorf("bad concurrency %q: want goroutine, pool or serial", s)
}

// Server serves protocols on listeners. See the package doc.
type Server struct {
	// Engine names the engine: "goroutine" (also ""), or "epoll" on Linux.
	Engine string
	// Loops is the number of event loops of the epoll engine; 0 means one
	// per core.
	Loops int
	// Concurrency, Workers and Queue choose the dispatch of the goroutine
	// engine. Workers <= 0 means 4; Queue 0 means Workers, < 0 means no queue
	// (a connection is served only if a worker is free).
	Concurrency Concurrency
	Workers     int
	Queue       int
	// MaxConns bounds concurrent connections; a connection over the limit is
	// accepted and closed at once (FIN, no bytes). 0 means no limit.
	MaxConns int
	// Allow and Deny filter peers by address (deny wins). With a non-empty
	// Allow only peers in it are served. Peers without an IP address (Unix
	// sockets) are not filtered.
	Allow []netip.Prefix
	Deny  []netip.Prefix
	// IdleTimeout closes a connection with no bytes in either direction for
	// this long; ReadTimeout one that began a message and did not finish it in
	// time (slow-loris). Zero means never.
	IdleTimeout time.Duration
	ReadTimeout time.Duration
	// WriteTimeout closes (aborts) a connection whose queued replies the
	// peer does not take within this long: what was queued at one check
	// must be written by the next, WriteTimeout later. Bytes the kernel
	// takes at once never start the clock. Zero means never.
	WriteTimeout time.Duration
	// Verify accepts or refuses a peer (socketserver's verify_request); a
	// refused peer is closed at once. Nil accepts all. It is called for one
	// connection at a time per listener, before the connection is served.
	Verify func(local, remote net.Addr) bool
	// HandleError is called once for each connection that failed: its
	// protocol or handler panicked (a *PanicError), its TLS handshake
	// failed, or a Unix seqpacket record was too large to read whole. The
	// event is logged either way and serving continues (socketserver's
	// handle_error).
	HandleError func(remote net.Addr, err error)
	// HandleTimeout is called when an idle, read or write timeout closes a
	// connection (socketserver's handle_timeout).
	HandleTimeout func(remote net.Addr, err error)
	// Logger receives the server's events; nil means slog.Default().
	Logger *slog.Logger

	initOnce sync.Once
	initErr  error
	eng      engine.Engine
	log      *slog.Logger
	active   atomic.Int64
	release  func() // one admitted connection ended: shared by all of them
	refused  ratelog.Limiter
	counts   counters
	tallies  map[any]*tally // per listener and datagram endpoint (ListenerStats)

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	packets   map[net.PacketConn]struct{}
	serving   sync.WaitGroup
	hset      *handlerSet
}

func (s *Server) init() error {
	s.initOnce.Do(func() {
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.Default()
		}
		// The engines call an admitted connection's release exactly once
		// (engine.Options.Admit), so one func serves every connection and
		// admitting allocates nothing.
		s.release = func() { s.active.Add(-1) }
		s.listeners = make(map[net.Listener]struct{})
		s.packets = make(map[net.PacketConn]struct{})
		name := s.Engine
		if name == "" {
			name = "goroutine"
		}
		switch s.Concurrency {
		case "", Goroutine, Pool, Serial:
		default:
			s.initErr = fmt.Errorf("sockit: bad concurrency %q: want goroutine, pool or serial", s.Concurrency)
			return
		}
		s.eng, s.initErr = newEngine(name, engine.Config{Loops: s.Loops, Logger: s.log})
	})
	return s.initErr
}

// EngineName reports the engine the server runs on (after validating the
// configuration).
func (s *Server) EngineName() (string, error) {
	if err := s.init(); err != nil {
		return "", err
	}
	return s.eng.Name(), nil
}

// options are the engine options of one listener or endpoint, whose
// connections t also counts (nil: only the server's counts).
func (s *Server) options(network string, t *tally) engine.Options {
	return engine.Options{
		Logger:  s.log,
		Network: network,
		Admit:   func(local, remote net.Addr) (func(), bool) { return s.admit(t, local, remote) },
		// A Verify hook is called one at a time per listener, off the
		// event loops: it may block (a lookup) or keep state.
		AdmitMayBlock: s.Verify != nil,
		IdleTimeout:   s.IdleTimeout,
		ReadTimeout:   s.ReadTimeout,
		WriteTimeout:  s.WriteTimeout,
		OnError:       func(remote net.Addr, err error) { s.handleError(t, remote, err) },
		OnTimeout:     func(remote net.Addr, err error) { s.handleTimeout(t, remote, err) },
		Mode:          engine.Mode(s.Concurrency),
		Workers:       s.Workers,
		Queue:         s.Queue,
	}
}

// Serve accepts connections on ln and runs a protocol made by f for each. It
// blocks until Shutdown or Close, then returns ErrServerClosed; a permanent
// accept error is returned as it is. ln is closed when Serve returns.
func (s *Server) Serve(ln net.Listener, f proto.Factory) error {
	if err := s.init(); err != nil {
		_ = ln.Close()
		return err
	}
	if !s.track(ln, nil) {
		_ = ln.Close()
		return ErrServerClosed
	}
	defer s.serving.Done()
	err := s.eng.ServeListener(ln, f, s.options(ln.Addr().Network(), s.tallyOf(ln)))
	s.untrack(ln, nil)
	_ = ln.Close()
	if s.isClosing() || err == nil {
		return ErrServerClosed
	}
	return err
}

// ServeConn runs a protocol made by f on nc, a connection dialed or accepted
// elsewhere (a client's connections, a load generator's), on the server's
// engine: on the epoll engine the connection joins the event loops. It returns
// at once; the connection ends by itself or with Shutdown or Close. No limit or
// hook applies: the caller chose this connection.
func (s *Server) ServeConn(nc net.Conn, f proto.Factory) error {
	if err := s.init(); err != nil {
		_ = nc.Close()
		return err
	}
	if s.isClosing() {
		_ = nc.Close()
		return ErrServerClosed
	}
	o := s.options(nc.RemoteAddr().Network(), nil)
	o.Admit = nil
	return s.eng.ServeConn(nc, f, o, nil)
}

// ServePacket runs p on the datagram endpoint pc until Shutdown or Close, then
// returns ErrServerClosed. pc is closed when ServePacket returns.
func (s *Server) ServePacket(pc net.PacketConn, p proto.DatagramProtocol) error {
	if err := s.init(); err != nil {
		_ = pc.Close()
		return err
	}
	if !s.track(nil, pc) {
		_ = pc.Close()
		return ErrServerClosed
	}
	defer s.serving.Done()
	err := s.eng.ServePacket(pc, p, s.options(pc.LocalAddr().Network(), s.tallyOf(pc)))
	s.untrack(nil, pc)
	_ = pc.Close()
	if s.isClosing() || err == nil || errors.Is(err, engine.ErrEngineClosed) {
		return ErrServerClosed
	}
	return err
}

func (s *Server) track(ln net.Listener, pc net.PacketConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if ln != nil {
		s.listeners[ln] = struct{}{}
	}
	if pc != nil {
		s.packets[pc] = struct{}{}
	}
	s.serving.Add(1)
	return true
}

func (s *Server) untrack(ln net.Listener, pc net.PacketConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, ln)
	delete(s.packets, pc)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// stopAccepting marks the server closing and closes every listener and
// datagram endpoint. It reports whether the server had begun serving.
func (s *Server) stopAccepting() bool {
	s.mu.Lock()
	s.closing = true
	lns := make([]net.Listener, 0, len(s.listeners))
	for ln := range s.listeners {
		lns = append(lns, ln)
	}
	pcs := make([]net.PacketConn, 0, len(s.packets))
	for pc := range s.packets {
		pcs = append(pcs, pc)
	}
	s.mu.Unlock()
	for _, ln := range lns {
		_ = ln.Close()
	}
	for _, pc := range pcs {
		_ = pc.Close()
	}
	return s.eng != nil
}

// Shutdown stops accepting at once (listeners are closed, so new connections
// are refused), lets in-flight connections finish their current message
// exchange, closes idle ones and waits for all of them. When ctx ends first,
// the rest are aborted and ctx.Err() is returned. Called from a protocol
// callback it does not wait for that callback's own connection. It is safe to
// call more than once; a server that never served returns at once.
func (s *Server) Shutdown(ctx context.Context) error {
	_ = s.init()
	if !s.stopAccepting() {
		return nil
	}
	self := engine.GoroutineID() // a handler or callback calling Shutdown
	herr := make(chan error, 1)
	go func() { herr <- s.shutdownHandlers(ctx, self) }()
	err := s.eng.Shutdown(ctx)
	if e := <-herr; err == nil {
		err = e
	}
	return err
}

// Close closes every listener and aborts every connection at once.
func (s *Server) Close() error {
	_ = s.init()
	if !s.stopAccepting() {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.shutdownHandlers(ctx, engine.GoroutineID())
	return s.eng.Close()
}

// ActiveConns reports the number of admitted connections now open.
func (s *Server) ActiveConns() int { return int(s.active.Load()) }

// admit applies Allow/Deny, MaxConns and Verify to a new connection and
// counts it, for the server and in t (nil: the server only).
func (s *Server) admit(t *tally, local, remote net.Addr) (func(), bool) {
	if ip, ok := addrIP(remote); ok && !s.allowed(ip) {
		s.counts.refusedDeny.Add(1)
		t.count(func(c *counters) { c.refusedDeny.Add(1) })
		s.refused.Warn(s.log, "peer refused by --allow/--deny", "peer", remote.String())
		return nil, false
	}
	if s.MaxConns > 0 {
		if s.active.Add(1) > int64(s.MaxConns) {
			s.active.Add(-1)
			s.counts.refusedMax.Add(1)
			t.count(func(c *counters) { c.refusedMax.Add(1) })
			s.refused.Warn(s.log, "connection refused: --max-conns reached", "peer", remote.String(), "max_conns", s.MaxConns)
			return nil, false
		}
	} else {
		s.active.Add(1)
	}
	if s.Verify != nil && !s.Verify(local, remote) {
		s.active.Add(-1)
		s.counts.refusedVerify.Add(1)
		t.count(func(c *counters) { c.refusedVerify.Add(1) })
		s.refused.Warn(s.log, "peer refused by verify", "peer", remote.String())
		return nil, false
	}
	s.counts.accepted.Add(1)
	if t == nil {
		return s.release, true
	}
	t.accepted.Add(1)
	t.open.Add(1)
	return t.release, true
}

func (s *Server) allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range s.Deny {
		if p.Contains(ip) {
			return false
		}
	}
	if len(s.Allow) == 0 {
		return true
	}
	for _, p := range s.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func addrIP(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case *net.UDPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	}
	return netip.Addr{}, false
}

// ParsePrefix parses an --allow/--deny value: a CIDR or a single address.
func ParsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad address or CIDR %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
