package fake

import (
	"context"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/sockit/sockit/proto"
)

// The addresses the fakes report.
func localAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7788} }
func remoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }

// Conn is a fake stream connection: the engine side of one proto.Protocol
// and the proto.Transport it is given.
type Conn struct {
	P proto.Protocol

	mu        sync.Mutex
	out       []byte // written and not yet taken (sent or buffered)
	buffered  int    // the tail of out not yet "sent"
	high, low int
	hard      int
	wpaused   bool // OnPauseWriting delivered, OnResumeWriting not yet
	pendPause bool // pause crossed outside a callback: deliver next
	pendRes   bool
	rpaused   bool
	held      []byte
	eofW      bool
	closing   bool // Close called
	aborted   bool
	closed    bool // OnClose delivered
	closeErr  error
	inCB      bool
	scratch   []byte
	now       time.Duration
	timers    []*timer
	seq       int
	// Counters for assertions.
	Writes    int // successful non-empty Write/Writev calls
	MaxBuffer int // highest buffered amount seen
}

var _ proto.Transport = (*Conn)(nil)

// Open creates a connection, makes its protocol with f and runs OnOpen.
func Open(f proto.Factory, network string) *Conn {
	c := New()
	c.P = f(proto.ConnInfo{LocalAddr: localAddr(), RemoteAddr: remoteAddr(), Network: network})
	c.callback(func() { c.P.OnOpen(c) })
	return c
}

// New returns a transport with default watermarks and no protocol; set P,
// then call Start.
func New() *Conn {
	return &Conn{
		high: proto.DefaultHighWater,
		low:  proto.DefaultHighWater / 4,
		hard: proto.DefaultHighWater * proto.HardLimitFactor,
	}
}

// Start runs OnOpen.
func (c *Conn) Start() { c.callback(func() { c.P.OnOpen(c) }) }

// callback runs f as a callback of the connection, then whatever it caused
// (a deferred pause, held data after ResumeReading, OnClose after Close).
func (c *Conn) callback(f func()) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.inCB = true
	c.mu.Unlock()
	f()
	c.mu.Lock()
	c.inCB = false
	c.mu.Unlock()
	c.after()
}

func (c *Conn) after() {
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return
		case c.closing:
			c.closed = true
			err := c.closeErr
			c.mu.Unlock()
			c.P.OnClose(err)
			return
		case c.pendPause:
			c.pendPause = false
			c.inCB = true
			c.mu.Unlock()
			c.P.OnPauseWriting()
			c.mu.Lock()
			c.inCB = false
			c.mu.Unlock()
		case c.pendRes:
			c.pendRes = false
			c.inCB = true
			c.mu.Unlock()
			c.P.OnResumeWriting()
			c.mu.Lock()
			c.inCB = false
			c.mu.Unlock()
		case len(c.held) > 0 && !c.rpaused:
			data := c.held
			c.held = nil
			c.mu.Unlock()
			c.deliver(data)
		default:
			c.mu.Unlock()
			return
		}
	}
}

// Data delivers b to OnData (or holds it while reading is paused). The
// protocol sees a copy that is overwritten after the call, as an engine
// reuses its read buffer, so a protocol that keeps it is caught.
func (c *Conn) Data(b []byte) {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return
	}
	if c.rpaused || len(c.held) > 0 {
		c.held = append(c.held, b...)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.deliver(b)
}

func (c *Conn) deliver(b []byte) {
	c.scratch = append(c.scratch[:0], b...)
	buf := c.scratch
	c.callback(func() { c.P.OnData(buf) })
	for i := range buf {
		buf[i] = 0xAA
	}
}

// EOF delivers the peer's half-close: OnEOF, and Close if it returns false.
func (c *Conn) EOF() {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.callback(func() {
		if !c.P.OnEOF() {
			_ = c.Close()
		}
	})
}

// Lost ends the connection with err (a reset): the buffer is discarded and
// OnClose(err) runs.
func (c *Conn) Lost(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.dropUnsent()
	c.buffered = 0
	c.closing = true
	c.closeErr = err
	c.mu.Unlock()
	c.after()
}

// dropUnsent forgets the unsent tail of the output (as far as it was not
// taken already).
func (c *Conn) dropUnsent() {
	c.out = c.out[:len(c.out)-min(c.buffered, len(c.out))]
}

// Send simulates the kernel accepting n buffered bytes (n < 0: all of
// them). OnResumeWriting runs when the amount drops to low or below.
func (c *Conn) Send(n int) {
	c.mu.Lock()
	if n < 0 || n > c.buffered {
		n = c.buffered
	}
	c.buffered -= n
	if c.wpaused && c.buffered <= c.low {
		c.wpaused = false
		c.pendRes = true
	}
	c.mu.Unlock()
	c.after()
}

