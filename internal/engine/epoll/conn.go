//go:build linux

package epoll

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/proto"
)

// keepOut is the largest write buffer kept after it drained; larger ones go
// back to the garbage collector so a connection that once queued megabytes
// does not hold them while idle.
const keepOut = 16 << 10

// conn is one connection on a loop. The loop's goroutine reads and runs every
// callback; Write and the other Transport methods may be called from any
// goroutine and take mu.
//
// Lock order (also in LOCKS.md): Engine.mu → (nothing); loop.mu is a leaf;
// conn.mu is a leaf. No callback runs with any of them held.
type conn struct {
	l      *loop
	fd     int
	p      proto.Protocol
	idler  proto.Idler
	o      *engine.Options
	local  net.Addr
	remote net.Addr
	packet bool // SOCK_SEQPACKET: one write is one message

	release  func()
	activity atomic.Int64

	// Loop-only state.
	stopping  bool
	finished  bool
	msgStart  time.Time
	readTimer *timer
	idleTimer *timer

	mu          sync.Mutex
	events      uint32 // the epoll mask registered
	registered  bool
	out         []byte // out[head:] is queued
	head        int
	outLens     []int // packet mode: sizes of the queued messages
	high, low   int
	hard        int
	hardSet     bool
	writePaused bool
	eofWanted   bool
	eofDone     bool
	eof         bool // the peer's EOF was seen
	readPaused  bool
	closing     bool // Close called: flush, then close
	closed      bool // no more writes; the loop closes the fd
	closeErr    error
	drainCh     chan struct{}
}

var _ proto.Transport = (*conn)(nil)

func (c *conn) queued() int { return len(c.out) - c.head }

// ---- events (loop) ---------------------------------------------------------

// updateEventsLocked makes the epoll mask match the state: read interest
// unless paused, at EOF or closing; write interest while bytes are queued.
// c.mu must be held.
func (c *conn) updateEventsLocked() {
	if c.closed {
		return
	}
	var want uint32
	if !c.readPaused && !c.eof && !c.closing {
		want |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if c.queued() > 0 {
		want |= unix.EPOLLOUT
	}
	if c.registered && want == c.events {
		return
	}
	ev := unix.EpollEvent{Events: want, Fd: int32(c.fd)}
	var err error
	switch {
	case want == 0 && c.registered:
		// Nothing to wait for: leave the epoll set, so that a hang-up
		// (always reported) cannot spin the loop.
		err = unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		c.registered = false
	case want == 0:
	case c.registered:
		err = unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
	default:
		err = unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev)
		c.registered = err == nil
	}
	if err != nil {
		c.closeLocked(fmt.Errorf("sockit: epoll_ctl: %w", err))
		return
	}
	c.events = want
}

// handle reacts to one epoll event.
func (c *conn) handle(ev uint32) {
	if ev&unix.EPOLLOUT != 0 {
		c.flush()
	}
	c.mu.Lock()
	reading := !c.closed && !c.readPaused && !c.eof && !c.closing
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	if reading && ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.readOnce()
		return
	}
	if ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// Not reading now: report a socket error; otherwise stop watching
		// until there is something to do.
		if errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && errno != 0 {
			c.lose(unix.Errno(errno))
			return
		}
		c.mu.Lock()
		if c.registered && c.queued() == 0 {
			_ = unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
			c.registered = false
			c.events = 0
		}
		c.mu.Unlock()
	}
}

// readOnce reads what the socket has (one read of up to 64 KiB into the
// loop's buffer) and delivers it.
func (c *conn) readOnce() {
	n, err := unix.Read(c.fd, c.l.buf)
	switch {
	case n > 0:
		c.touch()
		c.callData(c.l.buf[:n])
		c.afterData()
	case err == nil: // n == 0: the peer half-closed
		c.mu.Lock()
		c.eof = true
		c.updateEventsLocked()
		c.mu.Unlock()
		keep := false
		c.call(func() { keep = c.p.OnEOF() })
		if !keep {
			_ = c.Close()
		} else if c.stopping {
			c.closeIfIdle()
		}
	case err == unix.EAGAIN || err == unix.EINTR:
	default:
		c.lose(err)
	}
}

