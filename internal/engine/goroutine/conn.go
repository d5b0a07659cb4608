package goroutine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/proto"
)

// Read buffer sizes: a connection starts small and doubles after every read
// that filled its buffer, up to the 64 KiB a raw read may return, so a
// connection that never received more than 4 KiB at once holds 4 KiB rather
// than 64.
const (
	minReadBuf = 4 << 10
	maxReadBuf = 64 << 10
	// maxWriteChunk bounds one write system call so progress (and so the
	// idle timer) is observed on slow peers.
	maxWriteChunk = 256 << 10
	// keepSpare is the largest write buffer kept for reuse after a flush.
	keepSpare = 64 << 10
)

// MaxPacket is the largest unixpacket (SOCK_SEQPACKET) message a connection
// receives: its read buffer, like the datagram endpoints' (maxDatagram).
const MaxPacket = engine.MaxRecord

// ErrPacketTooLarge is the error a unixpacket message larger than MaxPacket
// becomes: reported to OnError and given to OnClose, as the connection is
// closed. The message is never delivered truncated. It matches
// engine.ErrRecordTooLarge, as the epoll engine's error does.
var ErrPacketTooLarge error = &engine.RecordTooLargeError{Max: MaxPacket}

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one stream connection served by the goroutine engine. Its loop
// goroutine (serve) reads and runs every callback; a writer goroutine, started
// only while there is something buffered, flushes the write buffer.
//
// Lock order: conn.mu is a leaf lock. No callback is ever called with mu held,
// and mu is never held while taking engine.mu.
type conn struct {
	e      *Engine
	nc     net.Conn
	o      *engine.Options
	log    *slog.Logger
	p      proto.Protocol
	idler  proto.Idler
	local  net.Addr
	remote net.Addr
	direct func([]byte) (int, error) // non-blocking write, nil for TLS
	packet bool                      // SOCK_SEQPACKET: every Write is one packet
	pr     *packetReader             // packet mode: reads that detect truncation
	rbuf   []byte                    // the loop's read buffer (loop goroutine only), when lr is nil
	lr     *lazyReader               // stream sockets: reads holding a buffer only while there is data

	loopGID  atomic.Uint64 // goroutine running the callbacks
	activity atomic.Int64  // unix nanos of the last byte moved (idle timeout)

	mu           sync.Mutex
	pending      []byte       // queued bytes not yet handed to the writer
	pendingLens  []int        // packet mode: message sizes within pending
	files        []fileRegion // regions queued with pending, each at its place in it
	fileBytes    int64        // the bytes of files
	doneRegions  []fileRegion // sent regions whose done callback has not run
	spare        []byte       // a flushed buffer kept for reuse
	inflight     int          // bytes the writer is writing now
	writerActive bool
	high, low    int
	hard         int
	hardSet      bool
	writePaused  bool // OnPauseWriting given, OnResumeWriting not yet
	eofWanted    bool // WriteEOF called
	eofDone      bool // write side shut down
	closing      bool // Close called: flush, then close
	closed       bool // nc closed
	closeErr     error
	drainCh      chan struct{} // closed when buffered <= low or the conn ends
	events       []func()
	wakeCh       chan struct{}
	inRead       bool // loop is blocked in Read
	woken        bool // a wake interrupted (or will interrupt) the Read
	readPaused   bool
	stopping     bool // graceful shutdown asked for
	done         bool // OnClose ran: events are dropped
	held         []byte
	opened       bool // OnOpen was called: OnClose will be
	closeOnLoop  bool // a clean TLS close left for the loop's finish
	msgStart     time.Time
	readTimer    *time.Timer
	idleTimer    *time.Timer
	// The write timeout's checkpoint: every byte queued up to queuedTotal
	// at the last check (wMark) must be written (sent) by the next one.
	queuedTotal int64
	sent        atomic.Int64 // bytes of the buffer written to the socket
	wMark       int64
	wArmed      bool
	writeTimer  *time.Timer
}