// Take returns what was written since the last Take (sent or not) and
// forgets it.
func (c *Conn) Take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := append([]byte(nil), c.out...)
	c.out = c.out[:0]
	return b
}

// Discard forgets everything written and marks it sent, without allocating
// (for benchmarks). It does not run OnResumeWriting.
func (c *Conn) Discard() {
	c.mu.Lock()
	c.out = c.out[:0]
	c.buffered = 0
	c.wpaused = false
	c.mu.Unlock()
}

// Output returns a copy of what was written and not yet taken.
func (c *Conn) Output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.out...)
}

// Closing reports whether Close (or Abort, or loss) began.
func (c *Conn) Closing() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.closing }

// Closed reports whether OnClose was delivered, and with which error.
func (c *Conn) Closed() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed, c.closeErr
}

// Aborted reports whether Abort was called.
func (c *Conn) Aborted() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.aborted }

// EOFWritten reports whether WriteEOF was called.
func (c *Conn) EOFWritten() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.eofW }

// ReadingPaused reports whether reading is paused.
func (c *Conn) ReadingPaused() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.rpaused }

// WritingPaused reports whether OnPauseWriting was delivered and
// OnResumeWriting not yet.
func (c *Conn) WritingPaused() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.wpaused }

// Write implements proto.Transport.
func (c *Conn) Write(b []byte) error { return c.Writev(b) }

// Writev implements proto.Transport.
func (c *Conn) Writev(bufs ...[]byte) error {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	c.mu.Lock()
	switch {
	case c.closing:
		c.mu.Unlock()
		return proto.ErrClosed
	case c.eofW:
		c.mu.Unlock()
		return proto.ErrWriteAfterEOF
	case n == 0:
		c.mu.Unlock()
		return nil
	case c.buffered > c.high && c.buffered+n > c.hard:
		c.mu.Unlock()
		return proto.ErrBufferFull
	}
	for _, b := range bufs {
		c.out = append(c.out, b...)
	}
	c.buffered += n
	c.Writes++
	if c.buffered > c.MaxBuffer {
		c.MaxBuffer = c.buffered
	}
	pause := false
	if !c.wpaused && c.buffered > c.high {
		c.wpaused = true
		if c.inCB {
			pause = true
		} else {
			c.pendPause = true
		}
	}
	c.mu.Unlock()
	if pause {
		c.P.OnPauseWriting()
	}
	return nil
}

// WriteEOF implements proto.Transport.
func (c *Conn) WriteEOF() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return proto.ErrClosed
	}
	c.eofW = true
	return nil
}

// Close implements proto.Transport: the buffer counts as flushed, and
// OnClose(nil) runs after the current callback.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.buffered = 0
	in := c.inCB
	c.mu.Unlock()
	if !in {
		c.after()
	}
	return nil
}

// Abort implements proto.Transport: the unsent buffer is discarded.
func (c *Conn) Abort() {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.aborted = true
	c.closing = true
	c.dropUnsent()
	c.buffered = 0
	in := c.inCB
	c.mu.Unlock()
	if !in {
		c.after()
	}
}

// PauseReading implements proto.Transport.
func (c *Conn) PauseReading() { c.mu.Lock(); c.rpaused = true; c.mu.Unlock() }

// ResumeReading implements proto.Transport.
func (c *Conn) ResumeReading() { c.mu.Lock(); c.rpaused = false; c.mu.Unlock() }

// SetWriteBufferLimits implements proto.Transport.
func (c *Conn) SetWriteBufferLimits(high, low int) error {
	switch {
	case high < 0 && low < 0:
		high, low = proto.DefaultHighWater, proto.DefaultHighWater/4
	case high < 0:
		high = 4 * low
	case low < 0:
		low = high / 4
	}
	if high < low {
		return proto.ErrBadLimits
	}
	c.mu.Lock()
	c.high, c.low, c.hard = high, low, high*proto.HardLimitFactor
	pause := false
	if !c.wpaused && c.buffered > c.high {
		c.wpaused = true
		pause = c.inCB
		c.pendPause = !c.inCB
	}
	c.mu.Unlock()
	if pause {
		c.P.OnPauseWriting()
	}
	return nil
}

// SetWriteBufferHardLimit implements proto.Transport.
func (c *Conn) SetWriteBufferHardLimit(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n <= 0 {
		n = c.high * proto.HardLimitFactor
	}
	c.hard = n
}

// BufferedAmount implements proto.Transport.
func (c *Conn) BufferedAmount() int { c.mu.Lock(); defer c.mu.Unlock(); return c.buffered }