// afterData keeps the read timeout's clock and finishes a graceful shutdown.
func (c *conn) afterData() {
	if c.idler == nil {
		if c.stopping {
			c.closeIfIdle()
		}
		return
	}
	idle := c.idler.Idle()
	if c.o.ReadTimeout > 0 {
		switch {
		case idle:
			c.msgStart = time.Time{}
			if c.readTimer != nil {
				c.readTimer.Stop()
				c.readTimer = nil
			}
		case c.msgStart.IsZero():
			c.msgStart = time.Now()
			c.readTimer = c.l.addTimer(c.o.ReadTimeout, c.checkRead)
		}
	}
	if c.stopping && idle {
		_ = c.Close()
	}
}

func (c *conn) closeIfIdle() {
	if c.idler == nil || c.idler.Idle() {
		_ = c.Close()
	}
}

// shutdown begins a graceful close (on the loop): what already arrived is
// read and answered, then an idle connection is closed; a busy one closes
// when its message is done.
func (c *conn) shutdown() {
	if c.finished {
		return
	}
	c.stopping = true
	c.mu.Lock()
	reading := !c.closed && !c.readPaused && !c.eof && !c.closing
	c.mu.Unlock()
	if reading {
		for i := 0; i < 16; i++ { // bounded: a flooding peer cannot hold us
			n, err := unix.Read(c.fd, c.l.buf)
			if n > 0 {
				c.touch()
				c.callData(c.l.buf[:n])
				if c.finished || c.isClosed() {
					return
				}
				continue
			}
			if err == nil { // EOF
				c.mu.Lock()
				c.eof = true
				c.updateEventsLocked()
				c.mu.Unlock()
				keep := false
				c.call(func() { keep = c.p.OnEOF() })
				if !keep {
					_ = c.Close()
					return
				}
			} else if err != unix.EAGAIN && err != unix.EINTR {
				c.lose(err)
				return
			}
			break
		}
	}
	c.closeIfIdle()
}

func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// ---- callbacks -------------------------------------------------------------

// call runs f as a callback of this connection on the loop, containing a
// panic: logged with the peer, reported to OnError, the connection aborted.
func (c *conn) call(f func()) {
	prev := c.l.current
	c.l.current = c
	defer func() {
		c.l.current = prev
		if v := recover(); v != nil {
			c.contain(v)
		}
	}()
	f()
}

// callData is call(OnData) without a closure, on the per-message path.
func (c *conn) callData(data []byte) {
	prev := c.l.current
	c.l.current = c
	defer func() {
		c.l.current = prev
		if v := recover(); v != nil {
			c.contain(v)
		}
	}()
	c.p.OnData(data)
}

func (c *conn) contain(v any) {
	perr := &engine.PanicError{Value: v, Stack: debug.Stack()}
	c.o.Logger.Error("protocol panicked", "peer", addrString(c.remote), "panic", fmt.Sprint(v), "stack", string(perr.Stack))
	if c.o.OnError != nil {
		c.o.OnError(c.remote, perr)
	}
	c.mu.Lock()
	c.closeLocked(perr)
	c.mu.Unlock()
}

// post runs f on the loop as this connection's next callback, unless the
// connection has ended by then.
func (c *conn) post(f func()) {
	c.l.post(func() {
		if !c.finished {
			c.call(f)
		}
	})
}

// ---- closing ----------------------------------------------------------------

// closeLocked ends the connection: no more writes; the loop closes the fd
// and calls OnClose(cause). The first cause wins. c.mu must be held.
func (c *conn) closeLocked(cause error) {
	if c.closed {
		return
	}
	c.closed = true
	c.closeErr = cause
	c.out, c.head, c.outLens = nil, 0, nil
	if c.registered {
		_ = unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		c.registered = false
	}
	c.signalDrainLocked()
	c.l.post(c.finish)
}

func (c *conn) lose(err error) {
	c.mu.Lock()
	c.closeLocked(err)
	c.mu.Unlock()
}

// finish runs on the loop once: the fd is closed, OnClose called.
func (c *conn) finish() {
	if c.finished {
		return
	}
	c.mu.Lock()
	err := c.closeErr
	c.mu.Unlock()
	c.closeFD(err)
}

