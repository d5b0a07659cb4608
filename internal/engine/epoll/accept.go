//go:build linux

package epoll

import (
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/internal/rawio"
	"github.com/sockit/sockit/proto"
)

// Accepting on the loops.
//
// ServeListener's goroutine accepts through Go (ln.Accept) and, from the
// first connection it gets, also has every loop accept from the listening
// socket directly: each loop registers its own duplicate of the listener's
// descriptor, and the loop that calls accept4 first gets the connection and
// opens it itself (the others get EAGAIN). The registrations ask for
// EPOLLEXCLUSIVE, but the loops wait through Go's netpoller rather than in
// epoll_wait, so every loop, and Go's own accept, sees each new connection:
// it is the first to call accept4 that wins. Connections a loop accepts
// need no hand-off between goroutines and leave none of the garbage of Go's
// accept path (a netFD, two sockaddrs, two net.Addrs per connection), which
// on the idle-connection benchmark was half of the process's memory growth.
// The listener is not re-created as a SO_REUSEPORT socket per loop: the
// engine serves listeners its caller opened (fd:// among them), and Unix
// sockets have no SO_REUSEPORT.
//
// Go's accept keeps running beside the loops: it takes the connections it
// wins the race for (served as before) and, above all, it is how a Close of
// the listener is seen. The loops then stop at once: the group shuts the
// listening socket down (shutdown(2) on a duplicate of its own refuses new
// connections for every duplicate) and ServeListener takes the loops'
// duplicates away. The first connection is also how the loops learn the
// socket options Go gives an accepted connection (TCP_NODELAY, keep-alive and
// its timings, which the listener's ListenConfig decides and does not
// expose), copied onto every socket a loop accepts.
//
// Admit runs on the loops, concurrently: a server whose Admit calls a hook
// of the user's (AdmitMayBlock) keeps accepting on ServeListener's goroutine
// only.

// lgroup is one listener accepted from by the loops.
type lgroup struct {
	f        proto.Factory
	o        *engine.Options
	accepted atomic.Int64 // connections the loops accepted
	tcp      bool
	packet   bool // unixpacket
	sopts    []sockOpt
	local    net.Addr // Unix: the listener's address
	remote   net.Addr // Unix: the shared address of unnamed peers
	addrs    *addrCache

	closed atomic.Bool // the listener is closed or serving ended: accept no more
	ctl    int         // the group's own duplicate of the listener, for shutdown(2)

	socks []*lsock
}

type sockOpt struct{ level, name, value int }

// lsock is a loop's duplicate of a listening socket.
type lsock struct {
	g       *lgroup
	l       *loop
	fd      int
	idx     int            // in l.lsocks
	gone    chan struct{}  // closed once the loop no longer has fd
	paused  bool           // out of the epoll set for a while (EMFILE and the like)
	backoff engine.Backoff // pauses after running out of descriptors
}

// listenOnLoops starts the loops accepting from ln, learning the socket
// options from nc, the connection Go just accepted. It returns nil when ln
// is not a plain TCP or Unix (stream or seqpacket) listener, or when Admit
// may block.
func (e *Engine) listenOnLoops(ln net.Listener, nc net.Conn, f proto.Factory, o *engine.Options) *lgroup {
	if o.AdmitMayBlock {
		return nil
	}
	g := &lgroup{f: f, o: o, ctl: -1, addrs: &e.addrs}
	switch ln.(type) {
	case *net.TCPListener:
		if _, ok := nc.(*net.TCPConn); !ok {
			return nil
		}
		g.tcp = true
	case *net.UnixListener, interface {
		AcceptUnix() (*net.UnixConn, error)
	}: // the second: endpoint's listener that owns its socket file
		u, ok := nc.(*net.UnixConn)
		if !ok {
			return nil
		}
		// Peers are mostly unnamed: those the loops accept share one
		// address, the one Go gives an unnamed peer ("@"); a named peer
		// gets its own (addresses).
		g.local = u.LocalAddr()
		g.remote = &net.UnixAddr{Name: "@", Net: ln.Addr().Network()}
		g.packet = ln.Addr().Network() == "unixpacket"
	default:
		return nil
	}
	sc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	if g.tcp {
		_ = sc.Control(func(fd uintptr) {
			for _, opt := range [][2]int{
				{unix.IPPROTO_TCP, unix.TCP_NODELAY},
				{unix.SOL_SOCKET, unix.SO_KEEPALIVE},
				{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
				{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
				{unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
			} {
				if v, err := unix.GetsockoptInt(int(fd), opt[0], opt[1]); err == nil {
					g.sopts = append(g.sopts, sockOpt{opt[0], opt[1], v})
				}
			}
		})
		if len(g.sopts) != 5 {
			return nil
		}
		if g.sopts[1].value == 0 { // keep-alive off: its timings are moot
			g.sopts = g.sopts[:2]
		}
	}
	lsc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	if g.ctl, err = dupFD(lsc); err != nil {
		return nil
	}
	for _, l := range e.loops {
		dup, err := dupFD(lsc)
		if err != nil {
			break
		}
		s := &lsock{g: g, l: l, fd: dup, gone: make(chan struct{})}
		g.socks = append(g.socks, s)
		if !l.post(func() { l.addListener(s) }) {
			unix.Close(dup)
			close(s.gone)
		}
	}
	return g
}

// close makes the loops accept no more at once: the listening socket is
// shut down (new connections are refused; shutdown(2) acts on the socket,
// so on every duplicate) and the loops check closed before each accept4.
func (g *lgroup) close() {
	if !g.closed.CompareAndSwap(false, true) {
		return
	}
	if g.ctl >= 0 {
		_ = unix.Shutdown(g.ctl, unix.SHUT_RD)
		unix.Close(g.ctl)
		g.ctl = -1
	}
}

// stop closes the group and takes its sockets off their loops (ln was
// closed, or serving ended), waiting until they are closed. A loop busy in a
// long callback is waited for at most a second; it closes its duplicate when
// it gets to the task (the socket refuses connections from close on).
func (g *lgroup) stop() {
	g.close()
	for _, s := range g.socks {
		s.l.post(func() { s.l.removeListener(s) }) // refused: the loop ended and closed it
	}
	deadline := time.NewTimer(time.Second)
	defer deadline.Stop()
	for _, s := range g.socks {
		select {
		case <-s.gone:
		case <-s.l.done:
		case <-deadline.C:
			return
		}
	}
}

// dupFD duplicates the descriptor behind rc (close-on-exec).
func dupFD(rc syscall.RawConn) (int, error) {
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return fd, derr
}

// watchListener adds s to the loop's epoll set (loop only): level-triggered,
// its slot index in the event data.
func (l *loop) watchListener(s *lsock) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(s.fd), Pad: int32(-2 - s.idx)}
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev)
}

