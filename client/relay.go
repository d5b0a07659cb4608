package client

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/endpoint/proxy"
)

// RelayConfig configures Relay. Target has to be set; the rest of the zero
// value dials with no timeout of its own and no idle limits.
type RelayConfig struct {
	// Target is where each accepted connection is relayed to.
	Target endpoint.Endpoint
	// Dialer dials Target (Timeout bounds connecting; TLS is the client
	// configuration of a tls:// target).
	Dialer endpoint.Dialer
	// IdleTimeout closes both connections after this long with no bytes
	// either way; ReadTimeout after this long with no bytes from the
	// client. Zero means never. Either one makes the copies go through a
	// buffer, which rules out the kernel's zero-copy splice.
	IdleTimeout, ReadTimeout time.Duration
	// SendProxy, 1 or 2, writes a PROXY protocol header of that version to
	// the target before any byte of the client's (for a tls:// target,
	// before the handshake), naming the client's address and the one it
	// connected to, as HAProxy's send-proxy does; 0 sends none.
	SendProxy byte
}

// Relay is one connection of `sockit relay`: it dials cfg.Target and copies
// c to the target and back until both directions have ended, passing each
// half-close on (the end of one direction half-closes the other side's write
// side). Between plain TCP and Unix stream sockets the copies are io.Copy
// calls on the *net.TCPConn / *net.UnixConn themselves, which the runtime
// turns into splice(2) on Linux.
//
// It returns nil when both sides closed cleanly, a *ConnError with Op "dial"
// when the target could not be reached (c is then closed and nothing else is
// disturbed), a *ConnError for a reset, a *TimeoutError, or ctx's error.
// Both connections are closed when it returns.
func Relay(ctx context.Context, c net.Conn, cfg RelayConfig) error {
	d := cfg.Dialer
	if cfg.SendProxy != 0 {
		d.Preface = func(t net.Conn) error {
			return proxy.WriteHeader(t, cfg.SendProxy, c.RemoteAddr(), c.LocalAddr())
		}
	}
	t, err := d.Dial(ctx, cfg.Target)
	if err != nil {
		c.Close()
		return &ConnError{Op: "dial", Addr: cfg.Target.Address, Err: err}
	}
	return Join(ctx, c, t, cfg.IdleTimeout, cfg.ReadTimeout)
}

// Join copies a to b and b to a until both directions have ended, passing
// half-closes on; a reset on either side closes both. readTimeout counts
// bytes from a only. Both are closed when it returns. See Relay.
func Join(ctx context.Context, a, b net.Conn, idleTimeout, readTimeout time.Duration) error {
	var closeOnce sync.Once
	closeBoth := func() {
		closeOnce.Do(func() {
			a.Close()
			b.Close()
		})
	}
	defer closeBoth()
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	wd := newWatchdog(idleTimeout, readTimeout, func(func(string) error) { closeBoth() })
	defer wd.stop()

	type result struct {
		err   error
		fromA bool
	}
	results := make(chan result, 2)
	pump := func(dst, src net.Conn, fromA bool) {
		var err error
		if wd == nil {
			_, err = io.Copy(dst, src)
		} else {
			err = copyInstrumented(dst, src, func(p []byte) []byte {
				wd.touch(fromA)
				return p
			}, false)
		}
		if err == nil {
			closeWrite(dst)
		} else {
			closeBoth()
		}
		results <- result{err: err, fromA: fromA}
	}
	go pump(b, a, true)
	go pump(a, b, false)

	var first error
	for range 2 {
		r := <-results
		if r.err != nil && first == nil && !errors.Is(r.err, net.ErrClosed) {
			addr := a.RemoteAddr().String()
			op := "read"
			if isWriteSide(r.err) {
				op = "write"
			}
			if !r.fromA {
				addr = b.RemoteAddr().String()
			}
			first = &ConnError{Op: op, Addr: addr, Err: r.err}
		}
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case wd.fired() != nil:
		return wd.fired()(a.RemoteAddr().String())
	}
	return first
}

// isWriteSide guesses whether a copy error came from writing (EPIPE).
func isWriteSide(err error) bool {
	return errors.Is(err, syscall.EPIPE)
}