func (c *conn) closeFD(err error) {
	if c.finished {
		return
	}
	c.finished = true
	delete(c.l.conns, c.fd)
	_ = unix.Close(c.fd)
	if c.readTimer != nil {
		c.readTimer.Stop()
	}
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	c.call(func() { c.p.OnClose(err) })
	if c.release != nil {
		c.release()
	}
	c.l.e.connDone()
}

// Close flushes the buffer, then closes; OnClose(nil) follows.
func (c *conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closing {
		return nil
	}
	c.closing = true
	if c.queued() == 0 {
		c.closeLocked(nil)
	} else {
		c.updateEventsLocked()
	}
	return nil
}

// Abort discards the buffer and closes at once.
func (c *conn) Abort() {
	c.mu.Lock()
	c.closeLocked(nil)
	c.mu.Unlock()
}

// ---- writing ----------------------------------------------------------------

func (c *conn) writableLocked() error {
	switch {
	case c.closed || c.closing:
		return proto.ErrClosed
	case c.eofWanted:
		return proto.ErrWriteAfterEOF
	}
	return nil
}

func (c *conn) Write(b []byte) error {
	if len(b) == 0 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.writableLocked()
	}
	bufs := [1][]byte{b}
	return c.writev(bufs[:])
}

// Writev queues bufs as one write (one writev system call when the buffer is
// empty; one packet on SOCK_SEQPACKET).
func (c *conn) Writev(bufs ...[]byte) error { return c.writev(bufs) }

func (c *conn) writev(bufs [][]byte) error {
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	c.mu.Lock()
	if err := c.writableLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	if total == 0 {
		c.mu.Unlock()
		return nil
	}
	if c.queued()+total > c.hard {
		c.mu.Unlock()
		return proto.ErrBufferFull
	}
	written := 0
	if c.queued() == 0 {
		var n int
		var err error
		for {
			if len(bufs) == 1 {
				n, err = unix.Write(c.fd, bufs[0])
			} else {
				n, err = unix.Writev(c.fd, bufs)
			}
			if err != unix.EINTR {
				break
			}
		}
		switch {
		case err == nil:
			written = n
			c.touch()
		case err == unix.EAGAIN:
		default:
			c.closeLocked(err)
			c.mu.Unlock()
			return proto.ErrClosed
		}
		if written == total {
			c.mu.Unlock()
			return nil
		}
	}
	// Queue what the kernel did not take.
	if c.head > 0 && c.head == len(c.out) {
		c.out, c.head = c.out[:0], 0
	}
	skip := written
	for _, b := range bufs {
		if skip >= len(b) {
			skip -= len(b)
			continue
		}
		c.out = append(c.out, b[skip:]...)
		skip = 0
	}
	if c.packet {
		c.outLens = append(c.outLens, total-written)
	}
	c.updateEventsLocked()
	pause := false
	if !c.writePaused && c.queued() > c.high {
		c.writePaused = true
		pause = true
	}
	c.mu.Unlock()
	if pause {
		c.deliverPause()
	}
	return nil
}

// deliverPause calls OnPauseWriting: synchronously when the Write came from
// this connection's own callback, else as its next callback.
func (c *conn) deliverPause() {
	if c.l.onLoop() && c.l.current == c {
		c.p.OnPauseWriting()
		return
	}
	c.post(c.p.OnPauseWriting)
}

// flush writes queued bytes when the socket is writable (on the loop).
func (c *conn) flush() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	for c.queued() > 0 {
		var chunk []byte
		if c.packet {
			chunk = c.out[c.head : c.head+c.outLens[0]]
		} else {
			chunk = c.out[c.head:]
		}
		n, err := unix.Write(c.fd, chunk)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			c.closeLocked(err)
			c.mu.Unlock()
			return
		}
		c.touch()
		c.head += n
		if c.packet {
			c.outLens = c.outLens[1:]
		}
	}
	if c.queued() == 0 {
		if cap(c.out) > keepOut {
			c.out = nil
		} else {
			c.out = c.out[:0]
		}
		c.head = 0
		c.outLens = c.outLens[:0]
	} else if c.head > len(c.out)/2 {
		n := copy(c.out, c.out[c.head:])
		c.out, c.head = c.out[:n], 0
	}
	resume := false
	if c.writePaused && c.queued() <= c.low {
		c.writePaused = false
		resume = true
	}
	if c.queued() <= c.low {
		c.signalDrainLocked()
	}
	if c.queued() == 0 {
		if c.closing {
			c.closeLocked(nil)
			c.mu.Unlock()
			return
		}
		if c.eofWanted && !c.eofDone {
			c.shutdownWriteLocked()
		}
	}
	c.updateEventsLocked()
	c.mu.Unlock()
	if resume {
		c.call(c.p.OnResumeWriting)
	}
}