// newConn makes the connection; its protocol is made by serve.
func newConn(e *Engine, nc net.Conn, o *engine.Options) *conn {
	c := &conn{
		e:      e,
		nc:     nc,
		o:      o,
		log:    o.Logger,
		local:  nc.LocalAddr(),
		remote: nc.RemoteAddr(),
		high:   proto.DefaultHighWater,
		low:    proto.DefaultHighWater / 4,
		wakeCh: make(chan struct{}, 1),
	}
	c.hard = c.high * proto.HardLimitFactor
	if _, ok := nc.(*net.UnixConn); ok && (o.Network == "unixpacket" || c.local != nil && c.local.Network() == "unixpacket") {
		c.packet = true
		c.pr = newPacketReader(nc)
	}
	if !c.packet {
		c.direct = directWriter(nc)
		c.lr = newLazyReader(nc)
	}
	return c
}

// ---- the loop -------------------------------------------------------------

// serve runs the connection to its end on the calling goroutine: the TLS
// handshake, the protocol made by f, OnOpen, the read loop, OnClose.
// OnClose is called iff OnOpen was: a connection that ends before it opens
// (the engine stopping, a failed handshake) gets no callback at all.
func (c *conn) serve(f proto.Factory) {
	c.loopGID.Store(engine.GoroutineID())
	defer c.loopGID.Store(0)
	if !c.e.trackConn(c) {
		// The engine began shutting down between accept and now.
		c.closeNow(engine.ErrShutdown)
		return
	}
	if c.open(f) {
		c.loop()
	}
	c.finish()
}

// open completes a TLS handshake, makes the protocol and calls OnOpen. It
// reports false, having called no callback, when the connection ended first.
func (c *conn) open(f proto.Factory) bool {
	if hs, ok := c.nc.(engine.Handshaker); ok && !c.handshake(hs) {
		return false
	}
	p := c.makeProtocol(f)
	if p == nil {
		c.closeNow(nil)
		return false
	}
	c.p = p
	c.idler, _ = p.(proto.Idler)
	c.mu.Lock()
	if c.closed { // aborted (Close, a shutdown deadline) before it opened
		c.mu.Unlock()
		return false
	}
	c.opened = true
	c.mu.Unlock()
	c.touch()
	if c.o.IdleTimeout > 0 {
		c.idleTimer = time.AfterFunc(c.o.IdleTimeout, func() { c.post(c.checkIdle) })
	}
	c.callback(func() { c.p.OnOpen(c) })
	return true
}

// makeProtocol calls the factory; a panic is logged with the peer and gives
// nil, as does a factory that returns nil.
func (c *conn) makeProtocol(f proto.Factory) (p proto.Protocol) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("protocol factory panicked", "peer", addrString(c.remote), "panic", fmt.Sprint(v))
			p = nil
		}
	}()
	p = f(proto.ConnInfo{LocalAddr: c.local, RemoteAddr: c.remote, Network: c.o.Network})
	if p == nil {
		c.log.Error("protocol factory returned nil; connection closed", "peer", addrString(c.remote))
	}
	return p
}

// handshake completes the TLS handshake before the read loop
// (engine.Handshake), so that no wake-up of the loop can interrupt it. A
// failure is logged with the peer and reported to OnError, and the
// connection is closed; it reports success.
func (c *conn) handshake(hs engine.Handshaker) bool {
	err := engine.Handshake(context.Background(), hs, c.o.ReadTimeout, c.o.IdleTimeout)
	if err == nil {
		return true
	}
	c.mu.Lock()
	aborted := c.closed // closed by us (Close, a shutdown deadline), not the peer's doing
	c.mu.Unlock()
	if !aborted {
		c.log.Info("tls handshake failed", "peer", addrString(c.remote), "err", err)
		if c.o.OnError != nil {
			c.o.OnError(c.remote, err)
		}
		c.closeNow(err)
	}
	return false
}

