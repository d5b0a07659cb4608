package goroutine

import (
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

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
	ep.callback(func() { ep.p.OnOpen(ep) })
	buf := make([]byte, maxDatagram)
	var closeErr error
	errorsInRow := 0
	for {
		ep.runEvents()
		ep.mu.Lock()
		if ep.closed {
			ep.mu.Unlock()
			break
		}
		if ep.woken {
			ep.woken = false
			_ = ep.pc.SetReadDeadline(time.Time{})
		}
		ep.inRead = true
		ep.mu.Unlock()

		n, addr, trunc, err := readDatagram(ep.pc, buf)

		ep.mu.Lock()
		ep.inRead = false
		ep.mu.Unlock()
		if err == nil {
			errorsInRow = 0
			if trunc {
				ep.callback(func() { ep.p.OnError(ErrDatagramTooLarge) })
				continue
			}
			data := buf[:n]
			ep.callback(func() { ep.p.OnDatagram(data, addr) })
			continue
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			// woken for an event
		case errors.Is(err, net.ErrClosed):
			ep.mu.Lock()
			ep.closed = true
			ep.mu.Unlock()
		default:
			// ICMP errors and the like: reported, the endpoint stays up. A
			// socket that fails persistently is not allowed to spin.
			ep.callback(func() { ep.p.OnError(err) })
			errorsInRow++
			if errorsInRow > 16 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	ep.mu.Lock()
	ep.events = nil
	ep.done = true
	ep.mu.Unlock()
	ep.callback(func() { ep.p.OnClose(closeErr) })
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

// WriteTo sends one datagram.
func (ep *packetEndpoint) WriteTo(b []byte, addr net.Addr) error {
	var err error
	if addr == nil {
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
