package server

import (
	"errors"
	"net"
	"sync/atomic"

	"github.com/sockit/sockit/internal/engine"
)

// Stats counts what a Server did since it started: the connections it
// admitted and refused, the ones its timeouts closed and the ones that failed.
// Every count only grows (Prometheus counters); Open is the one gauge.
type Stats struct {
	// Open is the connections admitted and not yet closed (ActiveConns).
	Open int
	// Accepted counts the connections admitted.
	Accepted uint64
	// Refused counts connections closed at once, by reason.
	RefusedMaxConns uint64 // past MaxConns
	RefusedDeny     uint64 // by Allow/Deny
	RefusedVerify   uint64 // by Verify
	// Timeouts counts the connections a timeout closed, by kind.
	IdleTimeouts  uint64
	ReadTimeouts  uint64
	WriteTimeouts uint64
	// Failed counts the connections that failed (what HandleError gets):
	// a panicking protocol, a failed TLS handshake, anything else.
	Panics        uint64
	TLSFailures   uint64
	OtherFailures uint64
}

// counters are a Server's Stats as they grow.
type counters struct {
	accepted, refusedMax, refusedDeny, refusedVerify atomic.Uint64
	idle, read, write                                atomic.Uint64
	panics, tls, other                               atomic.Uint64
}

// Stats returns the server's counts now.
func (s *Server) Stats() Stats {
	st := s.counts.stats()
	st.Open = s.ActiveConns()
	return st
}

// tally is one listener's (or datagram endpoint's) share of the counts.
type tally struct {
	counters
	open    atomic.Int64
	release func() // an admitted connection of this listener ended
}

// count applies f to t's counters; a nil t counts nothing.
func (t *tally) count(f func(*counters)) {
	if t != nil {
		f(&t.counters)
	}
}

// tallyOf returns the tally of a listener or datagram endpoint, made at the
// first call. Tallies stay after their listener closes, so its counts do.
func (s *Server) tallyOf(key any) *tally {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tallies[key]; ok {
		return t
	}
	if s.tallies == nil {
		s.tallies = make(map[any]*tally)
	}
	t := &tally{}
	t.release = func() { s.active.Add(-1); t.open.Add(-1) }
	s.tallies[key] = t
	return t
}

// ListenerStats returns the counts of the connections that came through ln
// (a listener given to Serve or ServeFunc, or a net.PacketConn given to
// ServePacket), and false for one the server never served. Stats is their
// sum, with the connections of ServeConn.
func (s *Server) ListenerStats(ln any) (Stats, bool) {
	s.mu.Lock()
	t, ok := s.tallies[ln]
	s.mu.Unlock()
	if !ok {
		return Stats{}, false
	}
	st := t.counters.stats()
	st.Open = int(t.open.Load())
	return st, true
}

// stats reads c.
func (c *counters) stats() Stats {
	return Stats{
		Accepted:        c.accepted.Load(),
		RefusedMaxConns: c.refusedMax.Load(),
		RefusedDeny:     c.refusedDeny.Load(),
		RefusedVerify:   c.refusedVerify.Load(),
		IdleTimeouts:    c.idle.Load(),
		ReadTimeouts:    c.read.Load(),
		WriteTimeouts:   c.write.Load(),
		Panics:          c.panics.Load(),
		TLSFailures:     c.tls.Load(),
		OtherFailures:   c.other.Load(),
	}
}

// handleError counts a failed connection (for the server and in t) and
// calls HandleError.
func (s *Server) handleError(t *tally, remote net.Addr, err error) {
	var pe *engine.PanicError
	switch {
	case errors.As(err, &pe):
		s.counts.panics.Add(1)
		t.count(func(c *counters) { c.panics.Add(1) })
	case errors.Is(err, engine.ErrHandshake):
		s.counts.tls.Add(1)
		t.count(func(c *counters) { c.tls.Add(1) })
	default:
		s.counts.other.Add(1)
		t.count(func(c *counters) { c.other.Add(1) })
	}
	if s.HandleError != nil {
		s.HandleError(remote, err)
	}
}

// handleTimeout counts a connection a timeout closed (for the server and
// in t) and calls HandleTimeout.
func (s *Server) handleTimeout(t *tally, remote net.Addr, err error) {
	switch {
	case errors.Is(err, engine.ErrIdleTimeout):
		s.counts.idle.Add(1)
		t.count(func(c *counters) { c.idle.Add(1) })
	case errors.Is(err, engine.ErrReadTimeout):
		s.counts.read.Add(1)
		t.count(func(c *counters) { c.read.Add(1) })
	case errors.Is(err, engine.ErrWriteTimeout):
		s.counts.write.Add(1)
		t.count(func(c *counters) { c.write.Add(1) })
	}
	if s.HandleTimeout != nil {
		s.HandleTimeout(remote, err)
	}
}
