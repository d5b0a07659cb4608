package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/internal/ratelog"
)

// DefaultHeaderTimeout is how long a peer has to send its whole header
// when Config.HeaderTimeout is 0.
const DefaultHeaderTimeout = 5 * time.Second

// DefaultMaxPending is how many connections may wait for their header at
// once when Config.MaxPending is 0.
const DefaultMaxPending = 4096

// Config says which peers must send a PROXY header and how long they have.
// The zero value requires a header from every peer within
// DefaultHeaderTimeout.
type Config struct {
	// From lists the load balancers' addresses: only a peer in one of them
	// may send a header. Empty means every peer must. Peers without an IP
	// address (Unix sockets) are always trusted: the socket file's
	// permissions decide who may connect.
	From []netip.Prefix
	// Optional serves a peer outside From as it is, with its socket's
	// addresses, reading none of its bytes as a header; without it such a
	// peer is closed at once. Peers in From must send a header either way:
	// whether one is expected is configuration, never guessed from the
	// bytes (the PROXY protocol spec, section 5).
	Optional bool
	// HeaderTimeout bounds the wait for a whole header; 0 means
	// DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// MaxPending bounds the connections waiting for their header; one more
	// is closed at once. 0 means DefaultMaxPending.
	MaxPending int
	// Logger receives refusals (at most one line a second); nil means
	// slog.Default().
	Logger *slog.Logger
	// OnRefuse, if not nil, is called for every connection closed before it
	// was served (the error wraps ErrRefused): listener is the listening
	// address it came to, remote the socket's peer.
	OnRefuse func(listener, remote net.Addr, err error)
}

// Listener hands out connections whose PROXY header has been read: Accept
// returns *Conn values that report the header's addresses. Headers are read
// by a goroutine per connection, never inside Accept, so a peer that sends
// its header slowly (or never) delays no other. It is safe for concurrent
// use.
type Listener struct {
	inner   net.Listener
	cfg     Config
	timeout time.Duration
	log     *slog.Logger
	ready   chan accepted
	done    chan struct{}
	once    sync.Once
	start   sync.Once
	pending atomic.Int64
	refused atomic.Uint64
	limiter ratelog.Limiter

	mu    sync.Mutex
	conns map[net.Conn]struct{} // waiting for their header
	wg    sync.WaitGroup
}

type accepted struct {
	c   net.Conn
	err error
}

// Listen wraps ln: every connection it accepts is held until its header
// is read (or refused) as c says.
func Listen(ln net.Listener, c Config) *Listener {
	l := &Listener{
		inner:   ln,
		cfg:     c,
		timeout: c.HeaderTimeout,
		log:     c.Logger,
		ready:   make(chan accepted),
		done:    make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
	}
	if l.timeout <= 0 {
		l.timeout = DefaultHeaderTimeout
	}
	if l.cfg.MaxPending <= 0 {
		l.cfg.MaxPending = DefaultMaxPending
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	return l
}

// Accept returns the next connection whose header was read, or whose peer
// is served without one (Config.Optional).
func (l *Listener) Accept() (net.Conn, error) {
	l.start.Do(func() {
		l.wg.Add(1)
		go l.acceptLoop()
	})
	select {
	case a := <-l.ready:
		return a.c, a.err
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: l.inner.Addr().Network(), Addr: l.inner.Addr(), Err: net.ErrClosed}
	}
}

// Close closes the listener and every connection still waiting for its
// header, and waits for their goroutines.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
		l.mu.Lock()
		for c := range l.conns {
			_ = c.Close()
		}
		l.mu.Unlock()
	})
	l.wg.Wait()
	return err
}

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Refused counts the connections closed before they were served.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// acceptLoop accepts from the inner listener and starts each connection's
// header read; temporary errors back off as every accept loop of sockit's
// does, a permanent one is handed to Accept.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff engine.Backoff
	for {
		nc, err := l.inner.Accept()
		if err != nil {
			if engine.Temporary(err) {
				select {
				case <-time.After(backoff.Next()):
					continue
				case <-l.done:
					return
				}
			}
			select {
			case l.ready <- accepted{err: err}:
			case <-l.done:
			}
			return
		}
		backoff.Reset()
		if !l.expectsHeader(nc) {
			if !l.cfg.Optional {
				l.refuse(nc, ErrUntrusted)
				continue
			}
			l.handOver(nc)
			continue
		}
		if l.pending.Add(1) > int64(l.cfg.MaxPending) {
			l.pending.Add(-1)
			l.refuse(nc, ErrBusy)
			continue
		}
		if !l.track(nc) {
			l.pending.Add(-1)
			_ = nc.Close()
			return
		}
		l.wg.Add(1)
		go l.serveHeader(nc)
	}
}

