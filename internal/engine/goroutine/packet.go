package goroutine

import (
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/proto"
)

// maxDatagram is the read buffer for datagrams: every UDP datagram fits; a
// larger Unix datagram is reported to OnError, never truncated into a wrong
// message.
const maxDatagram = 64 << 10

// ErrDatagramTooLarge is reported to OnError for a datagram larger than the
// read buffer; the datagram is dropped and the endpoint stays up.
var ErrDatagramTooLarge = fmt.Errorf("sockit: datagram larger than %d bytes dropped", maxDatagram)

// packetEndpoint runs one DatagramProtocol on one packet socket. Its loop
// goroutine reads datagrams and runs every callback.
type packetEndpoint struct {
	e  *Engine
	pc net.PacketConn
	p  proto.DatagramProtocol
	o  *engine.Options

	loopGID atomic.Uint64

	// Datagrams written from the callbacks of a received batch are sent
	// together with one sendmmsg after the batch (Linux UDP).
	bc       batchConn
	ug       *unixgramSender // Unix datagram sockets: sends that never wait
	wmu      sync.Mutex
	batching bool
	out      []ipv4.Message
	outBufs  [][]byte
	nout     int
	batchErr error // a send within the batch failed: reported at its end

	mu     sync.Mutex
	events []func()
	inRead bool
	woken  bool
	closed bool
	done   bool
	wakeCh chan struct{}
}

// ServePacket runs p on pc until pc is closed.
func (e *Engine) ServePacket(pc net.PacketConn, p proto.DatagramProtocol, opts engine.Options) error {
	ep := &packetEndpoint{e: e, pc: pc, p: p, o: withDefaults(opts, e.log), wakeCh: make(chan struct{}, 1)}
	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		return engine.ErrEngineClosed
	}
	e.packets[ep] = struct{}{}
	e.wg.Add(1)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.packets, ep)
		e.mu.Unlock()
		e.wg.Done()
	}()
	ep.serve()
	return nil
}

func (ep *packetEndpoint) serve() {
	ep.loopGID.Store(engine.GoroutineID())
	defer ep.loopGID.Store(0)
	// bc is set before OnOpen: from then on WriteTo may run on any
	// goroutine, and it reads bc.
	ep.bc = newBatchConn(ep.pc)
	ep.ug = newUnixgramSender(ep.pc)
	ep.callback(func() { ep.p.OnOpen(ep) })
	if ep.bc != nil {
		ep.readBatches()
	} else {
		ep.readOneByOne()
	}
	ep.mu.Lock()
	ep.events = nil
	ep.done = true
	ep.mu.Unlock()
	ep.callback(func() { ep.p.OnClose(nil) })
}

// beforeRead runs pending events and arms the read; it reports false once the
// endpoint is closed. An event posted after runEvents looked (its wake found
// no read to interrupt) is run before the read is armed, never left waiting
// for the next datagram.
func (ep *packetEndpoint) beforeRead() bool {
	for {
		ep.runEvents()
		if h := ep.e.hookBeforeArm; h != nil {
			h()
		}
		ep.mu.Lock()
		if ep.closed {
			ep.mu.Unlock()
			return false
		}
		if len(ep.events) > 0 {
			ep.mu.Unlock()
			continue
		}
		if ep.woken {
			ep.woken = false
			_ = ep.pc.SetReadDeadline(time.Time{})
		}
		ep.inRead = true
		ep.mu.Unlock()
		return true
	}
}

// readFailed handles a read error; it reports false when the endpoint ends.
func (ep *packetEndpoint) readFailed(err error, errorsInRow *int) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		// woken for an event
	case errors.Is(err, net.ErrClosed):
		ep.mu.Lock()
		ep.closed = true
		ep.mu.Unlock()
		return false
	default:
		// ICMP errors and the like: reported, the endpoint stays up. A
		// socket that fails persistently is not allowed to spin.
		ep.callback(func() { ep.p.OnError(err) })
		*errorsInRow++
		if *errorsInRow > 16 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return true
}