// loop reads and delivers until the connection is closed.
func (c *conn) loop() {
	if c.lr == nil {
		size := minReadBuf
		if c.packet {
			size = MaxPacket
		}
		c.rbuf = make([]byte, size)
	} else {
		defer c.lr.close()
	}
	eof := false
	for {
		c.runEvents()
		if h := c.e.hookBeforeArm; h != nil {
			h()
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			break
		}
		if len(c.events) > 0 {
			// Posted since runEvents looked: run it before blocking in a
			// Read that this post could not interrupt (inRead was false).
			c.mu.Unlock()
			continue
		}
		if len(c.held) > 0 && !c.readPaused && !c.closing {
			held := c.held
			c.held = nil
			c.mu.Unlock()
			c.deliver(held)
			continue
		}
		if eof || c.readPaused || c.closing {
			// Nothing to read: wait for an event (resume, timer, write
			// progress, close).
			stop := c.stopping && !c.closing
			c.mu.Unlock()
			if stop && (c.idler == nil || c.idler.Idle()) {
				_ = c.Close()
				continue
			}
			<-c.wakeCh
			continue
		}
		// While shutting down, reads poll: what already arrived is read and
		// answered, and a poll that finds nothing closes an idle connection.
		poll := c.stopping
		if c.woken || poll {
			c.woken = false
			var dl time.Time
			if poll {
				dl = time.Now().Add(2 * time.Millisecond)
			}
			_ = c.nc.SetReadDeadline(dl)
		}
		c.inRead = true
		c.mu.Unlock()

		buf := c.rbuf
		var n int
		var err error
		switch {
		case c.lr != nil:
			buf, err = c.lr.read()
			n = len(buf)
		case c.pr != nil:
			n, err = c.pr.read(buf)
		default:
			n, err = c.nc.Read(buf)
		}

		c.mu.Lock()
		c.inRead = false
		paused := c.readPaused
		if n > 0 && paused {
			c.held = append(c.held, buf[:n]...)
		}
		c.mu.Unlock()
		if n > 0 && !paused {
			c.deliver(buf[:n])
			if c.lr == nil && n == len(buf) && len(buf) < maxReadBuf {
				c.rbuf = make([]byte, 2*len(buf))
			}
		}
		if err == nil {
			continue
		}
		var ne net.Error
		switch {
		case errors.Is(err, ErrPacketTooLarge):
			c.log.Warn("unixpacket record too large; connection closed", "peer", addrString(c.remote), "max", MaxPacket)
			if c.o.OnError != nil {
				c.o.OnError(c.remote, err)
			}
			c.closeNow(err)
		case errors.As(err, &ne) && ne.Timeout():
			if poll && n == 0 {
				c.pollIdle()
			}
		case errors.Is(err, io.EOF):
			eof = true
			keep := false
			c.callback(func() { keep = c.p.OnEOF() })
			if !keep {
				_ = c.Close()
			}
		default:
			c.closeNow(err) // lost (reset, closed by us: closeNow keeps the first cause)
		}
	}
}

// deliver hands data to the protocol and keeps the read timeout's clock.
func (c *conn) deliver(data []byte) {
	c.touch()
	c.callData(data)
	if c.idler == nil {
		return
	}
	idle := c.idler.Idle()
	if c.o.ReadTimeout > 0 {
		c.mu.Lock()
		switch {
		case idle:
			c.msgStart = time.Time{}
			if c.readTimer != nil {
				c.readTimer.Stop()
			}
		case c.msgStart.IsZero():
			c.msgStart = time.Now()
			if c.readTimer == nil {
				c.readTimer = time.AfterFunc(c.o.ReadTimeout, func() { c.post(c.checkRead) })
			} else {
				c.readTimer.Reset(c.o.ReadTimeout)
			}
		}
		c.mu.Unlock()
	}
}

// pollIdle is called during a graceful shutdown when a poll read found
// nothing more to read: an idle connection is closed (flushing its replies);
// a busy one (half a message received) keeps polling until its message is
// done or the shutdown deadline aborts it.
func (c *conn) pollIdle() {
	if c.idler == nil || c.idler.Idle() {
		_ = c.Close()
	}
}

// runEvents runs the callbacks posted from other goroutines, in order.
func (c *conn) runEvents() {
	for {
		c.mu.Lock()
		evs := c.events
		c.events = nil
		c.mu.Unlock()
		if len(evs) == 0 {
			return
		}
		for _, f := range evs {
			c.callback(f)
		}
	}
}