// Drain implements proto.Transport. The fake has no other goroutine to send
// bytes, so it only reports the current state.
func (c *Conn) Drain(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closing:
		return proto.ErrClosed
	case c.buffered <= c.low:
		return nil
	}
	return ctx.Err()
}

// AfterFunc implements proto.Transport; the timer runs on Advance.
func (c *Conn) AfterFunc(d time.Duration, f func()) proto.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &timer{c: c, at: c.now + d, seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the fake clock by d and runs the timers that came due, in
// order, each as a callback (timers added by a timer run if due too).
func (c *Conn) Advance(d time.Duration) {
	c.mu.Lock()
	c.now += d
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool {
			a, b := c.timers[i], c.timers[j]
			return a.at < b.at || a.at == b.at && a.seq < b.seq
		})
		if len(c.timers) == 0 || c.timers[0].at > c.now || c.closed {
			c.mu.Unlock()
			return
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		t.fired = true
		c.mu.Unlock()
		c.callback(t.f)
	}
}

// Step runs, each as a callback, the timers that are due now and were
// pending before the call (one round of the event loop); timers they add
// wait for the next Step or Advance.
func (c *Conn) Step() {
	c.mu.Lock()
	var due []*timer
	for _, t := range c.timers {
		if t.at <= c.now {
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	sort.SliceStable(due, func(i, j int) bool { return due[i].at < due[j].at || due[i].at == due[j].at && due[i].seq < due[j].seq })
	for _, t := range due {
		c.mu.Lock()
		if t.fired || c.closed {
			c.mu.Unlock()
			continue
		}
		for i, x := range c.timers {
			if x == t {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				break
			}
		}
		t.fired = true
		c.mu.Unlock()
		c.callback(t.f)
	}
}

// PendingTimers is the number of timers not yet run or stopped.
func (c *Conn) PendingTimers() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.timers) }

// LocalAddr implements proto.Transport.
func (c *Conn) LocalAddr() net.Addr { return localAddr() }

// RemoteAddr implements proto.Transport.
func (c *Conn) RemoteAddr() net.Addr { return remoteAddr() }

type timer struct {
	c     *Conn
	at    time.Duration
	seq   int
	f     func()
	fired bool
}

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.fired {
		return false
	}
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			t.fired = true
			return true
		}
	}
	return false
}

// Datagram is one datagram sent by a protocol.
type Datagram struct {
	Data []byte
	Addr net.Addr
}

// Packet is a fake datagram endpoint: the engine side of one
// proto.DatagramProtocol and the proto.DatagramTransport it is given.
type Packet struct {
	P proto.DatagramProtocol

	mu     sync.Mutex
	sent   []Datagram
	closed bool
	// Fail, if set, is returned by WriteTo.
	Fail error
	// Drop makes WriteTo count datagrams (Sent) without keeping them, so
	// that benchmarks measure the protocol's allocations only.
	Drop bool
	// Sent counts successful WriteTo calls.
	Sent    int
	scratch []byte
}

var _ proto.DatagramTransport = (*Packet)(nil)

// OpenPacket makes an endpoint for p and runs OnOpen.
func OpenPacket(p proto.DatagramProtocol) *Packet {
	pk := &Packet{P: p}
	p.OnOpen(pk)
	return pk
}

// Receive delivers one datagram from addr (a copy, overwritten afterwards).
func (p *Packet) Receive(b []byte, addr net.Addr) {
	p.scratch = append(p.scratch[:0], b...)
	p.P.OnDatagram(p.scratch[:len(b):len(b)], addr)
	for i := range p.scratch {
		p.scratch[i] = 0xAA
	}
}

// Take returns the datagrams sent since the last Take.
func (p *Packet) Take() []Datagram {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.sent
	p.sent = nil
	return d
}

// IsClosed reports whether Close was called.
func (p *Packet) IsClosed() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.closed }

// WriteTo implements proto.DatagramTransport.
func (p *Packet) WriteTo(b []byte, addr net.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return proto.ErrClosed
	}
	if p.Fail != nil {
		return p.Fail
	}
	p.Sent++
	if p.Drop {
		return nil
	}
	p.sent = append(p.sent, Datagram{Data: append([]byte{}, b...), Addr: addr})
	return nil
}

// Close implements proto.DatagramTransport.
func (p *Packet) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.P.OnClose(nil)
	return nil
}

// AfterFunc implements proto.DatagramTransport; the fake never runs it.
func (p *Packet) AfterFunc(time.Duration, func()) proto.Timer { return stopped{} }

// LocalAddr implements proto.DatagramTransport.
func (p *Packet) LocalAddr() net.Addr { return localAddr() }

type stopped struct{}

func (stopped) Stop() bool { return false }