// addListener registers s on the loop (loop only).
func (l *loop) addListener(s *lsock) {
	l.mu.Lock()
	stopping := l.stopping
	l.mu.Unlock()
	if stopping || l.e.isStopping() {
		unix.Close(s.fd)
		s.fd = -1
		close(s.gone)
		return
	}
	s.idx = len(l.lsocks)
	if err := l.watchListener(s); err != nil {
		s.g.o.Logger.Debug("accepting on the event loop is off", "err", err)
		unix.Close(s.fd)
		s.fd = -1
		close(s.gone)
		return
	}
	l.lsocks = append(l.lsocks, s)
}

// removeListener unregisters and closes s (loop only); twice does nothing.
func (l *loop) removeListener(s *lsock) {
	if s.fd < 0 || s.idx >= len(l.lsocks) || l.lsocks[s.idx] != s {
		return
	}
	if !s.paused {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	}
	unix.Close(s.fd)
	s.fd = -1
	s.paused = false
	close(s.gone)
	l.lsocks[s.idx] = nil
	for len(l.lsocks) > 0 && l.lsocks[len(l.lsocks)-1] == nil {
		l.lsocks = l.lsocks[:len(l.lsocks)-1]
	}
}

// closeListeners closes every listener duplicate of the loop (it stops,
// ends or failed).
func (l *loop) closeListeners() {
	for _, s := range l.lsocks {
		if s != nil {
			l.removeListener(s)
		}
	}
	l.lsocks = nil
}

// listenerOf returns the listener an event with data pad is for, or nil.
func (l *loop) listenerOf(pad, fd int32) *lsock {
	i := int(-2 - pad)
	if i < 0 || i >= len(l.lsocks) {
		return nil
	}
	if s := l.lsocks[i]; s != nil && int32(s.fd) == fd {
		return s
	}
	return nil
}

// maxAcceptBatch bounds the connections a loop accepts per wake-up, so a
// connection flood cannot starve the connections it already has.
const maxAcceptBatch = 64