// post queues f to run on the loop as the connection's next callback.
func (c *conn) post(f func()) {
	c.mu.Lock()
	c.postLocked(f)
	c.mu.Unlock()
}

func (c *conn) postLocked(f func()) {
	if c.done {
		return
	}
	c.events = append(c.events, f)
	c.wakeLocked()
}

// wakeLocked interrupts the loop: a blocked Read gets a deadline in the past,
// a waiting loop a token. c.mu must be held.
func (c *conn) wakeLocked() {
	if c.inRead && !c.woken {
		c.woken = true
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
	}
	select {
	case c.wakeCh <- struct{}{}:
	default:
	}
}

// callback runs f as a callback of this connection, containing a panic: it is
// logged with the peer, reported to OnError, and the connection is aborted.
func (c *conn) callback(f func()) {
	defer func() {
		if v := recover(); v != nil {
			c.contain(v)
		}
	}()
	f()
}

// contain handles a recovered panic: logged with the peer, reported to
// OnError, the connection aborted with the panic as OnClose's error.
func (c *conn) contain(v any) {
	perr := &engine.PanicError{Value: v, Stack: debug.Stack()}
	c.log.Error("protocol panicked", "peer", addrString(c.remote), "panic", fmt.Sprint(v), "stack", string(perr.Stack))
	if c.o.OnError != nil {
		c.o.OnError(c.remote, perr)
	}
	c.closeNow(perr)
}

// callData is callback(OnData) without a closure, on the per-message path.
func (c *conn) callData(data []byte) {
	defer func() {
		if v := recover(); v != nil {
			c.contain(v)
		}
	}()
	c.p.OnData(data)
}

// finish runs once the connection is closed: OnClose exactly once if OnOpen
// was called, timers stopped, the engine told.
func (c *conn) finish() {
	c.mu.Lock()
	err := c.closeErr
	opened := c.opened
	closeSock := c.closeOnLoop
	c.events = nil
	c.done = true
	c.closeRegionsLocked()
	sent := c.doneRegions
	c.doneRegions = nil
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	if c.readTimer != nil {
		c.readTimer.Stop()
	}
	if c.writeTimer != nil {
		c.writeTimer.Stop()
	}
	c.mu.Unlock()
	if closeSock {
		c.sock(opClose)
	}
	c.finishRegions(sent)
	if opened {
		c.callback(func() { c.p.OnClose(err) })
	}
	c.e.untrackConn(c)
}

// checkIdle runs on the loop when the idle timer fires.
func (c *conn) checkIdle() {
	last := time.Unix(0, c.activity.Load())
	left := c.o.IdleTimeout - time.Since(last)
	if left > 0 {
		c.idleTimer.Reset(left)
		return
	}
	c.timeout(engine.ErrIdleTimeout)
}

// armWriteLocked starts a write-timeout period: what is queued now must be
// written within WriteTimeout.
func (c *conn) armWriteLocked() {
	c.wArmed = true
	c.wMark = c.queuedTotal
	if c.writeTimer == nil {
		c.writeTimer = time.AfterFunc(c.o.WriteTimeout, func() { c.post(c.checkWrite) })
		return
	}
	c.writeTimer.Reset(c.o.WriteTimeout)
}

// checkWrite runs on the loop when the write timer fires: the bytes queued
// at the last check must have gone; if more are queued now, another period
// begins for them.
func (c *conn) checkWrite() {
	c.mu.Lock()
	switch {
	case c.closed || !c.wArmed:
	case c.sent.Load() < c.wMark:
		c.mu.Unlock()
		c.timeout(engine.ErrWriteTimeout)
		return
	case c.bufferedLocked() > 0:
		c.armWriteLocked()
	default:
		c.wArmed = false
	}
	c.mu.Unlock()
}

// checkRead runs on the loop when the read timer fires.
func (c *conn) checkRead() {
	c.mu.Lock()
	start := c.msgStart
	c.mu.Unlock()
	if start.IsZero() {
		return
	}
	if left := c.o.ReadTimeout - time.Since(start); left > 0 {
		c.readTimer.Reset(left)
		return
	}
	c.timeout(engine.ErrReadTimeout)
}

