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
	"github.com/sockit/sockit/internal/rawio"
	"github.com/sockit/sockit/proto"
)

// keepOut is the largest write buffer a loop keeps for reuse after it
// drained; larger ones go back to the garbage collector. A drained queue
// goes back to its loop (spare), not to the connection, so an idle
// connection holds no write buffer whatever it once queued.
const keepOut = 16 << 10

// maxFlush is the most one write of a flush gives the kernel.
const maxFlush = 256 << 10

// conn is one connection on a loop. The loop's goroutine reads and runs every
// callback; Write and the other Transport methods may be called from any
// goroutine and take mu.
//
// Lock order: LOCKS.md (conn.mu, then loop.mu, then Engine.mu). No callback
// runs with any of them held.
type conn struct {
	l  *loop
	p  proto.Protocol
	o  *engine.Options
	ep *endpoints // local address, and the peer's when it is not an IP one; shared
	fd int

	release func()
	tm      *connTimers // only with a read or idle timeout; set before the conn is shared

	w   *wqueue     // the bytes queued; nil when none (back to the loop); mu
	lim *connLimits // nil: the default limits and no Drain waiting; mu

	mu     sync.Mutex
	events uint32 // the epoll mask registered; mu
	slot   int32  // in the loop's connTable; -1 once removed

	// An IP peer's address, kept inline and made a net.Addr only when
	// asked for: rip holds it as 16 bytes, rkind says how to read it.
	rip   [16]byte
	rport uint16
	rkind uint8 // 0: not an IP peer (ep.remote); 4: IPv4; 16: IPv6

	// Loop-only state.
	packet   bool // SOCK_SEQPACKET: one write is one message
	idler    bool // p is a proto.Idler
	stopping bool
	finished bool
	// pauseDelivered is the write-pause state the protocol was last told
	// (OnPauseWriting: true, OnResumeWriting: false); syncPause makes it
	// follow writePaused, so the two callbacks strictly alternate.
	pauseDelivered bool

	// Under mu.
	registered  bool
	writePaused bool // the state; delivered by syncPause on the loop
	eofWanted   bool
	eofDone     bool
	eof         bool // the peer's EOF was seen
	readPaused  bool
	closing     bool // Close called: flush, then close
	closed      bool // no more writes; the loop closes the fd
}

// endpoints are the addresses of connections: connections accepted on one
// address share one value (addrCache), so they cost a pointer each.
type endpoints struct {
	local  net.Addr
	remote net.Addr // nil for IP peers (conn.rip)
}

// connTimers is the timeout state of a connection whose options have a read
// or idle timeout; the rest hold none.
type connTimers struct {
	readTimer *timer       // made once, re-armed per message
	idleTimer *timer       // made once, re-armed by each idle check
	msgStart  int64        // mono() when the message being read began; 0: none
	activity  atomic.Int64 // mono() of the last read or write

	// The write timeout's checkpoint: every byte queued up to queuedTotal
	// at the last check (wMark) must be flushed (sent) by the next one.
	// queuedTotal, sent, wMark and wArmed are under c.mu; writeTimer is
	// the loop's.
	writeTimer  *timer
	queuedTotal int64
	sent        int64
	wMark       int64
	wArmed      bool
}

// connLimits holds write-buffer limits set by the protocol and the channel
// Drain waits on; under mu. A connection that never set a limit nor waited
// in Drain has none.
type connLimits struct {
	high, low, hard int
	hardSet         bool
	drainCh         chan struct{}
}

// limitsLocked returns the write-buffer limits: high water, low water and
// the hard limit. c.mu must be held.
func (c *conn) limitsLocked() (high, low, hard int) {
	if c.lim == nil {
		return proto.DefaultHighWater, proto.DefaultHighWater / 4, proto.DefaultHighWater * proto.HardLimitFactor
	}
	return c.lim.high, c.lim.low, c.lim.hard
}