// expectsHeader reports whether nc's peer is a trusted load balancer.
func (l *Listener) expectsHeader(nc net.Conn) bool {
	if len(l.cfg.From) == 0 {
		return true
	}
	ip, ok := addrIP(nc.RemoteAddr())
	if !ok {
		return true // a Unix socket's peer
	}
	for _, p := range l.cfg.From {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (l *Listener) track(nc net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return false
	default:
	}
	l.conns[nc] = struct{}{}
	return true
}

func (l *Listener) untrack(nc net.Conn) {
	l.mu.Lock()
	delete(l.conns, nc)
	l.mu.Unlock()
}

// serveHeader reads nc's header within the timeout and hands the
// connection to Accept.
func (l *Listener) serveHeader(nc net.Conn) {
	defer l.wg.Done()
	defer l.pending.Add(-1)
	buf := bufPool.Get().(*[MaxHeader]byte)
	_ = nc.SetReadDeadline(time.Now().Add(l.timeout))
	h, err := readHeader(nc, buf[:])
	bufPool.Put(buf)
	l.untrack(nc)
	if err != nil {
		l.refuse(nc, err)
		return
	}
	if err := nc.SetReadDeadline(time.Time{}); err != nil {
		l.refuse(nc, fmt.Errorf("%w: %w", ErrRefused, err))
		return
	}
	l.handOver(newConn(nc, h))
}

var bufPool = sync.Pool{New: func() any { return new([MaxHeader]byte) }}

// handOver gives c to Accept, or closes it when the listener closes first.
func (l *Listener) handOver(c net.Conn) {
	select {
	case l.ready <- accepted{c: c}:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *Listener) refuse(nc net.Conn, err error) {
	select {
	case <-l.done: // closed under it: not the peer's doing
		_ = nc.Close()
		return
	default:
	}
	l.refused.Add(1)
	_ = nc.Close()
	l.limiter.Warn(l.log, "connection refused: PROXY protocol", "peer", nc.RemoteAddr().String(), "err", err)
	if l.cfg.OnRefuse != nil {
		l.cfg.OnRefuse(l.inner.Addr(), nc.RemoteAddr(), err)
	}
}

func addrIP(a net.Addr) (netip.Addr, bool) {
	if t, ok := a.(*net.TCPAddr); ok {
		ip, ok := netip.AddrFromSlice(t.IP)
		return ip.Unmap(), ok
	}
	return netip.Addr{}, false
}

// Conn is a connection past its PROXY header: RemoteAddr and LocalAddr
// are the header's source and destination (the client's and the address
// it connected to on the load balancer), except for a LOCAL header (a
// health check) or an UNKNOWN/unspecified one, which keep the socket's.
type Conn struct {
	net.Conn
	header        *proxyproto.Header
	local, remote net.Addr
}

func newConn(nc net.Conn, h *proxyproto.Header) *Conn {
	c := &Conn{Conn: nc, header: h, local: nc.LocalAddr(), remote: nc.RemoteAddr()}
	if h.Command.IsProxy() && h.SourceAddr != nil && h.DestinationAddr != nil {
		c.remote, c.local = streamAddr(h.SourceAddr), streamAddr(h.DestinationAddr)
	}
	return c
}

// streamAddr gives an address the type a stream socket's has: a header
// that says UDP still names the client of this stream.
func streamAddr(a net.Addr) net.Addr {
	if u, ok := a.(*net.UDPAddr); ok {
		return &net.TCPAddr{IP: u.IP, Port: u.Port, Zone: u.Zone}
	}
	return a
}

// RemoteAddr is the client's address from the header.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr is the address the client connected to, from the header.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// Header is the header the connection began with (its TLVs among it).
func (c *Conn) Header() *proxyproto.Header { return c.header }

// Socket returns the connection beneath, past the header: the engines
// serve its descriptor directly and take the addresses from c.
func (c *Conn) Socket() net.Conn { return c.Conn }

// CloseWrite half-closes the socket beneath (TCP and Unix streams).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("sockit: %T cannot half-close", c.Conn)
}

// ReadFrom and WriteTo let io.Copy use the socket's own (splice(2) and
// sendfile(2) on Linux).
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// WriteTo copies what the socket receives to w (see ReadFrom).
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c.Conn})
}