func (c *conn) timeout(err error) {
	c.log.Info("closing connection", "peer", addrString(c.remote), "reason", err.Error())
	if c.o.OnTimeout != nil {
		c.o.OnTimeout(c.remote, err)
	}
	// The buffer is discarded, but a TLS peer still gets its close_notify,
	// unless the peer stopped reading: a close_notify would wait behind the
	// write that is stuck.
	how := opClose
	if err == engine.ErrWriteTimeout {
		how = opAbort
	}
	c.mu.Lock()
	op := c.closeNowLocked(err, how)
	c.mu.Unlock()
	c.sock(op)
}

func (c *conn) touch() {
	if c.o.IdleTimeout > 0 {
		c.activity.Store(time.Now().UnixNano())
	}
}

// shutdown asks the connection to end gracefully: an idle connection is
// closed once what already arrived is read and answered; a busy one when its
// message exchange is done.
func (c *conn) shutdown() {
	c.mu.Lock()
	c.stopping = true
	c.wakeLocked()
	c.mu.Unlock()
}

// ---- closing --------------------------------------------------------------

// sockOp is what is left to do to the socket once c.mu is released: closing
// or half-closing a TLS connection writes a close_notify alert, which can
// block for seconds on a peer that does not read, so it is never done with
// c.mu held (every Transport method, and the loop, would wait with it).
type sockOp uint8

const (
	opNone       sockOp = iota
	opClose             // close cleanly (TLS: close_notify, then close)
	opAbort             // close at once (TLS: the socket under it, no alert)
	opCloseWrite        // half-close (TLS: close_notify)
)

// sock does op; c.mu must not be held.
func (c *conn) sock(op sockOp) {
	switch op {
	case opClose:
		_ = c.nc.Close()
	case opAbort:
		if tc, ok := c.nc.(*tls.Conn); ok {
			_ = tc.NetConn().Close()
			return
		}
		_ = c.nc.Close()
	case opCloseWrite:
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			if err := cw.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("half-close failed", "peer", addrString(c.remote), "err", err)
			}
		}
	}
}

// closeNow closes the socket at once, discarding the write buffer. The first
// cause wins; nil means a clean close.
func (c *conn) closeNow(cause error) {
	c.mu.Lock()
	op := c.closeNowLocked(cause, opAbort)
	c.mu.Unlock()
	c.sock(op)
}

// kill aborts the connection for a shutdown deadline or Engine.Close: as
// closeNow does, and it also cuts short a clean TLS close or half-close
// already under way (a close_notify blocked on a peer that does not read).
func (c *conn) kill(cause error) {
	c.closeNow(cause)
	if tc, ok := c.nc.(*tls.Conn); ok {
		_ = tc.NetConn().Close()
	}
}

// closeNowLocked marks the connection closed (the first cause wins), drops
// the write buffer and wakes the loop and Drain. It returns op for the caller
// to do once it has released c.mu, or opNone if the connection was already
// closed.
func (c *conn) closeNowLocked(cause error, op sockOp) sockOp {
	if c.closed {
		return opNone
	}
	c.closed = true
	c.closeErr = cause
	c.pending = nil
	c.pendingLens = nil
	c.spare = nil
	c.closeRegionsLocked()
	c.signalDrainLocked()
	c.wakeLocked()
	if _, ok := c.nc.(*tls.Conn); ok && op == opClose && c.opened {
		// The close_notify may block for seconds: the loop sends it before
		// OnClose, while the connection is still the engine's, so that a
		// shutdown deadline or Engine.Close can cut it short (kill).
		c.closeOnLoop = true
		return opNone
	}
	return op
}

// Close flushes the write buffer, then closes; OnClose(nil) follows.
func (c *conn) Close() error {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	op := opNone
	if c.bufferedLocked() == 0 {
		op = c.closeNowLocked(nil, opClose)
	} else {
		c.wakeLocked() // stop reading
	}
	c.mu.Unlock()
	c.sock(op)
	return nil
}