// limLocked returns c.lim, made with the default limits if need be. c.mu
// must be held.
func (c *conn) limLocked() *connLimits {
	if c.lim == nil {
		high, low, hard := c.limitsLocked()
		c.lim = &connLimits{high: high, low: low, hard: hard}
	}
	return c.lim
}

// wqueue is a connection's queue of bytes the kernel did not take yet. A
// connection holds one only while bytes are queued: a drained queue goes
// back to its loop (loop.putQueue), buffer and all, for the next
// connection that must queue.
type wqueue struct {
	out  []byte // out[head:] is queued
	head int
	lens []int // packet mode: sizes of the queued messages
	// Regions queued with out, in order, each at its place in it, and
	// what is left of them.
	files     []region
	fileBytes int64
}

var _ proto.Transport = (*conn)(nil)

// queued is the buffered amount: the bytes and file regions not yet sent.
// A connection with nothing queued has no queue (c.w == nil), which is the
// test for "anything left to send" (a region of 0 bytes counts too).
func (c *conn) queued() int {
	if c.w == nil {
		return 0
	}
	return len(c.w.out) - c.w.head + int(c.w.fileBytes)
}

// idle reports whether the protocol has no message half read (Idler); a
// protocol that is not an Idler always is.
func (c *conn) idle() bool {
	return !c.idler || c.p.(proto.Idler).Idle()
}

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
	if c.w != nil {
		want |= unix.EPOLLOUT
	}
	if c.registered && want == c.events {
		return
	}
	ev := unix.EpollEvent{Events: want, Fd: int32(c.fd), Pad: c.slot}
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
		if c.registered && c.w == nil {
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
	n, err := c.read()
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
		c.readFailed(err)
	}
}

// read reads into the loop's buffer. On a SOCK_SEQPACKET socket one read is
// one record; recvfrom with MSG_TRUNC returns the record's real length, so a
// record longer than the buffer (which the kernel would cut silently) is
// reported as a RecordTooLargeError instead of delivered.
func (c *conn) read() (int, error) {
	buf := c.l.buf
	if !c.packet {
		return rawio.Read(c.fd, buf)
	}
	n, err := rawio.RecvTrunc(c.fd, buf)
	if err != nil {
		return 0, err
	}
	if n > len(buf) {
		return 0, &engine.RecordTooLargeError{Size: n, Max: len(buf)}
	}
	return n, nil
}

// readFailed ends the connection after a failed read. A record too large is
// the protocol's business (OnError, then OnClose(err)); a socket error is
// just the cause of the loss.
func (c *conn) readFailed(err error) {
	var big *engine.RecordTooLargeError
	if errors.As(err, &big) {
		c.o.Logger.Warn("unixpacket record too large; connection closed", "peer", addrString(c.RemoteAddr()), "size", big.Size, "max", big.Max)
		if c.o.OnError != nil {
			c.o.OnError(c.RemoteAddr(), err)
		}
	}
	c.lose(err)
}

// afterData keeps the read timeout's clock and finishes a graceful shutdown.
func (c *conn) afterData() {
	if !c.idler {
		if c.stopping {
			c.closeIfIdle()
		}
		return
	}
	idle := c.idle()
	if c.o.ReadTimeout > 0 {
		switch {
		case idle:
			c.tm.msgStart = 0
			if c.tm.readTimer != nil {
				c.l.removeTimer(c.tm.readTimer)
			}
		case c.tm.msgStart == 0:
			c.tm.msgStart = mono()
			if c.tm.readTimer == nil {
				c.tm.readTimer = c.l.newConnTimer(c.checkRead)
			}
			c.l.resetTimer(c.tm.readTimer, c.o.ReadTimeout)
		}
	}
	if c.stopping && idle {
		_ = c.Close()
	}
}

