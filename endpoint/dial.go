package endpoint

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Dialer dials endpoints. The zero value dials with no timeout of its own
// (the context and the system still bound a connect) and no TLS settings. A
// Dialer is safe for concurrent use as long as it is not modified.
//
// TCP connections have TCP_NODELAY on (Go's default); see [SetNoDelay].
type Dialer struct {
	// Timeout bounds the connect (and, for tls://, the handshake); 0 means
	// no timeout beyond the context's.
	Timeout time.Duration
	// Source is the local address to dial from: "ADDR" (any port) or
	// "ADDR:PORT" (IPv6 in brackets) for IP endpoints, a socket path for
	// unixgram endpoints (instead of a temporary one). Empty means any.
	Source string
	// TLS is the client configuration of tls:// endpoints; nil means the
	// defaults (system roots). When its ServerName is empty, the host of the
	// endpoint is used, also when it is an IP address (so IP SANs verify).
	TLS *tls.Config
	// Preface, if not nil, is called on every new stream connection before
	// Dial returns it, on the socket itself: for tls:// before the
	// handshake (a PROXY protocol header goes out this way, as HAProxy
	// sends it). An error closes the connection and fails the dial.
	Preface func(net.Conn) error
}

// Dial connects to e. For unixgram endpoints the connection is bound to a
// temporary path in os.TempDir (or d.Source) so the peer can reply, and Close
// removes that path. fd:// endpoints cannot be dialed.
//
// Errors are [*OpError] values.
func (d Dialer) Dial(ctx context.Context, e Endpoint) (net.Conn, error) {
	c, err := d.dial(ctx, e)
	if err != nil {
		return nil, &OpError{Op: "dial", Endpoint: e, Err: err}
	}
	return c, nil
}

func (d Dialer) dial(ctx context.Context, e Endpoint) (net.Conn, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	if e.IsPacket() {
		d.Preface = nil // streams only
	}
	nd := &net.Dialer{Timeout: d.Timeout}
	switch {
	case e.Scheme == "fd":
		return nil, errors.New("an fd:// endpoint names a socket to listen on and cannot be dialed")
	case e.Scheme == "unixgram":
		return d.dialUnixgram(ctx, nd, e)
	case e.IsUnix():
		if d.Source != "" {
			return nil, fmt.Errorf("a source address applies to IP and unixgram endpoints, not %s", e.Scheme)
		}
		return d.prefaced(nd.DialContext(ctx, e.Network, e.Address))
	}
	if d.Source != "" {
		la, err := sourceAddr(e.Network, d.Source)
		if err != nil {
			return nil, err
		}
		nd.LocalAddr = la
	}
	if !e.IsTLS() {
		return d.prefaced(nd.DialContext(ctx, e.Network, e.Address))
	}
	cfg := &tls.Config{}
	if d.TLS != nil {
		cfg = d.TLS.Clone()
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(e.Address)
		if err != nil {
			return nil, err
		}
		if i := strings.IndexByte(host, '%'); i >= 0 {
			host = host[:i] // a zone is no part of a certificate name
		}
		cfg.ServerName = host
	}
	if d.Preface == nil {
		td := &tls.Dialer{NetDialer: nd, Config: cfg}
		return td.DialContext(ctx, e.Network, e.Address)
	}
	start := time.Now()
	raw, err := d.prefaced(nd.DialContext(ctx, e.Network, e.Address))
	if err != nil {
		return nil, err
	}
	hctx := ctx
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithDeadline(ctx, start.Add(d.Timeout))
		defer cancel()
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

// prefaced runs Preface on a stream connection just dialed.
func (d Dialer) prefaced(c net.Conn, err error) (net.Conn, error) {
	if err != nil || d.Preface == nil {
		return c, err
	}
	if err := d.Preface(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// dialUnixgram connects a Unix datagram socket bound to a path of its own.
func (d Dialer) dialUnixgram(ctx context.Context, nd *net.Dialer, e Endpoint) (net.Conn, error) {
	local := d.Source
	if local == "" {
		var err error
		if local, err = tempSocketPath(); err != nil {
			return nil, err
		}
	} else if reason := checkUnixPath(local); reason != "" {
		return nil, fmt.Errorf("bad source %q: %s", local, reason)
	}
	_, err := os.Lstat(local)
	existed := err == nil
	nd.LocalAddr = &net.UnixAddr{Name: local, Net: "unixgram"}
	c, err := nd.DialContext(ctx, "unixgram", e.Address)
	if err != nil {
		if !existed {
			removeSocket(local) // bound before the connect failed
		}
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok || isAbstract(local) {
		return c, nil
	}
	oc, err := ownPath(uc, local)
	if err != nil {
		c.Close()
		removeSocket(local)
		return nil, err
	}
	return oc, nil
}

// removeSocket removes path if it is a socket.
func removeSocket(path string) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() == fs.ModeSocket {
		os.Remove(path)
	}
}

// tempSocketPath returns a new, unused-looking path for a client socket in
// os.TempDir.
func tempSocketPath() (string, error) {
	var b [8]byte
	rand.Read(b[:])
	path := filepath.Join(os.TempDir(), "sockit-"+hex.EncodeToString(b[:])+".sock")
	if len(path) > maxUnixPath {
		return "", fmt.Errorf("temporary socket path %q is over the %d-byte limit of a Unix socket address (set TMPDIR to a shorter directory)", path, maxUnixPath)
	}
	return path, nil
}

// sourceAddr parses a Dialer.Source for an IP network: "ADDR", "[ADDR]",
// "ADDR:PORT", "[ADDR]:PORT" or ":PORT".
func sourceAddr(network, src string) (net.Addr, error) {
	bad := func(why string) error { return fmt.Errorf("bad source address %q: %s", src, why) }
	var host string
	port := 0
	if addr, err := netip.ParseAddr(src); err == nil {
		host = addr.String()
	} else if strings.HasPrefix(src, "[") && strings.HasSuffix(src, "]") {
		host = src[1 : len(src)-1]
	} else {
		h, p, err := net.SplitHostPort(src)
		if err != nil {
			return nil, bad("want ADDR or ADDR:PORT")
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || !allDigits(p) {
			return nil, bad("bad port")
		}
		host, port = h, int(n)
	}
	var ip netip.Addr
	if host != "" {
		var err error
		if ip, err = netip.ParseAddr(host); err != nil {
			return nil, bad("not an IP address")
		}
	}
	var ipb net.IP
	if ip.IsValid() {
		ipb = net.IP(ip.AsSlice())
	}
	switch network {
	case "udp", "udp4", "udp6":
		return &net.UDPAddr{IP: ipb, Port: port, Zone: ip.Zone()}, nil
	default:
		return &net.TCPAddr{IP: ipb, Port: port, Zone: ip.Zone()}, nil
	}
}
