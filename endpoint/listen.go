package endpoint

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/sockit/sockit/endpoint/proxy"
)

// ErrNoCertificate is the cause of the error Listen returns for a tls://
// endpoint when ListenConfig.TLS is nil or holds no certificate.
var ErrNoCertificate = errors.New("sockit: tls endpoint needs a certificate")

// staleProbeTimeout bounds the dial that decides whether an existing Unix
// socket file is stale.
const staleProbeTimeout = 2 * time.Second

// OpError is the error Listen, ListenPacket and Dial return: the operation,
// the endpoint and the cause. Its message names the endpoint once:
//
//	listen tcp://127.0.0.1:8080: bind: address already in use
//
// errors.Is and errors.As see the cause (syscall.EADDRINUSE, a
// *net.OpError, ...).
type OpError struct {
	Op       string   // "listen" or "dial"
	Endpoint Endpoint // the endpoint as given
	Err      error    // the cause
}

func (e *OpError) Error() string {
	name := e.Endpoint.String()
	if name == "" {
		name = "(no endpoint)"
	}
	msg := "<nil>"
	if e.Err != nil {
		msg = e.Err.Error()
		// net.OpError repeats the operation and the address; keep only its
		// cause, since this error already names both.
		if oe, ok := e.Err.(*net.OpError); ok && oe.Err != nil {
			msg = oe.Err.Error()
		}
	}
	return e.Op + " " + name + ": " + msg
}

func (e *OpError) Unwrap() error { return e.Err }