func (c *conn) closeIfIdle() {
	if c.idle() {
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
			n, err := c.read()
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
				c.readFailed(err)
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
	c.o.Logger.Error("protocol panicked", "peer", addrString(c.RemoteAddr()), "panic", fmt.Sprint(v), "stack", string(perr.Stack))
	if c.o.OnError != nil {
		c.o.OnError(c.RemoteAddr(), perr)
	}
	c.mu.Lock()
	c.closeLocked(perr)
	c.mu.Unlock()
}

// ---- closing ----------------------------------------------------------------

// closeLocked ends the connection: no more writes; the loop closes the fd
// and calls OnClose(cause). The first cause wins. c.mu must be held.
func (c *conn) closeLocked(cause error) {
	if c.closed {
		return
	}
	c.closed = true
	if c.w != nil {
		closeRegions(c.w)
		c.l.putQueue(c.w)
		c.w = nil
	}
	if c.registered {
		_ = unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		c.registered = false
	}
	c.signalDrainLocked()
	c.l.postTask(task{fin: c, err: cause}) // the first cause is the one
}

func (c *conn) lose(err error) {
	c.mu.Lock()
	c.closeLocked(err)
	c.mu.Unlock()
}

func (c *conn) closeFD(err error) {
	if c.finished {
		return
	}
	c.finished = true
	c.l.conns.remove(c)
	_ = unix.Close(c.fd)
	if tm := c.tm; tm != nil {
		if tm.readTimer != nil {
			c.l.removeTimer(tm.readTimer)
		}
		if tm.idleTimer != nil {
			c.l.removeTimer(tm.idleTimer)
		}
		if tm.writeTimer != nil {
			c.l.removeTimer(tm.writeTimer)
		}
	}
	c.call(func() { c.p.OnClose(err) })
	if c.release != nil {
		c.release()
	}
	c.l.e.connDone(c.l)
}

// Close flushes the buffer, then closes; OnClose(nil) follows.
func (c *conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closing {
		return nil
	}
	c.closing = true
	if c.w == nil {
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
	high, _, hard := c.limitsLocked()
	if q := c.queued(); q > high && q+total > hard {
		c.mu.Unlock()
		return proto.ErrBufferFull
	}
	written := 0
	if c.w == nil {
		var n int
		var err error
		for {
			if len(bufs) == 1 {
				n, err = rawio.Write(c.fd, bufs[0])
			} else {
				n, err = rawio.Writev(c.fd, bufs)
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
	if c.w == nil {
		c.w = c.l.getQueue()
	}
	w := c.w
	skip := written
	for _, b := range bufs {
		if skip >= len(b) {
			skip -= len(b)
			continue
		}
		w.out = append(w.out, b[skip:]...)
		skip = 0
	}
	if c.packet {
		w.lens = append(w.lens, total-written)
	}
	c.queuedUnlock(int64(total-written), high)
	return nil
}

// queuedUnlock follows n bytes (or a file region of n) just queued: EPOLLOUT
// wanted, the write timeout armed, OnPauseWriting past high. It releases
// c.mu.
func (c *conn) queuedUnlock(n int64, high int) {
	c.updateEventsLocked()
	arm := false
	if c.o.WriteTimeout > 0 {
		c.tm.queuedTotal += n
		arm = c.armWriteLocked()
	}
	inline := false
	if !c.writePaused && c.queued() > high {
		c.writePaused = true
		inline = c.pauseChangedLocked()
	}
	c.mu.Unlock()
	if arm {
		c.startWriteTimer()
	}
	if inline {
		c.syncPause()
	}
}

// armWriteLocked starts a write-timeout period unless one runs: what is
// queued now must be flushed within WriteTimeout. It reports whether the
// caller must start the timer (startWriteTimer, once c.mu is released).
func (c *conn) armWriteLocked() bool {
	tm := c.tm
	if tm.wArmed {
		return false
	}
	tm.wArmed = true
	tm.wMark = tm.queuedTotal
	return true
}

// startWriteTimer schedules checkWrite on the loop's wheel, from the loop
// or, from another goroutine, through a posted task.
func (c *conn) startWriteTimer() {
	start := func() {
		if c.finished {
			return
		}
		if c.tm.writeTimer == nil {
			c.tm.writeTimer = c.l.newConnTimer(c.checkWrite)
		}
		c.l.resetTimer(c.tm.writeTimer, c.o.WriteTimeout)
	}
	if c.l.onLoop() {
		start()
		return
	}
	c.l.post(start)
}

// pauseChangedLocked is called, c.mu held, when writePaused has changed. It
// reports true when the caller is a callback of this connection (on the
// loop), which must then call syncPause itself once it has released c.mu:
// OnPauseWriting runs synchronously inside the Write that crossed high.
// Otherwise it posts syncPause (under c.mu, so that every change is followed
// by a sync on the loop), which delivers the change as the connection's next
// callback.
func (c *conn) pauseChangedLocked() bool {
	if c.l.onLoop() && c.l.current == c { // current is the loop's: onLoop first
		return true
	}
	c.l.postSync(c)
	return false
}

// syncPause runs on the loop. It delivers the write-pause state, not its
// edges: it compares writePaused with what the protocol was last told and
// calls OnPauseWriting or OnResumeWriting only when they differ. So the two
// strictly alternate, starting with OnPauseWriting, however writers on other
// goroutines and the loop's flushes interleave; a pause undone before the
// loop could deliver it is not delivered at all.
func (c *conn) syncPause() {
	for !c.finished {
		c.mu.Lock()
		want := c.writePaused
		c.mu.Unlock()
		if want == c.pauseDelivered {
			return
		}
		c.pauseDelivered = want
		switch {
		case c.l.current == c:
			// Inside this connection's callback (a Write from it): a
			// panic unwinds to that callback's containment.
			if want {
				c.p.OnPauseWriting()
			} else {
				c.p.OnResumeWriting()
			}
		case want:
			c.call(c.p.OnPauseWriting)
		default:
			c.call(c.p.OnResumeWriting)
		}
	}
}

// flush writes queued bytes when the socket is writable (on the loop).
func (c *conn) flush() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	var sent []region
	for c.w != nil && (c.queued() > 0 || len(c.w.files) > 0) {
		w := c.w
		if len(w.files) > 0 && w.files[0].at == w.head {
			if !c.flushRegion(&sent) {
				break
			}
			continue
		}
		var chunk []byte
		if c.packet {
			chunk = w.out[w.head : w.head+w.lens[0]]
		} else {
			// Bounded: a raw write keeps its P (no preemption) until it
			// returns, and the kernel takes at most its send buffer anyway.
			chunk = w.out[w.head:min(len(w.out), w.head+maxFlush)]
			if len(w.files) > 0 {
				chunk = chunk[:min(len(chunk), w.files[0].at-w.head)]
			}
		}
		n, err := rawio.Write(c.fd, chunk)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			c.closeLocked(err)
			c.mu.Unlock()
			c.regionsDone(sent)
			return
		}
		c.touch()
		w.head += n
		if c.tm != nil {
			c.tm.sent += int64(n)
		}
		if c.packet {
			w.lens = w.lens[1:]
		}
	}
	if c.closed {
		c.mu.Unlock()
		c.regionsDone(sent)
		return
	}
	if w := c.w; w != nil {
		if c.queued() == 0 && len(w.files) == 0 {
			c.l.putQueue(w)
			c.w = nil
		} else if w.head > len(w.out)/2 {
			n := copy(w.out, w.out[w.head:])
			for i := range w.files {
				w.files[i].at -= w.head
			}
			w.out, w.head = w.out[:n], 0
		}
	}
	resume := false
	_, low, _ := c.limitsLocked()
	if c.writePaused && c.queued() <= low {
		c.writePaused = false
		resume = true // delivered below, by syncPause
	}
	if c.queued() <= low {
		c.signalDrainLocked()
	}
	if c.w == nil {
		if c.closing {
			c.mu.Unlock()
			c.regionsDone(sent) // before OnClose
			c.mu.Lock()
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
	c.regionsDone(sent)
	if resume {
		c.syncPause()
	}
}

func (c *conn) shutdownWriteLocked() {
	c.eofDone = true
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		c.o.Logger.Debug("half-close failed", "peer", addrString(c.RemoteAddr()), "err", err)
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
	if c.w == nil {
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
	if c.lim != nil && c.lim.drainCh != nil {
		close(c.lim.drainCh)
		c.lim.drainCh = nil
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
		if _, low, _ := c.limitsLocked(); c.queued() <= low {
			c.mu.Unlock()
			return nil
		}
		lim := c.limLocked()
		if lim.drainCh == nil {
			lim.drainCh = make(chan struct{})
		}
		ch := lim.drainCh
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
	lim := c.limLocked()
	lim.high, lim.low = high, low
	if !lim.hardSet {
		lim.hard = high * proto.HardLimitFactor
	}
	inline := false
	switch {
	case !c.writePaused && c.queued() > high:
		// Pauses at once: synchronously when called from a callback.
		c.writePaused = true
		inline = c.pauseChangedLocked()
	case c.writePaused && c.queued() <= low:
		// Resumes as the connection's next callback.
		c.writePaused = false
		c.l.postSync(c)
	}
	if c.queued() <= low {
		c.signalDrainLocked()
	}
	c.mu.Unlock()
	if inline {
		c.syncPause()
	}
	return nil
}

func (c *conn) SetWriteBufferHardLimit(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n <= 0 && c.lim == nil {
		return // the default already
	}
	lim := c.limLocked()
	if n <= 0 {
		lim.hardSet = false
		lim.hard = lim.high * proto.HardLimitFactor
		return
	}
	lim.hardSet, lim.hard = true, n
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
		c.tm.activity.Store(mono())
	}
}

func (c *conn) checkIdle() {
	if c.finished {
		return
	}
	left := c.o.IdleTimeout - time.Duration(mono()-c.tm.activity.Load())
	if left > 0 {
		c.l.resetTimer(c.tm.idleTimer, left)
		return
	}
	c.timeout(engine.ErrIdleTimeout)
}

func (c *conn) checkRead() {
	if c.finished || c.tm.msgStart == 0 {
		return
	}
	if left := c.o.ReadTimeout - time.Duration(mono()-c.tm.msgStart); left > 0 {
		c.l.resetTimer(c.tm.readTimer, left)
		return
	}
	c.timeout(engine.ErrReadTimeout)
}

// checkWrite runs on the loop when the write timer fires: the bytes queued
// at the last check must have been flushed; if more are queued now,
// another period begins for them.
func (c *conn) checkWrite() {
	if c.finished {
		return
	}
	tm := c.tm
	c.mu.Lock()
	if c.closed || !tm.wArmed {
		c.mu.Unlock()
		return
	}
	if tm.sent < tm.wMark {
		c.mu.Unlock()
		c.timeout(engine.ErrWriteTimeout)
		return
	}
	tm.wArmed = false
	rearm := c.w != nil && c.armWriteLocked()
	c.mu.Unlock()
	if rearm {
		c.l.resetTimer(tm.writeTimer, c.o.WriteTimeout)
	}
}

func (c *conn) timeout(err error) {
	c.o.Logger.Info("closing connection", "peer", addrString(c.RemoteAddr()), "reason", err.Error())
	if c.o.OnTimeout != nil {
		c.o.OnTimeout(c.RemoteAddr(), err)
	}
	c.lose(err)
}

func (c *conn) LocalAddr() net.Addr { return c.ep.local }

// RemoteAddr returns the peer's address; an IP peer's is made at each call
// (it is kept inline, not as a net.Addr).
func (c *conn) RemoteAddr() net.Addr {
	switch c.rkind {
	case 4:
		return &net.TCPAddr{IP: net.IP{c.rip[12], c.rip[13], c.rip[14], c.rip[15]}, Port: int(c.rport)}
	case 16:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), c.rip[:]...)), Port: int(c.rport)}
	}
	return c.ep.remote
}

// mono is a monotonic clock in nanoseconds, never 0 once the package is
// loaded.
func mono() int64 { return int64(time.Since(monoBase)) + 1 }

var monoBase = time.Now()

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	if s := a.String(); s != "" && s != "@" {
		return s
	}
	return "unix socket peer"
}