// readBatches receives up to batchSize datagrams per system call and sends
// the replies written meanwhile with one system call.
//
// After a datagram of more than smallDatagram bytes, the receive buffers'
// pages are handed back once the endpoint has received nothing for
// releaseAfter (batchBuffers), so a burst of large datagrams leaves no
// memory behind.
func (ep *packetEndpoint) readBatches() {
	bb, bufs := newBatchBuffers()
	if h := ep.e.hookBatchBuffers; h != nil {
		h(bb)
	}
	defer bb.free() // callbacks run on this goroutine and keep no datagram
	msgs := make([]ipv4.Message, batchSize)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{bufs[i]}
	}
	var (
		lastBatch time.Time
		touched   bool // a large datagram filled pages since the last release
		armed     bool // a release check is pending
		check     func()
	)
	check = func() {
		if idle := time.Since(lastBatch); idle < releaseAfter {
			ep.AfterFunc(releaseAfter-idle, check)
			return
		}
		armed, touched = false, false
		bb.release()
	}
	errorsInRow := 0
	for ep.beforeRead() {
		n, err := ep.bc.ReadBatch(msgs, 0)
		ep.mu.Lock()
		ep.inRead = false
		ep.mu.Unlock()
		if err != nil {
			if !ep.readFailed(err, &errorsInRow) {
				return
			}
			continue
		}
		errorsInRow = 0
		lastBatch = time.Now()
		ep.wmu.Lock()
		ep.batching = true
		ep.wmu.Unlock()
		for i := 0; i < n; i++ {
			m := &msgs[i]
			if m.N > smallDatagram || truncatedFlag(m.Flags) {
				touched = true
			}
			if truncatedFlag(m.Flags) {
				ep.callback(func() { ep.p.OnError(ErrDatagramTooLarge) })
				continue
			}
			data, addr := m.Buffers[0][:m.N], m.Addr
			ep.callback(func() { ep.p.OnDatagram(data, addr) })
			m.Addr = nil
		}
		ep.flushBatch()
		if touched && !armed {
			armed = true
			ep.AfterFunc(releaseAfter, check)
		}
	}
}

const (
	// smallDatagram: datagrams up to this size touch one page of a slot.
	smallDatagram = 4 << 10
	// releaseAfter is how long an endpoint stays quiet before the pages of
	// large datagrams are handed back.
	releaseAfter = time.Second
	// keepReply is the largest queued reply copy kept for the next batch.
	keepReply = 4 << 10
)

// flushBatch sends the datagrams queued during a batch.
func (ep *packetEndpoint) flushBatch() {
	ep.wmu.Lock()
	ep.batching = false
	err := ep.sendQueuedLocked()
	if ep.batchErr != nil {
		err, ep.batchErr = ep.batchErr, nil
	}
	ep.wmu.Unlock()
	if err != nil {
		ep.callback(func() { ep.p.OnError(err) })
	}
}

func (ep *packetEndpoint) sendQueuedLocked() error {
	var firstErr error
	msgs := ep.out[:ep.nout]
	for len(msgs) > 0 {
		n, err := ep.bc.WriteBatch(msgs, 0)
		if err != nil {
			if firstErr == nil {
				// sendmmsg fails only on its first datagram (n == 0):
				// name it, since the error reaches OnError later.
				i := n
				if i < 0 || i >= len(msgs) {
					i = 0
				}
				m := &msgs[i]
				firstErr = fmt.Errorf("datagram of %d bytes to %v not sent: %w", len(m.Buffers[0]), m.Addr, err)
			}
			n = max(n, 1) // skip the datagram that failed
		}
		msgs = msgs[n:]
	}
	for i := 0; i < ep.nout; i++ {
		ep.out[i].Addr = nil
		if cap(ep.outBufs[i]) > keepReply { // one large reply pins no memory
			ep.outBufs[i], ep.out[i].Buffers[0] = nil, nil
		}
	}
	ep.nout = 0
	return firstErr
}