// Timeout reports whether the cause is a timeout.
func (e *OpError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// ListenConfig configures Listen and ListenPacket. The zero value listens
// with the system defaults. A ListenConfig is safe for concurrent use as long
// as it is not modified.
type ListenConfig struct {
	// ReusePort sets SO_REUSEPORT on IP sockets, so several listeners
	// (in this process or others) can bind the same address and port. It
	// is ignored for Unix and fd:// endpoints and is an error where the
	// system lacks the option (Windows).
	ReusePort bool
	// Backlog is the listen(2) backlog of stream listeners; 0 means the
	// system default (net.core.somaxconn on Linux). The kernel caps it at
	// its own maximum. Negative is an error, and so is a non-zero backlog
	// on Windows.
	Backlog int
	// UnixMode is the permission mode given to a new Unix socket file after
	// bind (for example 0660); 0 leaves the mode the umask gave it. Only
	// permission bits are allowed.
	UnixMode os.FileMode
	// KeepAlive is the TCP keep-alive period of accepted connections: 0
	// means Go's default (enabled, 15s), negative disables keep-alive.
	KeepAlive time.Duration
	// TLS is the server configuration of tls:// endpoints, which it must
	// give a certificate (Certificates, GetCertificate or
	// GetConfigForClient). Other endpoints ignore it.
	TLS *tls.Config
	// Proxy, if not nil, has every stream listener read a PROXY protocol
	// header (v1 or v2, HAProxy's) from each connection before handing it
	// out, beneath TLS: connections report the client's address from the
	// header (see package endpoint/proxy). Datagram and unixpacket
	// endpoints refuse it.
	Proxy *proxy.Config
}

// Listen opens a stream listener on e: tcp, tcp4, tcp6, unix, unixpacket,
// tls (a TCP listener wrapped by tls.NewListener) or fd://N naming a
// listening stream or seqpacket socket.
//
// For fd://N, Listen takes ownership of descriptor N: on success N is closed
// and the listener holds its own duplicate; on error N is left open. Do not
// also use N through an *os.File (such as one from [ListenFDs]): pass such a
// file to net.FileListener instead.
//
// Errors are [*OpError] values.
func (lc ListenConfig) Listen(ctx context.Context, e Endpoint) (net.Listener, error) {
	ln, err := lc.listen(ctx, e)
	if err != nil {
		return nil, &OpError{Op: "listen", Endpoint: e, Err: err}
	}
	return ln, nil
}

// ListenPacket opens a datagram endpoint on e: udp, udp4, udp6, unixgram, or
// fd://N naming a datagram socket (whose descriptor it takes, as Listen
// does). Closing a unixgram conn removes its socket file.
//
// Errors are [*OpError] values.
func (lc ListenConfig) ListenPacket(ctx context.Context, e Endpoint) (net.PacketConn, error) {
	pc, err := lc.listenPacket(ctx, e)
	if err != nil {
		return nil, &OpError{Op: "listen", Endpoint: e, Err: err}
	}
	return pc, nil
}

func (lc ListenConfig) listen(ctx context.Context, e Endpoint) (net.Listener, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	if e.IsPacket() {
		return nil, fmt.Errorf("%s is a datagram endpoint (use ListenPacket)", e.Scheme)
	}
	if err := lc.checkOptions(e); err != nil {
		return nil, err
	}
	if e.IsTLS() && !hasCertificate(lc.TLS) {
		return nil, ErrNoCertificate
	}

	var (
		ln  net.Listener
		err error
	)
	switch {
	case e.Scheme == "fd":
		ln, err = listenFD(e.FD)
	case e.IsUnix():
		err = prepareUnixPath(ctx, e)
		if err == nil {
			ln, err = new(net.ListenConfig).Listen(ctx, e.Network, e.Address)
		}
	default:
		ln, err = lc.netConfig().Listen(ctx, e.Network, e.Address)
	}
	if err != nil {
		return nil, err
	}
	if err := lc.setBacklog(ln); err != nil {
		ln.Close()
		return nil, err
	}
	if e.IsUnix() {
		if err := lc.chmod(e.Address); err != nil {
			ln.Close()
			return nil, err
		}
		if ul, ok := ln.(*net.UnixListener); ok && !isAbstract(e.Address) {
			owned, err := ownListenerPath(ul, e.Address)
			if err != nil {
				ln.Close()
				return nil, err
			}
			ln = owned
		}
	}
	if tl, ok := ln.(*net.TCPListener); ok && e.Scheme == "fd" && lc.KeepAlive != 0 {
		// Listeners made from files do not carry a ListenConfig, so
		// apply the keep-alive setting on accept.
		ln = keepAliveListener{TCPListener: tl, period: lc.KeepAlive}
	}
	if lc.Proxy != nil {
		if ln.Addr().Network() == "unixpacket" {
			ln.Close()
			return nil, errProxyStream
		}
		ln = proxy.Listen(ln, *lc.Proxy)
	}
	if e.IsTLS() {
		ln = tls.NewListener(ln, lc.TLS)
	}
	return ln, nil
}

func (lc ListenConfig) listenPacket(ctx context.Context, e Endpoint) (net.PacketConn, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	if !e.IsPacket() && e.Scheme != "fd" {
		return nil, fmt.Errorf("%s is a stream endpoint (use Listen)", e.Scheme)
	}
	if err := lc.checkOptions(e); err != nil {
		return nil, err
	}
	if lc.Proxy != nil {
		return nil, errProxyStream
	}
	switch {
	case e.Scheme == "fd":
		return listenPacketFD(e.FD)
	case e.IsUnix():
		if err := prepareUnixPath(ctx, e); err != nil {
			return nil, err
		}
		pc, err := new(net.ListenConfig).ListenPacket(ctx, e.Network, e.Address)
		if err != nil {
			return nil, err
		}
		if err := lc.chmod(e.Address); err != nil {
			pc.Close()
			os.Remove(e.Address)
			return nil, err
		}
		uc, ok := pc.(*net.UnixConn)
		if !ok || isAbstract(e.Address) {
			return pc, nil
		}
		c, err := ownPath(uc, e.Address)
		if err != nil {
			pc.Close()
			os.Remove(e.Address)
			return nil, err
		}
		return c, nil
	default:
		return lc.netConfig().ListenPacket(ctx, e.Network, e.Address)
	}
}

// checkOptions rejects options that cannot be honoured for e.
func (lc ListenConfig) checkOptions(e Endpoint) error {
	switch {
	case lc.Backlog < 0:
		return fmt.Errorf("negative backlog %d", lc.Backlog)
	case lc.Backlog > 0 && !backlogSupported && !e.IsPacket():
		return fmt.Errorf("setting the listen backlog is not supported on %s", runtime.GOOS)
	case lc.ReusePort && !reusePortSupported && !e.IsUnix() && e.Scheme != "fd":
		return fmt.Errorf("SO_REUSEPORT is not supported on %s", runtime.GOOS)
	case lc.Proxy != nil && (e.IsPacket() || e.Network == "unixpacket"):
		return errProxyStream
	case lc.UnixMode&^fs.ModePerm != 0:
		return fmt.Errorf("unix mode %v has bits other than permissions", lc.UnixMode)
	case lc.UnixMode != 0 && e.IsUnix() && isAbstract(e.Address):
		return fmt.Errorf("unix mode cannot apply to abstract socket %q (it has no file)", e.Address)
	}
	return nil
}

// errProxyStream refuses a PROXY protocol configuration where there is no
// stream to begin with a header.
var errProxyStream = errors.New("the PROXY protocol applies to tcp, tls and unix stream endpoints only")

// netConfig is the net.ListenConfig of IP sockets.
func (lc ListenConfig) netConfig() *net.ListenConfig {
	nlc := &net.ListenConfig{KeepAlive: lc.KeepAlive}
	if lc.ReusePort {
		nlc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = setReusePort(fd) }); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("set SO_REUSEPORT: %w", serr)
			}
			return nil
		}
	}
	return nlc
}

// setBacklog applies lc.Backlog to a listening socket by calling listen(2)
// on it again, which Linux and the BSDs allow; Go itself always listens with
// the system maximum.
func (lc ListenConfig) setBacklog(ln net.Listener) error {
	if lc.Backlog == 0 {
		return nil
	}
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return fmt.Errorf("set backlog: %T has no socket", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("set backlog: %w", err)
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = relisten(fd, lc.Backlog) }); err != nil {
		return fmt.Errorf("set backlog: %w", err)
	}
	if lerr != nil {
		return fmt.Errorf("set backlog: listen: %w", lerr)
	}
	return nil
}