func (c *conn) shutdownWriteLocked() {
	c.eofDone = true
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		c.o.Logger.Debug("half-close failed", "peer", addrString(c.remote), "err", err)
	}
}

// WriteEOF half-closes once the buffer has drained.
func (c *conn) WriteEOF() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closing {
		return proto.ErrClosed
	}
	if c.eofWanted {
		return nil
	}
	c.eofWanted = true
	if c.queued() == 0 {
		c.shutdownWriteLocked()
	}
	return nil
}

func (c *conn) BufferedAmount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued()
}

func (c *conn) signalDrainLocked() {
	if c.drainCh != nil {
		close(c.drainCh)
		c.drainCh = nil
	}
}

// Drain waits until the buffered amount is at or below low.
func (c *conn) Drain(ctx context.Context) error {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return proto.ErrClosed
		}
		if c.queued() <= c.low {
			c.mu.Unlock()
			return nil
		}
		if c.drainCh == nil {
			c.drainCh = make(chan struct{})
		}
		ch := c.drainCh
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *conn) SetWriteBufferLimits(high, low int) error {
	high, low, err := engine.Limits(high, low)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.high, c.low = high, low
	if !c.hardSet {
		c.hard = high * proto.HardLimitFactor
	}
	pause, resume := false, false
	switch {
	case !c.writePaused && c.queued() > c.high:
		c.writePaused, pause = true, true
	case c.writePaused && c.queued() <= c.low:
		c.writePaused, resume = false, true
	}
	if c.queued() <= c.low {
		c.signalDrainLocked()
	}
	c.mu.Unlock()
	if pause {
		c.deliverPause()
	}
	if resume {
		c.post(c.p.OnResumeWriting)
	}
	return nil
}

func (c *conn) SetWriteBufferHardLimit(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n <= 0 {
		c.hardSet = false
		c.hard = c.high * proto.HardLimitFactor
		return
	}
	c.hardSet, c.hard = true, n
}

// ---- reading control ----------------------------------------------------------

func (c *conn) PauseReading() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readPaused {
		c.readPaused = true
		c.updateEventsLocked()
	}
}

func (c *conn) ResumeReading() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readPaused {
		c.readPaused = false
		c.updateEventsLocked()
	}
}

// ---- timers ----------------------------------------------------------------

func (c *conn) AfterFunc(d time.Duration, f func()) proto.Timer {
	return c.l.addTimer(d, func() {
		if !c.finished {
			c.call(f)
		}
	})
}

func (c *conn) touch() {
	if c.o.IdleTimeout > 0 {
		c.activity.Store(time.Now().UnixNano())
	}
}

func (c *conn) checkIdle() {
	if c.finished {
		return
	}
	left := c.o.IdleTimeout - time.Since(time.Unix(0, c.activity.Load()))
	if left > 0 {
		c.idleTimer = c.l.addTimer(left, c.checkIdle)
		return
	}
	c.timeout(engine.ErrIdleTimeout)
}

func (c *conn) checkRead() {
	if c.finished || c.msgStart.IsZero() {
		return
	}
	if left := c.o.ReadTimeout - time.Since(c.msgStart); left > 0 {
		c.readTimer = c.l.addTimer(left, c.checkRead)
		return
	}
	c.timeout(engine.ErrReadTimeout)
}

func (c *conn) timeout(err error) {
	c.o.Logger.Info("closing connection", "peer", addrString(c.remote), "reason", err.Error())
	if c.o.OnTimeout != nil {
		c.o.OnTimeout(c.remote, err)
	}
	c.lose(err)
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	if s := a.String(); s != "" && s != "@" {
		return s
	}
	return "unix socket peer"
}

var _ = errors.New