// Abort discards the write buffer and closes at once.
func (c *conn) Abort() { c.closeNow(nil) }

// ---- writing --------------------------------------------------------------

func (c *conn) bufferedLocked() int { return len(c.pending) + int(c.fileBytes) + c.inflight }

// BufferedAmount reports the bytes queued and not yet sent.
func (c *conn) BufferedAmount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bufferedLocked()
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

func (c *conn) writableLocked() error {
	switch {
	case c.closed || c.closing:
		return proto.ErrClosed
	case c.eofWanted:
		return proto.ErrWriteAfterEOF
	}
	return nil
}

// Writev queues bufs as one write.
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
	if b := c.bufferedLocked(); b > c.high && b+total > c.hard {
		c.mu.Unlock()
		return proto.ErrBufferFull
	}
	// Fast path: nothing queued, so the bytes may go straight to the kernel.
	if c.direct != nil && !c.writerActive && len(c.pending) == 0 && len(c.files) == 0 {
		for len(bufs) > 0 {
			n, err := c.direct(bufs[0])
			if n > 0 {
				c.touch()
			}
			if err != nil {
				op := c.closeNowLocked(err, opAbort)
				c.mu.Unlock()
				c.sock(op)
				return proto.ErrClosed
			}
			if n < len(bufs[0]) {
				bufs[0] = bufs[0][n:]
				break
			}
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			c.mu.Unlock()
			return nil
		}
	}
	if c.pending == nil && c.spare != nil {
		c.pending, c.spare = c.spare[:0], nil
	}
	n := 0
	for _, b := range bufs {
		c.pending = append(c.pending, b...)
		n += len(b)
	}
	if c.packet {
		c.pendingLens = append(c.pendingLens, n)
	}
	c.queuedUnlock(int64(n))
	return nil
}

// queuedUnlock follows n bytes (or a file region of n) just queued: the
// write timeout armed, the writer started, OnPauseWriting past high. It
// releases c.mu.
func (c *conn) queuedUnlock(n int64) {
	c.queuedTotal += n
	if c.o.WriteTimeout > 0 && !c.wArmed {
		c.armWriteLocked()
	}
	c.startWriterLocked()
	pause := false
	if !c.writePaused && c.bufferedLocked() > c.high {
		c.writePaused = true
		pause = true
	}
	c.mu.Unlock()
	if pause {
		c.deliverPause()
	}
}

// deliverPause calls OnPauseWriting: synchronously when the Write came from
// this connection's own callback, else as its next callback.
func (c *conn) deliverPause() {
	if gid := c.loopGID.Load(); gid != 0 && gid == engine.GoroutineID() {
		c.p.OnPauseWriting() // already inside a contained callback
		return
	}
	c.post(c.p.OnPauseWriting)
}

func (c *conn) startWriterLocked() {
	if c.writerActive {
		return
	}
	c.writerActive = true
	c.e.wg.Add(1)
	go c.writeLoop()
}

// writeLoop flushes the buffer and exits when it is empty.
func (c *conn) writeLoop() {
	defer c.e.wg.Done()
	for {
		c.mu.Lock()
		if c.closed || len(c.pending) == 0 && len(c.files) == 0 {
			c.writerActive = false
			op := c.afterFlushLocked()
			c.mu.Unlock()
			c.sock(op)
			return
		}
		buf := c.pending
		lens := c.pendingLens
		files := c.files
		c.pending, c.pendingLens, c.files = nil, nil, nil
		c.inflight = len(buf) + int(c.fileBytes)
		c.fileBytes = 0
		c.mu.Unlock()

		var err error
		if files != nil {
			err = c.writeOutFiles(buf, files)
		} else {
			err = c.writeOut(buf, lens)
		}

		c.mu.Lock()
		c.inflight = 0
		if cap(buf) <= keepSpare {
			c.spare = buf[:0]
		}
		if err != nil {
			op := c.closeNowLocked(err, opAbort)
			c.writerActive = false
			c.mu.Unlock()
			c.sock(op)
			return
		}
		if c.writePaused && c.bufferedLocked() <= c.low {
			c.writePaused = false
			c.postLocked(c.p.OnResumeWriting)
		}
		if c.bufferedLocked() <= c.low {
			c.signalDrainLocked()
		}
		c.mu.Unlock()
	}
}