// chmod applies lc.UnixMode to a socket file just bound.
func (lc ListenConfig) chmod(path string) error {
	if lc.UnixMode == 0 || isAbstract(path) {
		return nil
	}
	if err := os.Chmod(path, lc.UnixMode); err != nil {
		return fmt.Errorf("set unix mode: %w", err)
	}
	return nil
}

// hasCertificate reports whether a server TLS config can present a
// certificate.
func hasCertificate(c *tls.Config) bool {
	return c != nil && (len(c.Certificates) > 0 || c.GetCertificate != nil || c.GetConfigForClient != nil)
}

// isAbstract reports whether path names a Linux abstract socket, which Go
// writes with a leading '@' and which has no file.
func isAbstract(path string) bool {
	return (runtime.GOOS == "linux" || runtime.GOOS == "android") && len(path) > 0 && path[0] == '@'
}

// prepareUnixPath makes the path of Unix endpoint e ready for bind (SPEC
// section 2): a missing path is fine; a stale socket file (nothing answers
// on it) is removed; a live socket is an "address in use" error; anything
// else at the path is left alone and reported.
func prepareUnixPath(ctx context.Context, e Endpoint) error {
	path := e.Address
	if isAbstract(path) {
		return nil
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%q exists and is not a socket (not removing it): %w", path, fs.ErrExist)
	}

	pctx, cancel := context.WithTimeout(ctx, staleProbeTimeout)
	defer cancel()
	c, err := new(net.Dialer).DialContext(pctx, e.Network, path)
	if err == nil {
		c.Close()
		return fmt.Errorf("socket %q is in use by a running server: %w", path, syscall.EADDRINUSE)
	}
	switch {
	case isConnRefused(err):
		// Stale: a socket file nobody listens on.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale socket: %w", err)
		}
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return nil // removed since the Lstat
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot tell whether socket %q is in use: %w", path, err)
	default:
		// Something is bound there, of another socket type, or busy:
		// it is alive, so leave it.
		return fmt.Errorf("socket %q is in use (%v): %w", path, causeOf(err), syscall.EADDRINUSE)
	}
}

// causeOf strips the operation and addresses net.OpError adds to a cause.
func causeOf(err error) error {
	if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
		return oe.Err
	}
	return err
}

// keepAliveListener applies a keep-alive setting to accepted connections.
type keepAliveListener struct {
	*net.TCPListener
	period time.Duration // <0 off, >0 the period
}

func (l keepAliveListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	if l.period < 0 {
		c.SetKeepAlive(false)
	} else {
		c.SetKeepAlive(true)
		c.SetKeepAlivePeriod(l.period)
	}
	return c, nil
}

// socketFile is a socket file this package bound: it is removed when its
// socket closes, but only while it is still that file. Another server may
// have replaced it since (after someone removed ours), and its file must
// stay.
type socketFile struct {
	path string      // absolute path of the socket file
	fi   fs.FileInfo // the file as bound, to recognise it
	once sync.Once
}

// newSocketFile records the file just bound at path.
func newSocketFile(path string) (*socketFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return nil, err
	}
	return &socketFile{path: abs, fi: fi}, nil
}

// remove removes the file, once, if it is still the one bound.
func (f *socketFile) remove() {
	f.once.Do(func() {
		if fi, err := os.Lstat(f.path); err == nil && os.SameFile(fi, f.fi) {
			os.Remove(f.path)
		}
	})
}

// unixgramConn is a Unix datagram socket bound to a file this package
// created; Close removes the file (if it is still the one bound).
type unixgramConn struct {
	*net.UnixConn
	file *socketFile
}

// ownPath wraps c, just bound to path, so that Close removes path.
func ownPath(c *net.UnixConn, path string) (*unixgramConn, error) {
	f, err := newSocketFile(path)
	if err != nil {
		return nil, err
	}
	return &unixgramConn{UnixConn: c, file: f}, nil
}

// Close closes the socket and removes its file, once.
func (c *unixgramConn) Close() error {
	err := c.UnixConn.Close()
	c.file.remove()
	return err
}

// unixListener is a Unix stream or seqpacket listener bound to a file this
// package created. net's own unlink-on-close removes whatever file is at
// the path; this one removes the file only while it is still its own. All
// of *net.UnixListener's methods (AcceptUnix, SyscallConn, File, …) stay.
type unixListener struct {
	*net.UnixListener
	file *socketFile
}

// ownListenerPath wraps ln, just bound to path, so that Close removes path
// only if it is still ln's file.
func ownListenerPath(ln *net.UnixListener, path string) (*unixListener, error) {
	f, err := newSocketFile(path)
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	return &unixListener{UnixListener: ln, file: f}, nil
}

// Close removes the socket file if it is still the listener's (while the
// socket still answers, so no new server can have taken the path in
// between), then closes the socket.
func (l *unixListener) Close() error {
	l.file.remove()
	return l.UnixListener.Close()
}