func (ep *packetEndpoint) readOneByOne() {
	buf := make([]byte, maxDatagram)
	errorsInRow := 0
	for ep.beforeRead() {
		n, addr, trunc, err := readDatagram(ep.pc, buf)
		ep.mu.Lock()
		ep.inRead = false
		ep.mu.Unlock()
		if err != nil {
			if !ep.readFailed(err, &errorsInRow) {
				return
			}
			continue
		}
		errorsInRow = 0
		if trunc {
			ep.callback(func() { ep.p.OnError(ErrDatagramTooLarge) })
			continue
		}
		data := buf[:n]
		ep.callback(func() { ep.p.OnDatagram(data, addr) })
	}
}

func (ep *packetEndpoint) runEvents() {
	for {
		ep.mu.Lock()
		evs := ep.events
		ep.events = nil
		ep.mu.Unlock()
		if len(evs) == 0 {
			return
		}
		for _, f := range evs {
			ep.callback(f)
		}
	}
}

func (ep *packetEndpoint) post(f func()) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.done {
		return
	}
	ep.events = append(ep.events, f)
	ep.wakeLocked()
}

func (ep *packetEndpoint) wakeLocked() {
	if ep.inRead && !ep.woken {
		ep.woken = true
		_ = ep.pc.SetReadDeadline(aLongTimeAgo)
	}
}

func (ep *packetEndpoint) callback(f func()) {
	defer func() {
		if v := recover(); v != nil {
			ep.o.Logger.Error("datagram protocol panicked", "local", addrString(ep.pc.LocalAddr()), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if ep.o.OnError != nil {
				ep.o.OnError(nil, &engine.PanicError{Value: v})
			}
		}
	}()
	f()
}

func (ep *packetEndpoint) close() {
	ep.mu.Lock()
	ep.closed = true
	ep.mu.Unlock()
	_ = ep.pc.Close()
}

// WriteTo sends one datagram. While a received batch is being handled, the
// datagram joins the batch of replies sent after it (an error then reaches
// OnError rather than WriteTo's result).
func (ep *packetEndpoint) WriteTo(b []byte, addr net.Addr) error {
	if ep.bc != nil && len(b) > 0 && addr != nil {
		ep.wmu.Lock()
		if ep.batching {
			if ep.nout == batchSize {
				if err := ep.sendQueuedLocked(); err != nil && ep.batchErr == nil {
					ep.batchErr = err // reported when the batch ends
				}
			}
			if ep.nout == len(ep.out) {
				ep.out = append(ep.out, ipv4.Message{Buffers: make([][]byte, 1)})
				ep.outBufs = append(ep.outBufs, nil)
			}
			i := ep.nout
			ep.outBufs[i] = append(ep.outBufs[i][:0], b...)
			ep.out[i].Buffers[0] = ep.outBufs[i]
			ep.out[i].Addr = addr
			ep.nout++
			ep.wmu.Unlock()
			return nil
		}
		ep.wmu.Unlock()
	}
	var err error
	if ep.ug != nil {
		err = ep.ug.send(b, addr)
	} else if addr == nil {
		c, ok := ep.pc.(net.Conn)
		if !ok {
			return errors.New("sockit: WriteTo needs an address on an unconnected socket")
		}
		_, err = c.Write(b)
	} else {
		_, err = ep.pc.WriteTo(b, addr)
	}
	if errors.Is(err, net.ErrClosed) {
		return proto.ErrClosed
	}
	return err
}

// Close closes the endpoint; OnClose(nil) follows on the loop.
func (ep *packetEndpoint) Close() error {
	ep.close()
	return nil
}

func (ep *packetEndpoint) AfterFunc(d time.Duration, f func()) proto.Timer {
	return newTimer(d, f, ep.post)
}

func (ep *packetEndpoint) LocalAddr() net.Addr { return ep.pc.LocalAddr() }

var _ proto.DatagramTransport = (*packetEndpoint)(nil)