// writeOut writes buf to the socket: in chunks for a stream, one message per
// write for a packet socket.
func (c *conn) writeOut(buf []byte, lens []int) error {
	if c.packet {
		for _, n := range lens {
			if _, err := c.nc.Write(buf[:n]); err != nil {
				return err
			}
			buf = buf[n:]
			c.sent.Add(int64(n))
			c.touch()
		}
		return nil
	}
	for len(buf) > 0 {
		chunk := buf
		if len(chunk) > maxWriteChunk {
			chunk = chunk[:maxWriteChunk]
		}
		n, err := c.nc.Write(chunk)
		if n > 0 {
			c.sent.Add(int64(n))
			c.touch()
		}
		if err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

// afterFlushLocked finishes a WriteEOF or Close that waited for the buffer;
// it returns what the caller must do to the socket once c.mu is released.
func (c *conn) afterFlushLocked() sockOp {
	if c.closed || c.bufferedLocked() != 0 {
		return opNone
	}
	c.signalDrainLocked()
	if c.closing {
		return c.closeNowLocked(nil, opClose)
	}
	if c.eofWanted && !c.eofDone {
		c.eofDone = true
		return opCloseWrite
	}
	return opNone
}

// WriteEOF half-closes once the buffer has drained.
func (c *conn) WriteEOF() error {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return proto.ErrClosed
	}
	if _, ok := c.nc.(interface{ CloseWrite() error }); !ok {
		c.mu.Unlock()
		return proto.ErrHalfCloseUnsupported
	}
	op := opNone
	if !c.eofWanted {
		c.eofWanted = true
		if c.bufferedLocked() == 0 {
			c.eofDone = true
			op = opCloseWrite
		}
	}
	c.mu.Unlock()
	c.sock(op)
	return nil
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
		if c.bufferedLocked() <= c.low {
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

// SetWriteBufferLimits sets the watermarks (see proto.Transport).
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
	pause := false
	if !c.writePaused && c.bufferedLocked() > c.high {
		c.writePaused = true
		pause = true
	}
	resume := false
	if c.writePaused && !pause && c.bufferedLocked() <= c.low {
		c.writePaused = false
		resume = true
	}
	if c.bufferedLocked() <= c.low {
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

// SetWriteBufferHardLimit sets the hard limit (n <= 0: 16 × high).
func (c *conn) SetWriteBufferHardLimit(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n <= 0 {
		c.hardSet = false
		c.hard = c.high * proto.HardLimitFactor
		return
	}
	c.hardSet = true
	c.hard = n
}

// ---- reading control ------------------------------------------------------

func (c *conn) PauseReading() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readPaused {
		return
	}
	c.readPaused = true
	if c.inRead {
		c.wakeLocked()
	}
}

func (c *conn) ResumeReading() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readPaused {
		return
	}
	c.readPaused = false
	c.wakeLocked()
}

// ---- timers and addresses -------------------------------------------------

func (c *conn) AfterFunc(d time.Duration, f func()) proto.Timer {
	return newTimer(d, f, c.post)
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

var _ proto.Transport = (*conn)(nil)

// timer is an AfterFunc timer whose callback is posted to a loop.
type timer struct {
	t     *time.Timer
	state atomic.Int32 // 0 pending, 1 ran, 2 stopped
}

func newTimer(d time.Duration, f func(), post func(func())) *timer {
	tm := &timer{}
	tm.t = time.AfterFunc(d, func() {
		post(func() {
			if tm.state.CompareAndSwap(0, 1) {
				f()
			}
		})
	})
	return tm
}

func (tm *timer) Stop() bool {
	tm.t.Stop()
	return tm.state.CompareAndSwap(0, 2)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	if s := a.String(); s != "" && s != "@" {
		return s
	}
	return "unix socket peer"
}