// accept takes new connections from s and opens them on this loop.
func (l *loop) accept(s *lsock) {
	g := s.g
	if g.closed.Load() || l.e.stopped.Load() {
		// ServeListener or Shutdown takes the socket away; after
		// shutdown(2) it stays readable, so leave it now, not when the
		// removal they post runs.
		l.removeListener(s)
		return
	}
	// The duplicate shares its flags with the caller's listener, and
	// someone may have made that blocking (os.File.Fd does): accept4 on
	// it would block the loop. Go's accept copes with either; leave it.
	if fl, err := unix.FcntlInt(uintptr(s.fd), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK == 0 {
		g.o.Logger.Warn("the listening socket is in blocking mode; accepting only through Go", "err", err)
		l.removeListener(s)
		return
	}
	for i := 0; i < maxAcceptBatch; i++ {
		if g.closed.Load() || l.e.stopped.Load() {
			l.removeListener(s)
			return
		}
		var rsa unix.RawSockaddrAny
		fd, err := rawio.Accept4(s.fd, &rsa)
		switch err {
		case nil:
			s.backoff.Reset()
		case unix.EAGAIN:
			return
		case unix.EINTR, unix.ECONNABORTED, unix.EPROTO, unix.EPERM,
			unix.ENETDOWN, unix.ENETUNREACH, unix.EHOSTDOWN, unix.EHOSTUNREACH,
			unix.ENONET, unix.ENOPROTOOPT, unix.EOPNOTSUPP:
			continue // that connection's trouble (accept(2)): take the next
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			l.pauseListener(s, err)
			return
		default:
			// The socket no longer listens (shut down, closed): leave it.
			g.o.Logger.Debug("accepting on the event loop ended", "err", err)
			l.removeListener(s)
			return
		}
		c := &conn{fd: fd, packet: g.packet, o: g.o}
		if !g.addresses(c, fd, &rsa) {
			g.o.Logger.Warn("cannot read an accepted socket's addresses; closed", "family", rsa.Addr.Family)
			unix.Close(fd)
			continue
		}
		for _, o := range g.sopts {
			_ = unix.SetsockoptInt(fd, o.level, o.name, o.value)
		}
		if g.o.Admit != nil {
			release, ok := g.o.Admit(c.LocalAddr(), c.RemoteAddr())
			if !ok {
				unix.Close(fd)
				continue
			}
			c.release = release
		}
		if !l.e.addLive(l) { // Shutdown has begun
			unix.Close(fd)
			if c.release != nil {
				c.release()
			}
			l.removeListener(s)
			return
		}
		l.e.loopAccepts.Add(1)
		g.accepted.Add(1)
		l.open(c, g.f)
	}
}

// pauseListener takes s out of the loop's epoll set for a while when the
// process or the system is out of descriptors or memory: the registration
// is level-triggered, and the pending connection would wake the loop again
// at once. It comes back after a backoff (engine.Backoff: 5 ms doubling to
// 1 s), logged;
// Go's accept goes on meanwhile with its own backoff.
func (l *loop) pauseListener(s *lsock, err error) {
	if s.paused || s.fd < 0 {
		return
	}
	d := s.backoff.Next()
	s.g.o.Logger.Warn("accept failed; backing off", "err", err, "retry_in", d)
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	s.paused = true
	l.addTimer(d, func() {
		if !s.paused || s.fd < 0 {
			return
		}
		s.paused = false
		if err := l.watchListener(s); err != nil {
			l.removeListener(s)
		}
	})
}

// addresses fills in c's addresses from the accepted socket: the peer's
// from accept4, the local one from getsockname for TCP (an endpoints value
// shared with the previous connection when equal). It reports false only
// for an address no socket of the listener's kind can have.
func (g *lgroup) addresses(c *conn, fd int, rsa *unix.RawSockaddrAny) bool {
	if !g.tcp {
		path, ok := rawio.UnixPath(rsa)
		if !ok {
			return false
		}
		if path == "" { // unnamed, like almost every client
			c.ep = g.addrs.share(g.local, g.remote)
		} else {
			c.ep = &endpoints{local: g.local, remote: &net.UnixAddr{Name: path, Net: g.local.Network()}}
		}
		return true
	}
	ip, port, kind, scope := rawio.AddrPort(rsa)
	var lsa unix.RawSockaddrAny
	if kind == 0 || rawio.Getsockname(fd, &lsa) != nil {
		return false
	}
	lip, lport, lkind, lscope := rawio.AddrPort(&lsa)
	if lkind == 0 {
		return false
	}
	if scope != 0 || lscope != 0 { // link-local IPv6: addresses with zones, made here
		c.ep = &endpoints{local: zoned(lip, lport, lkind, lscope), remote: zoned(ip, port, kind, scope)}
		return true
	}
	c.rip, c.rport, c.rkind = ip, port, kind
	local := netip.AddrPortFrom(netip.AddrFrom16(lip), lport)
	if lkind == 4 {
		local = netip.AddrPortFrom(local.Addr().Unmap(), lport)
	}
	c.ep = g.addrs.shareIP(local, func() net.Addr { return zoned(lip, lport, lkind, 0) })
	return true
}

// zoned makes the *net.TCPAddr of an address as Go's accept would: 4 bytes
// for IPv4, 16 for IPv6, with the zone of a scope id.
func zoned(ip [16]byte, port uint16, kind uint8, scope uint32) *net.TCPAddr {
	tmp := conn{rip: ip, rport: port, rkind: kind}
	a := tmp.RemoteAddr().(*net.TCPAddr)
	if scope != 0 {
		if ifi, err := net.InterfaceByIndex(int(scope)); err == nil {
			a.Zone = ifi.Name
		} else {
			a.Zone = strconv.Itoa(int(scope))
		}
	}
	return a
}
